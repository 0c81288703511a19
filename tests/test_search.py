"""Full-text search over HTTP and in functions: POST /search, indexDocument/search, root field indexing."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from tests.conftest import Api
from tests.function_helpers import add_function, exec_fn
from tests.test_search_keywords import HOSTILE

# A web function that runs one search host call and answers its {ok, content}.
INDEXER = """
function handle(body) {
  if (body.op === "index") return indexDocument(body.col, body.id, body.text);
  return search(body.col, body.keywords);
}
"""


@dataclass
class Actors:
    owner: str  # registered: an account of its own
    teammate: str  # a member (role 0) of the owner's account
    stranger: str  # another account


@pytest.fixture
async def actors(api: Api) -> Actors:
    owner = await api.register("owner@example.com")
    await api.call("POST", "/account/users", owner, json={"email": "mate@example.com", "password": "pw-mate1"})
    _, teammate = await api.call("POST", "/login", json={"email": "mate@example.com", "password": "pw-mate1"})
    stranger = await api.register("stranger@example.com")
    await add_function(api, "indexer", INDEXER)
    return Actors(owner, teammate, stranger)


async def host(api: Api, token: str, **body: object) -> dict:
    """Run indexDocument or search in the `indexer` function as `token`; the host call's {ok, content}."""
    status, answer = await exec_fn(api, "indexer", token, body)
    assert status == 200, answer
    return answer


async def create(api: Api, token: str, col: str, **doc: object) -> str:
    status, created = await api.call("POST", f"/db/{col}", token, json=doc)
    assert status == 201, created
    return created["id"]


async def index(api: Api, token: str, col: str, doc_id: str, text: str) -> None:
    answer = await host(api, token, op="index", col=col, id=doc_id, text=text)
    assert answer == {"ok": True, "content": True}, answer


async def found(api: Api, token: str, col: str, keywords: str) -> list[str]:
    """The ids POST /search answers, in order."""
    status, docs = await api.call("POST", "/search", token, json={"col": col, "keywords": keywords})
    assert status == 200, docs
    return [doc["id"] for doc in docs]


async def indexed_doc(api: Api, token: str, col: str, text: str) -> str:
    doc_id = await create(api, token, col, text=text)
    await index(api, token, col, doc_id, text)
    return doc_id


# --- bad input


@pytest.mark.parametrize("body, message", [
    (None, "a JSON body is required"),
    ([], "expected {"),
    ("notes", "expected {"),
    ({}, '"col" must name a collection'),
    ({"keywords": "x"}, '"col" must name a collection'),
    ({"col": "", "keywords": "x"}, '"col" must name a collection'),
    ({"col": 5, "keywords": "x"}, '"col" must name a collection'),
    ({"col": "bad name!", "keywords": "x"}, "invalid collection name"),
    ({"col": "a" * 65, "keywords": "x"}, "invalid collection name"),
    ({"col": "notes"}, '"keywords" must be a non-empty string'),
    ({"col": "notes", "keywords": ""}, '"keywords" must be a non-empty string'),
    ({"col": "notes", "keywords": "   "}, '"keywords" must be a non-empty string'),
    ({"col": "notes", "keywords": ["a"]}, '"keywords" must be a non-empty string'),
    ({"col": "notes", "keywords": 7}, '"keywords" must be a non-empty string'),
    ({"col": "notes", "keywords": "* ( )"}, "at least one word"),
    ({"col": "notes", "keywords": "x" * 501}, "limited to 500 characters"),
    ({"col": "notes", "keywords": "x", "size": 0}, '"size" must be a whole number from 1 to 100'),
    ({"col": "notes", "keywords": "x", "size": 101}, '"size" must be a whole number'),
    ({"col": "notes", "keywords": "x", "size": "5"}, '"size" must be a whole number'),
    ({"col": "notes", "keywords": "x", "size": True}, '"size" must be a whole number'),
])
async def test_bad_search_input_is_a_400(api, body, message):
    token = await api.register()
    status, text = await api.call("POST", "/search", token, json=body)
    assert (status, message in text) == (400, True), text


async def test_search_needs_a_user_and_answers_cors(api):
    status, text = await api.call("POST", "/search", json={"col": "notes", "keywords": "x"})
    assert (status, text.strip()) == (401, "missing authorization HTTP header")
    resp = await api.client.options("/search", headers={"Origin": "http://example.com",
                                                         "Access-Control-Request-Method": "POST"})
    assert resp.status == 200 and resp.headers.get("Access-Control-Allow-Origin")


async def test_a_collection_without_an_index_says_how_to_index_it(api, actors):
    await create(api, actors.owner, "plain", text="hello")
    status, text = await api.call("POST", "/search", actors.owner, json={"col": "plain", "keywords": "hello"})
    assert status == 404 and "no search index" in text and "indexDocument(col, id, text)" in text, text
    answer = await host(api, actors.owner, col="plain", keywords="hello")
    assert answer["ok"] is False and "no search index" in answer["content"]


async def test_no_hit_is_an_empty_array(api, actors):
    await indexed_doc(api, actors.owner, "notes", "hello world")
    assert await found(api, actors.owner, "notes", "absent") == []


@pytest.mark.parametrize("args, message", [
    ({"col": "notes", "id": "missing", "text": "x"}, "document not found"),
    ({"col": "bad name!", "id": "x", "text": "x"}, "invalid collection name"),
    ({"col": "notes", "id": "", "text": "x"}, "document id must be a non-empty string"),
    ({"col": "notes", "id": None, "text": "x"}, "document id must be a non-empty string"),
    ({"col": "notes", "id": "ID", "text": 5}, "text to index must be a string"),
    ({"col": "notes", "id": "ID", "text": None}, "text to index must be a string"),
])
async def test_bad_index_calls_fail_in_the_function(api, actors, args, message):
    doc_id = await create(api, actors.owner, "notes", text="x")
    args = {**args, "id": doc_id if args["id"] == "ID" else args["id"]}
    answer = await host(api, actors.owner, op="index", **args)
    assert answer["ok"] is False and message in answer["content"], answer


# --- what matches, in which order


async def test_prefix_typo_and_every_word(api, actors):
    db = await indexed_doc(api, actors.owner, "notes", "SQLite database with full-text search")
    go = await indexed_doc(api, actors.owner, "notes", "Go server with a bleve index")
    assert await found(api, actors.owner, "notes", "data") == [db]  # a prefix
    assert await found(api, actors.owner, "notes", "databse") == [db]  # one letter missing
    assert await found(api, actors.owner, "notes", "serach") == [db]  # two neighbours swapped
    assert await found(api, actors.owner, "notes", "SERVER") == [go]  # case
    assert await found(api, actors.owner, "notes", "with") == sorted([db, go], key=[db, go].index)
    assert await found(api, actors.owner, "notes", "with bleve") == [go]  # every word must match
    assert await found(api, actors.owner, "notes", "with nothing") == []
    assert await found(api, actors.owner, "notes", "ful") == [db]  # full-text: "full" then "text"


async def test_best_bm25_rank_first_and_size_bounds_the_answer(api, actors):
    once = await indexed_doc(api, actors.owner, "notes", "a note about cats and many other things besides")
    thrice = await indexed_doc(api, actors.owner, "notes", "cats cats cats")
    twice = await indexed_doc(api, actors.owner, "notes", "cats and cats, said the note")
    assert await found(api, actors.owner, "notes", "cats") == [thrice, twice, once]
    status, docs = await api.call("POST", "/search", actors.owner, json={"col": "notes", "keywords": "cats", "size": 2})
    assert status == 200 and [d["id"] for d in docs] == [thrice, twice]
    assert docs[0]["text"] == "cats cats cats" and docs[0]["accountId"] and docs[0]["ownerId"]


async def test_the_text_is_indexed_not_the_id(api, actors):
    doc_id = await create(api, actors.owner, "notes", text="unrelated")
    await index(api, actors.owner, "notes", doc_id, "giraffe")
    assert await found(api, actors.owner, "notes", "giraffe") == [doc_id]
    assert await found(api, actors.owner, "notes", doc_id) == []
    await index(api, actors.owner, "notes", doc_id, "elephant")  # indexing again replaces the text
    assert await found(api, actors.owner, "notes", "giraffe") == []
    assert await found(api, actors.owner, "notes", "elephant") == [doc_id]


async def test_collections_are_searched_apart(api, actors):
    a = await indexed_doc(api, actors.owner, "notes", "shared words")
    b = await indexed_doc(api, actors.owner, "memos", "shared words")
    assert await found(api, actors.owner, "notes", "shared") == [a]
    assert await found(api, actors.owner, "memos", "shared") == [b]


# --- permissions: the list rules for reading, the write rules for indexing


# collection → (who finds the owner's document, who may index it), among owner/teammate/stranger
MATRIX = [
    ("notes", {"owner", "teammate"}, {"owner"}),
    ("notes_700_", {"owner"}, {"owner"}),
    ("notes_760_", {"owner", "teammate"}, {"owner", "teammate"}),
    ("notes_744_", {"owner", "teammate", "stranger"}, {"owner"}),
    ("notes_766_", {"owner", "teammate", "stranger"}, {"owner", "teammate", "stranger"}),
    ("pub_notes", {"owner", "teammate", "stranger"}, {"owner", "teammate", "stranger"}),
]


@pytest.mark.parametrize("col, readers, writers", MATRIX)
async def test_search_finds_only_readable_documents_and_only_writers_index(api, actors, col, readers, writers):
    mine = await indexed_doc(api, actors.owner, col, "secret plans")
    tokens = {"owner": actors.owner, "teammate": actors.teammate, "stranger": actors.stranger}
    for name, token in tokens.items():
        assert await found(api, token, col, "secret") == ([mine] if name in readers else []), name
        via_function = await host(api, token, col=col, keywords="plans")
        assert via_function["ok"] is True and [d["id"] for d in via_function["content"]] == (
            [mine] if name in readers else []), name
        answer = await host(api, token, op="index", col=col, id=mine, text=f"secret plans changed by {name}")
        assert answer["ok"] is (name in writers), (name, answer)
        assert await found(api, actors.owner, col, name) == ([mine] if name in writers else []), name


async def test_a_strangers_hits_do_not_take_the_callers_places(api, actors):
    for _ in range(3):
        await indexed_doc(api, actors.stranger, "notes", "common common common")
    mine = await indexed_doc(api, actors.owner, "notes", "common")
    status, docs = await api.call("POST", "/search", actors.owner, json={"col": "notes", "keywords": "common",
                                                                          "size": 1})
    assert status == 200 and [d["id"] for d in docs] == [mine]


# --- entries follow their documents


async def entries(api: Api, col: str) -> int:
    status, info = await api.root("GET", f"/search/{col}")
    assert status == 200, info
    return info["entries"]


async def test_deleting_documents_removes_their_entries(api, actors):
    one = await indexed_doc(api, actors.owner, "notes", "alpha one")
    kept = await indexed_doc(api, actors.owner, "notes", "alpha kept")
    bulk = [await indexed_doc(api, actors.owner, "notes", f"alpha bulk n{n}") for n in range(3)]
    await api.call("PUT", f"/db/notes/{bulk[0]}", actors.owner, json={"group": "bulk"})
    await api.call("PUT", "/db/notes?bulk=1", actors.owner, json={"update": {"group": "bulk"},
                                                                  "clauses": [["text", "!=", "alpha one"]]})
    await api.call("PUT", f"/db/notes/{kept}", actors.owner, json={"group": "kept"})
    assert await entries(api, "notes") == 5
    status, deleted = await api.call("DELETE", f"/db/notes/{one}", actors.owner)
    assert (status, deleted) == (200, 1)
    assert await entries(api, "notes") == 4
    x = base64.b64encode(json.dumps([["group", "==", "bulk"]]).encode()).decode()
    status, deleted = await api.call("DELETE", f"/db/notes?bulk=1&x={x}", actors.owner)
    assert (status, deleted) == (200, 3)
    assert await entries(api, "notes") == 1
    assert await found(api, actors.owner, "notes", "alpha") == [kept]


async def test_a_new_document_never_inherits_a_deleted_ones_entry(api, actors):
    # Without AUTOINCREMENT SQLite gives the next document the seq (rowid) of the deleted last one.
    gone = await indexed_doc(api, actors.owner, "notes", "forgotten words")
    await api.call("DELETE", f"/db/notes/{gone}", actors.owner)
    fresh = await create(api, actors.owner, "notes", text="new")
    assert await found(api, actors.owner, "notes", "forgotten") == []
    assert fresh != gone


# --- root: fields indexed on every write


async def test_fields_are_indexed_on_every_write(api, actors):
    before = await create(api, actors.owner, "posts", title="Existing post", body="ignored words", tags=["red"])
    status, info = await api.root("PUT", "/search/posts", json={"fields": ["title", "tags", "title"]})
    assert (status, info) == (200, {"collection": "posts", "fields": ["title", "tags"], "entries": 1})
    assert await found(api, actors.owner, "posts", "existing") == [before]
    assert await found(api, actors.owner, "posts", "red") == [before]
    assert await found(api, actors.owner, "posts", "ignored") == []
    created = await create(api, actors.owner, "posts", title="Fresh arrival", n=3)
    assert await found(api, actors.owner, "posts", "arrival") == [created]
    await api.call("PUT", f"/db/posts/{created}", actors.owner, json={"title": "Renamed"})
    assert await found(api, actors.owner, "posts", "arrival") == []
    assert await found(api, actors.owner, "posts", "renamed") == [created]
    await api.call("POST", "/db/posts?bulk=1", actors.owner, json=[{"title": "bulk one"}, {"title": "bulk two"}])
    assert len(await found(api, actors.owner, "posts", "bulk")) == 2
    status, info = await api.root("GET", "/search/posts")
    assert (status, info) == (200, {"collection": "posts", "fields": ["title", "tags"], "entries": 4})
    status, dropped = await api.root("DELETE", "/search/posts")
    assert (status, dropped) == (200, True)
    status, text = await api.call("POST", "/search", actors.owner, json={"col": "posts", "keywords": "bulk"})
    assert status == 404 and "no search index" in text
    assert (await api.root("DELETE", "/search/posts"))[0] == 404
    await create(api, actors.owner, "posts", title="after the drop")  # writes go on without an index
    assert (await api.root("GET", "/search/posts"))[0] == 404


@pytest.mark.parametrize("body", [None, {}, {"fields": []}, {"fields": "title"}, {"fields": [5]},
                                  {"fields": ['ti"tle']}, {"fields": ["a.b"]}, {"fields": ["x" * 65]},
                                  {"fields": [f"f{n}" for n in range(33)]}])
async def test_bad_fields_are_a_400_and_change_nothing(api, body):
    assert (await api.root("POST", "/sudo/posts", json={"title": "hello"}))[0] == 201
    status, text = await api.root("PUT", "/search/posts", json=body)
    assert status == 400, text
    assert (await api.root("GET", "/search/posts"))[0] == 404


async def test_field_indexing_is_for_root(api):
    user = await api.register()
    for method in ("GET", "PUT", "DELETE"):
        status, _ = await api.call(method, "/search/posts", user, json={"fields": ["title"]})
        assert status in (400, 401), method
    assert (await api.root("PUT", "/search/bad name!", json={"fields": ["title"]}))[0] in (400, 404)


async def test_hostile_keywords_are_never_a_500(api, actors):
    await indexed_doc(api, actors.owner, "notes", 'hello world NEAR AND OR "quoted" (parens) col:on')
    for keywords in HOSTILE:
        status, answer = await api.call("POST", "/search", actors.owner, json={"col": "notes", "keywords": keywords})
        assert status in (200, 400), (keywords, status, answer)
    answer = await host(api, actors.owner, col="notes", keywords='NEAR("hello" "world") AND -x : *')
    assert answer == {"ok": True, "content": []}, answer
