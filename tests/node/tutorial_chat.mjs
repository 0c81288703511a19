// The StaticBackend live-chat tutorial, client side, with the real @staticbackend/js client (1.7.0)
// against a running sblite server that has the tutorial's `new_msg` function (trigger chan_out):
//
//   SBLITE_URL=http://127.0.0.1:8099 node tutorial_chat.mjs
//
// A user registers and logs in, connects over Server-Sent Events (the `eventsource` polyfill as
// Node's EventSource), joins "lobby" from onAuth as the tutorial does, sends a chat message with
// chan_in, receives it back as chan_out, then polls list(token, "msgs_774_") (bounded) until the
// function has persisted the message with its `sentOn` field. The server must run in dev mode
// (public key `dev_memory_pk`). The last lines printed are `DOC <json>` (the persisted document,
// when found) and `N passed, M failed`; the exit code is non-zero on any failure.

import { EventSource } from "eventsource";
import { Backend } from "@staticbackend/js";
import { BASE_URL, check, results, show, summary } from "./check.mjs";

// The client calls `new EventSource(url)` and sets `onmessage` / `onerror`.
globalThis.EventSource = EventSource;

const PK = "dev_memory_pk";
const CHANNEL = "lobby";
const COLLECTION = "msgs_774_";
const TEXT = "hello from the tutorial";
const WAIT_MS = 5000; // bound for realtime frames
const PERSIST_MS = 15000; // bound for the function to persist the message
const POLL_MS = 100;


const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` (sync or async) until it returns a truthy value (returned) or `ms` pass. */
async function waitFor(predicate, ms = WAIT_MS, every = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(every);
  }
}

function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const TAG = Math.random().toString(36).slice(2, 10);
const EMAIL = `chat.${TAG}@example.com`;
const PASSWORD = "tutorial-pw-123";

const sb = new Backend(PK, BASE_URL);
const frames = []; // everything onMessage received, in order
const authed = []; // every value onAuth was called with
let persisted;

async function main() {
  console.log(`sblite live-chat tutorial against ${BASE_URL} (run tag ${TAG})`);

  // 1. A user registers, then logs in (the tutorial's login form).
  const reg = await sb.register(EMAIL, PASSWORD);
  if (!check(reg.ok === true && typeof reg.content === "string" && reg.content.length > 0, "register a user", reg)) return;
  const login = await sb.login(EMAIL, PASSWORD);
  if (!check(login.ok === true && typeof login.content === "string" && login.content.length > 0, "login", login)) return;
  const token = login.content;

  // 2. Connect over SSE; join the lobby once authenticated, as the tutorial does in onAuth.
  sb.connect(
    token,
    (tok) => {
      authed.push(tok);
      sb.send("join", CHANNEL);
    },
    (pl) => frames.push(pl),
  );
  if (!check(await waitFor(() => authed.length > 0), "onAuth fires after connect", frames)) return;
  check(authed[0] === token, "onAuth receives the session token", authed[0]);
  const joined = await waitFor(() => frames.find((f) => f.type === "joined" && f.channel === CHANNEL && f.data === sb.wsId));
  if (!check(joined, `joined ${CHANNEL}`, frames)) return;

  // 3. Post a chat message with chan_in, as the tutorial's form does.
  const data = JSON.stringify({ text: TEXT, user: EMAIL });
  const sentAt = Date.now();
  const mark = frames.length;
  check(sb.send("chan_in", data, CHANNEL) === true, "send(chan_in) returns true");
  const out = await waitFor(() => frames.slice(mark).find((f) => f.type === "chan_out" && f.channel === CHANNEL));
  check(out, `receive the chan_out on ${CHANNEL}`, frames.slice(mark));
  if (out) {
    check(out.data === data, "chan_out data is the message as sent", out);
    check(out.sid === sb.wsId, "chan_out sid is the sender's connection id", out);
  }
  const errors = frames.slice(mark).filter((f) => f.type === "error");
  check(errors.length === 0, "no error frame after chan_in", errors);

  // 4. The function persisted it: poll list(token, "msgs_774_") until it appears (bounded).
  let lastList;
  persisted = await waitFor(
    async () => {
      lastList = await sb.list(token, COLLECTION);
      if (!lastList.ok) return undefined;
      return (lastList.content?.results || []).find((d) => d && d.text === TEXT && d.user === EMAIL);
    },
    PERSIST_MS,
    POLL_MS,
  );
  check(persisted, `the function created the message in ${COLLECTION} within ${PERSIST_MS} ms`, lastList);
  if (persisted) {
    console.log(`persisted ${Date.now() - sentAt} ms after chan_in`);
    check(typeof persisted.id === "string" && persisted.id.length > 0, "the document has an id", persisted);
    check("sentOn" in persisted && typeof persisted.sentOn === "string", "the document has a sentOn field (a date string)", persisted);
    const sentOn = Date.parse(persisted.sentOn);
    check(!Number.isNaN(sentOn) && Math.abs(sentOn - sentAt) < 60_000, "sentOn is a date close to the send time", persisted.sentOn);
    check(lastList.content.total === 1, "exactly one message document (the function ran once)", lastList.content);
  }
}

function finish(code) {
  if (sb.sseClient) sb.sseClient.close();
  if (persisted) console.log(`DOC ${JSON.stringify(persisted)}`);
  console.log(summary());
  process.exit(code);
}

const watchdog = setTimeout(() => {
  check(false, "tutorial did not finish within 60 s");
  finish(1);
}, 60_000);

try {
  await main();
} catch (err) {
  check(false, "unexpected exception", err && err.stack ? err.stack : err);
}
clearTimeout(watchdog);
finish(results.failures.length ? 1 : 0);
