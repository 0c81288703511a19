"""Running tasks: fire what is due, finish runs, and pick up what a previous process left under way.

One firing of a task is one write: the runs it starts (or skips, or the instants it missed),
the task's next run, and what the runs do when that can be stored (a message task's message,
a function task's job), all keyed by (task, instant). An http run calls its URL after that
write and records its outcome in a second one; a function run's outcome comes from the job
queue. After each run a `task_run` message goes out on `sys-tasks`, stored with the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sblite import ids
from sblite.errors import ApiError
from sblite.jsonutil import dumps
from sblite.model import Message
from sblite.scheduler import policy, runners
from sblite.scheduler.definition import iso
from sblite.scheduler.loop import Clock, TaskLoop
from sblite.scheduler.runners import Fetch, FunctionQueue
from sblite.scheduler.stats import SchedulerStats
from sblite.scheduler.table import Entry, TaskTable
from sblite.services.bus import EventBus
from sblite.store.functions import Job
from sblite.store.tasks import Claim, Finish, Stale, TaskRecord, TaskRun, TaskStore

log = logging.getLogger(__name__)
TASKS_CHANNEL = "sys-tasks"
ONCE_PREFIX = "once-"  # one-off tasks that functions make: deleted `keep_days` after they ran
PURGE = "purge:"  # loop keys for those deletions
RETRY_SECONDS = 1.0  # after a firing could not be written
CLOSE_WAIT_SECONDS = 2.0  # for http calls under way at shutdown
INTERRUPTED = ("interrupted: the server stopped while the request was under way; it is not sent again "
               "(it may have arrived)")


@dataclass
class Plan:
    """What one firing (or a run by hand) writes, and what starts once it is written."""

    runs: list[TaskRun] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # stored in the write, delivered after it
    jobs: list[Job] = field(default_factory=list)
    calls: list[TaskRun] = field(default_factory=list)  # http runs


class Engine:
    """Fires due tasks (the loop calls `fire`), runs them, and records their outcomes."""

    def __init__(self, table: TaskTable, store: TaskStore, bus: EventBus, functions: FunctionQueue, fetch: Fetch,
                 clock: Clock, stats: SchedulerStats, *, io_limit: int,
                 catchup_all_limit: int = policy.CATCHUP_ALL_LIMIT) -> None:
        self._table = table
        self._store = store
        self._bus = bus
        self._functions = functions
        self._fetch = fetch
        self._clock = clock
        self._stats = stats
        self._io_limit = io_limit
        self._all_limit = catchup_all_limit
        self.loop = TaskLoop(self.fire, clock)
        self._calls: set[asyncio.Task[None]] = set()

    # --- firing

    async def fire(self, task_ids: list[str], now: float) -> None:
        """Fire every task that is due at `now` (each in its own write; the store commits them together)."""
        await asyncio.gather(*(self._purge(key[len(PURGE):]) if key.startswith(PURGE) else self._fire_one(key, now)
                               for key in task_ids))

    def schedule_purge(self, record: TaskRecord) -> None:
        """A completed one-off task that a function made goes `keep_days` after its run."""
        if record.name.startswith(ONCE_PREFIX) and record.interval is None and record.next_run is None:
            ran = record.last_run if record.last_run is not None else (record.at or 0.0)
            self.loop.schedule(PURGE + record.id, ran + record.keep_days * 86400)

    async def _purge(self, task_id: str) -> None:
        entry = self._table.get(task_id)
        if entry is None:
            return
        async with entry.lock:
            record = entry.record
            if record.interval is not None or record.next_run is not None or entry.active:
                return
            try:
                await self._store.delete(task_id)
            except Exception:
                self._stats.internal_errors += 1
                log.exception("could not delete the completed one-off task %s", record.name)
                return
            self._table.drop(task_id)

    async def _fire_one(self, task_id: str, now: float) -> None:
        first = self._table.get(task_id)
        if first is None:
            return
        async with first.lock:
            entry = self._table.get(task_id)
            if entry is None or not entry.record.enabled or entry.record.next_run is None:
                return
            record = entry.record
            assert record.next_run is not None
            try:
                decision = await self._decide(entry, record.next_run, now)
            except Exception:
                self._stats.internal_errors += 1
                log.exception("task %s: could not work out what is due", record.name)
                self.loop.schedule(task_id, now + RETRY_SECONDS)
                return
            if decision is None:
                self.loop.schedule(task_id, record.next_run)
                return
            trigger = "catchup" if decision.catchup else "schedule"
            plan = self.plan(entry, [(instant, instant, trigger) for instant in decision.run], now, overlap=True)
            if decision.missed:
                plan.runs.insert(0, self._missed(entry, decision, now))
                plan.messages.append(self.event(record, plan.runs[0]))
            started = [run.scheduled_for for run in plan.runs if run.status not in ("skipped", "missed")]
            claim = Claim(task_id, plan.runs, expected_next_run=record.next_run, next_run=decision.next_run,
                          last_run=max(started) if started else None, keep_runs=record.keep_runs,
                          keep_after=retention(record).cutoff(now))
            if not await self.commit(entry, claim, plan, now):
                return  # read again, or tried again soon
            self._stats.runs["missed"] += decision.missed
            for run in plan.runs:
                if run.trigger == "schedule" and run.started is not None and run.instant is not None:
                    self._stats.lateness.observe(max(0.0, run.started - run.instant))
            current = self._table.get(task_id)
            if current is not None and current.record.enabled:
                self.loop.schedule(task_id, current.record.next_run)
                self.schedule_purge(current.record)

    async def _decide(self, entry: Entry, next_run: float, now: float) -> policy.Decision | None:
        """What is due; a catch-up over several instants is worked out in a thread (cron steps cost time)."""
        record = entry.record
        args = (next_run, now, entry.next_after, record.catchup, record.catchup_window, self._all_limit)
        following = entry.next_after(next_run) if next_run <= now else None
        if following is None or following > now:
            return policy.decide(*args)
        return await asyncio.to_thread(policy.decide, *args)

    def _missed(self, entry: Entry, decision: policy.Decision, now: float) -> TaskRun:
        record = entry.record
        count = f"{decision.missed}" if decision.missed_exact else f"at least {decision.missed}"
        span = f"{iso(decision.first_missed)}" + (f" to {iso(decision.last_missed)}" if decision.missed > 1 else "")
        note = (f"{count} instant(s) missed ({span}): catch-up {record.catchup}, window "
                f"{record.catchup_window:g} s")
        assert decision.first_missed is not None
        return TaskRun(id=ids.new_id(), task_id=record.id, app_id=record.app_id, instant=None,
                       scheduled_for=decision.first_missed, trigger="catchup", status="missed", created=now,
                       finished=now, output=[note])

    def plan(self, entry: Entry, items: Sequence[tuple[float | None, float, str]], now: float,
             overlap: bool) -> Plan:
        """The runs for `(instant, scheduled_for, trigger)` items; with `overlap`, the task's policy applies."""
        plan = Plan()
        record = entry.record
        running, queued = entry.running, entry.queued
        for instant, scheduled_for, trigger in items:
            action = policy.admit(record.overlap, running, queued) if overlap else "start"
            run = TaskRun(id=ids.new_id(), task_id=record.id, app_id=record.app_id, instant=instant,
                          scheduled_for=scheduled_for, trigger=trigger, status="queued", created=now)
            if action == "skip":
                run = replace(run, status="skipped", finished=now,
                              output=[f"skipped: a run is still under way (overlap {record.overlap})"])
            elif action == "queue":
                queued += 1
            else:
                run = self._start(record, replace(run, status="running", started=now), now, plan)
                running += run.status == "running"
            plan.runs.append(run)
            if run.status not in ("running", "queued"):
                plan.messages.append(self.event(record, run))
        return plan

    def _start(self, record: TaskRecord, run: TaskRun, now: float, plan: Plan) -> TaskRun:
        """A run that starts now: what it does, added to the plan."""
        if record.type == "message":
            plan.messages.append(runners.message_of(record))
            return replace(run, status="ok", finished=now,
                           output=[f"published {record.value} on {record.meta['channel']}"])
        if record.type == "function":
            try:
                job = self._functions.task_job(record.app_id, record.value, runners.function_body(record, run),
                                               runners.identity_of(record))
            except ApiError as exc:
                return replace(run, status="failed", finished=now, error=exc.message)
            plan.jobs.append(job)
            return replace(run, job_id=job.id)
        plan.calls.append(run)
        return run

    async def commit(self, entry: Entry, claim: Claim, plan: Plan, now: float) -> bool:
        """Write a plan; then start what it starts. False when nothing was written."""
        def extra(conn: Any) -> None:
            self._bus.store(conn, plan.messages)
            if plan.jobs:
                self._functions.store_jobs(conn, plan.jobs)

        try:
            await self._store.claim(claim, extra)
        except Stale:
            log.warning("task %s changed while it fired: read again", entry.record.name)
            await self._reload(entry.record.id)
            return False
        except Exception as exc:
            self._stats.internal_errors += 1
            log.exception("task %s: could not record its runs", entry.record.name)
            return await self._commit_failure(entry, claim, plan, exc, now)
        await self._committed(entry, claim, plan)
        return True

    async def _commit_failure(self, entry: Entry, claim: Claim, plan: Plan, exc: Exception, now: float) -> bool:
        """The firing's write failed: record its runs as failed (nothing else), so the schedule moves on."""
        error = f"internal error: {exc}"
        runs = [replace(run, status="failed", finished=now, error=error) if run.status in ("ok", "running", "queued")
                else run for run in plan.runs]
        failed = Plan(runs=runs)
        try:
            await self._store.claim(replace(claim, runs=runs))
        except Exception:
            log.exception("task %s: could not record its failed runs either: trying again", entry.record.name)
            self.loop.schedule(entry.record.id, now + RETRY_SECONDS)
            return False
        await self._committed(entry, claim, failed)
        return True

    async def _committed(self, entry: Entry, claim: Claim, plan: Plan) -> None:
        record = entry.record
        changed = replace(record, next_run=claim.next_run if claim.move_schedule else record.next_run,
                          last_run=claim.last_run if claim.last_run is not None else record.last_run)
        entry = self._table.put(changed)
        for run in plan.runs:
            if run.status in ("running", "queued"):
                entry.active[run.id] = run
            elif run.status != "missed":  # counted per instant by the firing
                self._stats.runs[run.status] += 1
        if plan.messages:
            await self._bus.publish_many(plan.messages, stored=True)
        if plan.jobs:
            self._functions.start_jobs(plan.jobs)
        for run in plan.calls:
            self._spawn(self._call(record.id, run))

    async def _reload(self, task_id: str) -> None:
        record = await self._store.task(task_id)
        if record is None:
            self._table.drop(task_id)
            self.loop.schedule(task_id, None)
            return
        self._table.put(record)
        self.loop.schedule(task_id, record.next_run if record.enabled else None)

    def event(self, record: TaskRecord, run: TaskRun) -> Message:
        """The `task_run` message for a run that ended (or an instant skipped or missed)."""
        duration = None
        if run.started is not None and run.finished is not None:
            duration = round((run.finished - run.started) * 1000, 3)
        data = {"task": record.name, "task_id": record.id, "run_id": run.id, "instant": iso(run.scheduled_for),
                "trigger": run.trigger, "status": run.status, "duration_ms": duration, "error": run.error}
        return Message(type="task_run", channel=TASKS_CHANNEL, data=dumps(data), sid="system", app_id=record.app_id)

    # --- http runs

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _call(self, task_id: str, run: TaskRun) -> None:
        entry = self._table.get(task_id)
        if entry is None:
            return
        try:
            outcome = await runners.call(self._fetch, entry.record, run, self._io_limit)
        except Exception as exc:
            self._stats.internal_errors += 1
            log.exception("task %s: the http call raised", entry.record.name)
            outcome = runners.HttpOutcome(ok=False, output=[], error=f"internal error: {exc}", response=None)
        await self.finish(task_id, run.id, "ok" if outcome.ok else "failed", outcome.output, outcome.error,
                          messages=[outcome.response] if outcome.response is not None else [])

    # --- finishing

    async def finish(self, task_id: str, run_id: str, status: str, output: list[str], error: str | None,
                     function_run_id: str | None = None, messages: Sequence[Message] = ()) -> None:
        """End a run under way; the next queued run of its task starts in its place."""
        first = self._table.get(task_id)
        if first is None:
            return
        async with first.lock:
            entry = self._table.get(task_id)
            if entry is not None:
                await self._finish_locked(entry, run_id, status, output, error, function_run_id, messages)

    async def _finish_locked(self, entry: Entry, run_id: str, status: str, output: list[str], error: str | None,
                             function_run_id: str | None = None, messages: Sequence[Message] = ()) -> None:
        record, run, now = entry.record, entry.active.get(run_id), self._clock.now()
        if run is None:
            return
        ended = replace(run, status=status, finished=now, output=output, error=error)
        outgoing = [*messages, self.event(record, ended)]
        finish = Finish(run_id, record.id, status, now, output, error, function_run_id, keep_runs=record.keep_runs,
                        keep_after=retention(record).cutoff(now))
        try:
            ended_now, _ = await self._store.finish(finish, lambda conn: self._bus.store(conn, outgoing))
        except Exception:
            self._stats.internal_errors += 1
            log.exception("task %s: could not record the end of run %s (recorded at the next start)",
                          record.name, run_id)
            return
        entry.active.pop(run_id, None)
        if ended_now:
            self._stats.runs[status] += 1
            await self._bus.publish_many(outgoing, stored=True)
        waiting = [r for r in entry.active.values() if r.status == "queued"]
        if waiting and entry.running == 0:
            await self.start_queued(entry, waiting[0])

    async def start_queued(self, entry: Entry, run: TaskRun) -> None:
        """Start a run that waited for the one before it (overlap queue_one); the task is locked."""
        record, now = entry.record, self._clock.now()
        plan = Plan()
        started = self._start(record, replace(run, status="running", started=now), now, plan)
        if started.status != "running":  # a message run, or a function that is gone: it ended at once
            await self._finish_locked(entry, run.id, started.status, started.output, started.error,
                                      messages=plan.messages)
            return

        def extra(conn: Any) -> None:
            if plan.jobs:
                self._functions.store_jobs(conn, plan.jobs)

        try:
            if not await self._store.start_queued(run.id, now, started.job_id, extra):
                entry.active.pop(run.id, None)
                return
        except Exception:
            self._stats.internal_errors += 1
            log.exception("task %s: could not start queued run %s (started at the next start)", record.name, run.id)
            return
        entry.active[run.id] = started
        if plan.jobs:
            self._functions.start_jobs(plan.jobs)
        for call in plan.calls:
            self._spawn(self._call(record.id, call))

    def job_settled(self, job: Job, ok: bool, error: str | None, output: list[str],
                    function_run_id: str | None) -> None:
        """The job queue's news: a function task's job succeeded (after retries) or was parked."""
        task_id, run_id = job.message.get("taskId"), job.message.get("runId")
        if isinstance(task_id, str) and isinstance(run_id, str):
            self._spawn(self.finish(task_id, run_id, "ok" if ok else "failed", output, error, function_run_id))

    # --- start and stop

    async def recover(self) -> None:
        """Runs a previous process left under way: settle what can be settled, restart the queue."""
        for found in await self._store.open_runs():
            run, entry = found.run, self._table.get(found.run.task_id)
            if entry is None:
                continue
            entry.active[run.id] = run
            if run.status == "queued":
                continue
            if run.job_id is None:
                await self.finish(run.task_id, run.id, "failed", run.output, INTERRUPTED)
            elif found.job_status == "parked":
                await self.finish(run.task_id, run.id, "failed", run.output, found.job_error or "parked")
            elif found.job_status is None:
                ok = found.function_run_id is not None
                await self.finish(run.task_id, run.id, "ok" if ok else "failed", run.output,
                                  None if ok else "the function's job is gone (the function was deleted)",
                                  found.function_run_id)
        for entry in self._table.all():
            waiting = [r for r in entry.active.values() if r.status == "queued"]
            if waiting and entry.running == 0:
                async with entry.lock:
                    await self.start_queued(entry, waiting[0])

    async def close(self) -> None:
        """Stop the loop; http calls under way get a moment to end (the rest are settled at the next start)."""
        await self.loop.close()
        if self._calls:
            _, pending = await asyncio.wait(set(self._calls), timeout=CLOSE_WAIT_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def retention(record: TaskRecord) -> policy.Retention:
    """A task's retention rule."""
    return policy.Retention(runs=record.keep_runs, days=record.keep_days)
