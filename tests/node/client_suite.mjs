// Drives the real @staticbackend/js client (1.7.0) against a running sblite server and
// asserts every result. Usage:
//
//   SBLITE_URL=http://127.0.0.1:8099 node client_suite.mjs
//
// Against a dev server (public key `dev_memory_pk`, admin admin@dev.com / devpw1234), or a prod one
// whose credentials are in SBLITE_PK, SBLITE_ADMIN_EMAIL and SBLITE_ADMIN_PASSWORD (check.mjs).
// Names (emails, collections) carry a random per-run tag, so the suite can run repeatedly
// against the same database. The last line printed is always `N passed, M failed`.

import { Backend } from "@staticbackend/js";
import { ADMIN_EMAIL, ADMIN_PASSWORD, area, BASE_URL, check, eq, PK, runSuite, show, TAG } from "./check.mjs";



const sb = new Backend(PK, BASE_URL);

/** Asserts {ok:true} and returns content (undefined when the call failed). */
function ok(res, what) {
  if (check(res && res.ok === true, `${what} should succeed`, res && res.content)) {
    return res.content;
  }
  return undefined;
}

/** Asserts {ok:false} with a plain-text error; optionally the exact message (without the trailing newline). */
function fails(res, what, message) {
  if (!check(res && res.ok === false, `${what} should fail`, res && res.content)) return;
  check(
    typeof res.content === "string" && res.content.trim().length > 0,
    `${what}: error content should be the plain-text message`,
    res.content,
  );
  if (message !== undefined && typeof res.content === "string") {
    // sblite may add detail after StaticBackend's message, never change its start.
    check(res.content.trim().startsWith(message), `${what}: error text should start with ${JSON.stringify(message)}`,
      res.content);
  }
}

/** `results` of a PagedResult; `null` means no rows. */
function results(paged) {
  return (paged && paged.results) || [];
}

function ids(docs) {
  return (docs || []).map((d) => d.id);
}

function pluck(docs, field) {
  return (docs || []).map((d) => d[field]);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;


const col = (name) => `${name}_${TAG}`;

// ---------------------------------------------------------------------------
// Users and accounts

/** A logged-in user: { name, email, token, userId, accountId, role } (email as the server stores it). */
async function loginAs(name, email, password) {
  const token = ok(await sb.login(email, password), `login ${name}`);
  const me = ok(await sb.me(token), `me ${name}`);
  return { name, email: me?.email, token, userId: me?.userId, accountId: me?.accountId, role: me?.role };
}

async function testRegisterLoginMe() {
  const emailA = `Alice.${TAG}@Example.COM`; // mixed case on purpose: stored lower-cased
  const emailB = `bob.${TAG}@example.com`;

  const tokA = ok(await sb.register(emailA, "alice-pw-123"), "register alice (account A)");
  check(typeof tokA === "string" && tokA.length > 0, "register returns the session token as a JSON string", tokA);
  const tokB = ok(await sb.register(emailB, "bob-pw-123"), "register bob (account B)");
  check(typeof tokB === "string" && tokB.length > 0, "register bob returns a token string", tokB);

  fails(await sb.register(emailB, "other-pw"), "register a duplicate email", "invalid email");
  fails(await sb.register(emailA.toUpperCase(), "other-pw"), "register a duplicate email in another case", "invalid email");

  const meA = ok(await sb.me(tokA), "me with the register token");
  if (meA) {
    check(typeof meA.userId === "string" && meA.userId.length > 0, "me has userId", meA);
    check(typeof meA.id === "string" && meA.id.length > 0, "me has id", meA);
    eq(meA.id, meA.userId, "me: id equals userId");
    eq(meA.email, emailA.toLowerCase(), "me: email is lower-cased");
    eq(meA.role, 50, "me: a registered user has role 50");
    check(typeof meA.accountId === "string" && meA.accountId.length > 0, "me has accountId", meA);
  }

  // Login: good password (with the original mixed-case email), bad password, unknown email.
  const alice = await loginAs("alice", emailA, "alice-pw-123");
  eq(alice.userId, meA?.userId, "login: same user as register");
  eq(alice.accountId, meA?.accountId, "login: same account as register");
  const bob = await loginAs("bob", emailB, "bob-pw-123");
  check(bob.accountId && bob.accountId !== alice.accountId, "two registrations create two accounts", [alice.accountId, bob.accountId]);
  check(bob.userId && bob.userId !== alice.userId, "two registrations create two users", [alice.userId, bob.userId]);

  fails(await sb.login(emailB, "wrong-password"), "login with a bad password", "invalid email/password");
  fails(await sb.login(`nobody.${TAG}@example.com`, "whatever-pw"), "login with an unknown email");
  fails(await sb.me("not-a-valid-token"), "me with a garbage token");
  fails(await sb.me(""), "me without a token", "missing authorization HTTP header");

  return { alice, bob };
}

async function testAccountUsers(alice, bob) {
  const emailA2 = `Carol.${TAG}@Example.com`;
  const added = ok(await sb.addUser(alice.token, emailA2, "carol-pw-123"), "addUser carol into account A");
  if (added) {
    eq(added.accountId, alice.accountId, "addUser: the new user joins the caller's account");
    eq(added.email, emailA2.toLowerCase(), "addUser: email is lower-cased");
    eq(added.role, 0, "addUser: the new user has role 0");
    check(typeof added.id === "string" && added.id.length > 0, "addUser returns the user id", added);
  }
  fails(await sb.addUser(alice.token, emailA2, "carol-pw-123"), "addUser with an email already in use", "email already in use");
  fails(await sb.addUser(alice.token, "not-an-email", "pw-123456"), "addUser with an invalid email", "invalid email");

  const carol = await loginAs("carol", emailA2, "carol-pw-123");
  eq(carol.accountId, alice.accountId, "carol logs in into account A");
  eq(carol.userId, added?.id, "carol's me.userId is the id returned by addUser");
  eq(carol.role, 0, "carol's role is 0");

  const list = ok(await sb.users(alice.token), "users of account A");
  if (Array.isArray(list)) {
    eq([...pluck(list, "email")].sort(), [alice.email, carol.email].sort(), "users lists exactly account A's users");
    for (const u of list) {
      check(!("token" in u), `users: entry ${u.email} must not expose a token field`, u);
      eq(u.accountId, alice.accountId, `users: entry ${u.email} belongs to account A`);
    }
  } else {
    check(false, "users returns an array", list);
  }
  const listB = ok(await sb.users(bob.token), "users of account B");
  eq(pluck(listB, "email"), [bob.email], "users of account B lists only bob");

  // removeUser: a role-0 user cannot remove the role-50 owner; the owner can remove a role-0 user.
  const dave = ok(await sb.addUser(alice.token, `dave.${TAG}@example.com`, "dave-pw-123"), "addUser dave into account A");
  fails(await sb.removeUser(carol.token, alice.userId), "role-0 carol removes role-50 alice");
  ok(await sb.me(alice.token), "alice still exists after carol's refused removeUser");
  if (dave) {
    eq(ok(await sb.removeUser(alice.token, dave.id), "alice removes dave"), true, "removeUser returns true");
    const after = ok(await sb.users(alice.token), "users after removeUser");
    check(Array.isArray(after) && !ids(after).includes(dave.id), "removed user is no longer listed", after);
    fails(await sb.login(`dave.${TAG}@example.com`, "dave-pw-123"), "removed user logs in");
  }
  return carol;
}

// ---------------------------------------------------------------------------
// Documents

async function testCreateGetUpdateDelete(alice) {
  const c = col("crud");
  const doc = ok(
    await sb.create(alice.token, c, { title: "first", n: 5, tags: ["a", "b"], nested: { x: 1 }, id: "forged-id", accountId: "forged-acct" }),
    "create",
  );
  if (!doc) return;
  check(UUID.test(doc.id), "create: id is a lowercase uuid (client-sent id ignored)", doc.id);
  eq(doc.accountId, alice.accountId, "create: accountId is the creator's account (client-sent value ignored)");
  eq([doc.title, doc.n, doc.tags, doc.nested], ["first", 5, ["a", "b"], { x: 1 }], "create: returns the stored fields");
  if ("ownerId" in doc) eq(doc.ownerId, alice.userId, "create: ownerId is the creator");

  const got = ok(await sb.getById(alice.token, c, doc.id), "getById");
  eq(got, doc, "getById returns the created document");
  fails(await sb.getById(alice.token, c, "00000000-0000-4000-8000-000000000000"), "getById of a missing id");

  const upd = ok(await sb.update(alice.token, c, doc.id, { title: "changed", extra: true, id: "forged", accountId: "forged" }), "update");
  if (upd) {
    eq(upd.id, doc.id, "update: id unchanged");
    eq(upd.accountId, alice.accountId, "update: accountId unchanged");
    eq([upd.title, upd.extra], ["changed", true], "update: patched fields");
    eq([upd.n, upd.tags, upd.nested], [5, ["a", "b"], { x: 1 }], "update: shallow merge keeps the other fields");
  }
  const reread = ok(await sb.getById(alice.token, c, doc.id), "getById after update");
  eq(reread && [reread.title, reread.extra, reread.n], ["changed", true, 5], "update is persisted");

  eq(ok(await sb.increase(alice.token, c, doc.id, "n", 7), "increase n by 7"), true, "increase returns true");
  eq(ok(await sb.getById(alice.token, c, doc.id), "getById after increase")?.n, 12, "increase: 5 + 7");
  ok(await sb.increase(alice.token, c, doc.id, "n", -2), "increase n by -2");
  eq(ok(await sb.getById(alice.token, c, doc.id), "getById after decrease")?.n, 10, "increase: 12 - 2");

  eq(ok(await sb.delete(alice.token, c, doc.id), "delete"), 1, "delete returns 1");
  fails(await sb.getById(alice.token, c, doc.id), "getById after delete");

  const id1 = ok(await sb.newId(alice.token), "newId");
  const id2 = ok(await sb.newId(alice.token), "newId again");
  check(UUID.test(id1 || ""), "newId returns a uuid string", id1);
  check(id1 !== id2, "newId returns a fresh id each call", [id1, id2]);
}

async function testListPaging(alice) {
  const c = col("paging");
  const created = [];
  for (let seq = 1; seq <= 5; seq++) {
    created.push(ok(await sb.create(alice.token, c, { seq }), `create paging doc ${seq}`));
  }

  const all = ok(await sb.list(alice.token, c), "list without params");
  eq(all && [all.page, all.size, all.total], [1, 25, 5], "list defaults: page 1, size 25, total 5");
  eq(pluck(results(all), "seq"), [1, 2, 3, 4, 5], "list default order is insertion ascending");
  eq(ids(results(all)), ids(created), "list returns the created ids");

  const p1 = ok(await sb.list(alice.token, c, { page: 1, size: 2 }), "list page 1 size 2");
  eq(p1 && [p1.page, p1.size, p1.total], [1, 2, 5], "list page 1 size 2: page/size/total");
  eq(pluck(results(p1), "seq"), [1, 2], "list page 1 size 2: docs");
  const p2 = ok(await sb.list(alice.token, c, { page: 2, size: 2 }), "list page 2 size 2");
  eq(pluck(results(p2), "seq"), [3, 4], "list page 2 size 2: docs");
  const p3 = ok(await sb.list(alice.token, c, { page: 3, size: 2 }), "list page 3 size 2");
  eq(pluck(results(p3), "seq"), [5], "list page 3 size 2: the last doc");
  const p4 = ok(await sb.list(alice.token, c, { page: 4, size: 2 }), "list page 4 size 2 (past the end)");
  eq(p4 && [p4.total, results(p4).length], [5, 0], "list past the end: no results, total still 5");

  const desc = ok(await sb.list(alice.token, c, { desc: true }), "list desc");
  eq(pluck(results(desc), "seq"), [5, 4, 3, 2, 1], "list desc order");
  const descP2 = ok(await sb.list(alice.token, c, { page: 2, size: 2, desc: true }), "list page 2 size 2 desc");
  eq(pluck(results(descP2), "seq"), [3, 2], "list page 2 size 2 desc: docs");

  // The client sends `size` only when > 1, so size 1 falls back to the server default 25.
  const one = ok(await sb.list(alice.token, c, { size: 1 }), "list size 1");
  eq(one && [one.size, results(one).length], [25, 5], "list size 1 is not sent: default size 25");

  const byIds = ok(await sb.getByIds(alice.token, c, [created[0]?.id, created[2]?.id]), "getByIds");
  eq(pluck(byIds, "seq").sort(), [1, 3], "getByIds returns the requested docs");
  fails(await sb.getByIds(alice.token, c, []), "getByIds with an empty list", "ids list can not be empty");
}

const ITEMS = [
  { name: "a", n: 5, color: "red", tags: ["x", "y"], done: true },
  { name: "b", n: 30, color: "blue", tags: ["y"], done: false },
  { name: "c", n: 100, color: "green", tags: [], done: false },
  { name: "d", n: 250, color: "red", tags: ["z"], done: true },
];

async function testQueryAndCount(alice) {
  const c = col("items");
  for (const item of ITEMS) ok(await sb.create(alice.token, c, item), `create item ${item.name}`);

  const cases = [
    // Numbers compare as numbers: as text, "100" < "30" and "5" > "30".
    [[["n", "==", 30]], ["b"]],
    [[["color", "==", "red"]], ["a", "d"]],
    [[["done", "==", true]], ["a", "d"]],
    [[["color", "!=", "red"]], ["b", "c"]],
    [[["n", "!=", 100]], ["a", "b", "d"]],
    [[["n", "<", 100]], ["a", "b"]],
    [[["n", "<=", 30]], ["a", "b"]],
    [[["n", ">", 30]], ["c", "d"]],
    [[["n", ">=", 100]], ["c", "d"]],
    [[["name", ">", "b"]], ["c", "d"]],
    [[["color", "in", ["red", "green"]]], ["a", "c", "d"]], // scalar field in the list
    [[["tags", "in", ["y"]]], ["a", "b"]], // any element of an array field in the list
    [[["tags", "in", ["z", "q"]]], ["d"]],
    [[["color", "!in", ["red"]]], ["b", "c"]],
    [[["tags", "!in", ["y"]]], ["c", "d"]],
    [[["color", "==", "red"], ["n", ">", 10]], ["d"]], // clauses are AND-ed
    [[["color", "==", "purple"]], []],
    [[], ["a", "b", "c", "d"]],
  ];
  for (const [filters, expected] of cases) {
    const what = `query ${JSON.stringify(filters)}`;
    const res = ok(await sb.query(alice.token, c, filters), what);
    eq(pluck(results(res), "name"), expected, what);
    eq(res?.total, expected.length, `${what}: total`);
  }

  const q2 = ok(await sb.query(alice.token, c, [], { page: 2, size: 2 }), "query page 2 size 2");
  eq(q2 && [q2.page, q2.size, q2.total, pluck(results(q2), "name")], [2, 2, 4, ["c", "d"]], "query paging");
  const qd = ok(await sb.query(alice.token, c, [["n", ">", 1]], { page: 1, size: 3, desc: true }), "query desc");
  eq(pluck(results(qd), "name"), ["d", "c", "b"], "query desc order");

  fails(await sb.query(alice.token, c, [["n", "~=", 1]]), "query with an unsupported operator");
  fails(await sb.query(alice.token, c, [["n", "=="]]), "query with a 2-element clause");

  eq(ok(await sb.count(alice.token, c), "count without filters"), { count: 4 }, "count without filters");
  eq(ok(await sb.count(alice.token, c, [["n", ">", 30]]), "count n > 30"), { count: 2 }, "count n > 30");
  eq(ok(await sb.count(alice.token, c, [["color", "==", "red"], ["done", "==", true]]), "count red and done"), { count: 2 }, "count with 2 clauses");
}

async function testBulk(alice) {
  const c = col("bulk");
  const kind = "~>~>"; // base64 of a filter starting with this value contains '+'
  ok(await sb.create(alice.token, c, { kind: "keep", group: "other", v: 0 }), "create a doc outside the bulk group");
  const docs = [1, 2, 3].map((v) => ({ kind, group: "bulk", v }));
  eq(ok(await sb.createBulk(alice.token, c, docs), "createBulk 3 docs"), true, "createBulk returns true");
  eq(ok(await sb.count(alice.token, c), "count after createBulk"), { count: 4 }, "createBulk stored 3 docs");

  const updated = ok(
    await sb.updateBulk(alice.token, c, { update: { status: "done" }, clauses: [["group", "==", "bulk"], ["v", ">=", 2]] }),
    "updateBulk v >= 2",
  );
  eq(updated, 2, "updateBulk returns the number of updated docs");
  const done = ok(await sb.query(alice.token, c, [["status", "==", "done"]]), "query updated docs");
  eq(pluck(results(done), "v"), [2, 3], "updateBulk updated the matching docs only");
  eq(results(done).map((d) => d.kind), [kind, kind], "updateBulk merges: other fields kept");

  const filters = [["kind", "==", kind], ["group", "==", "bulk"]];
  check(btoa(JSON.stringify(filters)).includes("+"), "(self-check) the deleteBulk x parameter contains '+'");
  eq(ok(await sb.deleteBulk(alice.token, c, filters), "deleteBulk group bulk"), 3, "deleteBulk returns the number of deleted docs");
  const left = ok(await sb.list(alice.token, c), "list after deleteBulk");
  eq(pluck(results(left), "kind"), ["keep"], "deleteBulk removed only the matching docs");
  eq(ok(await sb.deleteBulk(alice.token, c, [["group", "==", "none"]]), "deleteBulk matching nothing"), 0, "deleteBulk of nothing returns 0");
}

// ---------------------------------------------------------------------------
// Permissions

// Levels: "owner" (the creator), "account" (same account), "everyone" (any authenticated user),
// "anyone" (also anonymous callers: the client with an empty token).
const PERMISSION_COLLECTIONS = [
  { suffix: "", read: "account", write: "owner" }, // default 740
  { suffix: "_700_", read: "owner", write: "owner" },
  { suffix: "_760_", read: "account", write: "account" },
  { suffix: "_744_", read: "everyone", write: "owner" },
  { suffix: "_774_", read: "everyone", write: "account" },
  { prefix: "pub_", suffix: "", read: "anyone", write: "anyone" },
];

function allowed(level, actor, owner) {
  if (actor.role === 100) return true; // root bypasses every filter
  if (level === "anyone") return true;
  if (!actor.token) return false; // anonymous callers only reach pub_ collections
  if (level === "everyone") return true;
  if (level === "account") return actor.accountId === owner.accountId;
  return actor.userId === owner.userId;
}

async function checkReads(c, doc, owner, actor, canRead) {
  const who = `${actor.name} on ${c}`;
  const one = await sb.getById(actor.token, c, doc.id);
  if (canRead) eq(ok(one, `${who}: getById`)?.id, doc.id, `${who}: getById returns the doc`);
  else fails(one, `${who}: getById (forbidden)`);

  const list = await sb.list(actor.token, c);
  const query = await sb.query(actor.token, c, [["mark", "==", doc.mark]]);
  if (!actor.token && !canRead) {
    fails(list, `${who}: anonymous list`, "missing authorization HTTP header");
    fails(query, `${who}: anonymous query`, "missing authorization HTTP header");
    return;
  }
  eq(ids(results(ok(list, `${who}: list`))).includes(doc.id), canRead, `${who}: list shows the doc`);
  eq(ids(results(ok(query, `${who}: query`))), canRead ? [doc.id] : [], `${who}: query finds the doc`);
  const byIds = ok(await sb.getByIds(actor.token, c, [doc.id]), `${who}: getByIds`);
  eq(ids(byIds), canRead ? [doc.id] : [], `${who}: getByIds returns readable docs only`);
}

async function checkUpdate(c, doc, owner, actor, canWrite) {
  const who = `${actor.name} on ${c}`;
  const before = ok(await sb.getById(owner.token, c, doc.id), `${who}: owner reads the doc before update`);
  const res = await sb.update(actor.token, c, doc.id, { lastWriter: actor.name });
  const after = ok(await sb.getById(owner.token, c, doc.id), `${who}: owner reads the doc after update`);
  if (canWrite) {
    const content = ok(res, `${who}: update`);
    eq(content && [content.id, content.mark, content.lastWriter], [doc.id, doc.mark, actor.name], `${who}: update returns the full doc`);
    eq(after?.lastWriter, actor.name, `${who}: update is persisted`);
  } else {
    eq(after?.lastWriter, before?.lastWriter, `${who}: forbidden update must not change the doc (response ${show(res?.content)})`);
  }
}

async function checkDelete(c, owner, actor, canWrite) {
  const who = `${actor.name} on ${c}`;
  const victim = ok(await sb.create(owner.token, c, { mark: `victim-${actor.name}` }), `${who}: create a doc to delete`);
  if (!victim) return;
  const res = await sb.delete(actor.token, c, victim.id);
  const after = await sb.getById(owner.token, c, victim.id);
  if (canWrite) {
    eq(ok(res, `${who}: delete`), 1, `${who}: delete returns 1`);
    fails(after, `${who}: getById of the deleted doc`);
  } else {
    check(after.ok === true && after.content?.id === victim.id, `${who}: forbidden delete must not remove the doc (response ${show(res?.content)})`, after.content);
  }
}

async function testPermissions(alice, bob, carol, admin) {
  const anonymous = { name: "anonymous", token: "", userId: null, accountId: null, role: 0 };
  const actors = [alice, carol, bob, admin, anonymous];
  for (const spec of PERMISSION_COLLECTIONS) {
    const c = `${spec.prefix || ""}perm_${TAG}${spec.suffix}`;
    const doc = ok(await sb.create(alice.token, c, { mark: `m-${TAG}`, lastWriter: "alice" }), `alice creates a doc in ${c}`);
    if (!doc) continue;
    for (const actor of actors) {
      await checkReads(c, doc, alice, actor, allowed(spec.read, actor, alice));
    }
    for (const actor of [carol, bob, anonymous, admin, alice]) {
      await checkUpdate(c, doc, alice, actor, allowed(spec.write, actor, alice));
    }
    for (const actor of [carol, bob, anonymous, admin, alice]) {
      await checkDelete(c, alice, actor, allowed(spec.write, actor, alice));
    }
  }

  // Bulk writes and increase follow the write level too: bob cannot touch account A's docs.
  const c = col("perm_bulk");
  const doc = ok(await sb.create(alice.token, c, { group: "g", n: 1 }), "alice creates a doc for bulk permission checks");
  eq(ok(await sb.updateBulk(bob.token, c, { update: { n: 99 }, clauses: [["group", "==", "g"]] }), "bob updateBulk on A's docs"), 0, "bob's updateBulk updates nothing");
  await sb.increase(bob.token, c, doc?.id, "n", 5);
  eq(ok(await sb.deleteBulk(bob.token, c, [["group", "==", "g"]]), "bob deleteBulk on A's docs"), 0, "bob's deleteBulk deletes nothing");
  const after = ok(await sb.getById(alice.token, c, doc?.id), "alice reads her doc after bob's bulk writes");
  eq(after?.n, 1, "bob's updateBulk/increase/deleteBulk left alice's doc unchanged");
  eq(ok(await sb.count(bob.token, c), "bob counts A's collection"), { count: 0 }, "count only sees readable docs");

  // Anonymous callers can create in pub_ collections, and any user can then read and write the doc.
  const pub = `pub_anon_${TAG}`;
  const anonDoc = ok(await sb.create("", pub, { from: "anonymous" }), "anonymous create in a pub_ collection");
  if (anonDoc) {
    eq(ok(await sb.getById(bob.token, pub, anonDoc.id), "bob reads the anonymous doc")?.from, "anonymous", "pub_ doc readable by bob");
    eq(ok(await sb.update(alice.token, pub, anonDoc.id, { from: "alice" }), "alice updates the anonymous doc")?.from, "alice", "pub_ doc writable by alice");
    eq(ok(await sb.delete("", pub, anonDoc.id), "anonymous deletes the doc"), 1, "pub_ doc deletable anonymously");
  }
  fails(await sb.create("", col("private"), { x: 1 }), "anonymous create outside pub_", "missing authorization HTTP header");
}

// ---------------------------------------------------------------------------

async function main() {
  console.log(`sblite client suite against ${BASE_URL} (run tag ${TAG})`);
  const users = await area("register / login / me", testRegisterLoginMe);
  if (!users || !users.alice.token || !users.bob.token) return;
  const { alice, bob } = users;
  const carol = await area("account users: addUser / users / removeUser", () => testAccountUsers(alice, bob));
  await area("create / getById / update / increase / delete / newId", () => testCreateGetUpdateDelete(alice));
  await area("list paging / getByIds", () => testListPaging(alice));
  await area("query operators / count", () => testQueryAndCount(alice));
  await area("createBulk / updateBulk / deleteBulk", () => testBulk(alice));
  const admin = await area("admin login", () => loginAs("admin", ADMIN_EMAIL, ADMIN_PASSWORD));
  if (carol?.token && admin?.token) {
    eq(admin.role, 100, "dev admin has role 100");
    await area("permission matrix", () => testPermissions(alice, bob, carol, admin));
  } else {
    check(false, "permission matrix skipped: carol or admin could not log in");
  }
}

await runSuite(main);
