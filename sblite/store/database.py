"""The SQLite file: one writer thread with group commit, quick reads on the event loop, and a pool of reader threads.

Writes are plain functions `fn(conn) -> result`. They queue up while the writer is busy and
the next batch runs in ONE transaction (one commit for many writes); a failing write rolls
back alone. WAL checkpoints happen in a thread of their own (checkpointer.py). Reads are
functions too: a short one runs on the event loop's connection, a longer one on a reader thread
(quick_reads.py). Readers use their own connections, so a reader never waits for the writer
(WAL) and no caller ever sees SQLITE_BUSY.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from collections.abc import Callable, Hashable

from sblite.store.checkpointer import Checkpointer
from sblite.store.upgrade import copy_before_migrating, remove_upgrade_copies
from sblite.store.migrations import migrate
from sblite.store.probe import measured
from sblite.store.quick_reads import NotQuick, QuickReads

T = TypeVar("T")
MAX_BATCH = 256
BUSY_TIMEOUT_MS = 30_000


class DatabaseClosed(RuntimeError):
    """The database was used after close()."""


@dataclass
class _PendingWrite:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


# What the writer thread takes from its queue: a write for the next batch, a job to run
# alone (open, close), or None to stop.
_WriterItem = _PendingWrite | Callable[[], None] | None


def connect(path: str) -> sqlite3.Connection:
    """Open a connection with the pragmas every connection needs."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class Database:
    """One SQLite file opened for serialized writes and concurrent reads."""

    def __init__(self, path: str | Path, read_connections: int = 4) -> None:
        self.path = str(path)
        self._readers = read_connections
        self._read_pool: ThreadPoolExecutor | None = None
        # The writer thread takes writes (and the odd job) from this queue itself: every write
        # waiting when it comes round goes into one batch, and one callback settles the batch.
        self._write_jobs: queue.SimpleQueue[_WriterItem] = queue.SimpleQueue()
        self._write_thread: threading.Thread | None = None
        self._writer: sqlite3.Connection | None = None
        self._checkpointer: Checkpointer | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._quick = QuickReads(self._quick_connection)
        self._closed = False
        # The copy made before this open migrated the file (upgrade.py), if it did.
        self.upgrade_copy: Path | None = None

    async def open(self) -> None:
        """Create the file if needed, switch to WAL and run migrations."""
        self._write_thread = threading.Thread(target=self._serve_writes, name="sblite-writer", daemon=True)
        self._write_thread.start()
        self._read_pool = ThreadPoolExecutor(self._readers, thread_name_prefix="sblite-reader")
        await self._in_writer(self._open_writer)

    def _serve_writes(self) -> None:
        item = self._write_jobs.get()
        while item is not None:
            if not isinstance(item, _PendingWrite):
                item()
                item = self._write_jobs.get()
                continue
            batch: list[_PendingWrite] = [item]
            following = self._next_write(batch)
            try:
                outcomes = self._run_batch(batch)
            except BaseException as exc:  # the commit itself failed: every write in it failed
                outcomes = [(False, exc)] * len(batch)
            batch[0].loop.call_soon_threadsafe(_settle_batch, batch, outcomes)
            item = self._write_jobs.get() if isinstance(following, _NothingWaiting) else following

    def _next_write(self, batch: list[_PendingWrite]) -> _WriterItem | _NothingWaiting:
        """Add the writes already queued to `batch`; the first item that is not one (or nothing)."""
        while len(batch) < MAX_BATCH:
            try:
                item = self._write_jobs.get_nowait()
            except queue.Empty:
                return _NOTHING_WAITING
            if not isinstance(item, _PendingWrite):
                return item
            batch.append(item)
        return _NOTHING_WAITING

    async def _in_writer(self, fn: Callable[[], T]) -> T:
        """Run `fn()` in the writer thread and return its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def job() -> None:
            try:
                outcome: tuple[bool, Any] = (True, fn())
            except BaseException as exc:  # handed to the awaiting coroutine
                outcome = (False, exc)
            loop.call_soon_threadsafe(_settle, future, outcome)

        self._write_jobs.put(job)
        return await future

    def _open_writer(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        conn.execute("PRAGMA journal_mode = WAL")
        self.upgrade_copy = copy_before_migrating(conn, self.path)
        migrate(conn)
        self._writer = conn
        if self.path != ":memory:":
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer's thread does it
            self._checkpointer = Checkpointer(lambda: connect(self.path))
            self._checkpointer.start()

    async def close(self) -> None:
        """Finish queued writes, then close every connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._quick.close()
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=True)
            for conn in self._reader_conns:
                conn.close()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
        if self._write_thread is not None:  # the writes queued before this job run first
            await self._in_writer(self._close_writer)
            self._write_jobs.put(None)
            self._write_thread = None

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.execute("PRAGMA optimize")
            self._writer.close()
            self._writer = None

    async def read(self, fn: Callable[[sqlite3.Connection], T], shape: Hashable | None = None) -> T:
        """Run `fn(conn)` on a reader connection and return its result.

        `fn` may run twice, its first run interrupted (quick_reads.py): it must only read. `shape`
        tells reads of one call site apart whose lengths differ (by default the code of `fn`).
        """
        if self._closed or self._read_pool is None:
            raise DatabaseClosed("the database is closed")
        try:
            return self._quick.run(fn, getattr(fn, "__code__", fn) if shape is None else shape)
        except NotQuick:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._read_pool, self._run_read, measured(fn))  # measured: probe.py

    def _quick_connection(self) -> sqlite3.Connection:
        conn = connect(self.path)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA busy_timeout = 0")  # a locked file sends the read to a reader thread
        return conn

    def _run_read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return fn(conn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in the next committed batch and return its result once durable.

        `fn` may run more than once: when another write of its batch fails, the batch is rolled
        back and run again with a savepoint per write. So `fn` must touch only `conn` (no list
        appended to, no counter bumped, no callback into the event loop); what is to happen
        after the commit belongs in its result, or with the caller once this returns.
        """
        return await self.submit(fn)

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue `fn(conn)` for the next batch; the future holds its result once committed.

        The write runs even if the future is cancelled (only its result is lost then); like
        `write`, it may run more than once, so it must touch only `conn`.
        """
        if self._closed or self._write_thread is None:
            raise DatabaseClosed("the database is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._write_jobs.put(_PendingWrite(fn, future, loop))
        return future

    def _run_batch(self, batch: list[_PendingWrite]) -> list[tuple[bool, Any]]:
        conn = self._writer
        assert conn is not None
        # Writes rarely fail, so a batch first runs without a savepoint per write (half the
        # statements); if one fails, the batch is rolled back and run again with savepoints,
        # so only the failing write fails. Writes touch only the connection (`write`'s
        # contract), so running one twice leaves no trace of the first time.
        results, failure = self._run_all_or_nothing(conn, batch)
        if failure is None:
            return [(True, value) for value in results]
        if len(batch) == 1:
            return [(False, failure)]
        return self._run_with_savepoints(conn, batch)

    def _run_all_or_nothing(self, conn: sqlite3.Connection,
                            batch: list[_PendingWrite]) -> tuple[list[Any], Exception | None]:
        """Run every write in one transaction: (their results, None), or ([], the first error) rolled back."""
        results: list[Any] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for pending in batch:
                results.append(pending.fn(conn))
        except Exception as exc:
            conn.execute("ROLLBACK")
            return [], exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._committed()
        return results, None

    def _run_with_savepoints(self, conn: sqlite3.Connection, batch: list[_PendingWrite]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for pending in batch:
                conn.execute("SAVEPOINT write_op")
                try:
                    outcomes.append((True, pending.fn(conn)))
                    conn.execute("RELEASE write_op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO write_op")
                    conn.execute("RELEASE write_op")
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._committed()
        return outcomes

    def _committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.committed()

    async def started(self) -> list[Path]:
        """The server started on this file: unless this open migrated it, remove earlier pre-migration copies."""
        if self.path == ":memory:" or self.upgrade_copy is not None:
            return []
        return await asyncio.to_thread(remove_upgrade_copies, self.path, None)

    async def backup_to(self, target: str | Path) -> None:
        """Copy the whole database to `target` with SQLite's online backup API."""
        def run(conn: sqlite3.Connection) -> None:
            dest = sqlite3.connect(str(target))
            try:
                conn.backup(dest)
            finally:
                dest.close()

        await self.read(run)


class _NothingWaiting:
    """What `_next_write` answers when the queue was empty."""


_NOTHING_WAITING = _NothingWaiting()


def _settle_batch(batch: list[_PendingWrite], outcomes: list[tuple[bool, Any]]) -> None:
    for pending, outcome in zip(batch, outcomes, strict=True):
        _settle(pending.future, outcome)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():  # its awaiter was cancelled
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
