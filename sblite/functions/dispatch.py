"""Message-triggered runs: durable, at least once, retried with backoff, parked at the end.

Every message on the bus that matches a function becomes a job row in SQLite before it
runs; a run that succeeds deletes its job in the same transaction that records the run. A
failed run is retried with backoff and parked after the last attempt (visible at /fn/jobs,
replayable). Jobs still queued when the server stops run when it starts again.

SQLite is the queue; memory holds at most `max_running` runs (running or waiting for a
worker). When that many are held, further jobs stay in SQLite, and as runs finish the
oldest due jobs are read back and started, so a burst of messages costs disk, not memory.
A refill reads on from the last job it started (not the running ones again); before it
decides the backlog is gone it reads once from the start, which also finds retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Callable, Sequence

from sblite import ids
from sblite.functions.host import MAX_DEPTH, RunContext
from sblite.functions.pool import Outcome
from sblite.functions.service import FunctionService
from sblite.model import Identity, Message
from sblite.services.bus import EventBus
from sblite.store import FunctionStore
from sblite.store.functions import FunctionRecord, Job
from sblite.timeutil import now_text

log = logging.getLogger(__name__)
BACKOFF_SECONDS = (1.0, 5.0, 30.0, 120.0)


def _message_json(message: Message) -> dict[str, Any]:
    auth = message.identity.auth_json() if message.identity else {"accountId": "", "userId": "", "email": "",
                                                                   "role": 0}
    return {"sid": message.sid, "type": message.type, "data": message.data, "channel": message.channel,
            "token": "", "auth": auth, "base": "", "depth": message.depth,
            "origin": message.origin}


def _identity_json(identity: Identity | None) -> dict[str, Any] | None:
    if identity is None:
        return None
    return {"app_id": identity.app_id, "account_id": identity.account_id, "user_id": identity.user_id,
            "email": identity.email, "role": identity.role}


class Dispatcher:
    """Subscribes to the bus and runs the functions each message triggers."""

    def __init__(self, functions: FunctionService, store: FunctionStore, bus: EventBus, max_attempts: int,
                 anonymous: Callable[[str], Identity], max_running: int = 256,
                 clock: Callable[[], float] = time.time) -> None:
        self._functions = functions
        self._store = store
        self._max_attempts = max_attempts
        self._anonymous = anonymous
        self._max_running = max_running
        self._refill_room = max(1, max_running // 4)  # read SQLite again once this many runs have finished
        self._clock = clock
        # A job stays here until SQLite shows its outcome (deleted, rescheduled or parked).
        self._running: dict[str, asyncio.Task] = {}
        self._backlog = False  # SQLite may hold due jobs that are not running
        self._changes = 0  # counts wake-ups: a refill that found nothing new reads again if it moved
        self._finished_while_reading: set[str] | None = None
        self._cursor = 0  # the newest job a refill started; 0 = read from the oldest
        self._unread = 0  # running jobs started as they were stored, so not behind the cursor
        self._refill: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._closed = False
        self.stats: Counter[str] = Counter()
        self.peak_held = 0  # the most runs held in memory at once
        self._unsubscribes = [bus.subscribe_durable(self)]

    @property
    def held(self) -> int:
        """Runs held in memory now (running, or waiting for a worker)."""
        return len(self._running)

    async def resume(self) -> None:
        """Run the jobs a previous process left queued (from SQLite, as room allows)."""
        self._read_from_start()

    def wants(self, message: Message) -> bool:
        """Durable subscriber: whether the message triggers a function (that may still run)."""
        return message.depth < MAX_DEPTH and bool(self._functions.matching(message))

    def store(self, tx: Any, messages: Sequence[Message]) -> None:
        """Durable subscriber: queue one job per message and function it triggers (touches only `tx`)."""
        jobs = [job for message in messages for job in self._jobs_for(message)]
        FunctionStore.enqueue_in(tx, jobs, now_text())

    def committed(self, messages: Sequence[Message]) -> None:
        """Durable subscriber: the jobs of `messages` are stored; wake up to run them."""
        queued = 0
        for message in messages:
            matches = self._functions.matching(message)
            if matches and message.depth >= MAX_DEPTH:
                self.stats["dropped_too_deep"] += len(matches)
                log.warning("not running %d function(s) for %s on %s: functions triggered each other %d deep",
                            len(matches), message.type, message.channel, MAX_DEPTH)
            else:
                queued += len(matches)
        if queued:
            self.stats["queued"] += queued
            self._backlog = True
            self._wake()

    def _jobs_for(self, message: Message) -> list[Job]:
        """One job per function the message triggers."""
        if message.depth >= MAX_DEPTH:
            return []
        payload, identity = _message_json(message), _identity_json(message.identity)
        return [Job(id=ids.new_id(), app_id=message.app_id, function_id=record.id, message=payload,
                    identity=identity, attempts=0, next_at=self._clock(), status="queued", last_error=None)
                for record in self._functions.matching(message)]

    def _launch(self, job: Job) -> None:
        if self._closed:
            return
        task = asyncio.ensure_future(self._run(job))
        self._running[job.id] = task
        self.peak_held = max(self.peak_held, len(self._running))
        if job.seq:
            self._cursor = max(self._cursor, job.seq)
        else:
            self._unread += 1
        task.add_done_callback(lambda done: self._finished(job, done))

    def _finished(self, job: Job, task: asyncio.Task) -> None:
        job_id = job.id
        self._running.pop(job_id, None)
        if not job.seq:
            self._unread -= 1
        if self._finished_while_reading is not None:
            self._finished_while_reading.add(job_id)
        self._done(task)
        if self._backlog and self._max_running - len(self._running) >= self._refill_room:
            self._wake()

    def _wake(self) -> None:
        """Start a refill from SQLite unless one is under way (which then reads again)."""
        self._changes += 1
        if not self._closed and (self._refill is None or self._refill.done()):
            self._refill = asyncio.ensure_future(self._fill())
            self._refill.add_done_callback(self._done)

    async def _fill(self) -> None:
        """Start the oldest due jobs that are not running, while there is room."""
        while self._backlog and not self._closed:
            room = self._max_running - len(self._running)
            if room < self._refill_room and self._running:
                return  # finishing runs wake the refill again once there is room for a batch
            seen, cursor = self._changes, self._cursor
            # After the cursor, only jobs started as they were stored can be running.
            limit = room + (self._unread if cursor else len(self._running))
            self._finished_while_reading = finished = set()
            try:  # a job that finishes meanwhile may still look queued in what is read
                due = await self._store.due_jobs(self._clock(), limit, cursor)
            finally:
                self._finished_while_reading = None
            fresh = [job for job in due if job.id not in self._running and job.id not in finished][:room]
            for job in fresh:
                self._launch(job)
            if not fresh and seen == self._changes:
                if cursor:  # nothing new after the cursor: look once from the start
                    self._cursor = 0
                    continue
                self._backlog = False  # every due job is running
                await self._wake_when_due()

    async def _wake_when_due(self) -> None:
        """Set the timer for the earliest job still waiting for its retry."""
        due = await self._store.next_due(self._clock())
        if due is not None:
            self._wake_at(due)

    def _wake_at(self, due: float) -> None:
        if self._closed or (self._timer is not None and self._timer_due <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = asyncio.get_running_loop().call_later(max(0.0, due - self._clock()), self._due)

    def _due(self) -> None:
        self._timer = None
        self._read_from_start()

    def _read_from_start(self) -> None:
        """Refill from the oldest queued job: retries, replays and a restart's jobs are behind the cursor."""
        self._cursor = 0
        self._backlog = True
        self._wake()

    def _done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.stats["internal_errors"] += 1
            log.error("function dispatch failed", exc_info=task.exception())

    async def _run(self, job: Job) -> None:
        record = self._functions.by_id(job.function_id)
        if record is None:
            return  # deleted with its jobs
        identity = self._identity(job)
        depth = job.message.get("depth", 0)
        context = RunContext(job.app_id, identity, record.id, depth)
        message = {k: v for k, v in job.message.items() if k not in ("depth", "origin")}
        outcome = await self._functions.run(record, {"kind": "message", "message": message}, context,
                                            record.trigger, job.message.get("sid") or None, job.id)
        if outcome.ok:
            try:
                if outcome.recorded is not None:
                    await outcome.recorded  # the job is deleted: it cannot be read back as queued
                self.stats["succeeded"] += 1
                return
            except Exception as exc:  # logged by the recorder; the job is still queued
                outcome = Outcome(ok=False, error=f"the run could not be recorded: {exc}")
        attempts = job.attempts + 1
        park = attempts >= self._max_attempts
        next_at = self._clock() + BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
        await self._store.reschedule(job.id, attempts, next_at, outcome.error or "failed", park)
        if park:
            self.stats["parked"] += 1
            log.warning("function %s parked a message after %d attempts: %s", record.name, attempts, outcome.error)
            return
        self.stats["retried"] += 1
        self._wake_at(next_at)

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
        self._read_from_start()
        return True

    async def close(self) -> None:
        """Stop: runs under way are abandoned and stay queued for the next start."""
        self._closed = True
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        if self._timer is not None:
            self._timer.cancel()
        tasks = [*self._running.values(), *([self._refill] if self._refill is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
