// Drives the account-association methods of the real @staticbackend/js client (1.7.0) against a
// running sblite server: addUser of an existing user, listAssociations, login(email, pw,
// accountId), promoteUser, then convertURLToX and socialLogin (whose /oauth/* answer 501). Usage:
//
//   SBLITE_URL=http://127.0.0.1:8099 node accounts_suite.mjs
//
// The server runs with default settings (dev mode, on loopback). Emails carry a random per-run
// tag. The last line printed is always `N passed, M failed`; the exit code is non-zero on failure.

import { Backend } from "@staticbackend/js";
import { area, BASE_URL, check, eq, PK, runSuite, show, TAG } from "./check.mjs";

const sb = new Backend(PK, BASE_URL);


function has(res, text, message) {
  return check(!res.ok && typeof res.content === "string" && res.content.includes(text),
    `${message}: expected a refusal containing ${show(text)}`, res);
}

async function register(name, password) {
  const email = `${name}-${TAG}@example.com`;
  const res = await sb.register(email, password);
  check(res.ok && typeof res.content === "string", `register ${name}`, res);
  const me = await sb.me(res.content);
  return { email, password, token: res.content, me: me.content };
}

async function testAssociations() {
  const owner = await register("owner", "owner-pw-1");
  const user = await register("joiner", "joiner-pw-1");
  const added = await sb.addUser(owner.token, user.email, user.password);
  check(added.ok && added.content.accountId === owner.me.accountId && added.content.role === 0,
    "addUser of an existing user (with its password) adds it to the owner's account", added);
  const wrong = await sb.addUser(owner.token, user.email, "not-its-password");
  has(wrong, "email already in use", "addUser with a wrong password");

  const found = await sb.listAssociations(user.token);
  check(found.ok, "listAssociations answers", found);
  eq((found.content || []).map((a) => [a.accountId, a.role, a.token, a.userId, a.email]),
    [[user.me.accountId, 50, "", user.me.userId, user.email], [owner.me.accountId, 0, "", user.me.userId, user.email]],
    "listAssociations: its own account first, then the joined one, never a token");
  check((found.content || []).every((a) => typeof a.id === "string" && a.id), "every association has an id",
    found.content);

  const inOwner = await sb.login(user.email, user.password, owner.me.accountId);
  check(inOwner.ok, "login with the joined account's id", inOwner);
  const meThere = await sb.me(inOwner.content);
  eq([meThere.content?.accountId, meThere.content?.role, meThere.content?.userId],
    [owner.me.accountId, 0, user.me.userId], "me() reports the account chosen at login");
  const doc = await sb.create(inOwner.content, `notes_${TAG}`, { text: "team note" });
  const ownerSees = await sb.list(owner.token, `notes_${TAG}`);
  eq((ownerSees.content?.results || []).map((d) => d.id), [doc.content?.id],
    "a document created in the joined account is the owner's account's");

  const home = await sb.login(user.email, user.password);
  eq((await sb.me(home.content)).content?.accountId, user.me.accountId, "login without accountId: its own account");
  has(await sb.login(user.email, user.password, "no-such-account"), "invalid email, password or account",
    "login with an account it is no member of");
  has(await sb.login(user.email, "wrong-pw-1", owner.me.accountId), "invalid email, password or account",
    "login with a wrong password and a right account says the same");
}

async function testPromote() {
  const lead = await register("lead", "lead-pw-1");
  const memberEmail = `member-${TAG}@example.com`;
  const added = await sb.addUser(lead.token, memberEmail, "member-pw-1");
  check(added.ok && added.content.role === 0, "addUser: a new member of role 0", added);
  const member = await sb.login(memberEmail, "member-pw-1");
  const promoted = await sb.promoteUser(member.content);
  check(promoted.ok && typeof promoted.content === "string", "promoteUser answers a session token", promoted);
  const me = (await sb.me(promoted.content)).content;
  check(me && me.role === 50 && me.accountId !== lead.me.accountId && me.userId === added.content.id,
    "the promoted session is role 50 in an account of its own", me);
  const found = await sb.listAssociations(member.content);
  eq((found.content || []).map((a) => [a.accountId, a.role]), [[lead.me.accountId, 0], [me?.accountId, 50]],
    "listAssociations after promote");
  has(await sb.promoteUser(member.content), "administer an account already", "promoteUser a second time");
  has(await sb.promoteUser(lead.token), "administer an account already", "promoteUser by an account admin");
  const back = await sb.login(memberEmail, "member-pw-1", me?.accountId);
  eq((await sb.me(back.content)).content?.role, 50, "login into the promoted account");
}

async function testConvertURLToX() {
  const user = await register("render", "render-pw-1");
  // A default server listens on loopback and keeps fetch()'s rules: its own address is refused
  // (or, without Chromium on the server, the route says how to enable it).
  const res = await sb.convertURLToX(user.token, { toPDF: true, url: `${BASE_URL}/ping`, fullpage: false });
  check(!res.ok && typeof res.content === "string" &&
    (res.content.includes("htmltox refuses") || res.content.includes("install chromium")),
    "convertURLToX of a loopback URL: a clear refusal", res);
  has(await sb.convertURLToX(user.token, { toPDF: true, url: "ftp://example.com/x", fullpage: false }),
    "http:// or https://", "convertURLToX of a non-http URL");
}

async function testSocialLogin() {
  let opened = "";
  globalThis.window = { open: (url) => { opened = url; } };
  sb.timeout = () => Promise.resolve(); // the client polls /oauth/get-user 950 times, 1.75 s apart
  const user = await sb.socialLogin("google");
  eq(user, { token: "", email: "", name: "", first: "", last: "", avatarUrl: "" },
    "socialLogin gives up with an empty user");
  check(opened.startsWith(`${BASE_URL}/oauth/login?provider=google&reqid=R`) && opened.endsWith(`&sbpk=${PK}`),
    "socialLogin opens /oauth/login", opened);
  const login = await fetch(opened);
  eq(login.status, 501, "/oauth/login answers 501");
  const polled = await sb.req("", "GET", "/oauth/get-user?reqid=Rsome-request");
  has(polled, "social login (/oauth/*) is not supported by sblite yet", "/oauth/get-user says why");
}

async function main() {
  console.log(`sblite accounts suite against ${BASE_URL} (run tag ${TAG})`);
  await area("associations: addUser of an existing user, listAssociations, login with accountId", testAssociations);
  await area("promoteUser", testPromote);
  await area("convertURLToX", testConvertURLToX);
  await area("socialLogin", testSocialLogin);
}

await runSuite(main);
