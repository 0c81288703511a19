"""Document routes end to end over a real socket."""

from __future__ import annotations

import base64
import json


async def test_create_list_get_update_delete(api):
    token = await api.register()
    status, doc = await api.call("POST", "/db/tasks", token, json={"title": "a", "n": 1})
    assert status == 201
    assert doc["title"] == "a" and doc["id"] and doc["accountId"] and doc["ownerId"]
    status, page = await api.call("GET", "/db/tasks", token)
    assert status == 200 and page["total"] == 1 and page["results"][0]["id"] == doc["id"]
    status, got = await api.call("GET", f"/db/tasks/{doc['id']}", token)
    assert got == doc
    status, updated = await api.call("PUT", f"/db/tasks/{doc['id']}", token, json={"n": 2, "id": "x"})
    assert status == 200 and updated["n"] == 2 and updated["title"] == "a" and updated["id"] == doc["id"]
    status, ok = await api.call("PUT", f"/inc/tasks/{doc['id']}", token, json={"field": "n", "range": 5})
    assert (status, ok) == (200, True)
    status, got = await api.call("GET", f"/db/tasks/{doc['id']}", token)
    assert got["n"] == 7
    status, deleted = await api.call("DELETE", f"/db/tasks/{doc['id']}", token)
    assert (status, deleted) == (200, 1)
    status, text = await api.call("GET", f"/db/tasks/{doc['id']}", token)
    assert status == 500 and "not found" in text


async def test_bulk_query_count(api):
    token = await api.register()
    docs = [{"n": n, "tags": ["even" if n % 2 == 0 else "odd"], "name": f"d{n}"} for n in range(1, 101)]
    status, ok = await api.call("POST", "/db/items?bulk=1", token, json=docs)
    assert (status, ok) == (201, True)
    status, res = await api.call("POST", "/query/items", token, json=[["n", ">", 30]])
    assert res["total"] == 70
    status, res = await api.call("POST", "/query/items", token, json=[["tags", "in", ["even"]], ["n", "<=", 10]])
    assert res["total"] == 5
    status, res = await api.call("POST", "/db/count/items", token, json=[["n", "!=", 1]])
    assert res == {"count": 99}
    status, n = await api.call("PUT", "/db/items?bulk=1", token,
                               json={"update": {"flag": True}, "clauses": [["n", "<", 11]]})
    assert n == 10
    x = base64.b64encode(json.dumps([["flag", "==", True]]).encode()).decode()
    status, n = await api.call("DELETE", f"/db/items?bulk=1&x={x}", token)
    assert n == 10
    status, res = await api.call("GET", "/db/items?page=2&size=10&desc=true", token)
    assert [d["n"] for d in res["results"]] == list(range(90, 80, -1))
