"""Message-triggered runs: durable, at least once, retried with backoff, parked at the end.

Every message on the bus that matches a function becomes a job row in SQLite before anyone
sees the message; a run that succeeds deletes its job in the same transaction that records
the run. A failed run (or one that raised) is retried with backoff and parked after the last
attempt (visible at /fn/jobs, replayable). Jobs still queued when the server stops run when
it starts again.

SQLite is the queue; memory holds at most `max_running` runs. One consumer task takes the
oldest due jobs from SQLite as room allows, runs them, and waits: for new jobs, for a run
to finish, or for the next retry to come due. (Jobs a publish has just stored start at once
when they fit and no older job waits: nothing to read back.) The rules (what is due, the backoff, when to
park) are pure functions in `queue_policy`.

Scheduled tasks queue jobs for a named function too (`task_job`, stored in the task's own
claim); their outcome, once the job succeeds or is parked, goes to `on_settled` listeners.
A parked job is announced as `function_parked` on `sys-functions`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sblite import ids
from sblite.functions import queue_policy as policy
from sblite.functions.host import MAX_DEPTH, RunContext
from sblite.errors import ApiError
from sblite.functions.service import FunctionService
from sblite.jsonutil import dumps
from sblite.model import Identity, Message
from sblite.services.bus import EventBus
from sblite.store import FunctionStore
from sblite.store.functions import Job
from sblite.timeutil import now_text

log = logging.getLogger(__name__)
READ_RETRY_SECONDS = 1.0  # after the queue could not be read
FUNCTIONS_CHANNEL = "sys-functions"
TASK_ORIGIN = "task"  # a job's message came from a scheduled task

# A task job's outcome: (job, ok, error, the last attempt's log lines, the id of that attempt's run record).
Settled = Callable[[Job, bool, str | None, list[str], str | None], None]


@dataclass(frozen=True)
class Attempt:
    """What one run of a job came to."""

    error: str | None  # None: it succeeded (or its function is gone and it was not a task's)
    logs: list[str]
    run_id: str | None


def _message_json(message: Message) -> dict[str, Any]:
    auth = message.identity.auth_json() if message.identity else {"accountId": "", "userId": "", "email": "",
                                                                   "role": 0}
    return {"sid": message.sid, "type": message.type, "data": message.data, "channel": message.channel,
            "token": "", "auth": auth, "base": "", "depth": message.depth, "origin": message.origin}


def _identity_json(identity: Identity | None) -> dict[str, Any] | None:
    if identity is None:
        return None
    return {"app_id": identity.app_id, "account_id": identity.account_id, "user_id": identity.user_id,
            "email": identity.email, "role": identity.role}


class Dispatcher:
    """A durable bus subscriber that queues, and then runs, the functions each message triggers."""

    def __init__(self, functions: FunctionService, store: FunctionStore, bus: EventBus, max_attempts: int,
                 anonymous: Callable[[str], Identity], max_running: int = 256,
                 clock: Callable[[], float] = time.time) -> None:
        self._functions = functions
        self._store = store
        self._bus = bus
        self._max_attempts = max_attempts
        self._anonymous = anonymous
        self._max_running = max_running
        self._clock = clock
        # A job stays here until SQLite shows its outcome (deleted, rescheduled or parked); reads skip these.
        self._running: dict[str, asyncio.Task[None]] = {}
        self._retry_at: float | None = None  # when the earliest rescheduled job comes due
        self._finished_during_read: set[str] | None = None  # a read may still show these as queued
        self._backlog = True  # SQLite may hold due jobs that do not run: new jobs queue up behind them
        self._wake = asyncio.Event()
        self._consumer: asyncio.Task[None] | None = None
        self._closed = False
        self.stats: Counter[str] = Counter()
        self.peak_held = 0  # the most runs held in memory at once
        self._settled: list[Settled] = []
        self._unsubscribe = bus.subscribe_durable(self)

    @property
    def held(self) -> int:
        """Runs held in memory now (running, or waiting for a worker)."""
        return len(self._running)

    async def resume(self) -> None:
        """Start taking jobs, beginning with those a previous process left queued."""
        if self._consumer is None and not self._closed:
            self._consumer = asyncio.ensure_future(self._consume())

    # --- the durable subscriber

    def wants(self, message: Message) -> bool:
        """Whether the message triggers a function (that may still run)."""
        return message.depth < MAX_DEPTH and bool(self._functions.matching(message))

    def store(self, tx: Any, messages: Sequence[Message]) -> list[Job]:
        """Queue one job per message and function it triggers (touches only `tx`); returns the jobs."""
        jobs = [job for message in messages for job in self._jobs_for(message)]
        FunctionStore.enqueue_in(tx, jobs, now_text())
        return jobs

    def committed(self, messages: Sequence[Message], stored: list[Job] | None) -> None:
        """The jobs of `messages` are stored: start them if they fit, else wake up to read them."""
        queued = 0
        for message in messages:
            matches = self._functions.matching(message)
            if matches and message.depth >= MAX_DEPTH:
                self.stats["dropped_too_deep"] += len(matches)
                log.warning("not running %d function(s) for %s on %s: functions triggered each other %d deep",
                            len(matches), message.type, message.channel, MAX_DEPTH)
            else:
                queued += len(matches)
        if not queued:
            return
        self.stats["queued"] += queued
        if stored and not self._backlog and len(self._running) + len(stored) <= self._max_running:
            for job in stored:  # the fast way: no older job waits, so read nothing back
                self._launch(job)
            return
        self._backlog = True
        self._wake.set()

    def _jobs_for(self, message: Message) -> list[Job]:
        if message.depth >= MAX_DEPTH:
            return []
        payload, identity = _message_json(message), _identity_json(message.identity)
        return [Job(id=ids.new_id(), app_id=message.app_id, function_id=record.id, message=payload,
                    identity=identity, attempts=0, next_at=self._clock(), status="queued", last_error=None)
                for record in self._functions.matching(message)]

    # --- jobs for a named function (scheduled tasks)

    def on_settled(self, listener: Settled) -> None:
        """Call `listener` when a task's job succeeds or is parked."""
        self._settled.append(listener)

    def exists(self, app_id: str, name: str) -> bool:
        """Whether the app has a function of this name."""
        try:
            self._functions.named(app_id, name)
        except ApiError:
            return False
        return True

    def task_job(self, app_id: str, name: str, body: dict[str, Any], identity: Identity) -> Job:
        """A job that runs the named function with a task's `body`; NotFound when there is no such function."""
        record = self._functions.named(app_id, name)
        return Job(id=ids.new_id(), app_id=app_id, function_id=record.id,
                   message={**body, "depth": 0, "origin": TASK_ORIGIN}, identity=_identity_json(identity),
                   attempts=0, next_at=self._clock(), status="queued", last_error=None)

    @staticmethod
    def store_jobs(conn: Any, jobs: Sequence[Job]) -> None:
        """Queue jobs inside a write under way (a task's claim)."""
        FunctionStore.enqueue_in(conn, list(jobs), now_text())

    def start_jobs(self, jobs: Sequence[Job]) -> None:
        """Jobs stored by `store_jobs` are committed: start them if they fit, else read them when room frees."""
        self.stats["queued"] += len(jobs)
        if not self._backlog and len(self._running) + len(jobs) <= self._max_running:
            for job in jobs:
                self._launch(job)
            return
        self._backlog = True
        self._wake.set()

    def _tell(self, job: Job, attempt: Attempt) -> None:
        """A task's job has its outcome: tell the listeners."""
        if job.message.get("origin") != TASK_ORIGIN:
            return
        for listener in self._settled:
            try:
                listener(job, attempt.error is None, attempt.error, attempt.logs, attempt.run_id)
            except Exception:
                self.stats["internal_errors"] += 1
                log.exception("a listener of job %s failed", job.id)

    # --- the consumer

    async def _consume(self) -> None:
        """Take due jobs as room allows, then wait for news; until closed."""
        timer_fired = True  # first, a previous process's retries
        while not self._closed:
            self._wake.clear()
            try:
                await self._take_due()
                if timer_fired:  # the next retry that is not due yet: only SQLite knows them all
                    now = self._clock()
                    self._retry_at = policy.earliest(self._retry_at, await self._store.next_due(now))
            except Exception:
                self.stats["internal_errors"] += 1
                log.exception("could not read the function job queue")
                self._backlog = True
                self._retry_at = policy.earliest(self._retry_at, self._clock() + READ_RETRY_SECONDS)
            await self._wait(policy.wait_seconds(self._retry_at, self._clock()))
            timer_fired = policy.is_due(self._retry_at, self._clock())
            if timer_fired:
                self._retry_at, self._backlog = None, True

    async def _wait(self, timeout: float | None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _take_due(self) -> None:
        """Start the oldest due jobs that are not running, while there is room."""
        while self._backlog and (room := policy.room(self._max_running, len(self._running))):
            now = self._clock()
            finished: set[str] = set()
            self._finished_during_read = finished
            try:
                jobs = await self._store.due_jobs(now, room, skip=tuple(self._running))
            finally:
                self._finished_during_read = None
            if self._closed:
                return
            for job in policy.take(jobs, now, self._running.keys() | finished, room):
                self._launch(job)
            if len(jobs) < room:
                self._backlog = False  # every due job runs
                return

    def _launch(self, job: Job) -> None:
        task = asyncio.ensure_future(self._run(job))
        self._running[job.id] = task
        self.peak_held = max(self.peak_held, len(self._running))
        task.add_done_callback(lambda _: self._finished(job))

    def _finished(self, job: Job) -> None:
        self._running.pop(job.id, None)
        if self._finished_during_read is not None:
            self._finished_during_read.add(job.id)
        if self._backlog:  # room for a job that waits in SQLite
            self._wake.set()

    # --- one run

    async def _run(self, job: Job) -> None:
        """Run a job once; a failure, or any exception, is a failed attempt."""
        try:
            attempt = await self._attempt(job)
        except Exception as exc:
            self.stats["internal_errors"] += 1
            log.exception("function run of job %s raised", job.id)
            attempt = Attempt(error=f"internal error: {exc}", logs=[], run_id=None)
        if attempt.error is None:
            self.stats["succeeded"] += 1
            self._tell(job, attempt)
        else:
            await self._failed(job, attempt)

    async def _attempt(self, job: Job) -> Attempt:
        """Run the job's function once."""
        record = self._functions.by_id(job.function_id)
        task = job.message.get("origin") == TASK_ORIGIN
        if record is None:  # deleted with its jobs
            if task:
                self._tell(job, Attempt(error="the function was deleted", logs=[], run_id=None))
            return Attempt(error=None, logs=[], run_id=None)
        context = RunContext(job.app_id, self._identity(job), record.id, job.message.get("depth", 0))
        message = {k: v for k, v in job.message.items() if k not in ("depth", "origin")}
        run_id = ids.new_id()
        trigger, message_id = ("task", job.message.get("runId")) if task else (record.trigger, job.message.get("sid"))
        outcome = await self._functions.run(record, {"kind": "message", "message": message}, context, trigger,
                                            message_id or None, job.id, run_id=run_id)
        if not outcome.ok:
            return Attempt(error=outcome.error or "failed", logs=outcome.logs, run_id=run_id)
        if outcome.recorded is not None:
            await outcome.recorded  # the job is deleted: it cannot be read back as queued
        return Attempt(error=None, logs=outcome.logs, run_id=run_id)

    async def _failed(self, job: Job, attempt: Attempt) -> None:
        error = attempt.error or "failed"
        retry = policy.after_failure(job.attempts, self._clock(), self._max_attempts)
        try:
            await self._store.reschedule(job.id, retry.attempts, retry.next_at, error, retry.park)
        except Exception:  # still queued and due: held (so not read again) until the backoff is over
            self.stats["internal_errors"] += 1
            log.exception("could not reschedule job %s", job.id)
            await asyncio.sleep(policy.wait_seconds(retry.next_at, self._clock()) or 0.0)
            self._backlog = True  # read it again as it finishes
            return
        if retry.park:
            self.stats["parked"] += 1
            log.warning("job %s (function %s) parked after %d attempts: %s", job.id, job.function_id,
                        retry.attempts, error)
            self._tell(job, attempt)
            await self._announce_parked(job, retry.attempts, error)
            return
        self.stats["retried"] += 1
        self._retry_at = policy.earliest(self._retry_at, retry.next_at)
        self._wake.set()  # the consumer's wait ends at the new retry time

    async def _announce_parked(self, job: Job, attempts: int, error: str) -> None:
        """Publish `function_parked`: the job as /fn/jobs shows it."""
        record = self._functions.by_id(job.function_id)
        data = {"id": job.id, "function": record.name if record is not None else "", "status": "parked",
                "attempts": attempts, "lastError": error,
                "message": {k: job.message.get(k) for k in ("sid", "type", "channel", "data")}}
        try:
            await self._bus.publish(Message(type="function_parked", channel=FUNCTIONS_CHANNEL, data=dumps(data),
                                            sid="system", app_id=job.app_id,
                                            depth=int(job.message.get("depth", 0)) + 1))
        except Exception:
            self.stats["internal_errors"] += 1
            log.exception("could not announce parked job %s", job.id)

    def _identity(self, job: Job) -> Identity:
        data = job.identity
        if not data:
            return self._anonymous(job.app_id)
        return Identity(app_id=data["app_id"], account_id=data["account_id"], user_id=data["user_id"],
                        email=data["email"], role=data["role"])

    async def replay(self, app_id: str, job_id: str) -> bool:
        """Queue a parked job again; whether there was one."""
        if await self._store.requeue(app_id, job_id, self._clock()) is None:
            return False
        self._backlog = True
        self._wake.set()
        return True

    async def close(self) -> None:
        """Stop: runs under way are abandoned and stay queued for the next start."""
        self._closed = True
        self._unsubscribe()
        tasks = [*self._running.values(), *([self._consumer] if self._consumer is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
