"""What reads cost: the time they ran and the SQLite virtual-machine steps they took, for the slow-query log.

A caller opens a probe (`with probe() as cost:`) around the reads it wants measured; every
`Database.read` awaited inside it (the same task) runs its function under a progress handler
and adds to `cost`. Outside a probe reads run exactly as before. Steps are SQLite's own
count of the instructions it executed, read every STEP_GRAIN of them; a scan costs a few per
row it examines (an equality on one field about 9, `in` over an array about 40), an indexed
lookup of one row a few dozen in all, so steps tell a scan from an index use without parsing a
query plan.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
# Steps between two calls of the progress handler: a call costs about a microsecond, a scan
# of 100,000 documents takes ~900,000 steps, so measuring adds well under 1%.
STEP_GRAIN = 1000


class ReadCost:
    """The reads made under one probe: seconds they ran, steps they took (a multiple of STEP_GRAIN), count."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self.reads = 0
        self.count_steps = True  # see time_only()
        self._lock = threading.Lock()  # two reads of one probe may run in two reader threads

    @property
    def ms(self) -> float:
        """Milliseconds the reads ran."""
        return self.seconds * 1000

    def add(self, seconds: float, steps: int) -> None:
        """Count one finished read."""
        with self._lock:
            self.seconds += seconds
            self.steps += steps
            self.reads += 1


_CURRENT: ContextVar[ReadCost | None] = ContextVar("sblite_read_probe", default=None)


@contextmanager
def probe() -> Iterator[ReadCost]:
    """Measure the reads awaited inside the block."""
    cost = ReadCost()
    token = _CURRENT.set(cost)
    try:
        yield cost
    finally:
        _CURRENT.reset(token)


def current_cost() -> ReadCost | None:
    """The cost of the probe the current task is in, if any."""
    return _CURRENT.get()


def time_only() -> None:
    """Time the reads still to come in the current probe (if any) without counting their steps.

    The progress handler is Python: each call needs the GIL, and while the event loop holds it
    the reader waits. A read through a field index is short, so those waits were most of it:
    with counting, the indexed range of the query benchmark answered 242/s, without it 354/s.
    """
    cost = _CURRENT.get()
    if cost is not None:
        cost.count_steps = False


def measured(fn: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """`fn` itself outside a probe; inside one, `fn` timed and its steps counted (Database.read calls this)."""
    cost = _CURRENT.get()
    if cost is None:
        return fn
    if not cost.count_steps:
        def timed(conn: sqlite3.Connection) -> T:
            started = time.perf_counter()
            try:
                return fn(conn)
            finally:
                cost.add(time.perf_counter() - started, 0)

        return timed

    def run(conn: sqlite3.Connection) -> T:
        ticks = 0

        def tick() -> int:
            nonlocal ticks
            ticks += 1
            return 0  # 0: carry on

        conn.set_progress_handler(tick, STEP_GRAIN)
        started = time.perf_counter()
        try:
            return fn(conn)
        finally:
            cost.add(time.perf_counter() - started, ticks * STEP_GRAIN)
            conn.set_progress_handler(None, 0)

    return run
