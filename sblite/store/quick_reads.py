"""Reads short enough to run on the event loop itself, instead of on a reader thread.

Handing a read to a reader thread and back costs about 150 µs of CPU (the pool's queue, the
future, waking the loop, the GIL changing hands twice), while a read by key or through an
index takes 10-60 µs of SQLite. So a read starts on the loop's own connection under a progress
handler. Past QUICK_STEPS virtual-machine steps, about what the hand-over costs, the handler
interrupts it: it is rolled back and run again on a reader thread, and reads of its shape (the
caller's key, else the code of the function) go straight to a reader thread from then on. So the
loop is held for at most one budget per shape, and a scan costs one budget once. A read that
finds the file locked goes to a reader thread too: the loop's connection never waits for a lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Hashable
from typing import TypeVar

from sblite.store.probe import current_cost

T = TypeVar("T")
QUICK_STEPS = 4000
_GRAIN = 500  # steps between two calls of the progress handler
_SHAPES_KEPT = 1024  # shapes known to be long, the oldest forgotten first
_LOCKED = frozenset((sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED))


class NotQuick(Exception):
    """The read is to run on a reader thread."""


class QuickReads:
    """The event loop's read connection, and the shapes of the reads that were too long for it."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], steps: int = QUICK_STEPS) -> None:
        self._connect = connect
        self._conn: sqlite3.Connection | None = None
        self._ticks = max(1, steps // _GRAIN)
        self._long: dict[Hashable, None] = {}  # an ordered set

    def run(self, fn: Callable[[sqlite3.Connection], T], shape: Hashable) -> T:
        """`fn(conn)` on the loop's connection; raises NotQuick when it must run on a reader thread instead."""
        if shape in self._long:
            raise NotQuick
        conn = self._connection()
        ticks = 0

        def tick() -> int:
            nonlocal ticks
            ticks += 1
            return int(ticks > self._ticks)  # non-zero interrupts the statement

        conn.set_progress_handler(tick, _GRAIN)
        started = time.perf_counter()
        try:
            result = fn(conn)
        except sqlite3.OperationalError as exc:
            if ticks > self._ticks:
                raise self._too_long(shape) from None
            if exc.sqlite_errorcode & 0xFF in _LOCKED:
                raise NotQuick from None
            raise
        finally:
            conn.set_progress_handler(None, 0)
            if conn.in_transaction:  # an interrupted read left its transaction open
                conn.execute("ROLLBACK")
        if ticks > self._ticks:  # interrupted, and `fn` caught the error itself
            raise self._too_long(shape)
        cost = current_cost()
        if cost is not None:
            cost.add(time.perf_counter() - started, ticks * _GRAIN if cost.count_steps else 0)
        return result

    def close(self) -> None:
        """Close the loop's connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _too_long(self, shape: Hashable) -> NotQuick:
        if len(self._long) >= _SHAPES_KEPT:
            del self._long[next(iter(self._long))]
        self._long[shape] = None
        return NotQuick()
