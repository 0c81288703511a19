"""Message-triggered runs: durable, at least once, retried with backoff, parked at the end.

Every message on the bus that matches a function becomes a job row in SQLite before it
runs; a run that succeeds deletes its job in the same transaction that records the run. A
failed run is retried with backoff and parked after the last attempt (visible at /fn/jobs,
replayable). Jobs still queued when the server stops run when it starts again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Callable

from sblite import ids
from sblite.functions.host import MAX_DEPTH, RunContext
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
            "token": "", "auth": auth, "base": "", "depth": message.extra.get("depth", 0),
            "origin": message.extra.get("origin", "")}


def _identity_json(identity: Identity | None) -> dict[str, Any] | None:
    if identity is None:
        return None
    return {"app_id": identity.app_id, "account_id": identity.account_id, "user_id": identity.user_id,
            "email": identity.email, "role": identity.role}


class Dispatcher:
    """Subscribes to the bus and runs the functions each message triggers."""

    def __init__(self, functions: FunctionService, store: FunctionStore, bus: EventBus, max_attempts: int,
                 anonymous: Callable[[str], Identity], clock: Callable[[], float] = time.time) -> None:
        self._functions = functions
        self._store = store
        self._max_attempts = max_attempts
        self._anonymous = anonymous
        self._clock = clock
        self._tasks: set[asyncio.Task] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self.stats: Counter[str] = Counter()
        self._unsubscribes = [bus.subscribe(self.on_message, durable=True), bus.subscribe_staged(self.stage)]

    async def resume(self) -> None:
        """Run the jobs a previous process left queued."""
        jobs = await self._store.queued_jobs()
        for job in jobs:
            self._schedule(job)
        if jobs:
            log.info("resuming %d queued function runs", len(jobs))

    def on_message(self, message: Message) -> asyncio.Future | None:
        """Bus subscriber: queue one job per function the message triggers; returns the queueing."""
        matches = self._triggered(message)
        if not matches:
            return None
        queued = asyncio.ensure_future(self._enqueue(self.jobs_for(matches, [message])))
        self._track(queued)
        return asyncio.shield(queued)

    def stage(self, template: Message) -> "_StagedJobs | None":
        """Bus stager: the jobs of a change's messages, stored in the change's own transaction."""
        matches = self._triggered(template)
        return _StagedJobs(self, matches) if matches else None

    def _triggered(self, message: Message) -> list[FunctionRecord]:
        matches = self._functions.matching(message)
        if matches and message.extra.get("depth", 0) >= MAX_DEPTH:
            self.stats["dropped_too_deep"] += len(matches)
            log.warning("not running %d function(s) for %s on %s: functions triggered each other %d deep",
                        len(matches), message.type, message.channel, MAX_DEPTH)
            return []
        return matches

    def jobs_for(self, matches: list[FunctionRecord], messages: list[Message]) -> list[Job]:
        """One job per message and function (pure: also called in the writer's thread)."""
        jobs = []
        for message in messages:
            payload, identity = _message_json(message), _identity_json(message.identity)
            jobs += [Job(id=ids.new_id(), app_id=message.app_id, function_id=record.id, message=payload,
                         identity=identity, attempts=0, next_at=self._clock(), status="queued", last_error=None)
                     for record in matches]
        return jobs

    async def _enqueue(self, jobs: list[Job]) -> None:
        await self._store.enqueue(jobs, now_text())
        self.start(jobs)

    def start(self, jobs: list[Job]) -> None:
        """Run jobs that are stored."""
        self.stats["queued"] += len(jobs)
        for job in jobs:
            self._track(asyncio.ensure_future(self._run(job)))

    def _schedule(self, job: Job) -> None:
        delay = max(0.0, job.next_at - self._clock())
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def start() -> None:
            self._timers.discard(handle)
            self._track(asyncio.ensure_future(self._run(job)))

        handle = loop.call_later(delay, start)
        self._timers.add(handle)

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats["internal_errors"] += 1
            log.error("function dispatch failed: %r", task.exception())

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
            self.stats["succeeded"] += 1
            return
        attempts = job.attempts + 1
        park = attempts >= self._max_attempts
        next_at = self._clock() + BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)]
        await self._store.reschedule(job.id, attempts, next_at, outcome.error or "failed", park)
        if park:
            self.stats["parked"] += 1
            log.warning("function %s parked a message after %d attempts: %s", record.name, attempts, outcome.error)
            return
        self.stats["retried"] += 1
        self._schedule(Job(id=job.id, app_id=job.app_id, function_id=job.function_id, message=job.message,
                           identity=job.identity, attempts=attempts, next_at=next_at, status="queued",
                           last_error=outcome.error))

    def _identity(self, job: Job) -> Identity:
        data = job.identity
        if not data:
            return self._anonymous(job.app_id)
        return Identity(app_id=data["app_id"], account_id=data["account_id"], user_id=data["user_id"],
                        email=data["email"], role=data["role"])

    async def replay(self, app_id: str, job_id: str) -> bool:
        """Queue a parked job again; whether there was one."""
        job = await self._store.requeue(app_id, job_id, self._clock())
        if job is None:
            return False
        self._schedule(job)
        return True

    async def close(self) -> None:
        """Stop: runs under way are abandoned and stay queued for the next start."""
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _StagedJobs:
    """The jobs a change triggers: stored in its transaction, started once it has committed."""

    def __init__(self, dispatcher: Dispatcher, matches: list[FunctionRecord]) -> None:
        self._dispatcher = dispatcher
        self._matches = matches
        self._jobs: list[Job] = []

    def store(self, transaction: Any, messages: list[Message]) -> None:
        """Write the jobs with the change (in the writer's thread; a write may run twice, the last counts)."""
        jobs = self._dispatcher.jobs_for(self._matches, messages)
        FunctionStore.enqueue_in(transaction, jobs, now_text())
        self._jobs = jobs

    def committed(self) -> None:
        """Start the stored jobs."""
        self._dispatcher.start(self._jobs)
