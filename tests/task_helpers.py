"""Helpers for the scheduler tests: a clock the test moves, an app on it, and waiting for runs."""

from __future__ import annotations

import asyncio
from typing import Any

from sblite.app import create_app
from sblite.config import Config
from sblite.http.keys import TASKS
from sblite.scheduler.service import TaskService
from tests.conftest import Api
from tests.function_helpers import eventually

T0 = 1_900_000_000.0  # a whole second, far from any DST change (2030-03-17T17:46:40Z)


class FakeClock:
    """Wall-clock time that moves only when the test says so; sleepers wake when it passes their time."""

    def __init__(self, now: float = T0) -> None:
        self.time = now
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        entry = (self.time + seconds, future)
        self._sleepers.append(entry)
        try:
            await future
        finally:
            self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        """Move time on and wake whoever's time has come."""
        self.time += seconds
        for at, future in list(self._sleepers):
            if at <= self.time and not future.done():
                future.set_result(None)

    def waiting(self) -> bool:
        """Whether someone sleeps until a time still to come (the scheduler loop, between firings)."""
        return any(at > self.time and not future.done() for at, future in self._sleepers)


async def clocked_api(aiohttp_client: Any, config: Config, clock: FakeClock) -> Api:
    """An Api over an app whose scheduler runs on `clock`."""
    return Api(await aiohttp_client(create_app(config, clock=clock)))


async def create_task(api: Api, body: dict) -> dict:
    """POST /tasks; the task."""
    status, task = await api.root("POST", "/tasks", json=body)
    assert status == 200, task
    return task


async def runs(api: Api, name: str, limit: int = 100) -> list[dict]:
    """A task's runs, oldest first."""
    status, found = await api.root("GET", f"/tasks/{name}/runs?limit={limit}")
    assert status == 200, found
    return list(reversed(found))


async def wait_runs(api: Api, name: str, count: int, *, settled: bool = True, timeout: float = 10.0) -> list[dict]:
    """A task's runs (oldest first) once there are `count` (and, if `settled`, none under way)."""
    async def probe() -> list[dict] | None:
        found = await runs(api, name)
        if len(found) < count:
            return None
        if settled and any(r["status"] in ("queued", "running") for r in found):
            return None
        return found

    result: list[dict] = await eventually(probe, timeout, f"{count} run(s) of {name}")
    return result


async def tick(api: Api, clock: FakeClock, seconds: float = 1.0) -> None:
    """Move the clock on and wait until the scheduler has fired what came due and sleeps again."""
    clock.advance(seconds)
    await settle(api, clock)


async def settle(api: Api, clock: FakeClock) -> None:
    """Wait until the scheduler loop sleeps (on `clock`) with nothing due and nothing firing."""
    loop = service(api).loop

    async def asleep() -> bool:
        await asyncio.sleep(0.005)
        return not loop.firing and clock.waiting()

    await eventually(asleep, 5.0, "the scheduler to go back to sleep")


def service(api: Api) -> TaskService:
    """The app's TaskService."""
    return api.client.app[TASKS]
