"""TaskService: tasks per app (create, change, pause, run now, history, preview) and the loop that runs them.

Every change is checked whole before anything is stored (a 400 names the field), then written,
then reflected in memory and in the loop. One change or firing of a task happens at a time.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sblite import ids
from sblite.cron import ScheduleError, parse_at, parse_schedule, parse_zone, preview
from sblite.errors import BadRequest, Conflict
from sblite.model import Identity
from sblite.scheduler import definition as spec
from sblite.scheduler.definition import Definition, Limits, iso, local
from sblite.scheduler.engine import ONCE_PREFIX, Engine, retention
from sblite.scheduler.loop import Clock, SystemClock, TaskLoop
from sblite.scheduler.policy import CATCHUP_ALL_LIMIT
from sblite.scheduler.runners import Fetch, FunctionQueue, identity_json
from sblite.scheduler.stats import SchedulerStats
from sblite.scheduler.table import Entry, TaskTable, run_json, task_json
from sblite.services.bus import EventBus
from sblite.store import Duplicate
from sblite.store.tasks import Claim, TaskRecord, TaskStore
from sblite.timeutil import now_text

log = logging.getLogger(__name__)
MAX_NOTE = 500
MAX_RUNS_SHOWN = 1000
ONCE_KINDS = ("message", "function")
MAX_ONCE_DELAY = 3660 * 86400.0  # ten years, as for `at`


class TaskService:
    """The app's scheduled tasks, and the loop that fires them."""

    def __init__(self, store: TaskStore, bus: EventBus, functions: FunctionQueue, fetch: Fetch, *,
                 clock: Clock | None = None, limits: Limits | None = None, io_limit: int = 1024 * 1024,
                 catchup_all_limit: int = CATCHUP_ALL_LIMIT) -> None:
        self._store = store
        self._functions = functions
        self._clock = clock or SystemClock()
        self._limits = limits or Limits()
        self._table = TaskTable()
        self.stats = SchedulerStats()
        self._engine = Engine(self._table, store, bus, functions, fetch, self._clock, self.stats,
                              io_limit=io_limit, catchup_all_limit=catchup_all_limit)

    @property
    def loop(self) -> TaskLoop:
        """The scheduler loop (its wake-ups, for tests and metrics)."""
        return self._engine.loop

    def scheduled(self) -> int:
        """Tasks waiting for their next run (enabled, not completed)."""
        return sum(1 for entry in self._table.all() if entry.record.enabled and entry.record.next_run is not None)

    def job_settled(self, *args: Any) -> None:
        """The job queue's listener (`Dispatcher.on_settled`): a function task's run ended."""
        self._engine.job_settled(*args)

    async def load(self) -> None:
        """Read every task, and settle the runs a previous process left under way."""
        for record in await self._store.all_tasks():
            self._table.put(record)
        await self._engine.recover()

    def start(self) -> None:
        """Schedule every enabled task and start the loop (instants missed meanwhile follow each catch-up rule)."""
        for entry in self._table.all():
            if entry.record.enabled and entry.record.next_run is not None:
                self._engine.loop.schedule(entry.record.id, entry.record.next_run)
            self._engine.schedule_purge(entry.record)
        self._engine.loop.start()

    async def close(self) -> None:
        """Stop the loop."""
        await self._engine.close()

    # --- reading

    def list_tasks(self, root: Identity) -> list[dict[str, Any]]:
        """The app's tasks, oldest first."""
        now = self._clock.now()
        return [task_json(entry, now) for entry in self._table.of_app(root.app_id)]

    async def get(self, root: Identity, name: str, limit: int = 20) -> dict[str, Any]:
        """A task with its recent runs, newest first."""
        entry = self._table.named(root.app_id, name)
        return {**task_json(entry, self._clock.now()), "runs": await self._runs(entry, limit)}

    async def runs(self, root: Identity, name: str, limit: Any = None) -> list[dict[str, Any]]:
        """A task's recent runs, newest first (`limit`: 1 to 1000, 100 by default)."""
        return await self._runs(self._table.named(root.app_id, name), _limit(limit))

    async def _runs(self, entry: Entry, limit: int) -> list[dict[str, Any]]:
        return [run_json(run, entry.record.name) for run in await self._store.runs(entry.record.id, limit)]

    # --- changing

    async def create(self, identity: Identity, body: Any, app_id: str | None = None,
                     once: bool = False) -> dict[str, Any]:
        """Create a task from its fields (StaticBackend's shape too); it runs as `identity`.

        Names that start with once- are for the one-off tasks functions make (`once`).
        """
        app_id = app_id or identity.app_id
        now = self._clock.now()
        definition = spec.parse(body, now, lambda name: self._functions.exists(app_id, name), self._limits)
        if definition.name.startswith(ONCE_PREFIX) and not once:
            raise BadRequest(f"name: names that start with {ONCE_PREFIX} are kept for the one-off tasks functions "
                             "make with schedule() and runLater()")
        if self._table.has(app_id, definition.name):
            raise Conflict(f"a task named {definition.name} exists already: change it with PUT /tasks/{{name}}")
        stamp = now_text()
        record = _record(TaskRecord(
            id=ids.new_id(), app_id=app_id, name="", type="", value="", meta={}, interval=None, at=None,
            timezone="UTC", enabled=True, paused_note=None, overlap="skip", catchup="latest", catchup_window=0.0,
            keep_runs=0, keep_days=0.0, identity=identity_json(identity), last_run=None,
            next_run=definition.first_run(now), created=stamp, updated=stamp), definition)
        try:
            await self._store.insert(record)
        except Duplicate:
            raise Conflict(f"a task named {definition.name} exists already") from None
        entry = self._table.put(record)
        self._reschedule(entry)
        return task_json(entry, now)

    async def update(self, root: Identity, name: str, body: Any) -> dict[str, Any]:
        """Change some of a task's fields; the schedule moves only when interval, at or timezone change."""
        entry = self._table.named(root.app_id, name)
        async with entry.lock:
            entry = self._table.named(root.app_id, name)
            now = self._clock.now()
            definition = spec.parse(body, now, lambda fn: self._functions.exists(root.app_id, fn), self._limits,
                                    base=entry.definition)
            if definition.name != name and definition.name.startswith(ONCE_PREFIX):
                raise BadRequest(f"name: names that start with {ONCE_PREFIX} are kept for the one-off tasks "
                                 "functions make")
            if definition.name != name and self._table.has(root.app_id, definition.name):
                raise Conflict(f"a task named {definition.name} exists already")
            old, record = entry.definition, entry.record
            if (definition.interval, definition.at, definition.timezone) != (old.interval, old.at, old.timezone):
                next_run = definition.first_run(now)
            elif definition.enabled and not record.enabled:
                next_run = self._resumed_next_run(entry, now)
            else:
                next_run = record.next_run
            changed = replace(_record(record, definition), next_run=next_run, updated=now_text(),
                              paused_note=record.paused_note if not definition.enabled else None)
            return await self._store_change(entry, changed, now)

    async def delete(self, root: Identity, name: str) -> None:
        """Delete a task and its history (a run under way finishes unrecorded)."""
        entry = self._table.named(root.app_id, name)
        async with entry.lock:
            await self._store.delete(entry.record.id)
            self._table.drop(entry.record.id)
            self._engine.loop.schedule(entry.record.id, None)

    async def pause(self, root: Identity, name: str, body: Any = None) -> dict[str, Any]:
        """Stop firing a task (an optional `note` says why); its schedule stays as it is."""
        note = body.get("note") if isinstance(body, dict) else None
        if body is not None and not isinstance(body, dict):
            raise BadRequest('invalid body: expected {"note": "why"} or nothing')
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
            raise BadRequest(f"note: a string of at most {MAX_NOTE} characters expected")
        entry = self._table.named(root.app_id, name)
        async with entry.lock:
            entry = self._table.named(root.app_id, name)
            changed = replace(entry.record, enabled=False, paused_note=note or None, updated=now_text())
            return await self._store_change(entry, changed, self._clock.now())

    async def resume(self, root: Identity, name: str) -> dict[str, Any]:
        """Fire a paused task again, on the schedule it had: instants that passed meanwhile do not run."""
        entry = self._table.named(root.app_id, name)
        async with entry.lock:
            entry = self._table.named(root.app_id, name)
            now = self._clock.now()
            if entry.record.enabled:
                return task_json(entry, now)
            changed = replace(entry.record, enabled=True, paused_note=None, updated=now_text(),
                              next_run=self._resumed_next_run(entry, now))
            return await self._store_change(entry, changed, now)

    def _resumed_next_run(self, entry: Entry, now: float) -> float | None:
        next_run = entry.record.next_run
        if entry.record.interval is None or next_run is None or next_run > now:
            return next_run  # a one-off task keeps its time: its catch-up rule decides if it is late
        return entry.next_after(now)

    async def _store_change(self, entry: Entry, changed: TaskRecord, now: float) -> dict[str, Any]:
        try:
            await self._store.replace(changed)
        except Duplicate:
            raise Conflict(f"a task named {changed.name} exists already") from None
        entry = self._table.put(changed)
        self._reschedule(entry)
        return task_json(entry, now)

    def _reschedule(self, entry: Entry) -> None:
        record = entry.record
        self._engine.loop.schedule(record.id, record.next_run if record.enabled else None)

    # --- running by hand

    async def run_now(self, root: Identity, name: str) -> dict[str, Any]:
        """Start a run now, whatever the schedule, the pause or the overlap policy say; the run."""
        entry = self._table.named(root.app_id, name)
        async with entry.lock:
            entry = self._table.named(root.app_id, name)
            now = self._clock.now()
            plan = self._engine.plan(entry, [(None, now, "manual")], now, overlap=False)
            record = entry.record
            claim = Claim(record.id, plan.runs, move_schedule=False, last_run=now, keep_runs=record.keep_runs,
                          keep_after=retention(record).cutoff(now))
            await self._engine.commit(entry, claim, plan, now)
            run = plan.runs[0]
        stored = await self._store.run(run.id)
        return run_json(stored or run, record.name)

    # --- one-off tasks for functions

    async def schedule_once(self, app_id: str, identity: Identity, *, kind: str, value: str,
                            meta: dict[str, Any], when: float | str) -> dict[str, Any]:
        """A one-off task named once-<id>, of `kind` message or function, due at `when` (seconds from now or
        RFC 3339); its JSON. BadRequest on bad input, and nothing is stored."""
        if kind not in ONCE_KINDS:
            raise BadRequest(f"kind: one of {', '.join(ONCE_KINDS)}, got {kind!r}")
        if isinstance(when, bool) or not isinstance(when, (int, float, str)):
            raise BadRequest("when: seconds from now (a number) or an RFC 3339 time expected")
        if isinstance(when, str):
            at = when
        elif not 0 <= when <= MAX_ONCE_DELAY:
            raise BadRequest(f"when: from 0 to {MAX_ONCE_DELAY:g} seconds from now, got {when!r}")
        else:
            at = iso(self._clock.now() + when) or ""
        body = {"name": f"{ONCE_PREFIX}{ids.new_id()}", "type": kind, "value": value, "meta": meta, "at": at}
        try:
            return await self.create(identity, body, app_id=app_id, once=True)
        except ScheduleError as exc:
            if exc.field != "at":
                raise
            raise BadRequest("when" + exc.message[len("at"):]) from None  # the caller's name for it

    # --- preview

    def preview(self, interval: str | None, timezone: str | None, n: str | None, at: str | None) -> dict[str, Any]:
        """What an expression (or a one-off time) means: its description and next `n` instants, UTC and local."""
        now = datetime.fromtimestamp(self._clock.now(), UTC)
        count = _count(n)
        zone = parse_zone(timezone)
        if at:
            if interval:
                raise BadRequest("interval: give either interval or at, not both")
            moment = parse_at(at, now)
            return {"interval": None, "at": iso(moment.timestamp()), "timezone": zone.key,
                    "description": f"once, at {local(moment.timestamp(), zone.key)} ({zone.key})",
                    "next": [_instant(moment.timestamp(), zone.key)]}
        if not interval:
            raise BadRequest("interval: required: a cron expression, @daily, @every 30s (or at for a one-off time)")
        schedule = parse_schedule(interval, zone.key)
        instants = preview(schedule, now, count)
        return {"interval": schedule.expression, "at": None, "timezone": zone.key,
                "description": schedule.describe(), "next": [_instant(i.timestamp(), zone.key) for i in instants]}

    def task_preview(self, root: Identity, name: str, n: str | None) -> dict[str, Any]:
        """A task's next `n` instants, from its next run on."""
        entry = self._table.named(root.app_id, name)
        record, count = entry.record, _count(n)
        instants: list[float] = []
        moment = entry.shown_next_run(self._clock.now())
        while moment is not None and len(instants) < count:
            instants.append(moment)
            moment = entry.next_after(moment)
        return {"interval": record.interval, "at": iso(record.at), "timezone": record.timezone,
                "description": spec.describe(entry.definition),
                "next": [_instant(i, record.timezone) for i in instants]}


def _record(record: TaskRecord, definition: Definition) -> TaskRecord:
    """`record` with the fields of `definition`."""
    return replace(record, name=definition.name, type=definition.type, value=definition.value,
                   meta=definition.meta, interval=definition.interval, at=definition.at,
                   timezone=definition.timezone, enabled=definition.enabled, overlap=definition.overlap,
                   catchup=definition.catchup, catchup_window=definition.catchup_window,
                   keep_runs=definition.keep_runs, keep_days=definition.keep_days)


def _instant(moment: float, zone: str) -> dict[str, str | None]:
    return {"utc": iso(moment), "local": local(moment, zone)}


def _count(n: str | None) -> int:
    if n is None or n == "":
        return 10
    try:
        count = int(n)
    except ValueError:
        raise ScheduleError("n", f"a whole number from 1 to 100 expected, got {n!r}") from None
    if not 1 <= count <= 100:
        raise ScheduleError("n", f"from 1 to 100, got {count}")
    return count


def _limit(limit: Any) -> int:
    if limit is None or limit == "":
        return 100
    try:
        value = int(limit)
    except (TypeError, ValueError):
        raise BadRequest(f"limit: a whole number from 1 to {MAX_RUNS_SHOWN} expected, got {limit!r}") from None
    if not 1 <= value <= MAX_RUNS_SHOWN:
        raise BadRequest(f"limit: from 1 to {MAX_RUNS_SHOWN}, got {value}")
    return value
