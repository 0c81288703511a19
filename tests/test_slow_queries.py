"""The slow-query log: with slow_query_ms = 0 every list, query and count is slow, logged without values and counted."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from sblite.app import create_app
from sblite.config import ConfigError, load_config
from tests.conftest import Api, make_config
from tests.support import DEV_PK, DEV_ROOT_TOKEN, run_cli, start_server

SECRET = "sk_live_4f9a8b7c6d5e"  # a value that must never reach a log line
LOGGER = "sblite.slow_query"


@pytest.fixture
async def slow(aiohttp_client, tmp_path, caplog) -> Api:
    """An app whose every query is slow (slow_query_ms = 0), its slow-query lines captured."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    return Api(await aiohttp_client(create_app(make_config(tmp_path, slow_query_ms=0))))


def slow_lines(caplog) -> list[tuple[str, dict[str, Any]]]:
    """(kind, fields) of every slow-query line logged so far."""
    found = []
    for record in caplog.records:
        message = record.getMessage()
        if record.name == LOGGER and message.startswith("slow "):
            kind, _, fields = message[len("slow "):].partition(": ")
            assert record.levelno == logging.WARNING
            found.append((kind, json.loads(fields)))
    return found


async def seed(api: Api, token: str, col: str = "msgs", count: int = 200) -> None:
    docs = [{"body": f"b{i}", "n": i, "tags": [f"t{i % 3}"], "secret": SECRET} for i in range(count)]
    status, body = await api.call("POST", f"/db/{col}?bulk=1", token, json=docs)
    assert status == 201, body


@pytest.mark.parametrize("method, path, body, kind, clauses, sort, desc, scan", [
    ("POST", "/query/msgs", [["body", "==", SECRET]], "query", [["body", "==", "?"]], None, False, True),
    ("POST", "/query/msgs", [["body", "=", SECRET], ["n", ">", 3], ["tags", "in", [SECRET, 7]]], "query",
     [["body", "==", "?"], ["n", ">", "?"], ["tags", "in", "?"]], None, False, True),
    ("POST", "/query/msgs?sort=n&desc=1", [["secret", "!=", SECRET]], "query", [["secret", "!=", "?"]], "n", True,
     True),
    ("POST", "/db/count/msgs", [["n", "<=", 5], ["secret", "==", None]], "count",
     [["n", "<=", "?"], ["secret", "==", "?"]], None, False, True),
    ("GET", "/db/msgs?desc=1", None, "query", [], None, True, False),  # kept counts, the last 25 rows: no scan
])
async def test_a_slow_query_is_logged_with_its_shape_and_no_values(slow, caplog, method, path, body, kind, clauses,
                                                                   sort, desc, scan):
    token = await slow.register()
    await seed(slow, token)
    caplog.clear()
    status, answer = await slow.call(method, path, token, json=body)
    assert status == 200, answer
    [(got_kind, fields)] = slow_lines(caplog)
    assert got_kind == kind
    assert fields["collection"] == "msgs"
    assert fields["clauses"] == clauses
    assert (fields["sort"], fields["desc"]) == (sort, desc)
    assert fields["ms"] >= 0
    assert (fields["steps"] >= 1000) is scan  # SQLite instructions, counted by the thousand: 200 documents scanned
    assert SECRET not in caplog.text


async def test_root_queries_are_measured_too(slow, caplog):
    await seed(slow, await slow.register())
    caplog.clear()
    status, page = await slow.root("POST", "/sudoquery/msgs", json=[["body", "==", SECRET]])
    assert status == 200 and page["total"] == 0
    assert [fields["clauses"] for _kind, fields in slow_lines(caplog)] == [[["body", "==", "?"]]]


async def test_steps_grow_with_the_rows_a_scan_reads(slow, caplog):
    """Steps measure work: filtering 3,000 documents takes several times the steps of filtering 300."""
    token = await slow.register()
    await seed(slow, token, "small", 300)
    await seed(slow, token, "large", 3000)
    caplog.clear()
    for col in ("small", "large"):
        assert (await slow.call("POST", f"/db/count/{col}", token, json=[["body", "==", "none"]]))[0] == 200
    small, large = (fields["steps"] for _kind, fields in slow_lines(caplog))
    assert large >= 5 * small > 0


async def test_a_read_through_a_field_index_is_timed_without_counting_steps(slow, caplog):
    """Counting steps calls Python from SQLite (it waits for the GIL): reads through an index are only timed."""
    token = await slow.register()
    await seed(slow, token)
    assert await slow.root("POST", "/sudo/index?col=msgs&field=n") == (200, True)
    caplog.clear()
    for clauses in ([["n", ">=", 150]], [["body", "==", "b7"]]):
        assert (await slow.call("POST", "/query/msgs", token, json=clauses))[0] == 200
    through_index, scan = (fields for _kind, fields in slow_lines(caplog))
    assert through_index["steps"] is None and through_index["ms"] >= 0
    assert scan["steps"] >= 1000


async def test_bad_queries_are_not_logged(slow, caplog):
    token = await slow.register()
    caplog.clear()
    status, _text = await slow.call("POST", "/query/msgs", token, json=[["body", "~", SECRET]])
    assert status == 400
    assert slow_lines(caplog) == []


@pytest.mark.parametrize("threshold", [-1, 60_000])
async def test_queries_under_the_threshold_or_with_the_log_off_are_not_logged(aiohttp_client, tmp_path, caplog,
                                                                             threshold):
    caplog.set_level(logging.INFO, logger=LOGGER)
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, slow_query_ms=threshold))))
    token = await api.register()
    await seed(api, token)
    assert (await api.call("POST", "/query/msgs", token, json=[["body", "==", "b1"]]))[0] == 200
    assert slow_lines(caplog) == []
    assert 'sblite_slow_queries_total{collection="msgs"}' not in await metrics(api)


def test_slow_query_ms_is_minus_one_or_more() -> None:
    assert load_config(env={"SBLITE_SLOW_QUERY_MS": "-1"}).slow_query_ms == -1
    assert load_config(env={}).slow_query_ms == 200 and load_config(env={}).auto_index is False
    with pytest.raises(ConfigError, match="slow_query_ms"):
        load_config(env={"SBLITE_SLOW_QUERY_MS": "-2"})


async def metrics(api: Api) -> dict[str, float]:
    """The sample lines of /metrics by name with labels."""
    resp = await api.client.get("/metrics", headers=api.headers(DEV_ROOT_TOKEN))
    text = await resp.text()
    assert resp.status == 200, text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


async def test_metrics_count_slow_queries_by_collection_with_their_durations(slow):
    token = await slow.register()
    await seed(slow, token, "msgs")
    await seed(slow, token, "tasks")
    before = await metrics(slow)
    assert before.get('sblite_slow_queries_total{collection="msgs"}', 0) == 0
    for _ in range(3):
        assert (await slow.call("POST", "/query/msgs", token, json=[["n", ">", 3]]))[0] == 200
    assert (await slow.call("POST", "/db/count/tasks", token, json=[]))[0] == 200
    after = await metrics(slow)
    assert after['sblite_slow_queries_total{collection="msgs"}'] == 3
    assert after['sblite_slow_queries_total{collection="tasks"}'] == 1
    assert after["sblite_slow_query_seconds_count"] - before.get("sblite_slow_query_seconds_count", 0) == 4
    assert after['sblite_slow_query_seconds_bucket{le="+Inf"}'] == after["sblite_slow_query_seconds_count"]
    assert after["sblite_slow_query_seconds_sum"] > before.get("sblite_slow_query_seconds_sum", 0)


async def suggestions(api: Api, query: str = "") -> list[dict[str, Any]]:
    status, found = await api.root("GET", "/sudo/index/suggestions" + query)
    assert status == 200, found
    return found


async def test_three_slow_queries_on_a_field_suggest_an_index_on_it(slow, caplog):
    token = await slow.register()
    await seed(slow, token)
    for _ in range(2):
        assert (await slow.call("POST", "/query/msgs?sort=n", token, json=[["body", "==", "b1"]]))[0] == 200
    assert await suggestions(slow) == []
    assert (await slow.call("POST", "/query/msgs?sort=n", token, json=[["body", "==", "b2"]]))[0] == 200
    found = await suggestions(slow)
    assert [(s["collection"], s["field"], s["slowQueries"]) for s in found] == [("msgs", "body", 3), ("msgs", "n", 3)]
    assert all(s["lastMs"] >= 0 and s["lastSeen"].endswith("Z") for s in found)
    assert await suggestions(slow, "?col=msgs") == found
    assert await suggestions(slow, "?col=other") == []
    assert (await metrics(slow))["sblite_index_suggestions"] == 2
    await _until(lambda: "index suggested on msgs.body" in caplog.text)


@pytest.mark.parametrize("clauses, sort", [
    ([["body", "!=", "b1"]], None),            # != and in: an ordered index does not serve them
    ([["tags", "in", ["t1"]]], None),
    ([["flag", "==", True]], None),            # booleans and null compare types, not values
    ([["body", "==", None]], None),
    ([["ownerId", "==", "x"], ["id", ">", "a"]], "created"),  # system columns have their indexes
    ([], "updated"),
])
async def test_only_equality_range_and_sort_fields_are_suggested(slow, clauses, sort):
    token = await slow.register()
    await seed(slow, token)
    path = "/query/msgs" + (f"?sort={sort}" if sort else "")
    for _ in range(4):
        assert (await slow.call("POST", path, token, json=clauses))[0] == 200
    assert await suggestions(slow) == []


async def test_suggestions_check_the_collection(slow):
    status, text = await slow.root("GET", "/sudo/index/suggestions?col=bad%20name")
    assert status == 400 and "invalid collection name" in text


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def http_json(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST JSON to a real server: (status, decoded answer or text)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "SB-PUBLIC-KEY": DEV_PK,
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()




@pytest.mark.slow
def test_a_real_server_logs_slow_queries_without_values_and_the_cli_shows_suggestions(capsys, tmp_path):
    server = start_server(tmp_path, env={"SBLITE_SLOW_QUERY_MS": "0"})
    try:
        status, token = http_json(server.url + "/register", {"email": "slow@example.com", "password": "pw-123456"})
        assert status == 200
        user = {"SB-PUBLIC-KEY": DEV_PK, "Authorization": f"Bearer {token}"}
        docs = [{"body": f"b{i}", "secret": SECRET} for i in range(50)]
        assert http_json(server.url + "/db/msgs?bulk=1", docs, user)[0] == 201
        conn = ["--url", server.url, "--pk", DEV_PK]
        assert "no suggestions" in run_cli(capsys, "index", "suggest", *conn)
        for _ in range(3):
            status, page = http_json(server.url + "/query/msgs", [["secret", "==", SECRET]], user)
            assert status == 200 and page["total"] == 50
        shown = run_cli(capsys, "index", "suggest", "--col", "msgs", *conn)
        assert shown.startswith("msgs") and "secret" in shown and "3 slow queries" in shown
        assert "sblite index add --col msgs --field secret" in shown
        output = server.output()
        assert 'WARNING sblite.slow_query: slow query: {"collection": "msgs", "clauses": [["secret", "==", "?"]]' \
            in output
        assert SECRET not in output
    finally:
        server.stop()
