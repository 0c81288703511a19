// One 20 MB upload through the real client's uploadFile, then read back and compared, for
// tests/test_storage_memory.py (which watches the server's peak memory meanwhile). Not a *_suite:
// it needs a session token from the test, in SBLITE_TOKEN. Usage:
//
//   SBLITE_URL=http://127.0.0.1:8099 SBLITE_TOKEN=<session token> node storage_big.mjs
//
// The last line printed is always `N passed, M failed`.

import { createHash } from "node:crypto";
import { Backend } from "@staticbackend/js";
import { BASE_URL, check, results as tally, summary } from "./check.mjs";

const SIZE = 20 * 1024 * 1024;
const token = process.env.SBLITE_TOKEN;
const sb = new Backend("dev_memory_pk", BASE_URL);

const data = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i += 4096) data.set(createHash("sha256").update(String(i)).digest(), i);
const digest = (bytes) => createHash("sha256").update(bytes).digest("hex");

const up = await sb.uploadFile(token, new File([data], "big.bin", { type: "application/octet-stream" }));
check(up && typeof up.url === "string", "uploadFile of 20 MB returns {id, url}", up);
const listed = await sb.listFiles(token, { sort: "size", desc: true });
check(listed.ok && listed.content.results[0]?.id === up.id && listed.content.results[0]?.size === SIZE,
  "listFiles shows it with its size", listed.content);
const usage = await sb.storageUsage(token);
check(usage.ok && usage.content.bytes >= SIZE, "storageUsage counts it", usage.content);
const resp = await fetch(up.url, { headers: { Authorization: `Bearer ${token}` } });
const back = new Uint8Array(await resp.arrayBuffer());
check(resp.status === 200 && back.length === SIZE && digest(back) === digest(data), "read back byte for byte",
  [resp.status, back.length]);
console.log(summary());
process.exit(tally.failures.length ? 1 : 0);
