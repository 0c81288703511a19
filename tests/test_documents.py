"""Document routes: bad input changes nothing, and the permission matrix of spec §2.6."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config


async def _count(api: Api, token: str, col: str) -> int:
    status, body = await api.call("POST", f"/db/count/{col}", token)
    assert status == 200, body
    return body["count"]


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/db/items", b"[1, 2]", 400, "must be a JSON object"),
    ("POST", "/db/items", b'"text"', 400, "must be a JSON object"),
    ("POST", "/db/items", b'{"a": ', 400, "invalid JSON"),
    ("POST", "/db/items", b"", 400, "JSON body is required"),
    ("POST", "/db/items", b'{"a": NaN}', 400, "invalid JSON"),
    ("POST", "/db/items", b'{"a": 1e400}', 400, "out of range"),
    ("POST", "/db/items", b'{"a": "\\ud800"}', 400, "lone surrogate"),
    ("POST", "/query/items", b'[["n", "==", 100000000000000000000000]]', 400, "64 bits"),
    ("POST", "/db/items?bulk=1", b'[{"a": 1}, 2]', 400, "array of objects"),
    ("POST", "/db/items?bulk=1", b'{"a": 1}', 400, "array of objects"),
    ("POST", "/db/bad name", b"{}", 400, "invalid collection name"),
    ("POST", "/db/" + "x" * 65, b"{}", 400, "invalid collection name"),
    ("POST", "/db/items;drop", b"{}", 400, "invalid collection name"),
    ("POST", "/db/items?ids=1", b"[]", 400, "ids list can not be empty"),
    ("POST", "/db/items?ids=1", b"[1]", 400, "array of document ids"),
    ("POST", "/query/items", b'[["n", "~", 1]]', 400, "operator: ~ is not supported"),
    ("POST", "/query/items", b'[["n", "=="]]', 400, "did not contains the required 3 parameters"),
    ("POST", "/query/items", b'[["n", "==", 1, 2]]', 400, "did not contains the required 3 parameters"),
    ("POST", "/query/items", b'[[1, "==", 1]]', 400, "field must be a string"),
    ("POST", "/query/items", b'{"n": 1}', 400, "JSON array"),
    ("POST", "/query/items", b'[["n", "==", {"a": 1}]]', 400, "value must be"),
    ("POST", "/query/items", b'[["n", ">", null]]', 400, "value must be"),
    ("POST", "/query/items", b'[["bad\\"field", "==", 1]]', 400, "invalid field name"),
    ("POST", "/db/count/items", b'[["n", "??", 1]]', 400, "not supported"),
    ("PUT", "/db/items?bulk=1", b'{"update": 1, "clauses": []}', 400, '"update" must be a JSON object'),
    ("PUT", "/db/items?bulk=1", b'{"update": {"a": 1}, "clauses": [["a"]]}', 400, "3 parameters"),
    ("PUT", "/db/items", b'{"a": 1}', 400, "missing document id"),
    ("DELETE", "/db/items?bulk=1", None, 400, "no filters supplied"),
    ("DELETE", "/db/items?bulk=1&x=%%%", None, 400, "invalid &x= parameter"),
    ("DELETE", "/db/items", None, 400, "missing document id"),
])
async def test_bad_input_gets_clear_error_and_changes_nothing(api, method, path, body, status, message):
    token = await api.register()
    created = [{"n": 1}, {"n": 2}]
    assert (await api.call("POST", "/db/items?bulk=1", token, json=created))[0] == 201
    status_got, text = await api.call(method, path, token, data=body)
    assert status_got == status, text
    assert message in text
    _status_list, page = await api.call("GET", "/db/items", token)
    assert [d["n"] for d in page["results"]] == [1, 2]
    assert all(set(d) == {"n", "id", "accountId", "ownerId"} for d in page["results"])


@pytest.mark.parametrize("body, message", [
    ({"field": "n", "range": 1.5}, "whole number"),
    ({"field": "n", "range": True}, "whole number"),
    ({"field": "", "range": 1}, "must name"),
    ({"field": "id", "range": 1}, "must name"),
    ({"field": "name", "range": 1}, "is not a number"),
    ([1], "expected"),
])
async def test_increment_rejects_bad_input(api, body, message):
    token = await api.register()
    _, doc = await api.call("POST", "/db/items", token, json={"n": 1, "name": "x"})
    status, text = await api.call("PUT", f"/inc/items/{doc['id']}", token, json=body)
    assert status == 400 and message in text
    _, again = await api.call("GET", f"/db/items/{doc['id']}", token)
    assert again == doc


async def test_increment_missing_field_counts_from_zero(api):
    token = await api.register()
    _, doc = await api.call("POST", "/db/items", token, json={})
    assert await api.call("PUT", f"/inc/items/{doc['id']}", token, json={"field": "hits", "range": -3}) == (200, True)
    assert (await api.call("GET", f"/db/items/{doc['id']}", token))[1]["hits"] == -3


async def test_body_over_the_limit_is_413_and_creates_nothing(aiohttp_client, tmp_path):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, max_body_bytes=1024))))
    token = await api.register()
    status, text = await api.call("POST", "/db/items", token, json={"blob": "x" * 2048})
    assert status == 413 and "1024 bytes" in text
    assert await _count(api, token, "items") == 0


async def test_system_fields_are_the_servers(api):
    token = await api.register()
    _, me = await api.call("GET", "/me", token)
    _, doc = await api.call("POST", "/db/items", token, json={"id": "mine", "accountId": "x", "ownerId": "y"})
    assert doc["id"] != "mine" and doc["accountId"] == me["accountId"] and doc["ownerId"] == me["userId"]
    _, doc = await api.call("PUT", f"/db/items/{doc['id']}", token, json={"accountId": "other"})
    assert doc["accountId"] == me["accountId"]


async def test_paging_defaults_and_clamping(aiohttp_client, tmp_path):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, max_page_size=10))))
    token = await api.register()
    await api.call("POST", "/db/items?bulk=1", token, json=[{"n": n} for n in range(30)])
    _, page = await api.call("GET", "/db/items?page=abc&size=-4", token)
    assert (page["page"], page["size"], page["total"]) == (1, 10, 30)
    _, page = await api.call("GET", "/db/items?page=3&size=100", token)
    assert [d["n"] for d in page["results"]] == list(range(20, 30))
    _, page = await api.call("GET", "/db/items?page=9", token)
    assert page["results"] == [] and page["total"] == 30
    _, page = await api.call("POST", "/query/items?sort=n&desc=1&size=3", token, json=[])
    assert [d["n"] for d in page["results"]] == [29, 28, 27]


async def test_get_by_ids_returns_readable_only(api):
    alice, bob = await api.register(), await api.register()
    _, a = await api.call("POST", "/db/items", alice, json={"who": "a"})
    _, b = await api.call("POST", "/db/items", bob, json={"who": "b"})
    _, docs = await api.call("POST", "/db/items?ids=true", alice, json=[a["id"], b["id"], "missing"])
    assert [d["who"] for d in docs] == ["a"]


async def test_bulk_delete_accepts_unescaped_base64(api):
    token = await api.register()
    await api.call("POST", "/db/items?bulk=1", token, json=[{"s": "a>?"}, {"s": "b"}])
    raw = base64.b64encode(json.dumps([["s", "==", "a>?"]]).encode()).decode().rstrip("=")
    path = "/db/items?bulk=1&x=" + raw.replace("+", " ")  # what Go's Query() would see
    assert await api.call("DELETE", path, token) == (200, 1)


async def test_sudo_mirrors_bypass_permissions(api):
    alice = await api.register()
    _, doc = await api.call("POST", "/db/secret_700_", alice, json={"v": 1})
    assert (await api.root("GET", f"/sudo/secret_700_/{doc['id']}"))[1]["v"] == 1
    _, page = await api.root("POST", "/sudoquery/secret_700_", json=[["v", "==", 1]])
    assert page["total"] == 1
    assert (await api.root("PUT", f"/sudo/secret_700_/{doc['id']}", json={"v": 2}))[1]["v"] == 2
    _, names = await api.root("GET", "/sudolistall")
    assert names == ["secret_700_"]
    assert await api.root("DELETE", f"/sudo/secret_700_/{doc['id']}") == (200, 1)
    status, _text = await api.call("GET", "/sudo/secret_700_", alice)
    assert status == 400


@dataclass
class Actors:
    """Three users: an owner, a member of the owner's account, and a user of another account."""

    owner: str
    teammate: str
    stranger: str


@pytest.fixture
async def actors(api) -> Actors:
    owner = await api.register("owner@example.com")
    await api.call("POST", "/account/users", owner, json={"email": "mate@example.com", "password": "pw-mate1"})
    _, teammate = await api.call("POST", "/login", json={"email": "mate@example.com", "password": "pw-mate1"})
    return Actors(owner=owner, teammate=teammate, stranger=await api.register("stranger@example.com"))


# collection → (who reads, who writes), among owner/teammate/stranger/anonymous
MATRIX = [
    ("tasks", {"owner", "teammate"}, {"owner"}),
    ("tasks_700_", {"owner"}, {"owner"}),
    ("tasks_760_", {"owner", "teammate"}, {"owner", "teammate"}),
    ("tasks_744_", {"owner", "teammate", "stranger"}, {"owner"}),
    ("tasks_774_", {"owner", "teammate", "stranger"}, {"owner", "teammate"}),
    ("tasks_766_", {"owner", "teammate", "stranger"}, {"owner", "teammate", "stranger"}),
    ("pub_tasks", {"owner", "teammate", "stranger", "anonymous"}, {"owner", "teammate", "stranger", "anonymous"}),
]


@pytest.mark.parametrize("col, readers, writers", MATRIX)
async def test_permission_matrix(api, actors, col, readers, writers):
    _, doc = await api.call("POST", f"/db/{col}", actors.owner, json={"v": 0})
    tokens = {"owner": actors.owner, "teammate": actors.teammate, "stranger": actors.stranger, "anonymous": None}
    for name, token in tokens.items():
        status, _ = await api.call("GET", f"/db/{col}/{doc['id']}", token)
        _, page = await api.call("POST", f"/query/{col}", token, json=[])
        can_read = status == 200
        assert can_read == (name in readers), f"{name} read {col}: {status}"
        if name != "anonymous" or col.startswith("pub_"):
            assert (page["total"] == 1) == can_read, f"{name} query {col}"
    for value, (name, token) in enumerate(tokens.items(), start=1):
        status, _ = await api.call("PUT", f"/db/{col}/{doc['id']}", token, json={"v": value})
        _, current = await api.call("GET", f"/db/{col}/{doc['id']}", actors.owner)
        wrote = current["v"] == value
        assert (status == 200) == wrote == (name in writers), f"{name} write {col}: {status}"
    for name, token in tokens.items():
        if name not in writers:
            refused = ((200, 0), (401, "missing authorization HTTP header\n"))
            assert await api.call("DELETE", f"/db/{col}/{doc['id']}", token) in refused
    assert (await api.call("GET", f"/db/{col}/{doc['id']}", actors.owner))[0] == 200


async def test_anonymous_only_on_public_collections(api):
    status, _text = await api.call("GET", "/db/tasks")
    assert status == 401
    status, doc = await api.call("POST", "/db/pub_board", json={"msg": "hi"})
    assert status == 201 and doc["accountId"] == "public_repo_called"


async def test_list_totals_kept_by_triggers_match_a_scan(api, actors):
    scan = [["id", "!=", ""]]  # a filter forces a COUNT over the rows
    for col in ("tasks", "tasks_700_", "tasks_744_"):
        for token in (actors.owner, actors.teammate, actors.stranger):
            await api.call("POST", f"/db/{col}?bulk=1", token, json=[{"n": n} for n in range(5)])
        _, doc = await api.call("POST", f"/db/{col}", actors.teammate, json={"n": 9})
        await api.call("DELETE", f"/db/{col}/{doc['id']}", actors.teammate)
        x = base64.b64encode(json.dumps([["n", "<", 2]]).encode()).decode()
        await api.call("DELETE", f"/db/{col}?bulk=1&x={x}", actors.owner)
        for token in (actors.owner, actors.teammate, actors.stranger, None):
            if token is None:
                status, listed = await api.root("GET", f"/sudo/{col}")
                _, scanned = await api.root("POST", f"/sudoquery/{col}", json=scan)
            else:
                status, listed = await api.call("GET", f"/db/{col}", token)
                _, scanned = await api.call("POST", f"/query/{col}", token, json=scan)
            assert status == 200
            assert listed["total"] == scanned["total"] == len(scanned["results"]), (col, listed, scanned)
            if token:
                _, counted = await api.call("POST", f"/db/count/{col}", token)
                assert counted["count"] == listed["total"]


async def test_sudo_index_is_not_taken_for_a_collection(api):
    assert await api.root("POST", "/sudo/index?col=tasks&field=done") == (200, True)
    assert (await api.root("GET", "/sudo/index?col=tasks"))[1][0]["field"] == "done"
    assert await api.root("DELETE", "/sudo/index?col=tasks&field=done") == (200, True)
    assert await api.root("GET", "/sudolistall") == (200, [])
