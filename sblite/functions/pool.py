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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from sblite.functions.protocol import HEADER, Frame, decode, encode, frame_size

log = logging.getLogger(__name__)
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])

HostHandler = Callable[[str, str], Awaitable[str]]


async def _no_host(name: str, args: str) -> str:
    return '{"ok":false,"content":"no host calls while checking"}'


class WorkerDied(RuntimeError):
    """The worker process ended in the middle of an invocation."""


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
    duration_ms: float = 0.0

    @property
    def value(self) -> Any:
        """The handler's return value."""
        return json.loads(self.value_json)


class Worker:
    """One worker process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.busy = False
        self._limits_sent: dict[str, int] | None = None

    @classmethod
    async def start(cls) -> "Worker":
        """Start a worker with a minimal environment."""
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": PACKAGE_ROOT, "PYTHONHASHSEED": "0",
               "LANG": "C.UTF-8"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sblite.functions.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env, cwd="/")
        return cls(process)

    async def invoke(self, request: Request, host: HostHandler, logs: list[str]) -> Frame:
        """Send a request and serve its host calls until it is answered; log lines go to `logs`."""
        head: dict[str, Any] = {"op": request.op}
        if request.key:
            head["key"] = request.key
        if request.limits != self._limits_sent:  # the worker keeps the last limits it was sent
            head["limits"] = self._limits_sent = request.limits
        self._write(head, request.spec if request.op == "run" else request.source)
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

    def _write(self, head: dict[str, Any], payload: str | bytes = b"") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(encode(head, payload))

    async def _read(self) -> Frame:
        assert self.process.stdout is not None
        try:
            left, head_size = frame_size(await self.process.stdout.readexactly(HEADER.size))
            return decode(await self.process.stdout.readexactly(left), head_size)
        except ValueError as exc:
            raise WorkerDied(f"the worker sent a bad message: {exc}") from None
        except asyncio.IncompleteReadError:
            raise WorkerDied("the worker process ended") from None

    def kill(self) -> None:
        """End the process at once."""
        if self.process.returncode is None:
            self.process.kill()

    async def stop(self) -> None:
        """Close its input and wait for it to end."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 2)
        except asyncio.TimeoutError:
            self.kill()
            await self.process.wait()


class WorkerPool:
    """Warm workers, `warm` of them at first and more (up to `size`) while all are busy."""

    def __init__(self, size: int, warm: int = 2) -> None:
        self.size = size
        self._warm = min(size, warm)
        self._idle: asyncio.Queue[Worker] = asyncio.Queue()
        self._all: set[Worker] = set()
        self._starting = 0
        self.replaced = 0
        self._closed = False
        self._started: asyncio.Task | None = None
        self._watchers: set[asyncio.Task] = set()

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
        if self._idle.empty() and not self._closed and len(self._all) + self._starting < self.size:
            self._starting += 1
            grower = asyncio.ensure_future(self._start_one())
            self._watchers.add(grower)
            grower.add_done_callback(self._watchers.discard)

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
        self._idle.put_nowait(worker)
        watcher = asyncio.ensure_future(self._watch(worker))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, worker: Worker) -> None:
        """Replace a worker that dies while idle (one that dies mid-run is replaced by its run)."""
        await worker.process.wait()
        if not worker.busy and worker in self._all and not self._closed:
            log.warning("function worker %d exited (code %s) while idle; starting another",
                        worker.process.pid, worker.process.returncode)
            await self._replace(worker)

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
        return outcome.value

    async def run(self, request: Request, host: HostHandler, timeout: float) -> Outcome:
        """Run one invocation within `timeout` seconds of wall time."""
        await self.start()
        self._grow()
        worker = await self._idle.get()
        while worker not in self._all:  # replaced by its watcher after it died while idle
            worker = await self._idle.get()
        worker.busy = True
        logs: list[str] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        healthy = False
        try:
            async with asyncio.timeout(timeout):
                done, value = await worker.invoke(request, host, logs)
            healthy = True
            if done["op"] == "checked":  # its value: the syntax error, or null
                return Outcome(ok=True, value_json=json.dumps(done["error"]))
            if done.get("dropped_logs"):
                logs.append(f"({done['dropped_logs']} more log lines dropped: the limit is reached)")
            return Outcome(ok=done["ok"], value_json=value.decode() if done["ok"] else "null",
                           error=done.get("error"), logs=logs, duration_ms=(loop.time() - started) * 1000)
        except TimeoutError:
            return Outcome(ok=False, error=f"timeout: the function ran for more than {timeout:g} s and was stopped",
                           logs=logs, timed_out=True, duration_ms=(loop.time() - started) * 1000)
        except WorkerDied as exc:
            return Outcome(ok=False, error=f"the function's worker died: {exc}", logs=logs,
                           duration_ms=(loop.time() - started) * 1000)
        finally:
            worker.busy = False
            if healthy:
                self._idle.put_nowait(worker)
            else:
                await self._replace(worker)

    async def _replace(self, worker: Worker) -> None:
        if worker not in self._all:
            return
        worker.kill()
        self._all.discard(worker)
        self.replaced += 1
        if not self._closed:
            self._add(await Worker.start())

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [worker.process.pid for worker in self._all if worker.process.returncode is None]
