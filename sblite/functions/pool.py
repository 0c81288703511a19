"""The pool of warm worker processes; the server side of the worker protocol.

A worker runs one invocation at a time. One that passes its deadline is killed and
replaced, so no JavaScript (not even a long C builtin) can hold the server; a worker that
dies takes only its current invocation with it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable

from sblite.functions.protocol import HEADER, Frame, decode, encode, frame_size

log = logging.getLogger(__name__)
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])

HostHandler = Callable[[str, str], Awaitable[str]]


async def _no_host(name: str, args: str) -> str:
    return '{"ok":false,"content":"no host calls while checking"}'


class WorkerDied(RuntimeError):
    """The worker process ended in the middle of an invocation."""


class WorkerGone(WorkerDied):
    """The worker had ended before it was sent the invocation: nothing ran, another may take it."""


class NoWorkerFree(RuntimeError):
    """Every worker stayed busy for as long as the caller would wait: nothing ran."""


@dataclass(frozen=True)
class Request:
    """One invocation for a worker: `run` a function version, or `check` a source."""

    op: str
    source: str
    limits: dict[str, int]
    key: str = ""
    spec: str = ""  # the run's input, JSON


@dataclass
class Outcome:
    """What one invocation produced."""

    ok: bool
    value_json: str = "null"
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    timed_out: bool = False
    busy: bool = False  # it never ran: no worker was free in time
    duration_ms: float = 0.0
    recorded: Awaitable[None] | None = None  # set by the service: done once the job it finished is written

    @property
    def value(self) -> Any:
        """The handler's return value."""
        return json.loads(self.value_json)


class _RunClock:
    """When a run got its worker: its duration counts from there, not from the wait before."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started: float | None = None

    def start(self) -> None:
        """The run has a worker now (again, if the first was found gone before it ran anything)."""
        self._started = self._loop.time()

    def elapsed_ms(self) -> float:
        """Milliseconds since the run got its worker (0 if it never did)."""
        return 0.0 if self._started is None else (self._loop.time() - self._started) * 1000


class Worker:
    """One worker process and the two pipes to it, read and written without blocking the loop.

    The pipes are plain non-blocking file descriptors watched by the event loop, not asyncio
    streams: a frame costs one read callback and one write call, nothing more.
    """

    def __init__(self, process: asyncio.subprocess.Process, to_worker: int, from_worker: int) -> None:
        self.process = process
        self.busy = False
        self._limits_sent: dict[str, int] | None = None
        self._loop = asyncio.get_running_loop()
        self._to_worker, self._from_worker = to_worker, from_worker
        os.set_blocking(to_worker, False)
        os.set_blocking(from_worker, False)
        self._received = bytearray()
        self._unsent = bytearray()
        self._waiter: asyncio.Future[Frame] | None = None
        self._ended = False
        self._loop.add_reader(from_worker, self._readable)

    @classmethod
    async def start(cls) -> Worker:
        """Start a worker with a minimal environment."""
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": PACKAGE_ROOT, "PYTHONHASHSEED": "0",
               "LANG": "C.UTF-8"}
        worker_stdin, to_worker = os.pipe()
        from_worker, worker_stdout = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sblite.functions.worker", stdin=worker_stdin, stdout=worker_stdout,
                env=env, cwd="/")
        except BaseException:
            os.close(to_worker)
            os.close(from_worker)
            raise
        finally:
            os.close(worker_stdin)
            os.close(worker_stdout)
        return cls(process, to_worker, from_worker)

    async def invoke(self, request: Request, host: HostHandler, logs: list[str]) -> Frame:
        """Send a request and serve its host calls until it is answered; log lines go to `logs`."""
        head: dict[str, Any] = {"op": request.op}
        if request.key:
            head["key"] = request.key
        # The worker keeps the last limits it was sent: send them only when they change.
        if request.limits is not self._limits_sent and request.limits != self._limits_sent:
            head["limits"] = self._limits_sent = request.limits
        if self._ended or not self._write(head, request.spec if request.op == "run" else request.source):
            raise WorkerGone("the worker had ended")
        while True:
            head, payload = await self._read()
            logs.extend(head.get("logs", ()))
            op = head["op"]
            if op == "call":
                self._write({"op": "result"}, await host(head["name"], payload.decode()))
            elif op == "need_source":
                self._write({"op": "source"}, request.source)
            else:
                return head, payload

    @property
    def ended(self) -> bool:
        """Whether its output has ended (the process died or is dying)."""
        return self._ended

    def _write(self, head: dict[str, Any], payload: str | bytes = b"") -> bool:
        """Send a frame (the rest follows as the pipe drains); False if the worker is gone."""
        data = encode(head, payload)
        if self._to_worker < 0:
            return False
        if self._unsent:  # earlier bytes still wait for room in the pipe
            self._unsent += data
            return True
        try:
            written = os.write(self._to_worker, data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError:  # the worker is gone (reading its output says so too)
            return False
        if written < len(data):
            self._unsent += memoryview(data)[written:]
            self._loop.add_writer(self._to_worker, self._writable)
        return True

    def _writable(self) -> None:
        try:
            written = os.write(self._to_worker, self._unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            written = len(self._unsent)
        del self._unsent[:written]
        if not self._unsent:
            self._loop.remove_writer(self._to_worker)

    async def _read(self) -> Frame:
        self._waiter = self._loop.create_future()
        self._deliver()
        return await self._waiter

    def _readable(self) -> None:
        try:
            data = os.read(self._from_worker, 1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._received += data
            self._deliver()
        else:
            self._ended = True
            self._loop.remove_reader(self._from_worker)
            self._deliver()

    def _deliver(self) -> None:
        """Hand a complete frame to the waiting reader, or the reason none will come."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            if len(self._received) >= HEADER.size:
                left, head_size = frame_size(bytes(self._received[:HEADER.size]))
                end = HEADER.size + left
                if len(self._received) >= end:
                    frame = decode(bytes(self._received[HEADER.size:end]), head_size)
                    del self._received[:end]
                    waiter.set_result(frame)
                    return
            if self._ended:
                waiter.set_exception(WorkerDied("the worker process ended"))
        except ValueError as exc:
            waiter.set_exception(WorkerDied(f"the worker sent a bad message: {exc}"))

    def kill(self) -> None:
        """End the process at once and let go of its pipes."""
        if self.process.returncode is None:
            self.process.kill()
        self._close_pipes()

    def _close_pipes(self) -> None:
        self._to_worker = self._close(self._to_worker)
        self._from_worker = self._close(self._from_worker)
        self._ended = True

    def _close(self, fd: int) -> int:
        if fd >= 0:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
            os.close(fd)
        return -1

    async def stop(self) -> None:
        """Close its input and wait for it to end."""
        self._to_worker = self._close(self._to_worker)  # the worker reads the end of its input and exits
        try:
            await asyncio.wait_for(self.process.wait(), 2)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._close_pipes()


def _give_up(handed: asyncio.Future[Worker]) -> None:
    if not handed.done():
        handed.set_exception(NoWorkerFree())


class WorkerPool:
    """Warm workers, `warm` of them at first and more (up to `size`) while all are busy."""

    def __init__(self, size: int, warm: int = 2) -> None:
        self.size = size
        self._warm = min(size, warm)
        self._idle: deque[Worker] = deque()
        self._waiters: deque[asyncio.Future[Worker]] = deque()  # runs waiting for a worker, oldest first
        self._all: set[Worker] = set()
        self._starting = 0
        self.replaced = 0
        self._closed = False
        self._started: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start the first workers (done on first use when not called)."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start_warm())
        await self._started

    async def _start_warm(self) -> None:
        for worker in await asyncio.gather(*(Worker.start() for _ in range(self._warm))):
            self._add(worker)

    def _grow(self) -> None:
        """Start one more worker when every worker is busy and the pool may still grow."""
        if not self._idle and len(self._all) + self._starting < self.size:
            self._spawn()

    def _spawn(self) -> None:
        if self._closed:
            return
        self._starting += 1
        starter = asyncio.ensure_future(self._start_one())
        self._watchers.add(starter)
        starter.add_done_callback(self._watchers.discard)

    async def _start_one(self) -> None:
        try:
            worker = await Worker.start()
        finally:
            self._starting -= 1
        if self._closed:
            worker.kill()
        else:
            self._add(worker)

    def _add(self, worker: Worker) -> None:
        self._all.add(worker)
        self._release(worker)
        watcher = asyncio.ensure_future(self._watch(worker))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, worker: Worker) -> None:
        """Replace a worker that dies while idle (one that dies mid-run is replaced by its run)."""
        await worker.process.wait()
        if not worker.busy and worker in self._all and not self._closed:
            log.warning("function worker %d exited (code %s) while idle; starting another",
                        worker.process.pid, worker.process.returncode)
            self._replace(worker)

    async def close(self) -> None:
        """Stop every worker."""
        self._closed = True
        await asyncio.gather(*(worker.stop() for worker in tuple(self._all)), return_exceptions=True)
        self._all.clear()
        for watcher in tuple(self._watchers):
            watcher.cancel()

    async def check(self, source: str, limits: dict[str, int], timeout: float) -> str | None:
        """The syntax error in `source`, or None; compiled in a worker, never run."""
        outcome = await self.run(Request("check", source, limits), _no_host, timeout)
        if not outcome.ok:
            return f"its top-level code did not finish: {outcome.error}"
        return None if outcome.value is None else str(outcome.value)

    async def run(self, request: Request, host: HostHandler, timeout: float, wait: float | None = None) -> Outcome:
        """Run one invocation within `timeout` seconds of wall time on a worker.

        Waiting for a free worker is not counted; with `wait`, the run is given up (and never
        runs) when no worker is free within that many seconds.
        """
        await self.start()
        logs: list[str] = []
        clock = _RunClock()
        try:
            done, value = await self._invoke(request, host, logs, timeout, clock, wait)
        except NoWorkerFree:
            return Outcome(ok=False, error=f"every function worker stayed busy for {wait:g} s: the function did not "
                                           "run; try again later", busy=True)
        except TimeoutError:
            return Outcome(ok=False, error=f"timeout: the function ran for more than {timeout:g} s and was stopped",
                           logs=logs, timed_out=True, duration_ms=clock.elapsed_ms())
        except WorkerDied as exc:
            return Outcome(ok=False, error=f"the function's worker died: {exc}", logs=logs,
                           duration_ms=clock.elapsed_ms())
        if done["op"] == "checked":  # its value: the syntax error, or null
            return Outcome(ok=True, value_json=json.dumps(done["error"]))
        if done.get("dropped_logs"):
            logs.append(f"({done['dropped_logs']} more log lines dropped: the limit is reached)")
        return Outcome(ok=done["ok"], value_json=value.decode() if done["ok"] else "null",
                       error=done.get("error"), logs=logs, duration_ms=clock.elapsed_ms())

    async def _invoke(self, request: Request, host: HostHandler, logs: list[str], timeout: float,
                      clock: _RunClock, wait: float | None) -> Frame:
        """Invoke on a free worker; one found dead before it got the request is replaced and another used."""
        while True:
            worker = self._take_idle() or await self._take(wait)
            worker.busy = True
            healthy = False
            try:
                clock.start()
                async with asyncio.timeout(timeout):
                    frame = await worker.invoke(request, host, logs)
                healthy = True
                return frame
            except WorkerGone:
                continue
            finally:
                worker.busy = False
                if healthy:
                    self._release(worker)
                else:  # dead, or stopped mid-run (its deadline): never reused
                    self._replace(worker)

    def _take_idle(self) -> Worker | None:
        """A live idle worker at once, if one is free (runs that wait are handed workers first)."""
        while self._idle:
            worker = self._idle.popleft()
            if self._alive(worker):
                return worker
        return None

    async def _take(self, wait: float | None) -> Worker:
        """Wait for a worker (at most `wait` seconds, else NoWorkerFree); the oldest waiter is served first."""
        self._grow()
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + wait
        while True:
            handed: asyncio.Future[Worker] = loop.create_future()
            self._waiters.append(handed)
            timer = None if deadline is None else loop.call_at(deadline, _give_up, handed)
            try:
                worker = await handed
            except asyncio.CancelledError:
                if handed.done() and not handed.cancelled() and handed.exception() is None:
                    self._release(handed.result())  # handed over as the caller gave up: pass it on
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            if self._alive(worker):
                return worker

    def _release(self, worker: Worker) -> None:
        """Hand a free worker to the oldest run still waiting, or keep it idle."""
        while self._waiters:
            handed = self._waiters.popleft()
            if not handed.done():
                handed.set_result(worker)
                return
        self._idle.append(worker)

    def _alive(self, worker: Worker) -> bool:
        """Whether an idle worker can take a run; one that died while idle is replaced."""
        if worker in self._all and not worker.ended:
            return True
        self._replace(worker)  # its watcher may not have noticed yet
        return False

    def _replace(self, worker: Worker) -> None:
        """Kill a worker and start another in the background."""
        if worker not in self._all:
            return
        worker.kill()
        self._all.discard(worker)
        self.replaced += 1
        self._spawn()

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [worker.process.pid for worker in self._all if worker.process.returncode is None]
