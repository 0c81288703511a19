"""Checkpoints: moving committed pages from the WAL into the database file, in a thread of its own.

SQLite normally checkpoints inside the commit that pushes the WAL past 1,000 pages, and that
commit (with every write queued behind it) waits for the copy and its fsync: tens of
milliseconds on a small VPS. Here the writer never checkpoints; this thread does, on its own
connection, with PASSIVE checkpoints that never block the writer or the readers.

PASSIVE is also what Litestream needs (README "Backups"): it never copies past the oldest reader,
so it cannot move past the read transaction Litestream holds open. A RESTART or TRUNCATE
checkpoint would hold the write lock while waiting for that reader, and every write would wait
(tests/test_litestream.py stalls that way).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 0.5


class Checkpointer:
    """Checkpoints the WAL every `interval` seconds while commits happen."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], interval: float = INTERVAL_SECONDS) -> None:
        self._connect = connect
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = False
        self._dirty = False  # set by the writer's commits, cleared here
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="sblite-checkpointer", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Note a commit (called by the writer): there is something to checkpoint."""
        self._dirty = True

    def stop(self) -> None:
        """Stop after one last checkpoint and close the connection (blocks until done)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        conn = self._connect()
        try:
            while not self._stopping:
                self._wake.wait(self._interval)
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        if not self._dirty:
            return
        self._dirty = False
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # the next round tries again; SQLite keeps the WAL until then
            self._dirty = True
            log.exception("WAL checkpoint failed")
