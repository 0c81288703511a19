"""Scheduled tasks in `sblite serve` processes: delivery, a restart, kill -9, retries, an http task."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.realtime_clients import SseClient
from tests.support import DEV_PK, DEV_ROOT_TOKEN, ServerProcess, start_server

pytestmark = pytest.mark.slow
PRIVATE = {"SBLITE_FUNCTIONS_FETCH_ALLOW_PRIVATE": "true"}


class Remote:
    """Root calls to a server process."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def call(self, method: str, path: str, body: Any = None, token: str = DEV_ROOT_TOKEN) -> Any:
        headers = {"SB-PUBLIC-KEY": DEV_PK, "Authorization": f"Bearer {token}"}
        async with self.session.request(method, self.url + path, json=body, headers=headers) as resp:
            text = await resp.text()
            assert resp.status == 200, (method, path, resp.status, text)
            return json.loads(text)

    async def runs(self, name: str) -> list[dict]:
        """A task's runs, oldest first."""
        return list(reversed(await self.call("GET", f"/tasks/{name}/runs?limit=1000")))

    async def member(self, channel: str) -> SseClient:
        """An authenticated SSE member of `channel`."""
        account = {"email": f"m{time.monotonic_ns()}@example.com", "password": "pw-123456"}
        async with self.session.post(self.url + "/register", headers={"SB-PUBLIC-KEY": DEV_PK}, json=account) as r:
            token = await r.json()
        client = await SseClient(self.session, self.url, DEV_PK).open()
        assert (await client.auth(token))["type"] == "token"
        assert (await client.join(channel))["type"] == "ok"
        return client


async def until(probe: Any, timeout: float, what: str) -> Any:
    """Await `probe()` until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {found!r}")
        await asyncio.sleep(0.1)


def seconds(run: dict) -> int:
    """A run's instant as whole seconds since the epoch."""
    return int(datetime.fromisoformat(run["scheduled_for"].replace("Z", "+00:00")).timestamp())


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Iterator[ServerProcess]:
    """One server for the tests that do not restart it (private addresses allowed, for the http task)."""
    server = start_server(tmp_path_factory.mktemp("tasks"), env=PRIVATE)
    yield server
    server.stop(signal.SIGTERM)


async def test_an_every_second_message_task_reaches_an_sse_member(shared: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        remote = Remote(session, shared.url)
        member = await remote.member("ticks")
        await remote.call("POST", "/tasks", {"name": "ticker", "type": "message", "value": "tick",
                                             "meta": {"channel": "ticks", "data": "tock"}, "interval": "@every 1s"})
        frames = [await member.next("tick", timeout=3), await member.next("tick", timeout=3)]
        await member.close()
        await remote.call("DELETE", "/tasks/ticker")
    assert [(f["channel"], f["data"]) for f in frames] == [("ticks", "tock")] * 2


async def test_a_function_task_that_fails_twice_then_succeeds_ends_ok(shared: ServerProcess) -> None:
    code = """function handle(name, type, data) {
        var n = inc("tries-" + name, 1).content;
        if (n < 3) throw new Error("try " + n + " fails");
        log("try " + n + " of " + data.what);
    }"""
    async with aiohttp.ClientSession() as session:
        remote = Remote(session, shared.url)
        await remote.call("POST", "/fn/add", {"name": "flaky", "trigger": "web", "code": code})
        await remote.call("POST", "/tasks", {"name": "retry", "type": "function", "value": "flaky", "at": "+1s",
                                             "meta": {"data": '{"what": "the report"}'}})

        async def settled() -> list[dict]:
            found = await remote.runs("retry")
            return found if found and found[0]["status"] not in ("queued", "running") else []

        [run] = await until(settled, 20, "the function task to settle")  # retries 1 s, then 5 s later
        info = await remote.call("GET", "/fn/info/flaky")
        task = await remote.call("GET", "/tasks/retry")
    assert (run["status"], run["error"], run["output"]) == ("ok", None, ["try 3 of the report"])
    assert [h["success"] for h in info["history"]] == [True, False, False]
    assert run["function_run_id"] == info["history"][0]["id"]
    assert task["status"] == "completed"


async def test_an_http_task_publishes_the_response(shared: ServerProcess, aiohttp_server) -> None:
    received: list[tuple[str, str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.method, request.content_type, await request.text()))
        return web.Response(text=f"pong {request.headers['X-Sblite-Task']}")

    app = web.Application()
    app.router.add_route("*", "/hook", hook)
    target = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        remote = Remote(session, shared.url)
        member = await remote.member("pinger-http-response")
        await remote.call("POST", "/tasks", {"name": "pinger", "type": "http", "value": str(target.make_url("/hook")),
                                             "meta": {"data": '{"a": "1", "b": "x y"}'}, "interval": "@daily"})
        run = await remote.call("POST", "/tasks/pinger/run")
        frame = await member.next("http_response", timeout=5)
        await member.close()
        [done] = await until(lambda: _settled(remote, "pinger"), 5, "the http run")
    assert run["trigger"] == "manual"
    assert received == [("POST", "application/x-www-form-urlencoded", "a=1&b=x+y")]
    assert (frame["channel"], frame["data"]) == ("pinger-http-response", "pong pinger")
    assert (done["status"], done["output"][0].endswith("-> 200")) == ("ok", True)


async def _settled(remote: Remote, name: str) -> list[dict]:
    found = await remote.runs(name)
    return found if found and all(r["status"] not in ("queued", "running") for r in found) else []


async def test_a_stop_of_three_seconds_means_exactly_one_catch_up_run(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    async with aiohttp.ClientSession() as session:
        remote = Remote(session, server.url)
        await remote.call("POST", "/tasks", {"name": "beat", "type": "message", "value": "beat",
                                             "meta": {"channel": "beats"}, "interval": "@every 1s"})
        await until(lambda: _count(remote, "beat", 2), 5, "two runs")
        assert server.stop(signal.SIGTERM) == 0
        await asyncio.sleep(3)
        server = start_server(tmp_path)
        remote = Remote(session, server.url)
        try:
            await until(lambda: _after_restart(remote, 2), 8, "two runs after the restart")
            found = await remote.runs("beat")
        finally:
            server.stop(signal.SIGTERM)
    gap = next(n for n, r in enumerate(found) if r["status"] == "missed")
    before, missed, after = found[:gap], found[gap], found[gap + 1:]
    assert [r["trigger"] for r in before] == ["schedule"] * len(before)
    assert [r["trigger"] for r in after].count("catchup") == 1, found  # exactly one catch-up run
    caught_up = after[0]
    assert (caught_up["status"], caught_up["trigger"]) == ("ok", "catchup")
    assert seconds(missed) == seconds(before[-1]) + 1  # nothing lost: the gap starts right after the last run
    assert int(missed["output"][0].split()[0]) == seconds(caught_up) - seconds(missed) >= 2
    ran = [seconds(r) for r in found if r["status"] == "ok"]
    assert ran == sorted(set(ran))
    assert all(r["trigger"] == "schedule" and r["status"] == "ok" for r in after[1:])


async def _count(remote: Remote, name: str, count: int) -> list[dict]:
    found = await remote.runs(name)
    return found if len(found) >= count else []


async def _after_restart(remote: Remote, count: int) -> bool:
    found = await remote.runs("beat")
    gap = [n for n, r in enumerate(found) if r["status"] == "missed"]
    return bool(gap) and len(found) - gap[0] - 1 >= count


async def test_kill_9_at_any_moment_runs_every_instant_exactly_once(tmp_path: Path, aiohttp_server) -> None:
    seen: Counter[str] = Counter()

    async def slow(request: web.Request) -> web.Response:
        seen[request.headers["X-Sblite-Scheduled-For"]] += 1
        await asyncio.sleep(0.6)
        return web.Response(text="done")

    app = web.Application()
    app.router.add_post("/slow", slow)
    target = await aiohttp_server(app)
    server = start_server(tmp_path, env=PRIVATE)
    async with aiohttp.ClientSession() as session:
        remote = Remote(session, server.url)
        for body in ({"name": "tick", "type": "message", "value": "tick", "meta": {"channel": "t"}},
                     {"name": "slow", "type": "http", "value": str(target.make_url("/slow")), "overlap": "allow"}):
            await remote.call("POST", "/tasks", {**body, "interval": "@every 1s", "catchup": "all"})
        for offset in (0.3, 0.995, 0.5):  # a request in flight; an instant coming due; in flight again
            await until(partial(_count, remote, "slow", 1), 5, "a first run")
            await asyncio.sleep(1 + offset - time.time() % 1)
            server.stop(signal.SIGKILL)
            server = start_server(tmp_path, env=PRIVATE)
            remote = Remote(session, server.url)
        await asyncio.sleep(1.5)
        server.stop(signal.SIGTERM)  # an http call under way now is settled at the next start
        server = start_server(tmp_path, env=PRIVATE)
        remote = Remote(session, server.url)
        await remote.call("POST", "/tasks/tick/pause")
        await remote.call("POST", "/tasks/slow/pause")
        ticks = await until(lambda: _settled(remote, "tick"), 5, "tick to settle")
        slows = await until(lambda: _settled(remote, "slow"), 5, "slow to settle")
        server.stop(signal.SIGTERM)
    for found in (ticks, slows):
        instants = [seconds(r) for r in found if r["status"] != "missed"]
        assert instants == list(range(instants[0], instants[0] + len(instants))), found  # each once, none lost
        assert not [r for r in found if r["status"] in ("missed", "skipped")], found
    assert {r["status"] for r in ticks} == {"ok"}
    assert all(r["status"] == "ok" or r["error"].startswith("interrupted") for r in slows), slows
    assert max(seen.values()) == 1  # no instant was requested twice
    assert {r["scheduled_for"] for r in slows if r["status"] == "ok"} <= set(seen)
    assert [r for r in slows if r["status"] == "failed"], "a kill caught a request in flight"
