"""Field indexes: the /sudo/index routes, their checks, the record kept across a restart, the CLI."""

from __future__ import annotations

import sqlite3

import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.support import DEV_PK, DEV_ROOT_TOKEN, run_cli, start_server


def _sqlite_indexes(path: str) -> dict[str, str]:
    """The field indexes in the file: name → SQL."""
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                 "AND name LIKE 'docfield_%'").fetchall())
    finally:
        conn.close()


async def test_create_list_drop(api, tmp_path):
    assert await api.root("POST", "/sudo/index?col=msgs&field=channel") == (200, True)
    assert await api.root("POST", "/sudo/index?col=msgs&field=channel") == (200, True)  # there already
    assert await api.root("POST", "/sudo/index?col=msgs&field=meta.author") == (200, True)
    assert await api.root("POST", "/sudo/index?col=tasks&field=channel") == (200, True)
    status, listed = await api.root("GET", "/sudo/index?col=msgs")
    assert status == 200
    assert [(i["collection"], i["field"]) for i in listed] == [("msgs", "channel"), ("msgs", "meta.author")]
    assert all(i["created"].endswith("Z") and i["name"].startswith("docfield_") for i in listed)
    assert len((await api.root("GET", "/sudo/index"))[1]) == 3
    assert set(_sqlite_indexes(str(tmp_path / "test.db"))) == {i["name"] for i in (await api.root(
        "GET", "/sudo/index"))[1]}
    assert await api.root("DELETE", "/sudo/index?col=msgs&field=channel") == (200, True)
    status, text = await api.root("DELETE", "/sudo/index?col=msgs&field=channel")
    assert status == 404 and "no index on channel in msgs" in text
    assert [i["field"] for i in (await api.root("GET", "/sudo/index?col=msgs"))[1]] == ["meta.author"]
    assert len(_sqlite_indexes(str(tmp_path / "test.db"))) == 2


BAD = [
    # (query string, method, words of the 400)
    ("?field=a", "POST", "missing query parameter: col"),
    ("?col=msgs", "POST", "missing query parameter: field"),
    ("?col=msgs&field=", "POST", "missing query parameter: field"),
    ("?col=bad%20name&field=a", "POST", "invalid collection name"),
    ("?col=msgs&field=a..b", "POST", "invalid field name"),
    ('?col=msgs&field=a%22b', "POST", "invalid field name"),
    ("?col=msgs&field=a%5Cb", "POST", "invalid field name"),
    ("?col=msgs&field=a%00b", "POST", "invalid field name"),
    ("?col=msgs&field=" + "f" * 201, "POST", "invalid field name"),
    ("?col=msgs&field=id", "POST", "id is indexed already"),
    ("?col=msgs&field=accountId", "POST", "accountId is indexed already"),
    ("?col=msgs&field=a..b", "DELETE", "invalid field name"),
    ("?col=x'y&field=a", "DELETE", "invalid collection name"),
    ("?col=x'y", "GET", "invalid collection name"),
]


@pytest.mark.parametrize("query, method, words", [b[:3] for b in BAD], ids=[f"{b[1]} {b[0]}" for b in BAD])
async def test_bad_requests_are_400_and_change_nothing(api, tmp_path, query, method, words):
    status, text = await api.root(method, "/sudo/index" + query)
    assert status == 400 and words in text
    assert _sqlite_indexes(str(tmp_path / "test.db")) == {}


async def test_root_only(api):
    token = await api.register()
    status, text = await api.call("POST", "/sudo/index?col=msgs&field=a", token)
    assert status == 400 and "root token" in text  # StaticBackend's answer to a user's token on /sudo
    assert (await api.call("GET", "/sudo/index"))[0] == 401
    assert (await api.root("GET", "/sudo/index"))[1] == []


HOSTILE = ["it's", "a') OR 1=1 --", "x'); DROP TABLE documents; --", "'", "''", "a b", "é.ü", "?", "x?y.'z'",
           "$.a", "a[0]", "*/ x /*"]


@pytest.mark.parametrize("field", HOSTILE)
async def test_hostile_field_names_make_an_index_and_nothing_else(api, tmp_path, field):
    docs = [{field: 1}, {field: 2}, {"other": 1}]
    if "." in field:
        head, tail = field.split(".", 1)
        docs = [{head: {tail: 1}}, {head: {tail: 2}}, {"other": 1}]
    status, _ = await api.root("POST", "/sudo/msgs?bulk=1", json=docs)
    assert status == 201
    params = {"col": "msgs", "field": field}
    resp = await api.client.post("/sudo/index", params=params, headers=api.headers(DEV_ROOT_TOKEN))
    assert resp.status == 200 and await resp.json() is True
    (listed,) = (await api.root("GET", "/sudo/index?col=msgs"))[1]
    assert listed["field"] == field
    assert list(_sqlite_indexes(str(tmp_path / "test.db"))) == [listed["name"]]
    status, page = await api.root("POST", "/sudoquery/msgs", json=[[field, "==", 2]])
    assert status == 200 and page["total"] == 1
    status, page = await api.root("POST", "/sudoquery/msgs", json=[[field, ">=", 1]])
    assert page["total"] == 2
    assert (await api.root("GET", "/sudolistall"))[1] == ["msgs"]
    resp = await api.client.delete("/sudo/index", params=params, headers=api.headers(DEV_ROOT_TOKEN))
    assert resp.status == 200
    assert _sqlite_indexes(str(tmp_path / "test.db")) == {}


async def test_indexes_survive_a_restart(aiohttp_client, tmp_path):
    config = make_config(tmp_path)
    first = Api(await aiohttp_client(create_app(config)))
    assert await first.root("POST", "/sudo/index?col=msgs&field=n") == (200, True)
    await first.client.close()
    second = Api(await aiohttp_client(create_app(config)))
    assert [i["field"] for i in (await second.root("GET", "/sudo/index?col=msgs"))[1]] == ["n"]
    assert await second.root("DELETE", "/sudo/index?col=msgs&field=n") == (200, True)




async def test_an_index_of_the_first_shape_is_rebuilt_at_start(aiohttp_client, tmp_path, caplog):
    """An index made by the release before the account joined the index: replaced, its record renamed, same answers."""
    config = make_config(tmp_path)
    first = Api(await aiohttp_client(create_app(config)))
    assert (await first.root("POST", "/sudo/things?bulk=1", json=[{"n": i} for i in range(50)]))[0] == 201
    assert await first.root("POST", "/sudo/index?col=things&field=n") == (200, True)
    await first.client.close()
    path = str(tmp_path / "test.db")
    ((name, sql),) = _sqlite_indexes(path).items()
    conn = sqlite3.connect(path)  # back to the first shape, under its own name, as that release left it
    with conn:
        conn.execute(f'DROP INDEX "{name}"')
        conn.execute(sql.replace(name, "docfield_" + "0" * 32).replace(", account_id, seq)", ", seq)"))
        conn.execute("UPDATE document_indexes SET name = ?", ("docfield_" + "0" * 32,))
    conn.close()
    caplog.set_level("INFO", logger="sblite")
    second = Api(await aiohttp_client(create_app(config)))
    assert "rebuilt the index on n of things" in caplog.text
    assert list(_sqlite_indexes(path).items()) == [(name, sql)]
    assert [i["name"] for i in (await second.root("GET", "/sudo/index?col=things"))[1]] == [name]
    status, found = await second.root("POST", "/sudoquery/things?sort=n&desc=1&size=3", json=[["n", ">=", 40]])
    assert (status, found["total"], [d["n"] for d in found["results"]]) == (200, 10, [49, 48, 47])


@pytest.mark.slow
def test_cli_add_list_drop(capsys, tmp_path):
    server = start_server(tmp_path)
    try:
        conn = ["--url", server.url, "--pk", DEV_PK]
        added = run_cli(capsys, "index", "add", "--col", "msgs", "--field", "channel", *conn)
        assert added == "indexed channel in msgs\n"
        listed = run_cli(capsys, "index", "list", "--col", "msgs", *conn)
        assert listed.startswith("msgs") and "channel" in listed
        assert "no indexes" in run_cli(capsys, "index", "list", "--col", "tasks", *conn)
        assert run_cli(capsys, "index", "drop", "--col", "msgs", "--field", "channel", *conn) == \
            "dropped the index on channel in msgs\n"
        assert "404: no index on channel in msgs" in run_cli(capsys, "index", "drop", "--col", "msgs", "--field",
                                                         "channel", *conn)
        assert "400: invalid field name" in run_cli(capsys, "index", "add", "--col", "msgs", "--field", "a..b", *conn)
    finally:
        server.stop()
