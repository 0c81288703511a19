"""The tasks in memory: each one's stored row, parsed schedule and runs under way, and their JSON."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sblite.cron import ScheduleError
from sblite.errors import NotFound
from sblite.scheduler.definition import Definition, describe, iso, local
from sblite.scheduler.policy import NextAfter
from sblite.store.tasks import TaskRecord, TaskRun


def definition_of(record: TaskRecord) -> Definition:
    """The definition part of a stored task."""
    return Definition(name=record.name, type=record.type, value=record.value, meta=record.meta,
                      interval=record.interval, at=record.at, timezone=record.timezone, enabled=record.enabled,
                      overlap=record.overlap, catchup=record.catchup, catchup_window=record.catchup_window,
                      keep_runs=record.keep_runs, keep_days=record.keep_days)


def next_after_of(definition: Definition) -> NextAfter:
    """The schedule as `next_after(t)` in epoch seconds (a one-off task has no instant after its own)."""
    schedule = definition.schedule()
    if schedule is None:
        return lambda t: None

    def after(moment: float) -> float | None:
        try:
            return schedule.next_after(datetime.fromtimestamp(moment, UTC)).timestamp()
        except ScheduleError:  # it never fires again
            return None

    return after


@dataclass
class Entry:
    """One task in memory."""

    record: TaskRecord
    definition: Definition
    next_after: NextAfter
    # Runs under way (running, or queued behind one), oldest first: what overlap looks at.
    active: dict[str, TaskRun] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one change or firing of a task at a time

    @property
    def running(self) -> int:
        """Runs under way."""
        return sum(1 for run in self.active.values() if run.status == "running")

    @property
    def queued(self) -> int:
        """Runs waiting for the one under way (overlap queue_one)."""
        return sum(1 for run in self.active.values() if run.status == "queued")

    def status(self) -> str:
        """scheduled, paused or completed (a one-off task that has run)."""
        if self.record.interval is None and self.record.next_run is None:
            return "completed"
        return "scheduled" if self.record.enabled else "paused"

    def shown_next_run(self, now: float) -> float | None:
        """The next run to show: for a paused task, the one it would have if resumed now."""
        next_run = self.record.next_run
        if not self.record.enabled and self.record.interval is not None and next_run is not None and next_run <= now:
            return self.next_after(now)
        return next_run


class TaskTable:
    """Every task, by id and by (app, name)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Entry] = {}
        self._by_name: dict[tuple[str, str], str] = {}

    def put(self, record: TaskRecord) -> Entry:
        """Remember a task (new or changed), keeping its runs under way and its lock."""
        old = self._by_id.get(record.id)
        if old is not None:
            self._by_name.pop((old.record.app_id, old.record.name), None)
        definition = definition_of(record)
        next_after = old.next_after if old is not None and old.definition == definition else next_after_of(definition)
        entry = Entry(record, definition, next_after)
        if old is not None:
            entry.active, entry.lock = old.active, old.lock
        self._by_id[record.id] = entry
        self._by_name[(record.app_id, record.name)] = record.id
        return entry

    def drop(self, task_id: str) -> None:
        """Forget a task."""
        entry = self._by_id.pop(task_id, None)
        if entry is not None:
            self._by_name.pop((entry.record.app_id, entry.record.name), None)

    def get(self, task_id: str) -> Entry | None:
        """A task by id."""
        return self._by_id.get(task_id)

    def named(self, app_id: str, name: str) -> Entry:
        """The app's task of this name, or NotFound."""
        task_id = self._by_name.get((app_id, name))
        if task_id is None:
            raise NotFound(f"task {name} not found")
        return self._by_id[task_id]

    def has(self, app_id: str, name: str) -> bool:
        """Whether the app has a task of this name."""
        return (app_id, name) in self._by_name

    def of_app(self, app_id: str) -> list[Entry]:
        """The app's tasks, oldest first."""
        return [entry for entry in self._by_id.values() if entry.record.app_id == app_id]

    def all(self) -> list[Entry]:
        """Every task."""
        return list(self._by_id.values())


def task_json(entry: Entry, now: float) -> dict[str, Any]:
    """A task as the API shows it."""
    record = entry.record
    next_run = entry.shown_next_run(now)
    return {
        "id": record.id, "name": record.name, "type": record.type, "value": record.value, "meta": record.meta,
        "interval": record.interval, "at": iso(record.at), "timezone": record.timezone, "enabled": record.enabled,
        "paused_note": record.paused_note, "overlap": record.overlap, "catchup": record.catchup,
        "catchup_window": record.catchup_window, "keep_runs": record.keep_runs, "keep_days": record.keep_days,
        "last_run": iso(record.last_run), "next_run": iso(next_run), "next_run_local": local(next_run, record.timezone),
        "description": describe(entry.definition), "status": entry.status(), "created": record.created,
        "updated": record.updated,
    }


def run_json(run: TaskRun, task_name: str) -> dict[str, Any]:
    """A run as the API shows it."""
    duration = None
    if run.started is not None and run.finished is not None:
        duration = round((run.finished - run.started) * 1000, 3)
    return {
        "id": run.id, "task": task_name, "scheduled_for": iso(run.scheduled_for), "trigger": run.trigger,
        "status": run.status, "started": iso(run.started), "finished": iso(run.finished), "duration_ms": duration,
        "output": run.output, "error": run.error, "job_id": run.job_id, "function_run_id": run.function_run_id,
    }
