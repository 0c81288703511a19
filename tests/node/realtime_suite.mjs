// Drives the realtime part of the real @staticbackend/js client (1.7.0): `connect` (Server-Sent
// Events through the `eventsource` polyfill) and `send`, against a running sblite server, and
// asserts every frame. Usage:
//
//   SBLITE_URL=http://127.0.0.1:8099 node realtime_suite.mjs
//
// Against a dev server (public key `dev_memory_pk`, root alias `safe-to-use-in-dev-root-token`), or
// a prod one whose credentials are in SBLITE_PK and SBLITE_ROOT_TOKEN (check.mjs). Emails, collections and channels carry a random per-run tag,
// so the suite can run repeatedly against the same database. Every wait is bounded. The last line
// printed is always `N passed, M failed`; the exit code is non-zero on any failure.

import { EventSource } from "eventsource";
import { Backend } from "@staticbackend/js";
import { area, BASE_URL, check, eq, PK, ROOT_TOKEN, runSuite, TAG } from "./check.mjs";

// The client calls `new EventSource(url)` and sets `onmessage` / `onerror`.
globalThis.EventSource = EventSource;

const WAIT_MS = 5000; // bound for frames that must arrive
const SILENCE_MS = 500; // how long to watch for frames that must not arrive



const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` until it returns a truthy value (returned) or `ms` pass (returns undefined). */
async function waitFor(predicate, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(10);
  }
}

function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}


const PAYLOAD_KEYS = ["sid", "type", "data", "channel", "token", "auth", "base"];

// ---------------------------------------------------------------------------
// Realtime users: one Backend (so one EventSource) each, every received frame recorded in order.

class Peer {
  constructor(name) {
    this.name = name;
    this.sb = new Backend(PK, BASE_URL);
    this.frames = []; // everything onMessage received, in order
    this.authed = []; // every value onAuth was called with
    this.token = "";
    this.alias = ""; // the id other members see for this connection (never its wsId)
  }

  get sid() {
    return this.sb.wsId;
  }

  /** Opens the stream; `onAuth` joins `joinChannel` when given (as apps do). */
  connect(token, joinChannel) {
    this.token = token;
    this.sb.connect(
      token,
      (tok) => {
        this.authed.push(tok);
        if (joinChannel) this.sb.send("join", joinChannel);
      },
      (pl) => this.frames.push(pl),
    );
  }

  /** The first frame at index >= `from` matching `pred`, waiting at most `ms`. */
  async frame(from, pred, ms = WAIT_MS) {
    const hit = await waitFor(() => {
      for (let i = from; i < this.frames.length; i++) if (pred(this.frames[i])) return { index: i, frame: this.frames[i] };
      return undefined;
    }, ms);
    return hit;
  }

  /** Sends a message and waits for the first reply frame after it that matches `pred`. */
  async request(type, data, channel, pred, ms = WAIT_MS) {
    const mark = this.frames.length;
    const sent = this.sb.send(type, data, channel);
    check(sent === true, `${this.name}: send(${type}) returns true`, sent);
    const hit = await this.frame(mark, pred, ms);
    return hit?.frame;
  }

  /** Frames at index >= `from` matching `pred` (no waiting). */
  since(from, pred) {
    return this.frames.slice(from).filter(pred);
  }

  close() {
    if (this.sb.sseClient) this.sb.sseClient.close();
  }
}

const isType = (type, extra = () => true) => (f) => f && f.type === type && extra(f);

// ---------------------------------------------------------------------------
// Plain HTTP helpers (register, root calls, raw /sse/msg).

async function http(method, path, { token, body } = {}) {
  const headers = { "SB-PUBLIC-KEY": PK, "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(BASE_URL + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  return { status: resp.status, text, json: parseJSON(text) };
}

const root = (method, path, body) => http(method, path, { token: ROOT_TOKEN, body });

async function registerUser(name) {
  const sb = new Backend(PK, BASE_URL);
  const res = await sb.register(`${name}.${TAG}@example.com`, `${name}-pw-123`);
  check(res.ok === true && typeof res.content === "string", `register ${name}`, res);
  const me = await sb.me(res.content);
  check(me.ok === true, `me ${name}`, me);
  return { token: res.content, userId: me.content?.userId, accountId: me.content?.accountId };
}

// ---------------------------------------------------------------------------
// Areas

const LOBBY = `lobby-${TAG}`;

async function testConnectAndJoin(alice, bob, users) {
  // Alice connects and joins the lobby from onAuth.
  alice.connect(users.alice.token, LOBBY);
  const authA = await waitFor(() => alice.authed.length > 0);
  check(authA, "alice: onAuth fires after connect");
  eq(alice.authed[0], users.alice.token, "alice: onAuth receives the session token");
  check(typeof alice.sid === "string" && alice.sid.length > 0, "alice: init set the connection id (wsId)", alice.sid);

  const okA = await alice.frame(0, isType("ok", (f) => f.data === LOBBY));
  check(okA, "alice: join in onAuth → ok with data = channel", alice.frames);
  const joinedA = await alice.frame(0, isType("joined", (f) => f.channel === LOBBY && f.data === alice.sid));
  check(joinedA, "alice: receives her own joined (data = her connection id)", alice.frames);
  if (okA && joinedA) check(okA.index < joinedA.index, "alice: ok comes before joined", alice.frames);
  if (okA) {
    eq(PAYLOAD_KEYS.filter((k) => k in okA.frame), PAYLOAD_KEYS, "ok frame carries all 7 Payload keys");
    eq(okA.frame.sid, alice.sid, "ok frame: sid = the connection id");
  }

  // Bob (another account) connects and joins the same lobby.
  const aliceMark = alice.frames.length;
  bob.connect(users.bob.token, LOBBY);
  check(await waitFor(() => bob.authed.length > 0), "bob: onAuth fires after connect");
  eq(bob.authed[0], users.bob.token, "bob: onAuth receives the session token");
  check(bob.sid && bob.sid !== alice.sid, "bob: a different connection id than alice", [alice.sid, bob.sid]);
  const okB = await bob.frame(0, isType("ok", (f) => f.data === LOBBY));
  check(okB, "bob: join in onAuth → ok", bob.frames);
  const joinedB = await bob.frame(0, isType("joined", (f) => f.channel === LOBBY && f.data === bob.sid));
  check(joinedB, "bob: receives his own joined", bob.frames);
  if (okB && joinedB) check(okB.index < joinedB.index, "bob: ok comes before joined", bob.frames);
  const seenByA = await alice.frame(aliceMark, isType("joined", (f) => f.channel === LOBBY && f.data !== alice.sid));
  check(seenByA, "alice: sees bob's joined on the lobby", alice.frames);
  bob.alias = seenByA?.frame.data || "";
  check(bob.alias.length === 36 && bob.alias !== bob.sid, "alice sees bob under an alias, not his connection id",
    [bob.alias, bob.sid]);

  // Presence counts real members.
  const p2 = await alice.request("presence", LOBBY, undefined, isType("presence"));
  eq(p2?.data, "2", "presence of the lobby with alice and bob");

  // Leave and join again: bob then sees alice's joined too.
  const left = await alice.request("leave", LOBBY, undefined, isType("ok", (f) => f.data === LOBBY));
  check(left, "alice: leave → ok with data = channel", alice.frames);
  const p1 = await bob.request("presence", LOBBY, undefined, isType("presence"));
  eq(p1?.data, "1", "presence after alice left");
  const bobMark = bob.frames.length;
  const rejoin = await alice.request("join", LOBBY, undefined, isType("ok", (f) => f.data === LOBBY));
  check(rejoin, "alice: join again → ok", alice.frames);
  const seenByB = await bob.frame(bobMark, isType("joined", (f) => f.channel === LOBBY && f.data !== bob.sid));
  check(seenByB, "bob: sees alice's joined on the lobby", bob.frames);
  alice.alias = seenByB?.frame.data || "";
  check(alice.alias.length === 36 && alice.alias !== alice.sid, "bob sees alice under an alias, not her connection id",
    [alice.alias, alice.sid]);
  const p2again = await bob.request("presence", LOBBY, undefined, isType("presence"));
  eq(p2again?.data, "2", "presence after alice joined again");
}

async function testChanInOut(alice, bob) {
  const aMark = alice.frames.length;
  const bMark = bob.frames.length;
  const data = JSON.stringify({ text: "hi" });
  const okFrame = await alice.request("chan_in", data, LOBBY, isType("ok"));
  check(okFrame, "alice: chan_in → ok", alice.frames.slice(aMark));
  const outA = await alice.frame(aMark, isType("chan_out"));
  const outB = await bob.frame(bMark, isType("chan_out"));
  check(outA, "alice (sender, a member) receives her chan_out", alice.frames.slice(aMark));
  check(outB, "bob receives alice's chan_out", bob.frames.slice(bMark));
  for (const [who, hit, sid] of [["alice", outA, alice.sid], ["bob", outB, alice.alias]]) {
    if (!hit) continue;
    const f = hit.frame;
    eq(f.data, data, `${who}: chan_out data is the sent string`);
    eq(f.channel, LOBBY, `${who}: chan_out channel`);
    eq(f.sid, sid, `${who}: chan_out sid = alice's connection id to alice, her alias to others`);
    eq(f.token, "", `${who}: chan_out token is empty (never the sender's token)`);
    eq(PAYLOAD_KEYS.filter((k) => k in f), PAYLOAD_KEYS, `${who}: chan_out carries all 7 Payload keys`);
  }
  await sleep(100);
  eq(alice.since(aMark, isType("chan_out")).length, 1, "alice: exactly one chan_out");
  eq(bob.since(bMark, isType("chan_out")).length, 1, "bob: exactly one chan_out");

  // Bob answers; alice gets it with bob's sid.
  const aMark2 = alice.frames.length;
  await bob.request("chan_in", "plain text", LOBBY, isType("ok"));
  const reply = await alice.frame(aMark2, isType("chan_out"));
  eq(reply?.frame.data, "plain text", "alice receives bob's chan_out data");
  eq(reply?.frame.sid, bob.alias, "bob's chan_out sid, as alice sees it = bob's alias");
}

async function testProtocolErrors(alice) {
  const noChannel = await alice.request("chan_in", "x", undefined, isType("error"));
  eq(noChannel?.data, "no channel was specified", "chan_in without channel → error");
  const dbWrite = await alice.request("chan_in", "x", `db-notes_${TAG}`, isType("error"));
  eq(dbWrite?.data, "you cannot write to database channel", "chan_in to a db- channel → error");
  const dbWriteCase = await alice.request("chan_in", "x", `DB-notes_${TAG}`, isType("error"));
  eq(dbWriteCase?.data, "you cannot write to database channel", "chan_in to a DB- channel (other case) → error");
  const unknown = await alice.request("nosuchtype", "x", undefined, isType("error"));
  eq(unknown?.data, "nosuchtype command not found", "unknown type → error");
  const echo = await alice.request("echo", "hello", undefined, isType("echo"));
  eq(echo?.data, "echo: hello", "echo → echo frame");
}

async function testRawMessages(alice, bob) {
  // POST /sse/msg answers `true`; an unknown sid is 404; a token that is not the connection's is 401.
  const good = await http("POST", "/sse/msg", {
    token: alice.token,
    body: { sid: alice.sid, token: alice.token, type: "echo", data: "raw" },
  });
  eq([good.status, good.json], [200, true], "POST /sse/msg answers 200 true");
  const unknown = await http("POST", "/sse/msg", {
    token: alice.token,
    body: { sid: "no-such-connection", token: alice.token, type: "echo", data: "x" },
  });
  eq(unknown.status, 404, "POST /sse/msg with an unknown sid");
  const aMark = alice.frames.length;
  const stolen = await http("POST", "/sse/msg", {
    token: bob.token,
    body: { sid: alice.sid, token: bob.token, type: "chan_in", data: "spoofed", channel: LOBBY },
  });
  eq(stolen.status, 401, "POST /sse/msg on alice's connection with bob's token");
  // The id bob sees for alice cannot address her connection: no take-over by auth, no leave.
  for (const type of ["auth", "leave"]) {
    const aliased = await http("POST", "/sse/msg", {
      token: bob.token,
      body: { sid: alice.alias, token: bob.token, type, data: type === "auth" ? bob.token : LOBBY },
    });
    eq(aliased.status, 404, `POST /sse/msg ${type} with the id bob sees for alice`);
  }
  await sleep(200);
  eq(alice.since(aMark, (f) => f.data === "spoofed").length, 0, "the refused message is not delivered");
}

async function testDbEvents(alice, bob, users) {
  const notes = `notes_${TAG}`; // default 740: account read
  const board = `board_${TAG}_744_`; // everyone reads
  const wall = `pub_wall_${TAG}`; // pub_: everyone reads
  for (const c of [notes, board, wall]) {
    for (const peer of [alice, bob]) {
      const okJoin = await peer.request("join", `db-${c}`, undefined, isType("ok", (f) => f.data === `db-${c}`));
      check(okJoin, `${peer.name}: join db-${c} → ok`, peer.frames.slice(-5));
    }
  }
  const onChannel = (channel, type) => isType(type, (f) => f.channel === channel);

  // Default 740 collection: alice's account only.
  const aMark = alice.frames.length;
  const bMark = bob.frames.length;
  const created = await alice.sb.create(users.alice.token, notes, { title: "secret", n: 1 });
  check(created.ok === true && created.content?.id, "alice creates a note", created);
  const id = created.content?.id;
  const evC = await alice.frame(aMark, onChannel(`db-${notes}`, "db_created"));
  check(evC, "alice receives db_created on db-notes", alice.frames.slice(aMark));
  const docC = parseJSON(evC?.frame.data);
  eq(docC?.id, id, "db_created data is the created doc (id)");
  eq(docC?.title, "secret", "db_created data is the created doc (field)");
  eq(docC?.accountId, users.alice.accountId, "db_created doc carries alice's accountId");
  check(typeof evC?.frame.data === "string", "db_created data is a JSON string", evC?.frame);

  const upd = await alice.sb.update(users.alice.token, notes, id, { title: "changed" });
  check(upd.ok === true, "alice updates the note", upd);
  const evU = await alice.frame(aMark, onChannel(`db-${notes}`, "db_updated"));
  check(evU, "alice receives db_updated on db-notes", alice.frames.slice(aMark));
  const docU = parseJSON(evU?.frame.data);
  eq(docU?.id, id, "db_updated data has the doc's id");
  eq(docU?.title, "changed", "db_updated data is the updated doc");

  const del = await alice.sb.delete(users.alice.token, notes, id);
  check(del.ok === true, "alice deletes the note", del);
  const evD = await alice.frame(aMark, onChannel(`db-${notes}`, "db_deleted"));
  check(evD, "alice receives db_deleted on db-notes", alice.frames.slice(aMark));
  eq(parseJSON(evD?.frame.data)?.id, id, "db_deleted data carries the deleted doc's id");
  if (evC && evU && evD) check(evC.index < evU.index && evU.index < evD.index, "db events arrive in write order");

  await sleep(SILENCE_MS);
  eq(bob.since(bMark, (f) => f.channel === `db-${notes}`), [], "bob (other account) gets no event from alice's 740 notes");

  // _744_ (everyone reads) and pub_ collections: both members receive the events.
  for (const [c, writer, peerUser] of [[board, bob, users.bob], [wall, alice, users.alice]]) {
    const a0 = alice.frames.length;
    const b0 = bob.frames.length;
    const res = await writer.sb.create(peerUser.token, c, { text: `from ${writer.name}` });
    check(res.ok === true, `${writer.name} creates a doc in ${c}`, res);
    for (const [peer, mark] of [[alice, a0], [bob, b0]]) {
      const ev = await peer.frame(mark, onChannel(`db-${c}`, "db_created"));
      check(ev, `${peer.name} receives db_created on db-${c}`, peer.frames.slice(mark));
      eq(parseJSON(ev?.frame.data)?.id, res.content?.id, `${peer.name}: db_created on db-${c} carries the doc`);
    }
  }

  // Events of a collection nobody joined do not reach anyone; leaving a db channel stops events.
  const a1 = alice.frames.length;
  await alice.request("leave", `db-${wall}`, undefined, isType("ok", (f) => f.data === `db-${wall}`));
  const b1 = bob.frames.length;
  const again = await alice.sb.create(users.alice.token, wall, { text: "after leave" });
  check(again.ok === true, "alice creates another pub_ doc", again);
  check(await bob.frame(b1, onChannel(`db-${wall}`, "db_created")), "bob still receives db_created on db-pub_");
  await sleep(SILENCE_MS);
  eq(alice.since(a1, (f) => f.channel === `db-${wall}`), [], "alice gets nothing on db-pub_ after leaving it");
}

async function testRootPublish(alice, bob) {
  const aMark = alice.frames.length;
  const bMark = bob.frames.length;
  const data = JSON.stringify({ announcement: "maintenance", at: 5 });
  const res = await root("POST", "/publish-message", { channel: LOBBY, type: "event", data });
  eq([res.status, res.json], [200, true], "root POST /publish-message answers true");
  for (const [peer, mark] of [[alice, aMark], [bob, bMark]]) {
    const ev = await peer.frame(mark, isType("event", (f) => f.channel === LOBBY));
    check(ev, `${peer.name} receives root's "event"`, peer.frames.slice(mark));
    eq(ev?.frame.data, data, `${peer.name}: root event data`);
    eq(ev?.frame.token, "", `${peer.name}: root event token is empty`);
  }
  const denied = await http("POST", "/publish-message", {
    token: alice.token,
    body: { channel: LOBBY, type: "event", data: "nope" },
  });
  check(denied.status >= 400, "a non-root user cannot POST /publish-message", denied);
}

async function testChannelRules(alice, bob) {
  const news = `news-${TAG}`;
  const put = await root("PUT", `/channels/${news}`, { publish: "server", history: 3 });
  eq(put.status, 200, "root PUT /channels/news");
  eq(put.json, { name: news, auth: true, publish: "server", history: 3 }, "PUT returns the stored rule");
  const got = await root("GET", `/channels/${news}`);
  eq(got.json, { name: news, auth: true, publish: "server", history: 3 }, "GET /channels/news");
  const all = await root("GET", "/channels");
  check(Array.isArray(all.json) && all.json.some((r) => r.name === news), "GET /channels lists the rule", all.json);
  const userPut = await http("PUT", `/channels/${news}`, { token: alice.token, body: { history: 1 } });
  check(userPut.status >= 400, "a non-root user cannot PUT a channel rule", userPut);

  // Alice joins news (a member sees live messages without the history mark), and cannot publish.
  const okJoin = await alice.request("join", news, undefined, isType("ok", (f) => f.data === news));
  check(okJoin, "alice: join news → ok", alice.frames.slice(-5));
  const aMark = alice.frames.length;
  const refused = await alice.request("chan_in", "from a client", news, isType("error"));
  check(refused && typeof refused.data === "string" && refused.data.length > 0,
    "alice: chan_in to a publish=server channel → error", refused);
  await sleep(100);
  eq(alice.since(aMark, isType("chan_out")), [], "the refused chan_in is not delivered");

  const sent = [];
  for (let n = 1; n <= 4; n++) {
    const data = JSON.stringify({ n });
    sent.push(data);
    const res = await root("POST", "/publish-message", { channel: news, type: "news", data });
    eq([res.status, res.json], [200, true], `root publishes news message ${n}`);
  }
  const live = await waitFor(() => {
    const got = alice.since(aMark, isType("news"));
    return got.length >= 4 ? got : undefined;
  });
  eq((live || alice.since(aMark, isType("news"))).map((f) => f.data), sent, "alice (member) receives the 4 live messages in order");
  check((live || []).every((f) => !("history" in f)), "live messages carry no history mark", live);

  // Bob joins: ok, then exactly the last 3 messages as history, then joined.
  const bMark = bob.frames.length;
  const aMark2 = alice.frames.length;
  bob.sb.send("join", news);
  const joined = await bob.frame(bMark, isType("joined", (f) => f.channel === news && f.data === bob.sid));
  check(joined, "bob: joined after joining news", bob.frames.slice(bMark));
  const okHit = await bob.frame(bMark, isType("ok", (f) => f.data === news));
  check(okHit, "bob: join news → ok", bob.frames.slice(bMark));
  if (joined && okHit) {
    check(okHit.index < joined.index, "bob: ok comes before joined", bob.frames.slice(bMark));
    const between = bob.frames.slice(okHit.index + 1, joined.index);
    eq(between.length, 3, "bob: exactly 3 frames between ok and joined");
    eq(between.map((f) => f.data), sent.slice(1), "bob: history = the last 3 messages, oldest first");
    check(between.every((f) => f.history === true), "bob: every history frame has history: true", between);
    check(between.every((f) => f.type === "news" && f.channel === news), "bob: history frames keep type and channel", between);
  }
  check(await alice.frame(aMark2, isType("joined", (f) => f.channel === news && f.data === bob.alias)),
    "alice sees bob's joined on news");
  eq(alice.since(aMark2, (f) => f.history === true), [], "alice (already a member) gets no history replay");

  const deleted = await root("DELETE", `/channels/${news}`);
  eq([deleted.status, deleted.json], [200, true], "root DELETE /channels/news");
  const gone = await root("GET", `/channels/${news}`);
  eq(gone.status, 404, "GET /channels/news after delete");
}

async function testBeforeAuth(users) {
  // A connection whose auth fails: onAuth never fires; only open channels can be joined.
  const open = `open-${TAG}`;
  const put = await root("PUT", `/channels/${open}`, { auth: false });
  eq(put.json?.auth, false, "root PUT an auth=false channel rule");

  const anon = new Peer("anon");
  try {
    anon.connect("not-a-valid-session-token");
    const bad = await anon.frame(0, isType("error"));
    eq(bad?.frame.data, "invalid token", "auth with a bad token → error invalid token");
    await sleep(100);
    eq(anon.authed, [], "onAuth does not fire for a bad token");

    const joinDenied = await anon.request("join", LOBBY, undefined, isType("error"));
    check(joinDenied, "unauthenticated join of a default (auth=true) channel → error", anon.frames);
    const pub = await anon.request("chan_in", "x", open, isType("error"));
    check(pub, "unauthenticated chan_in → error", anon.frames);

    const okOpen = await anon.request("join", open, undefined, isType("ok", (f) => f.data === open));
    check(okOpen, "unauthenticated join of an auth=false channel → ok", anon.frames);
    check(await anon.frame(0, isType("joined", (f) => f.channel === open && f.data === anon.sid)),
      "unauthenticated member receives its joined", anon.frames);
    const presence = await anon.request("presence", open, undefined, isType("presence"));
    eq(presence?.data, "1", "presence works before auth");

    // A root message on the open channel reaches the unauthenticated member.
    const mark = anon.frames.length;
    await root("POST", "/publish-message", { channel: open, type: "event", data: "to everyone" });
    const ev = await anon.frame(mark, isType("event"));
    eq(ev?.frame.data, "to everyone", "unauthenticated member receives root's message");

    // Authenticating later on the same connection works.
    const before = anon.frames.length;
    check(anon.sb.send("auth", users.bob.token) === true, "anon: send(auth) returns true");
    check(await waitFor(() => anon.authed.length > 0), "auth later on the same connection fires onAuth");
    eq(anon.since(before, isType("token")), [], "token frames go to onAuth, not onMessage");
  } finally {
    anon.close();
  }
}

// ---------------------------------------------------------------------------

const alice = new Peer("alice");
const bob = new Peer("bob");

async function main() {
  console.log(`sblite realtime suite against ${BASE_URL} (run tag ${TAG})`);
  const users = await area("register alice and bob (two accounts)", async () => ({
    alice: await registerUser("alice"),
    bob: await registerUser("bob"),
  }));
  if (!users?.alice.token || !users?.bob.token) return;
  check(users.alice.accountId !== users.bob.accountId, "alice and bob are in different accounts",
    [users.alice.accountId, users.bob.accountId]);
  await area("connect / onAuth / join / joined / presence / leave", () => testConnectAndJoin(alice, bob, users));
  if (!alice.sid || !bob.sid || !alice.authed.length || !bob.authed.length) {
    check(false, "realtime connections are not up: the other areas are skipped");
    return;
  }
  await area("chan_in / chan_out", () => testChanInOut(alice, bob));
  await area("protocol errors / echo", () => testProtocolErrors(alice));
  await area("raw POST /sse/msg: 200 / 404 / 401, aliases address nothing", () => testRawMessages(alice, bob));
  await area("db events and read permissions", () => testDbEvents(alice, bob, users));
  await area("root publish-message", () => testRootPublish(alice, bob));
  await area("channel rules: publish=server, history", () => testChannelRules(alice, bob));
  await area("before auth: bad token, open channels", () => testBeforeAuth(users));
}

await runSuite(main, { cleanup: () => { alice.close(); bob.close(); } });
