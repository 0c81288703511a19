"""Functions, their runs, the durable job queue, per-app secrets and the key-value cache."""

from __future__ import annotations

import asyncio

import sqlite3
from dataclasses import dataclass
from collections.abc import Collection
from typing import Any

from sblite.errors import BadRequest
from sblite.jsonutil import dumps_stored, loads
from sblite.store.accounts import Duplicate
from sblite.store.database import Database


@dataclass(frozen=True)
class FunctionRecord:
    """A stored function."""

    id: str
    app_id: str
    name: str
    trigger: str
    code: str
    version: int
    created: str
    updated: str
    last_run: str | None


@dataclass(frozen=True)
class RunRecord:
    """One recorded run of a function."""

    id: str
    function_id: str
    version: int
    trigger: str
    message_id: str | None
    started: str
    completed: str
    duration_ms: float
    success: bool
    output: list[str]
    error: str | None


@dataclass(frozen=True)
class Job:
    """A message waiting to run a function (durable: survives restarts)."""

    id: str
    app_id: str
    function_id: str
    message: dict[str, Any]
    identity: dict[str, Any] | None
    attempts: int
    next_at: float
    status: str
    last_error: str | None
    seq: int = 0  # its place in the queue (0 until it has been read back from SQLite)


def _function(row: sqlite3.Row) -> FunctionRecord:
    return FunctionRecord(**{k: row[k] for k in FunctionRecord.__dataclass_fields__})


def _run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(id=row["id"], function_id=row["function_id"], version=row["version"], trigger=row["trigger"],
                     message_id=row["message_id"], started=row["started"], completed=row["completed"],
                     duration_ms=row["duration_ms"], success=bool(row["success"]), output=loads(row["output"]),
                     error=row["error"])


def _job(row: sqlite3.Row) -> Job:
    return Job(id=row["id"], app_id=row["app_id"], function_id=row["function_id"], message=loads(row["message"]),
               identity=loads(row["identity"]) if row["identity"] else None, attempts=row["attempts"],
               next_at=row["next_at"], status=row["status"], last_error=row["last_error"], seq=row["seq"])


class FunctionStore:
    """Queries over the function tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- functions

    async def all_functions(self) -> list[FunctionRecord]:
        """Every function of every app."""
        rows = await self._db.read(lambda c: c.execute("SELECT * FROM functions ORDER BY created").fetchall())
        return [_function(row) for row in rows]

    async def insert(self, record: FunctionRecord) -> None:
        """Add a function; Duplicate if the app has one of that name."""
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO functions (id, app_id, name, trigger, code, version, created, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.app_id, record.name, record.trigger, record.code, record.version,
                     record.created, record.updated))
            except sqlite3.IntegrityError:
                raise Duplicate(f"a function named {record.name} exists already") from None

        await self._db.write(run)

    async def replace(self, record: FunctionRecord) -> None:
        """Store a function's new code, trigger and version."""
        await self._db.write(lambda c: c.execute(
            "UPDATE functions SET trigger = ?, code = ?, version = ?, updated = ? WHERE id = ?",
            (record.trigger, record.code, record.version, record.updated, record.id)))

    async def delete(self, function_id: str) -> None:
        """Delete a function with its runs and queued jobs."""
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM functions WHERE id = ?", (function_id,))
            conn.execute("DELETE FROM function_runs WHERE function_id = ?", (function_id,))
            conn.execute("DELETE FROM function_jobs WHERE function_id = ?", (function_id,))

        await self._db.write(run)

    # --- runs

    async def record_runs(self, runs: list[tuple[str, RunRecord, str | None]], keep: int) -> None:
        """Store runs `(app_id, run, finished job id)`, keep each function's newest `keep`, finish the jobs."""
        rows = [(run.id, app_id, run.function_id, run.version, run.trigger, run.message_id, run.started,
                 run.completed, run.duration_ms, int(run.success), dumps_stored(run.output), run.error)
                for app_id, run, _ in runs]
        last_run = {run.function_id: run.completed for _, run, _ in runs}
        jobs = [(job_id,) for _, _, job_id in runs if job_id is not None]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO function_runs (id, app_id, function_id, version, trigger, message_id, started, "
                "completed, duration_ms, success, output, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            for function_id, completed in last_run.items():
                conn.execute(
                    "DELETE FROM function_runs WHERE function_id = ? AND seq <= (SELECT seq FROM function_runs "
                    "WHERE function_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)", (function_id, function_id, keep))
                conn.execute("UPDATE functions SET last_run = ? WHERE id = ?", (completed, function_id))
            conn.executemany("DELETE FROM function_jobs WHERE id = ?", jobs)

        await self._db.write(write)

    async def runs(self, function_id: str, limit: int) -> list[RunRecord]:
        """A function's newest runs, newest first."""
        rows = await self._db.read(lambda c: c.execute(
            "SELECT * FROM function_runs WHERE function_id = ? ORDER BY seq DESC LIMIT ?",
            (function_id, limit)).fetchall())
        return [_run(row) for row in rows]

    async def app_runs(self, app_id: str, function_id: str | None, failed_only: bool, limit: int) -> list[RunRecord]:
        """An app's newest runs, optionally of one function and only failures."""
        sql = "SELECT * FROM function_runs WHERE app_id = ?"
        params: list[Any] = [app_id]
        if function_id is not None:
            sql += " AND function_id = ?"
            params.append(function_id)
        if failed_only:
            sql += " AND success = 0"
        rows = await self._db.read(lambda c: c.execute(sql + " ORDER BY seq DESC LIMIT ?", (*params, limit)).fetchall())
        return [_run(row) for row in rows]

    # --- jobs

    def enqueue(self, jobs: list[Job], now_text: str) -> asyncio.Future[None]:
        """Queue jobs durably; the future is done once they are committed."""
        return self._db.submit(lambda conn: self.enqueue_in(conn, jobs, now_text))

    @staticmethod
    def enqueue_in(conn: sqlite3.Connection, jobs: list[Job], now_text: str) -> None:
        """Queue jobs inside a write that is under way (they commit or fail with it)."""
        rows = [(j.id, j.app_id, j.function_id, dumps_stored(j.message),
                 dumps_stored(j.identity) if j.identity else None, j.next_at, now_text) for j in jobs]
        conn.executemany(
            "INSERT INTO function_jobs (id, app_id, function_id, message, identity, next_at, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    async def due_jobs(self, now: float, limit: int, skip: Collection[str] = ()) -> list[Job]:
        """Queued jobs whose time has come, oldest first, at most `limit`, leaving out the ids in `skip`."""
        skipped = dumps_stored(list(skip))
        rows = await self._db.read(lambda c: c.execute(
            "SELECT * FROM function_jobs WHERE status = 'queued' AND next_at <= ? "
            "AND id NOT IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?", (now, skipped, limit)).fetchall())
        return [_job(row) for row in rows]

    async def next_due(self, after: float) -> float | None:
        """When the earliest queued job not yet due at `after` is due (None if there is none)."""
        return await self._db.read(lambda c: c.execute(
            "SELECT MIN(next_at) FROM function_jobs WHERE status = 'queued' AND next_at > ?", (after,)).fetchone()[0])

    async def jobs(self, app_id: str, status: str, limit: int) -> list[Job]:
        """An app's jobs of one status, oldest first."""
        rows = await self._db.read(lambda c: c.execute(
            "SELECT * FROM function_jobs WHERE app_id = ? AND status = ? ORDER BY seq LIMIT ?",
            (app_id, status, limit)).fetchall())
        return [_job(row) for row in rows]

    async def reschedule(self, job_id: str, attempts: int, next_at: float, error: str, park: bool) -> None:
        """Record a failed attempt: try again at `next_at`, or park the job."""
        await self._db.write(lambda c: c.execute(
            "UPDATE function_jobs SET attempts = ?, next_at = ?, last_error = ?, status = ? WHERE id = ?",
            (attempts, next_at, error, "parked" if park else "queued", job_id)))

    async def requeue(self, app_id: str, job_id: str, next_at: float) -> Job | None:
        """Put a parked job back in the queue; the job, or None if there is no such parked job."""
        def run(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute("UPDATE function_jobs SET status = 'queued', attempts = 0, next_at = ? "
                               "WHERE id = ? AND app_id = ? AND status = 'parked' RETURNING *",
                               (next_at, job_id, app_id)).fetchone()
            return None if row is None else _job(row)

        return await self._db.write(run)

    # --- secrets

    async def secrets(self, app_id: str) -> dict[str, str]:
        """An app's secrets."""
        rows = await self._db.read(lambda c: c.execute(
            "SELECT name, value FROM function_secrets WHERE app_id = ? ORDER BY name", (app_id,)).fetchall())
        return {row[0]: row[1] for row in rows}

    async def set_secret(self, app_id: str, name: str, value: str, now: str) -> None:
        """Create or replace a secret."""
        await self._db.write(lambda c: c.execute(
            "INSERT INTO function_secrets (app_id, name, value, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (app_id, name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (app_id, name, value, now)))

    async def delete_secret(self, app_id: str, name: str) -> bool:
        """Delete a secret; whether it existed."""
        return await self._db.write(lambda c: c.execute(
            "DELETE FROM function_secrets WHERE app_id = ? AND name = ?", (app_id, name)).rowcount == 1)

    # --- cache

    async def cache_get(self, app_id: str, key: str) -> str | None:
        """A cached value."""
        row = await self._db.read(lambda c: c.execute(
            "SELECT value FROM cache WHERE app_id = ? AND key = ?", (app_id, key)).fetchone())
        return None if row is None else row[0]

    async def cache_set(self, app_id: str, key: str, value: str) -> None:
        """Set a cached value."""
        await self._db.write(lambda c: c.execute(
            "INSERT INTO cache (app_id, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value", (app_id, key, value)))

    async def cache_add(self, app_id: str, key: str, amount: int) -> int:
        """Add to a cached integer (missing counts as 0); the new total."""
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM cache WHERE app_id = ? AND key = ?", (app_id, key)).fetchone()
            try:
                current = int(row[0]) if row is not None else 0
            except ValueError:
                raise BadRequest(f"cache key {key} does not hold a whole number") from None
            total = current + amount
            conn.execute("INSERT INTO cache (app_id, key, value) VALUES (?, ?, ?) ON CONFLICT (app_id, key) "
                         "DO UPDATE SET value = excluded.value", (app_id, key, str(total)))
            return total

        return await self._db.write(run)
