// Full-text search with the real @staticbackend/js client (1.7.0): documents indexed by a
// function's indexDocument (called over execFunction, and on db_created), found by the client's
// search(token, col, keywords), never across accounts; fields indexed on every write by root.
//
//   SBLITE_URL=http://127.0.0.1:8099 node search_suite.mjs
//
// The server must run in dev mode. The last line printed is always `N passed, M failed`.

import { Backend } from "@staticbackend/js";
import { area, BASE_URL, check, eq, PK, ROOT_TOKEN, runSuite, TAG } from "./check.mjs";

const sb = new Backend(PK, BASE_URL);
const NOTES = `notes_${TAG}`;
const AUTO = `auto_${TAG}`;
const POSTS = `posts_${TAG}`;
const INDEXER = `search_indexer_${TAG}`;


async function root(method, path, body) {
  const resp = await fetch(BASE_URL + path, {
    method,
    headers: { "SB-PUBLIC-KEY": PK, "Content-Type": "application/json", Authorization: `Bearer ${ROOT_TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: resp.status, text, json };
}

async function register(name) {
  const res = await sb.register(`${name}.${TAG}@example.com`, `${name}-pw-123`);
  check(res.ok === true && typeof res.content === "string", `register ${name}`, res);
  return res.content;
}

async function create(token, col, doc) {
  const res = await sb.create(token, col, doc);
  check(res.ok === true && typeof res.content?.id === "string", `create in ${col}`, res);
  return res.content?.id;
}

/** The ids the client's search() answers, in order (undefined when it fails). */
async function searchIds(token, col, keywords) {
  const res = await sb.search(token, col, keywords);
  if (!check(res.ok === true && Array.isArray(res.content), `search(${col}, ${JSON.stringify(keywords)}) succeeds`,
    res)) return undefined;
  return res.content.map((doc) => doc.id);
}

async function indexDocument(token, col, id, text) {
  const res = await sb.execFunction(token, INDEXER, { op: "index", col, id, text });
  check(res.ok === true, "execFunction of the indexer succeeds", res);
  return res.content;
}

async function eventually(probe, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  check(false, `timed out waiting for ${what}`, last);
  return undefined;
}

async function installFunctions() {
  const web = await root("POST", "/fn/add", {
    name: INDEXER, trigger: "web",
    code: `function handle(body) {
      if (body.op === "index") return indexDocument(body.col, body.id, body.text);
      return search(body.col, body.keywords);
    }`,
  });
  eq(web.status, 200, "root adds the web function that calls indexDocument");
  // The way StaticBackend's docs index: a function on the collection's db channel, for each create.
  const onCreate = await root("POST", "/fn/add", {
    name: `search_on_create_${TAG}`, trigger: `db-${AUTO}`,
    code: `function handle(channel, type, doc) {
      if (type === "db_created") indexDocument("${AUTO}", doc.id, doc.title + " " + doc.body);
    }`,
  });
  eq(onCreate.status, 200, "root adds a db-channel function that indexes each created document");
}

async function testIndexAndSearch(alice, bob) {
  const cats = await create(alice, NOTES, { title: "cats", n: 1 });
  const dogs = await create(alice, NOTES, { title: "dogs", n: 2 });
  const both = await create(alice, NOTES, { title: "both", n: 3 });
  eq(await indexDocument(alice, NOTES, cats, "Cats purr and sleep all day; cats, cats"), { ok: true, content: true },
    "indexDocument answers {ok: true}");
  await indexDocument(alice, NOTES, dogs, "Dogs bark at the postman");
  await indexDocument(alice, NOTES, both, "cats and dogs living together");

  eq(await searchIds(alice, NOTES, "cats"), [cats, both], "best bm25 rank first");
  eq(await searchIds(alice, NOTES, "cats dogs"), [both], "every word must match");
  eq(await searchIds(alice, NOTES, "post"), [dogs], "a word matches as a prefix");
  eq(await searchIds(alice, NOTES, "postmna"), [dogs], "a word matches with one typo (neighbours swapped)");
  eq(await searchIds(alice, NOTES, "sleeep"), [cats], "a word matches with one typo (a letter added)");
  eq(await searchIds(alice, NOTES, "giraffe"), [], "no hit is an empty array");
  eq(await searchIds(alice, NOTES, cats), [], "the id is not indexed as text (StaticBackend's bug)");
  eq(await searchIds(alice, NOTES, 'NEAR("cats" AND) -dogs : *'), [], "FTS5 syntax in keywords is only text");
  const res = await sb.search(alice, NOTES, "cats");
  eq(res.content?.[0]?.title, "cats", "search answers whole documents");

  eq(await searchIds(bob, NOTES, "cats"), [], "another account's user finds none of alice's documents");
  const poisoned = await indexDocument(bob, NOTES, cats, "bob was here");
  check(poisoned?.ok === false, "another account's user cannot index alice's document", poisoned);
  eq(await searchIds(alice, NOTES, "bob"), [], "alice's index is unchanged");
  const viaFunction = await sb.execFunction(bob, INDEXER, { col: NOTES, keywords: "cats" });
  eq(viaFunction.content, { ok: true, content: [] }, "search() in a function run by bob finds none either");
  const mine = await sb.execFunction(alice, INDEXER, { col: NOTES, keywords: "dogs" });
  eq((mine.content?.content || []).map((d) => d.id).sort(), [both, dogs].sort(),
    "search() in a function run by alice finds hers");

  const deleted = await sb.delete(alice, NOTES, cats);
  eq(deleted.ok, true, "delete a document");
  eq(await searchIds(alice, NOTES, "cats"), [both], "a deleted document leaves the index");
  const info = await root("GET", `/search/${NOTES}`);
  eq([info.status, info.json?.entries], [200, 2], "root GET /search/{col}: the deleted document's entry is gone");
}

async function testBadInput(alice) {
  const noIndex = await sb.search(alice, `never_${TAG}`, "cats");
  check(noIndex.ok === false && /no search index/.test(noIndex.content) && /indexDocument/.test(noIndex.content),
    "a collection never indexed: a clear error saying how to index", noIndex);
  const empty = await sb.search(alice, NOTES, "");
  check(empty.ok === false && /keywords/.test(empty.content), "empty keywords: a clear error", empty);
  const badName = await sb.search(alice, "bad name!", "cats");
  check(badName.ok === false && /collection name/.test(badName.content), "a bad collection name: a clear error",
    badName);
}

async function testIndexOnCreate(alice) {
  const id = await create(alice, AUTO, { title: "Quarterly report", body: "revenue grew" });
  const found = await eventually(async () => {  // until then: no index yet, then no hit
    const res = await sb.search(alice, AUTO, "revenue");
    return res.ok && res.content.length ? res.content.map((doc) => doc.id) : undefined;
  }, "the db-channel function to index the new document");
  eq(found, [id], "a document indexed by a function on its db channel is found");
}

async function testFieldsOnEveryWrite(alice, bob) {
  const before = await create(alice, POSTS, { title: "Existing headline", text: "not indexed" });
  const put = await root("PUT", `/search/${POSTS}`, { fields: ["title"] });
  eq([put.status, put.json], [200, { collection: POSTS, fields: ["title"], entries: 1 }],
    "root PUT /search/{col} indexes the field of the documents stored");
  eq(await searchIds(alice, POSTS, "headline"), [before], "a stored document is found by its field");
  const after = await create(alice, POSTS, { title: "Breaking headline" });
  eq(await searchIds(alice, POSTS, "breaking"), [after], "a new document is found at once, no function needed");
  eq(await searchIds(bob, POSTS, "headline"), [], "bob finds none of them");
  const put2 = await sb.update(alice, POSTS, after, { title: "Renamed" });
  eq(put2.ok, true, "update the document");
  eq(await searchIds(alice, POSTS, "breaking"), [], "an update replaces the indexed words");
  eq(await searchIds(alice, POSTS, "renamed"), [after], "the new words are found");
  const denied = await fetch(BASE_URL + `/search/${POSTS}`, {
    method: "PUT", headers: { "SB-PUBLIC-KEY": PK, "Content-Type": "application/json", Authorization: `Bearer ${alice}` },
    body: JSON.stringify({ fields: ["text"] }),
  });
  check(denied.status >= 400 && denied.status < 500, "a user cannot set the indexed fields", denied.status);
}

async function main() {
  const alice = await register("alice");
  const bob = await register("bob");
  await area("install functions", installFunctions);
  await area("indexDocument, search, permissions, delete", () => testIndexAndSearch(alice, bob));
  await area("bad input", () => testBadInput(alice));
  await area("index on create", () => testIndexOnCreate(alice));
  await area("fields on every write", () => testFieldsOnEveryWrite(alice, bob));
}

await runSuite(main);
