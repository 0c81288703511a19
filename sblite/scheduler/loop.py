"""The scheduler loop: one asyncio task that sleeps until the earliest next run, then fires what is due.

Nothing polls. Tasks sit in a heap by next run; the loop sleeps until the first one (or until
`schedule` puts an earlier one in, which wakes it), hands every due task to `fire` at once,
and goes back to sleep. Thousands of idle tasks cost nothing but their heap entries. The clock
is injected, so tests move time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from sblite.scheduler.policy import sleep_seconds

log = logging.getLogger(__name__)
# The longest sleep: the wall clock may be set forward or back while the loop sleeps on a
# monotonic timer, so it looks again at least this often.
LONGEST_SLEEP_SECONDS = 30.0

Fire = Callable[[list[str], float], Awaitable[None]]


class Clock(Protocol):
    """Wall-clock time (seconds since the epoch) and a way to wait for it."""

    def now(self) -> float:
        """The current time."""

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` (as this clock counts them)."""


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        """time.time()."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep."""
        await asyncio.sleep(seconds)


class TaskLoop:
    """Keeps each task's next run and calls `fire(keys, now)` with the tasks due at `now`."""

    def __init__(self, fire: Fire, clock: Clock, longest_sleep: float = LONGEST_SLEEP_SECONDS) -> None:
        self._fire = fire
        self._clock = clock
        self._longest = longest_sleep
        self._at: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # may hold stale entries: `_at` is the truth
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.wakeups = 0  # times the loop woke (tests check that idle tasks do not wake it)
        self.firing = False

    def schedule(self, key: str, at: float | None) -> None:
        """Fire `key` at `at` (replacing any earlier time); None takes it out."""
        if at is None:
            self._at.pop(key, None)
            return
        if self._at.get(key) == at:
            return
        self._at[key] = at
        heapq.heappush(self._heap, (at, key))
        if self._heap[0] == (at, key):  # earlier than what the loop sleeps for
            self._wake.set()
        if len(self._heap) > 2 * len(self._at) + 64:
            self._heap = [(when, k) for k, when in self._at.items()]
            heapq.heapify(self._heap)

    def scheduled(self, key: str) -> float | None:
        """When `key` fires next (None: not scheduled)."""
        return self._at.get(key)

    def __len__(self) -> int:
        return len(self._at)

    def start(self) -> None:
        """Start the loop's task."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        """Stop the loop (a firing under way is cancelled; its writes are atomic)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock.now()
            due = self._take_due(now)
            if due:
                self.firing = True
                try:
                    await self._fire(due, now)
                except Exception:  # fire handles its tasks' failures; this is a last resort
                    log.exception("the scheduler could not fire %d task(s)", len(due))
                finally:
                    self.firing = False
                continue
            await self._wait(sleep_seconds(self._earliest(), now, self._longest))
            self.wakeups += 1

    def _take_due(self, now: float) -> list[str]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            if self._at.get(key) == at:
                del self._at[key]
                due.append(key)
        return due

    def _earliest(self) -> float | None:
        while self._heap and self._at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def _wait(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeper, woken):
                waiter.cancel()
