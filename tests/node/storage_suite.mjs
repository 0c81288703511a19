// File storage through the real @staticbackend/js client (1.7.0): uploadFile, storeFile, listFiles,
// storageUsage and resizeImage against a running sblite server, the file URLs read back (with a
// range request), and one account unable to list or read another's private files. Usage:
//
//   SBLITE_URL=http://127.0.0.1:8099 node storage_suite.mjs
//
// The last line printed is always `N passed, M failed`.

import { deflateSync } from "node:zlib";
import { Backend } from "@staticbackend/js";
import { ADMIN_EMAIL, ADMIN_PASSWORD, area, BASE_URL, check, eq, PK, runSuite, TAG } from "./check.mjs";

const sb = new Backend(PK, BASE_URL);

// In a browser, storeFile(token, form) and resizeImage(token, width, form) call `new FormData(form)`
// on an HTML <form>. Node has no forms and its FormData takes none, so a FormData that copies the
// fields of a stand-in form plays the browser's part; the client code itself is untouched.
class StandInForm {
  constructor(fields) {
    this.fields = fields;
  }
}
const NodeFormData = globalThis.FormData;
globalThis.FormData = class extends NodeFormData {
  constructor(form) {
    super();
    if (form instanceof StandInForm) for (const [name, value] of form.fields) this.append(name, value);
  }
};


function ok(res, what) {
  if (check(res && res.ok === true, `${what} should succeed`, res && res.content)) return res.content;
  return undefined;
}

function fails(res, what, message) {
  if (!check(res && res.ok === false, `${what} should fail`, res && res.content)) return;
  check(typeof res.content === "string" && res.content.startsWith(message),
    `${what}: error text should start with ${JSON.stringify(message)}`, res.content);
}

async function loginAs(email, password) {
  const token = ok(await sb.login(email, password), `login ${email}`);
  const me = ok(await sb.me(token), `me ${email}`);
  return { token, accountId: me?.accountId };
}

async function register(name) {
  const email = `${name}.${TAG}@example.com`;
  ok(await sb.register(email, `${name}-pw-123`), `register ${name}`);
  return loginAs(email, `${name}-pw-123`);
}

/** GET a file URL; { status, headers, bytes }. */
async function read(url, { token, range } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (range) headers.Range = range;
  const resp = await fetch(url, { headers });
  return { status: resp.status, headers: resp.headers, bytes: new Uint8Array(await resp.arrayBuffer()) };
}

const sameBytes = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);

// --- a small PNG, made here: signature, IHDR, one IDAT of unfiltered RGB rows, IEND

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function png(width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rows.set([x % 256, y % 256, 128], y * (width * 3 + 1) + 1 + x * 3);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", header),
    chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]);
}

function pngSize(bytes) {
  const view = Buffer.from(bytes);
  return view.subarray(12, 16).toString("ascii") === "IHDR" ? [view.readUInt32BE(16), view.readUInt32BE(20)] : null;
}

// ---

async function testUploadsAndReads(alice) {
  const text = new TextEncoder().encode(`notes of ${TAG}\n`);
  const up = await sb.uploadFile(alice.token, new File([text], "notes.txt", { type: "text/plain" }));
  check(up && typeof up.id === "string" && typeof up.url === "string" && up.url.startsWith(`${BASE_URL}/localfs/`),
    "uploadFile returns {id, url} under /localfs/", up);
  eq(Object.keys(up || {}).sort(), ["id", "url"], "uploadFile: exactly id and url");

  const mine = await read(up.url, { token: alice.token });
  check(mine.status === 200 && sameBytes(mine.bytes, text), "the url serves the uploaded bytes to its account", mine.status);
  check((mine.headers.get("content-type") || "").startsWith("text/plain"), "served with the type of its name",
    mine.headers.get("content-type"));
  eq((await read(up.url)).status, 404, "a private file without a token");
  const viaQuery = await read(`${up.url}?token=${encodeURIComponent(alice.token)}`);
  check(viaQuery.status === 200 && sameBytes(viaQuery.bytes, text), "?token= reads it (what an <img src> can send)",
    viaQuery.status);

  const video = new Uint8Array(50_000).map((_, i) => (i * 7) % 251);
  const stored = ok(await sb.storeFile(alice.token, new StandInForm([
    ["file", new File([video], "clip.mp4", { type: "video/mp4" })], ["name", "Holiday clip"], ["public", "true"]])),
    "storeFile with a form: file, name, public");
  const open = await read(stored?.url);
  check(open.status === 200 && sameBytes(open.bytes, video), "a public file is read without a token", open.status);
  eq(open.headers.get("content-type"), "video/mp4", "video served as video/mp4");

  // a range request, as a video player scrubbing sends
  const part = await read(stored?.url, { range: "bytes=1000-1999" });
  eq(part.status, 206, "a range request answers 206");
  eq(part.headers.get("content-range"), "bytes 1000-1999/50000", "Content-Range");
  check(sameBytes(part.bytes, video.subarray(1000, 2000)), "the range's bytes", part.bytes.length);
  eq((await read(stored?.url, { range: "bytes=60000-" })).status, 416, "a range past the end answers 416");
  const etag = open.headers.get("etag");
  const again = await fetch(stored?.url, { headers: { "If-None-Match": etag } });
  eq(again.status, 304, "If-None-Match with the ETag answers 304");
  await again.arrayBuffer();

  fails(await sb.storeFile(alice.token, new StandInForm([["name", "no file"]])), "storeFile without a file",
    "invalid form body: the `file` field is missing");
  let thrown = null;
  try {
    await sb.uploadFile(alice.token, new File([], "empty.txt"));
  } catch (err) {
    thrown = err;
  }
  check(thrown && /invalid file: the file is empty/.test(thrown.message), "uploadFile of an empty file throws the reason",
    thrown && thrown.message);
  return { text: up, video: stored, sizes: { text: text.length, video: video.length } };
}

async function testResize(alice) {
  const original = png(160, 120);
  const resized = ok(await sb.resizeImage(alice.token, 40, new StandInForm([
    ["file", new File([original], "photo.png", { type: "image/png" })], ["name", "Thumbnail"]])),
    "resizeImage 160x120 to 40 wide");
  const got = await read(resized?.url, { token: alice.token });
  eq(got.status, 200, "the resized copy is served");
  eq(got.headers.get("content-type"), "image/png", "the resized copy is a PNG");
  eq(pngSize(got.bytes), [40, 30], "the resized copy keeps the aspect ratio");
  fails(await sb.resizeImage(alice.token, 40, new StandInForm([["file", new File(["plain words"], "a.png")]])),
    "resizeImage of a text file", "invalid image");
  fails(await sb.resizeImage(alice.token, -3, new StandInForm([["file", new File([original], "a.png")]])),
    "resizeImage to a negative width", "invalid width");
  return { ...resized, size: got.bytes.length };
}

async function testListingAndUsage(alice, bob, admin, files) {
  const expected = [
    [files.video.id, files.sizes.video], [files.resized.id, files.resized.size], [files.text.id, files.sizes.text],
  ].sort((a, b) => b[1] - a[1]);
  const bySize = ok(await sb.listFiles(alice.token, { sort: "size", desc: true }), "listFiles sort=size desc");
  eq(bySize?.total, 3, "listFiles: alice's three files");
  eq((bySize?.results || []).map((f) => [f.id, f.size]), expected, "listFiles: largest first, each with its real size");
  const first = bySize?.results?.[0];
  check(first && ["id", "accountId", "key", "url", "size", "uploaded"].every((k) => k in first),
    "a listed file has id, accountId, key, url, size, uploaded", first);
  eq(first?.accountId, alice.accountId, "listed under alice's account");
  const page = ok(await sb.listFiles(alice.token, { page: 2, size: 2 }), "listFiles page 2 of size 2");
  eq([page?.page, page?.size, page?.total, (page?.results || []).map((f) => f.id)], [2, 2, 3, [files.resized.id]],
    "listFiles paging, oldest first by default");
  fails(await sb.listFiles(alice.token, { sort: "name" }), "listFiles sort=name", "invalid sort");

  const usage = ok(await sb.storageUsage(alice.token), "storageUsage");
  const bytes = files.sizes.text + files.sizes.video + files.resized.size;
  eq(usage, { bytes, gb: bytes / 1024 ** 3 }, "storageUsage: the bytes of alice's account");

  // another account sees none of it and reads none of the private files
  eq(ok(await sb.listFiles(bob.token), "bob listFiles")?.total, 0, "bob lists none of alice's files");
  eq(ok(await sb.storageUsage(bob.token), "bob storageUsage")?.bytes, 0, "bob's usage is 0");
  eq((await read(files.text.url, { token: bob.token })).status, 404, "bob cannot read alice's private file");
  eq((await read(files.resized.url, { token: bob.token })).status, 404, "nor her resized copy");
  eq((await read(files.video.url, { token: bob.token })).status, 200, "but he may read the file she made public");

  const all = ok(await sb.listFiles(admin.token, { size: 100 }), "admin listFiles");
  check((all?.results || []).filter((f) => f.accountId === alice.accountId).length === 3,
    "the app's admin lists the whole app", all?.total);
}

async function main() {
  console.log(`sblite storage suite against ${BASE_URL} (run tag ${TAG})`);
  const alice = await register("alice");
  const bob = await register("bob");
  const admin = await loginAs(ADMIN_EMAIL, ADMIN_PASSWORD);
  if (!alice.token || !bob.token || !admin.token) return;
  const uploaded = await area("uploadFile / storeFile / reading urls (range, ETag)", () => testUploadsAndReads(alice));
  const resized = await area("resizeImage", () => testResize(alice));
  if (!uploaded || !resized) return;
  await area("listFiles / storageUsage / another account", () =>
    testListingAndUsage(alice, bob, admin, { ...uploaded, resized }));
}

await runSuite(main);
