"""The index advisor: the window of repeats and its bounds (a clock moved by the test, no sleeping), then in the
real app: indexed fields never suggested, auto_index creating what it suggests, up to its limit."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sblite.app import create_app
from sblite.services import index_advisor
from sblite.services.index_advisor import SUGGEST_AFTER, SUGGEST_WINDOW_SECONDS, IndexAdvisor
from tests.conftest import Api, make_config
from tests.support import DEV_ROOT_TOKEN


class Clock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def fields(advisor: IndexAdvisor, app_id: str = "app") -> list[tuple[str, str, int]]:
    return [(s["collection"], s["field"], s["slowQueries"]) for s in await advisor.suggestions(app_id)]


async def test_repeats_count_only_within_the_window():
    clock = Clock()
    advisor = IndexAdvisor(None, clock=clock)
    for _ in range(SUGGEST_AFTER - 1):
        advisor.note("app", "msgs", ["body"], 250.0)
    clock.now += SUGGEST_WINDOW_SECONDS + 1  # the first ones are too old now
    advisor.note("app", "msgs", ["body"], 250.0)
    assert await fields(advisor) == []
    for _ in range(SUGGEST_AFTER - 1):
        clock.now += 10
        advisor.note("app", "msgs", ["body"], 300.0)
    assert await fields(advisor) == [("msgs", "body", SUGGEST_AFTER)]
    advisor.note("app", "msgs", ["body"], 400.0)  # later ones count on the suggestion
    [suggestion] = await advisor.suggestions("app")
    assert (suggestion["slowQueries"], suggestion["lastMs"]) == (SUGGEST_AFTER + 1, 400.0)
    await advisor.close()


async def test_suggestions_belong_to_their_app_and_collection():
    advisor = IndexAdvisor(None, clock=Clock())
    for _ in range(SUGGEST_AFTER):
        advisor.note("app", "msgs", ["body", "n"], 250.0)
        advisor.note("other-app", "msgs", ["title"], 250.0)
        advisor.note("app", "tasks", ["body"], 250.0)
    assert await fields(advisor) == [("msgs", "body", 3), ("msgs", "n", 3), ("tasks", "body", 3)]
    assert await fields(advisor, "other-app") == [("msgs", "title", 3)]
    assert [s["field"] for s in await advisor.suggestions("app", "tasks")] == ["body"]
    await advisor.close()


async def test_fields_and_suggestions_held_are_bounded(monkeypatch):
    monkeypatch.setattr(index_advisor, "MAX_TRACKED_FIELDS", 10)
    monkeypatch.setattr(index_advisor, "MAX_SUGGESTIONS", 4)
    advisor = IndexAdvisor(None, clock=Clock())
    advisor.note("app", "msgs", ["first"], 250.0)
    advisor.note("app", "msgs", ["first"], 250.0)
    for k in range(10):  # ten other fields push `first` out of the tracked ones
        advisor.note("app", "msgs", [f"f{k}"], 250.0)
    advisor.note("app", "msgs", ["first"], 250.0)
    assert await fields(advisor) == []
    for _ in range(SUGGEST_AFTER):
        advisor.note("app", "msgs", [f"g{k}" for k in range(6)], 250.0)
    assert len(await fields(advisor)) == 4 and advisor.suggested == 4
    await advisor.close()


@pytest.mark.parametrize("auto_index", [True, False])
async def test_without_index_operations_auto_index_stays_off(auto_index):
    advisor = IndexAdvisor(None, auto_index=auto_index, clock=Clock())
    assert advisor.auto_index is False
    await advisor.close()


# --------------------------------------------------------------------------- with the real app

LOGGER = "sblite.slow_query"


@dataclass
class App:
    """An app's caller and a user's token."""

    api: Api
    user: str

    async def root(self, method: str, path: str) -> tuple[int, Any]:
        return await self.api.root(method, path)


async def app_api(aiohttp_client, tmp_path, **settings: Any) -> App:
    """An app whose every query is slow, with `settings`, and 200 documents in `msgs`."""
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, slow_query_ms=0, **settings))))
    token = await api.register()
    docs = [{"body": f"b{i}", "n": i, "title": "t"} for i in range(200)]
    assert (await api.call("POST", "/db/msgs?bulk=1", token, json=docs))[0] == 201
    return App(api, token)


async def slow_queries(app: App, clauses: list[list[Any]], times: int = SUGGEST_AFTER) -> None:
    for _ in range(times):
        status, body = await app.api.call("POST", "/query/msgs", app.user, json=clauses)
        assert status == 200, body


async def indexed(api: App) -> list[str]:
    status, found = await api.root("GET", "/sudo/index?col=msgs")
    assert status == 200, found
    return [index["field"] for index in found]


async def suggested(api: App) -> list[str]:
    status, found = await api.root("GET", "/sudo/index/suggestions")
    assert status == 200, found
    return [s["field"] for s in found]


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_field_with_an_index_is_never_suggested(aiohttp_client, tmp_path):
    api = await app_api(aiohttp_client, tmp_path)
    assert await api.root("POST", "/sudo/index?col=msgs&field=body") == (200, True)
    await slow_queries(api, [["body", "==", "b1"], ["title", "==", "t"]])
    assert await suggested(api) == ["title"]
    assert await api.root("POST", "/sudo/index?col=msgs&field=title") == (200, True)  # added by hand meanwhile
    assert await suggested(api) == []


async def test_suggestions_stay_suggestions_without_auto_index(aiohttp_client, tmp_path):
    api = await app_api(aiohttp_client, tmp_path)
    await slow_queries(api, [["body", "==", "b1"]])
    assert await suggested(api) == ["body"]
    await slow_queries(api, [["body", "==", "b1"]])
    assert await indexed(api) == []


async def test_auto_index_creates_the_suggested_index_logs_it_and_counts_it(aiohttp_client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    api = await app_api(aiohttp_client, tmp_path, auto_index=True)
    await slow_queries(api, [["body", "==", "b1"]], times=SUGGEST_AFTER - 1)
    assert await indexed(api) == []
    await slow_queries(api, [["body", "==", "b1"]], times=1)

    async def body_indexed() -> bool:
        return await indexed(api) == ["body"]
    await until(body_indexed)
    assert "auto_index: created an index on msgs.body" in caplog.text
    assert await suggested(api) == []
    resp = await api.api.client.get("/metrics", headers=api.api.headers(DEV_ROOT_TOKEN))
    assert 'sblite_auto_indexes_total{outcome="created"} 1' in await resp.text()
    status, page = await api.api.call("POST", "/query/msgs", api.user, json=[["body", "==", "b1"]])
    assert status == 200 and [d["n"] for d in page["results"]] == [1]


async def test_auto_index_stops_at_its_limit_per_collection(aiohttp_client, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(index_advisor, "AUTO_INDEX_MAX", 1)
    caplog.set_level(logging.INFO, logger=LOGGER)
    api = await app_api(aiohttp_client, tmp_path, auto_index=True)
    await slow_queries(api, [["body", "==", "b1"]])

    async def body_indexed() -> bool:
        return await indexed(api) == ["body"]
    await until(body_indexed)
    await slow_queries(api, [["n", ">", 5]])

    async def refused() -> bool:
        return "auto_index: no index created on msgs.n" in caplog.text
    await until(refused)
    assert await indexed(api) == ["body"]
    assert await suggested(api) == ["n"]  # still there, for a person to decide


async def test_once_auto_index_made_the_index_the_same_query_reads_it(aiohttp_client, tmp_path, caplog):
    """The log shows the plan changed: the scans' steps, then a read through the index (timed, steps not counted)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    app = await app_api(aiohttp_client, tmp_path, auto_index=True)
    more = [{"body": f"x{i}", "n": i} for i in range(3000)]
    assert (await app.api.call("POST", "/db/msgs?bulk=1", app.user, json=more))[0] == 201
    await slow_queries(app, [["body", "==", "b1"]])

    async def body_indexed() -> bool:
        return await indexed(app) == ["body"]
    await until(body_indexed)
    await slow_queries(app, [["body", "==", "b1"]], times=1)
    steps = [json.loads(r.getMessage().partition(": ")[2])["steps"] for r in caplog.records
             if r.name == LOGGER and r.getMessage().startswith("slow query: ")]
    assert len(steps) == SUGGEST_AFTER + 1
    assert min(steps[:SUGGEST_AFTER]) >= 3 * 3_200  # 3,200 documents scanned, a few steps each
    assert steps[-1] is None
