"""Quick reads on the event loop, long ones on a reader thread (store/quick_reads.py), on a real SQLite file."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from sblite.store.probe import probe
from sblite.store.quick_reads import QUICK_STEPS, NotQuick, QuickReads

# A count to n by a recursive CTE: a few steps a row, so n sets how long a read is.
COUNT_TO = ("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
            "SELECT COUNT(*) FROM c")
LONG = 100_000  # far past QUICK_STEPS
SHORT = 100  # about 1,700 steps: within QUICK_STEPS, past a few calls of the progress handler


class Recorder:
    """A read counting to `n`, recording the thread of each run."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.threads: list[int] = []

    def __call__(self, conn: sqlite3.Connection) -> int:
        self.threads.append(threading.get_ident())
        return int(conn.execute(COUNT_TO, (self.n,)).fetchone()[0])


async def test_a_quick_read_runs_once_on_the_loop_thread(db):
    read = Recorder(SHORT)
    assert await db.read(read) == SHORT
    assert read.threads == [threading.get_ident()]


async def test_a_long_read_moves_to_a_reader_thread_and_its_shape_goes_there_at_once(db):
    read = Recorder(LONG)
    assert await db.read(read, shape="long") == LONG
    loop_thread = threading.get_ident()
    assert read.threads[0] == loop_thread and len(read.threads) == 2 and read.threads[1] != loop_thread
    again = Recorder(LONG)
    assert await db.read(again, shape="long") == LONG
    assert len(again.threads) == 1 and again.threads[0] != loop_thread


async def test_shapes_of_one_call_site_are_told_apart(db):
    assert await db.read(Recorder(LONG), shape=("count", "big")) == LONG
    short = Recorder(SHORT)
    assert await db.read(short, shape=("count", "small")) == SHORT
    assert short.threads == [threading.get_ident()]


async def test_without_a_shape_the_call_site_is_the_shape(db):
    def count(n: int) -> Recorder:  # one call site for every read it makes
        return Recorder(n)

    async def read(n: int) -> list[int]:
        recorder = count(n)
        await db.read(lambda conn: recorder(conn))
        return recorder.threads

    assert len(await read(LONG)) == 2
    assert await read(SHORT) != [threading.get_ident()]  # that site was long once: a reader thread now


async def test_an_error_is_raised_once_and_not_retried(db):
    calls: list[int] = []

    def broken(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("SELECT * FROM no_such_table")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await db.read(broken)
    assert len(calls) == 1


async def test_an_interrupted_read_in_a_transaction_leaves_none_open(db):
    def in_transaction(conn: sqlite3.Connection) -> int:
        conn.execute("BEGIN")
        count = int(conn.execute(COUNT_TO, (LONG,)).fetchone()[0])  # interrupted on the loop: no COMMIT
        conn.execute("COMMIT")
        return count

    assert await db.read(in_transaction) == LONG
    assert await db.read(lambda conn: (conn.execute("BEGIN"), conn.execute("COMMIT"), conn.in_transaction)[2]) \
        is False


async def test_a_read_that_swallows_the_interruption_is_run_again_in_full(db):
    def forgiving(conn: sqlite3.Connection) -> int | None:
        try:
            return int(conn.execute(COUNT_TO, (LONG,)).fetchone()[0])
        except sqlite3.OperationalError:
            return None  # a partial answer the loop must not return

    assert await db.read(forgiving) == LONG


async def test_a_quick_read_counts_its_steps_and_time_in_a_probe(db):
    with probe() as cost:
        await db.read(Recorder(SHORT))
    assert cost.reads == 1 and 0 < cost.steps < QUICK_STEPS and cost.seconds > 0


def test_a_locked_file_sends_the_read_to_a_reader_thread(tmp_path):
    path = str(tmp_path / "locked.db")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE t (x)")
    setup.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")  # with no other connection open: readers get SQLITE_BUSY
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 0")
        return conn

    quick = QuickReads(connect)
    try:
        with pytest.raises(NotQuick):
            quick.run(lambda conn: conn.execute("SELECT COUNT(*) FROM t").fetchone(), "count")
        holder.execute("COMMIT")
        holder.close()
        # not remembered as long: the next read of that shape runs on the loop's connection
        assert quick.run(lambda conn: conn.execute("SELECT COUNT(*) FROM t").fetchone()[0], "count") == 1
    finally:
        quick.close()


async def test_the_loops_connection_sees_each_write_once_committed(db):
    async def put(key: str) -> None:
        await db.write(lambda conn: conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)", (key, key)))

    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM settings WHERE key LIKE 'seen-%'").fetchone()[0])

    await put("seen-1")
    await put("seen-2")
    # a read that leaves rows unread must not keep its snapshot for the reads after it
    assert await db.read(lambda conn: conn.execute("SELECT key FROM settings WHERE key LIKE 'seen-%'").fetchone())
    await put("seen-3")
    assert await db.read(count) == 3
