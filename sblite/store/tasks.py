"""Scheduled tasks, their runs, and the claims that make each instant run once.

A run row with an `instant` is the claim of that instant: (task_id, instant) is unique, and
the write that inserts it also moves the task's `next_run` on, conditionally on the value the
scheduler read. So a crash at any moment leaves either both (the instant is claimed, its
effects in the same write) or neither (it is still due); it can never run twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sblite.jsonutil import dumps_stored, loads
from sblite.store.accounts import Duplicate
from sblite.store.database import Database

T = TypeVar("T")
OPEN_STATUSES = ("queued", "running")
Extra = Callable[[sqlite3.Connection], T]  # more rows for the same write (messages, jobs); touches only the conn


class Stale(Exception):
    """The task moved on (or went) since the scheduler read it: nothing was written."""


@dataclass(frozen=True)
class TaskRecord:
    """A stored task."""

    id: str
    app_id: str
    name: str
    type: str
    value: str
    meta: dict[str, Any]
    interval: str | None
    at: float | None
    timezone: str
    enabled: bool
    paused_note: str | None
    overlap: str
    catchup: str
    catchup_window: float
    keep_runs: int
    keep_days: float
    identity: dict[str, Any]
    last_run: float | None
    next_run: float | None
    created: str
    updated: str


@dataclass(frozen=True)
class TaskRun:
    """One run of a task (or an instant it skipped or missed)."""

    id: str
    task_id: str
    app_id: str
    instant: float | None  # the claimed instant; None for a run started by hand
    scheduled_for: float
    trigger: str  # schedule | catchup | manual
    status: str  # queued | running | ok | failed | skipped | missed
    created: float
    started: float | None = None
    finished: float | None = None
    output: list[str] = field(default_factory=list)
    error: str | None = None
    job_id: str | None = None
    function_run_id: str | None = None
    seq: int = 0


@dataclass(frozen=True)
class Claim:
    """What one firing of a task writes: its new runs and where its schedule goes next."""

    task_id: str
    runs: Sequence[TaskRun]
    expected_next_run: float | None = None
    next_run: float | None = None
    last_run: float | None = None
    move_schedule: bool = True  # False: a run started by hand, the schedule stays
    keep_runs: int = 100
    keep_after: float = 0.0  # runs created before this are dropped


@dataclass(frozen=True)
class Finish:
    """The end of a run."""

    run_id: str
    task_id: str
    status: str
    finished: float
    output: list[str]
    error: str | None
    function_run_id: str | None = None
    keep_runs: int = 100
    keep_after: float = 0.0


@dataclass(frozen=True)
class OpenRun:
    """A run left queued or running by a previous process, with what became of its function job."""

    run: TaskRun
    job_status: str | None  # queued, parked, or None when the job is gone
    job_error: str | None
    function_run_id: str | None  # when the job is gone: the function's successful run for it, if any


_TASK_COLUMNS = tuple(TaskRecord.__dataclass_fields__)
_RUN_COLUMNS = tuple(name for name in TaskRun.__dataclass_fields__ if name != "seq")


def _task(row: sqlite3.Row) -> TaskRecord:
    values = {name: row[name] for name in _TASK_COLUMNS}
    values.update(meta=loads(row["meta"]), identity=loads(row["identity"]), enabled=bool(row["enabled"]))
    return TaskRecord(**values)


def _run(row: sqlite3.Row) -> TaskRun:
    values = {name: row[name] for name in (*_RUN_COLUMNS, "seq")}
    values["output"] = loads(row["output"])
    return TaskRun(**values)


def _task_row(task: TaskRecord) -> tuple[Any, ...]:
    values = {name: getattr(task, name) for name in _TASK_COLUMNS}
    values.update(meta=dumps_stored(task.meta), identity=dumps_stored(task.identity), enabled=int(task.enabled))
    return tuple(values[name] for name in _TASK_COLUMNS)


def _run_row(run: TaskRun) -> tuple[Any, ...]:
    return tuple(dumps_stored(run.output) if name == "output" else getattr(run, name) for name in _RUN_COLUMNS)


def _trim(conn: sqlite3.Connection, task_id: str, keep: int, keep_after: float) -> None:
    """Drop a task's finished runs past its newest `keep` or created before `keep_after`."""
    conn.execute(
        "DELETE FROM task_runs WHERE task_id = ? AND status NOT IN ('queued', 'running') AND (created < ? OR seq <= "
        "(SELECT seq FROM task_runs WHERE task_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?))",
        (task_id, keep_after, task_id, keep))


class TaskStore:
    """Queries over the task tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- tasks

    async def all_tasks(self) -> list[TaskRecord]:
        """Every task of every app."""
        rows = await self._db.read(lambda c: c.execute("SELECT * FROM tasks ORDER BY seq").fetchall())
        return [_task(row) for row in rows]

    async def task(self, task_id: str) -> TaskRecord | None:
        """One task, as stored now."""
        row = await self._db.read(lambda c: c.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone())
        return None if row is None else _task(row)

    async def insert(self, task: TaskRecord) -> None:
        """Add a task; Duplicate if the app has one of that name."""
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(f"INSERT INTO tasks ({', '.join(_TASK_COLUMNS)}) "
                             f"VALUES ({', '.join('?' * len(_TASK_COLUMNS))})", _task_row(task))
            except sqlite3.IntegrityError:
                raise Duplicate(f"a task named {task.name} exists already") from None

        await self._db.write(run)

    async def replace(self, task: TaskRecord) -> None:
        """Store a task's new definition and schedule; Duplicate if renamed onto another's name."""
        columns = [name for name in _TASK_COLUMNS if name not in ("id", "app_id", "created")]
        row = dict(zip(_TASK_COLUMNS, _task_row(task), strict=True))

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(f"UPDATE tasks SET {', '.join(f'{name} = ?' for name in columns)} WHERE id = ?",
                             (*(row[name] for name in columns), task.id))
            except sqlite3.IntegrityError:
                raise Duplicate(f"a task named {task.name} exists already") from None

        await self._db.write(run)

    async def delete(self, task_id: str) -> None:
        """Delete a task and its runs."""
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
            conn.execute("DELETE FROM task_runs WHERE task_id = ?", (task_id,))

        await self._db.write(run)

    # --- claims and runs

    async def claim(self, claim: Claim, extra: Extra[T] | None = None) -> T | None:
        """Write a firing's runs and move the schedule on, with `extra` rows, in one transaction.

        Stale if the task's next_run is no longer `expected_next_run` or an instant was claimed already.
        """
        def run(conn: sqlite3.Connection) -> T | None:
            if claim.move_schedule:
                moved = conn.execute(
                    "UPDATE tasks SET next_run = ?, last_run = COALESCE(?, last_run) WHERE id = ? AND next_run IS ?",
                    (claim.next_run, claim.last_run, claim.task_id, claim.expected_next_run))
            else:
                moved = conn.execute("UPDATE tasks SET last_run = COALESCE(?, last_run) WHERE id = ?",
                                     (claim.last_run, claim.task_id))
            if moved.rowcount != 1:
                raise Stale(claim.task_id)
            try:
                conn.executemany(f"INSERT INTO task_runs ({', '.join(_RUN_COLUMNS)}) "
                                 f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
                                 [_run_row(r) for r in claim.runs])
            except sqlite3.IntegrityError:
                raise Stale(claim.task_id) from None
            _trim(conn, claim.task_id, claim.keep_runs, claim.keep_after)
            return extra(conn) if extra is not None else None

        return await self._db.write(run)

    async def finish(self, finish: Finish, extra: Extra[T] | None = None) -> tuple[bool, T | None]:
        """End a run that is still open, with `extra` rows in the same write; whether it was open."""
        def run(conn: sqlite3.Connection) -> tuple[bool, T | None]:
            ended = conn.execute(
                "UPDATE task_runs SET status = ?, finished = ?, output = ?, error = ?, "
                "function_run_id = COALESCE(?, function_run_id) WHERE id = ? AND status IN ('queued', 'running')",
                (finish.status, finish.finished, dumps_stored(finish.output), finish.error, finish.function_run_id,
                 finish.run_id)).rowcount == 1
            if not ended:
                return False, None
            _trim(conn, finish.task_id, finish.keep_runs, finish.keep_after)
            return True, extra(conn) if extra is not None else None

        return await self._db.write(run)

    async def start_queued(self, run_id: str, started: float, job_id: str | None,
                           extra: Extra[T] | None = None) -> bool:
        """Mark a queued run running (with its function job), with `extra` rows; whether it was queued."""
        def run(conn: sqlite3.Connection) -> bool:
            if conn.execute("UPDATE task_runs SET status = 'running', started = ?, job_id = COALESCE(?, job_id) "
                            "WHERE id = ? AND status = 'queued'", (started, job_id, run_id)).rowcount != 1:
                return False
            if extra is not None:
                extra(conn)
            return True

        return await self._db.write(run)

    async def runs(self, task_id: str, limit: int) -> list[TaskRun]:
        """A task's newest runs, newest first."""
        rows = await self._db.read(lambda c: c.execute(
            "SELECT * FROM task_runs WHERE task_id = ? ORDER BY seq DESC LIMIT ?", (task_id, limit)).fetchall())
        return [_run(row) for row in rows]

    async def run(self, run_id: str) -> TaskRun | None:
        """One run."""
        row = await self._db.read(lambda c: c.execute("SELECT * FROM task_runs WHERE id = ?", (run_id,)).fetchone())
        return None if row is None else _run(row)

    async def open_runs(self) -> list[OpenRun]:
        """Runs a previous process left queued or running, oldest first, with their function jobs' fate."""
        def read(conn: sqlite3.Connection) -> list[OpenRun]:
            rows = conn.execute(
                "SELECT r.*, j.status AS job_status, j.last_error AS job_error FROM task_runs r "
                "LEFT JOIN function_jobs j ON j.id = r.job_id WHERE r.status IN ('queued', 'running') "
                "ORDER BY r.seq").fetchall()
            found = []
            for row in rows:
                succeeded = None
                if row["job_id"] is not None and row["job_status"] is None:
                    hit = conn.execute("SELECT id FROM function_runs WHERE message_id = ? AND success = 1 "
                                       "ORDER BY seq DESC LIMIT 1", (row["id"],)).fetchone()
                    succeeded = None if hit is None else hit[0]
                found.append(OpenRun(run=_run(row), job_status=row["job_status"], job_error=row["job_error"],
                                     function_run_id=succeeded))
            return found

        return await self._db.read(read)
