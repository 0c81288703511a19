"""The scheduler in a real app on a clock the test moves: overlap, catch-up after a restart, pause, run now,
retention, one-off tasks, and a loop that stays asleep."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from aiohttp import web

from sblite.http.keys import ACCOUNTS, BUS
from sblite.model import Identity
from tests.conftest import Api, make_config
from tests.function_helpers import eventually
from tests.support import DEV_PK, DEV_ROOT_TOKEN
from tests.task_helpers import T0, FakeClock, clocked_api, create_task, runs, service, settle, tick, wait_runs

TICK = {"name": "tick", "type": "message", "value": "tick", "meta": {"channel": "lobby", "data": "hi"},
        "interval": "@every 1s"}


class Gate:
    """A loopback HTTP server whose answers wait until the test lets each one go."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[None]] = []
        self.seen: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("X-Sblite-Scheduled-For", ""))
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        await future
        return web.Response(text="pong")

    async def held(self, count: int) -> None:
        await eventually(lambda: _true(len([f for f in self.waiting if not f.done()]) >= count), 5.0,
                         f"{count} request(s) waiting")

    def release(self) -> None:
        next(f for f in self.waiting if not f.done()).set_result(None)


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def gate(aiohttp_server) -> Gate:
    gate = Gate()
    app = web.Application()
    app.router.add_post("/hook", gate.handle)
    server = await aiohttp_server(app)
    gate.url = str(server.make_url("/hook"))
    yield gate
    for future in gate.waiting:
        if not future.done():
            future.set_result(None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def api(aiohttp_client, tmp_path, clock) -> Api:
    return await clocked_api(aiohttp_client, make_config(tmp_path, functions_fetch_allow_private=True), clock)


def statuses(found: list[dict]) -> list[tuple[float, str]]:
    """(seconds after T0, status) of each run."""
    return [(datetime.fromisoformat(r["scheduled_for"].replace("Z", "+00:00")).timestamp() - T0, r["status"])
            for r in found]


async def test_a_task_runs_at_each_instant(api: Api, clock: FakeClock) -> None:
    await create_task(api, TICK)
    await settle(api, clock)
    assert await runs(api, "tick") == []
    for _ in range(3):
        await tick(api, clock)
    found = await wait_runs(api, "tick", 3)
    assert statuses(found) == [(1, "ok"), (2, "ok"), (3, "ok")]
    assert {r["trigger"] for r in found} == {"schedule"}
    assert service(api).stats.lateness.count == 3


async def test_nothing_runs_between_instants(api: Api, clock: FakeClock) -> None:
    await create_task(api, TICK)
    await settle(api, clock)
    await tick(api, clock, 0.5)
    await asyncio.sleep(0.05)
    assert await runs(api, "tick") == []
    await tick(api, clock, 0.5)
    assert statuses(await wait_runs(api, "tick", 1)) == [(1, "ok")]


def hook(gate: Gate, overlap: str) -> dict:
    return {"name": "hook", "type": "http", "value": gate.url, "interval": "@every 1s", "overlap": overlap}


async def test_overlap_skip(api: Api, clock: FakeClock, gate: Gate) -> None:
    await create_task(api, hook(gate, "skip"))
    await tick(api, clock)
    await gate.held(1)
    await tick(api, clock)  # the first run is still under way
    gate.release()
    await wait_runs(api, "hook", 2)
    await tick(api, clock)
    await gate.held(1)
    gate.release()
    assert statuses(await wait_runs(api, "hook", 3)) == [(1, "ok"), (2, "skipped"), (3, "ok")]


async def test_overlap_queue_one(api: Api, clock: FakeClock, gate: Gate) -> None:
    await create_task(api, hook(gate, "queue_one"))
    await tick(api, clock)
    await gate.held(1)
    await tick(api, clock)  # queued behind the first
    await tick(api, clock)  # one is queued already: skipped
    assert statuses(await runs(api, "hook")) == [(1, "running"), (2, "queued"), (3, "skipped")]
    gate.release()
    await gate.held(1)  # the queued run starts when the first ends
    assert statuses(await runs(api, "hook")) == [(1, "ok"), (2, "running"), (3, "skipped")]
    gate.release()
    assert statuses(await wait_runs(api, "hook", 3)) == [(1, "ok"), (2, "ok"), (3, "skipped")]
    assert gate.seen[:2] == [f"2030-03-17T17:46:4{n}Z" for n in (1, 2)]


async def test_overlap_allow(api: Api, clock: FakeClock, gate: Gate) -> None:
    await create_task(api, hook(gate, "allow"))
    for _ in range(3):
        await tick(api, clock)
    await gate.held(3)
    assert statuses(await runs(api, "hook")) == [(1, "running"), (2, "running"), (3, "running")]
    for _ in range(3):
        gate.release()
    assert statuses(await wait_runs(api, "hook", 3)) == [(1, "ok"), (2, "ok"), (3, "ok")]


async def test_an_http_task_fails_on_an_error_status_and_still_publishes_the_answer(api: Api, aiohttp_server) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text=f"busy: {await request.text()}")

    app = web.Application()
    app.router.add_post("/x", broken)
    server = await aiohttp_server(app)
    seen: list = []
    api.client.app[BUS].subscribe(seen.append)
    await create_task(api, {"name": "hook", "type": "http", "value": str(server.make_url("/x")), "interval": "@daily",
                            "meta": {"ct": "application/json", "data": {"a": [1, 2]}}})
    await api.root("POST", "/tasks/hook/run")
    [run] = await wait_runs(api, "hook", 1)
    assert (run["status"], run["error"]) == ("failed", "HTTP 503")
    [answer] = [m for m in seen if m.type == "http_response"]
    assert (answer.channel, answer.data) == ("hook-http-response", 'busy: {"a":[1,2]}')


async def test_an_http_task_keeps_to_fetchs_address_rules(aiohttp_client, tmp_path, aiohttp_server) -> None:
    async def reached(request: web.Request) -> web.Response:
        return web.Response(text="reached")

    app = web.Application()
    app.router.add_post("/x", reached)
    server = await aiohttp_server(app)
    api = await clocked_api(aiohttp_client, make_config(tmp_path), FakeClock())  # private addresses refused
    await create_task(api, {"name": "inside", "type": "http", "value": str(server.make_url("/x")),
                            "interval": "@daily"})
    await api.root("POST", "/tasks/inside/run")
    [run] = await wait_runs(api, "inside", 1)
    assert run["status"] == "failed" and "refuses" in run["error"], run


@pytest.mark.parametrize(("catchup", "expected"), [
    ("latest", [(10, "ok"), (20, "missed"), (40, "ok")]),
    ("all", [(10, "ok"), (20, "ok"), (30, "ok"), (40, "ok")]),
    ("skip", [(10, "ok"), (20, "missed")]),
])
async def test_catch_up_after_a_downtime(aiohttp_client, tmp_path, catchup: str, expected: list) -> None:
    config = make_config(tmp_path)
    clock = FakeClock()
    api = await clocked_api(aiohttp_client, config, clock)
    await create_task(api, {**TICK, "interval": "@every 10s", "catchup": catchup})
    await tick(api, clock, 10)
    await wait_runs(api, "tick", 1)
    await api.client.close()  # the server stops at T0+10 and starts again at T0+45
    later = FakeClock(T0 + 45)
    api = await clocked_api(aiohttp_client, config, later)
    await settle(api, later)
    found = await wait_runs(api, "tick", len(expected))
    assert statuses(found) == expected
    assert [r["trigger"] for r in found][1:] == ["catchup"] * (len(expected) - 1)
    if catchup != "all":
        assert found[1]["output"][0].startswith(f"{3 if catchup == 'skip' else 2} instant(s) missed")
    status, task = await api.root("GET", "/tasks/tick")
    assert status == 200 and task["next_run"] == "2030-03-17T17:47:30Z"  # T0+50: the schedule goes on from now


async def test_pause_and_resume_keep_the_schedule(api: Api, clock: FakeClock) -> None:
    created = await create_task(api, {**TICK, "interval": "@every 10s"})
    await tick(api, clock, 2)
    status, paused = await api.root("POST", "/tasks/tick/pause", json={"note": "maintenance"})
    assert status == 200 and paused["next_run"] == created["next_run"]
    await tick(api, clock, 25)  # T0+27: the instants at +10 and +20 pass while paused
    assert await runs(api, "tick") == []
    status, resumed = await api.root("POST", "/tasks/tick/resume")
    assert status == 200 and resumed["next_run"] == "2030-03-17T17:47:10Z"  # T0+30, on the same grid
    await settle(api, clock)
    assert await runs(api, "tick") == []  # nothing paused runs late
    await tick(api, clock, 3)
    assert statuses(await wait_runs(api, "tick", 1)) == [(30, "ok")]


async def test_run_now_leaves_the_schedule_alone_even_when_paused(api: Api, clock: FakeClock) -> None:
    created = await create_task(api, {**TICK, "interval": "@every 1h"})
    status, run = await api.root("POST", "/tasks/tick/run")
    assert status == 200 and (run["trigger"], run["status"]) == ("manual", "ok")
    await api.root("POST", "/tasks/tick/pause")
    status, run = await api.root("POST", "/tasks/tick/run")
    assert status == 200 and run["status"] == "ok"
    status, task = await api.root("GET", "/tasks/tick")
    assert task["next_run"] == created["next_run"] and task["status"] == "paused"
    assert [r["trigger"] for r in task["runs"]] == ["manual", "manual"]


async def test_retention_keeps_the_newest_runs(api: Api, clock: FakeClock) -> None:
    await create_task(api, {**TICK, "keep_runs": 3})
    for _ in range(6):
        await tick(api, clock)
    await eventually(lambda: _done(api, 6), 5.0, "six runs")
    assert statuses(await runs(api, "tick")) == [(4, "ok"), (5, "ok"), (6, "ok")]


async def _done(api: Api, count: int) -> bool:
    return service(api).stats.runs["ok"] >= count


async def test_retention_by_age(api: Api, clock: FakeClock) -> None:
    await create_task(api, {**TICK, "interval": "@every 1d", "keep_days": 1.5})
    await tick(api, clock, 86400 - T0 % 86400)  # to midnight, UTC
    for _ in range(2):
        await tick(api, clock, 86400)
    await eventually(lambda: _done(api, 3), 5.0, "three runs")
    assert len(await runs(api, "tick")) == 2  # the first is more than a day and a half old


async def test_a_one_off_task_runs_once_and_is_kept_as_completed(api: Api, clock: FakeClock) -> None:
    task = await create_task(api, {**{k: v for k, v in TICK.items() if k != "interval"}, "at": "+2s"})
    assert task["status"] == "scheduled"
    await tick(api, clock, 2)
    assert statuses(await wait_runs(api, "tick", 1)) == [(2, "ok")]
    await tick(api, clock, 60)
    status, task = await api.root("GET", "/tasks/tick")
    assert (status, task["status"], task["next_run"], len(task["runs"])) == (200, "completed", None, 1)


async def test_schedule_once_makes_a_durable_one_off_task(api: Api, clock: FakeClock) -> None:
    identity = await _root(api)
    task = await service(api).schedule_once(identity.app_id, identity, kind="message", value="ping",
                                            meta={"channel": "lobby", "data": "{\"n\": 1}"}, when=5)
    assert task["name"].startswith("once-") and task["at"] == "2030-03-17T17:46:45Z"
    with pytest.raises(Exception) as caught:
        await service(api).schedule_once(identity.app_id, identity, kind="message", value="ping", meta={"data": ""},
                                         when=5)
    assert str(caught.value).startswith("meta.channel:")
    with pytest.raises(Exception) as caught:
        await service(api).schedule_once(identity.app_id, identity, kind="message", value="ping",
                                         meta={"channel": "lobby"}, when=-1)
    assert str(caught.value).startswith("when:")
    with pytest.raises(Exception) as caught:
        await service(api).schedule_once(identity.app_id, identity, kind="message", value="ping",
                                         meta={"channel": "lobby"}, when="2001-01-01T00:00:00Z")
    assert str(caught.value).startswith("when: 2001-01-01T00:00:00Z is in the past")
    await tick(api, clock, 5)
    assert statuses(await wait_runs(api, task["name"], 1)) == [(5, "ok")]
    status, found = await api.root("GET", f"/tasks/{task['name']}")
    assert (status, found["status"]) == (200, "completed")
    await tick(api, clock, 14 * 86400)  # a function's one-off task goes keep_days after it ran
    status, _ = await api.root("GET", f"/tasks/{task['name']}")
    assert status == 404


async def test_a_thousand_one_off_tasks_due_in_the_same_second_all_run_once(api: Api, clock: FakeClock) -> None:
    tasks, identity = service(api), await _root(api)
    await asyncio.gather(*(tasks.schedule_once(identity.app_id, identity, kind="message", value="go",
                                               meta={"channel": f"c{n}", "data": ""}, when=3) for n in range(1000)))
    await settle(api, clock)
    await tick(api, clock, 3)
    await eventually(lambda: _done(api, 1000), 10.0, "a thousand runs")
    listed = tasks.list_tasks(identity)
    assert len(listed) == 1000 and {t["status"] for t in listed} == {"completed"}
    assert tasks.stats.runs == {"ok": 1000, "missed": 0}


async def _root(api: Api) -> Identity:
    identity: Identity = await api.client.app[ACCOUNTS].identify_root(DEV_ROOT_TOKEN, DEV_PK)
    return identity


async def test_the_loop_sleeps_through_thousands_of_idle_tasks(api: Api, clock: FakeClock) -> None:
    tasks = service(api)
    identity = await _root(api)
    await asyncio.gather(*(tasks.create(identity, {**TICK, "name": f"idle-{n}", "interval": "0 3 1 * *"})
                           for n in range(2000)))
    await settle(api, clock)
    woken = tasks.loop.wakeups
    for _ in range(5):
        await tick(api, clock, 5)  # 25 s: no task is due and the loop's longest sleep is 30 s
    assert tasks.loop.wakeups == woken
    await tick(api, clock, 6)
    assert tasks.loop.wakeups == woken + 1  # it looks at the clock again, finds nothing, sleeps
    assert len(tasks.loop) == 2000
