"""A function worker process: runs one invocation at a time, each in a fresh QuickJS context.

Started by the server as `python -m sblite.functions.worker`; it reads `run` messages on
stdin and answers on stdout. Host functions (`create`, `publish`, ...) are forwarded to the
server, which runs them through the same services as the HTTP API. The server enforces the
wall-time limit by killing this process; memory, stack, host calls and log size are limited
here.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
import time
from typing import Any, BinaryIO

from sblite.functions.protocol import encode, read_blocking
from sblite.functions.sandbox import Sandboxes, check, failure

ADDRESS_SPACE_LIMIT = 1024 * 1024 * 1024  # a backstop behind QuickJS' own memory limit
# Below the server's priority: waking a worker should not preempt the event loop, which
# serves every other request (and the worker's own host calls).
WORKER_NICENESS = 5


class Invocation:
    """The state of one run: its logs and its host-call budget."""

    def __init__(self, limits: dict[str, int], stdin: BinaryIO, stdout: BinaryIO) -> None:
        self.limits = limits
        self.logs: list[str] = []
        self.logged = 0
        self.dropped_logs = 0
        self.host_calls = 0
        self._stdin, self._stdout = stdin, stdout

    def log(self, line: Any) -> None:
        """Keep one log line, within the line-count and line-size limits."""
        text = str(line)
        if self.logged >= self.limits["log_lines"]:
            self.dropped_logs += 1
            return
        self.logged += 1
        limit = self.limits["log_line_bytes"]
        if len(text.encode()) > limit:
            text = text.encode()[:limit].decode(errors="ignore") + " …(truncated)"
        self.logs.append(text)

    def host(self, name: Any, args: Any) -> str:
        """Forward one host call to the server; never raises (QuickJS cannot take a Python error)."""
        try:
            self.host_calls += 1
            if self.host_calls > self.limits["host_calls"]:
                return failure(f"host call limit reached ({self.limits['host_calls']} per run)")
            if not isinstance(args, str) or len(args) > self.limits["io_bytes"]:
                return failure(f"arguments too large (limit {self.limits['io_bytes']} bytes)")
            self._stdout.write(encode({"op": "call", "name": str(name), "logs": self._take_logs()}, args))
            self._stdout.flush()
            reply = read_blocking(self._stdin)
            if reply is None or reply[0].get("op") != "result":
                return failure("the server did not answer")
            return reply[1].decode()
        except Exception as exc:  # must not reach QuickJS
            return failure(f"host call failed: {exc}")

    def _take_logs(self) -> list[str]:
        logs, self.logs = self.logs, []
        return logs


def run(key: str, source: str, spec: str, limits: dict[str, int], stdin: BinaryIO, stdout: BinaryIO,
        sandboxes: Sandboxes) -> tuple[dict[str, Any], str]:
    """Call `handle` for one run; the outcome as a `done` message and the result's JSON."""
    invocation = Invocation(limits, stdin, stdout)
    started = time.monotonic()
    outcome: dict[str, Any] = {"op": "done", "ok": True, "error": None}
    value = "null"
    try:
        value = sandboxes.take(key, source, limits).run(invocation, spec)
        if len(value) > limits["io_bytes"]:
            raise ValueError(f"the result is larger than {limits['io_bytes']} bytes")
    except Exception as exc:  # every JS failure is reported, not raised
        value = "null"
        outcome.update(ok=False, error=_describe(exc))
    outcome["logs"] = invocation.logs
    outcome["dropped_logs"] = invocation.dropped_logs
    outcome["host_calls"] = invocation.host_calls
    outcome["duration_ms"] = (time.monotonic() - started) * 1000
    return outcome, value


MAX_ERROR_LINES = 4  # the message and the innermost frames of its stack


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "out of memory" in text or text == "null":
        return "out of memory: the function used more than its memory limit"
    lines = text.splitlines()
    return "\n".join(lines[:MAX_ERROR_LINES]) + ("\n    ..." if len(lines) > MAX_ERROR_LINES else "")


def _no_wakeup_preemption() -> None:
    """Become a batch task (Linux): once woken, wait for a free CPU instead of preempting."""
    # The event loop answers every host call and request. A batch task keeps its CPU share but
    # does not push the loop off its CPU each time a frame reaches the worker.
    batch = getattr(os, "SCHED_BATCH", None)
    if batch is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, batch, os.sched_param(0))


def main() -> None:
    """Serve `run` requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops its workers
    try:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
        os.nice(WORKER_NICENESS)
    except (ValueError, OSError):
        pass
    _no_wakeup_preemption()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but protocol messages may reach the real stdout
    sandboxes = Sandboxes()
    limits: dict[str, int] = {}
    while True:
        frame = read_blocking(stdin)
        if frame is None:
            return
        head, payload = frame
        limits = head.get("limits", limits)  # sent when they change, not with every run
        if head["op"] == "check":
            _answer(stdout, check(payload.decode(), limits), "")
            continue
        source = _source(head["key"], stdin, stdout, sandboxes)
        if source is None:
            return
        _answer(stdout, *run(head["key"], source, payload.decode(), limits, stdin, stdout, sandboxes))
        sandboxes.prepare(head["key"], source, limits)  # off the run's path: the server has its answer


def _answer(stdout: BinaryIO, answer: dict[str, Any], value: str) -> None:
    stdout.write(encode(answer, value))
    stdout.flush()


def _source(key: str, stdin: BinaryIO, stdout: BinaryIO, sandboxes: Sandboxes) -> str | None:
    """A function version's source: known already, or asked of the server (None at end of input)."""
    source = sandboxes.source(key)
    if source is None:
        stdout.write(encode({"op": "need_source"}))
        stdout.flush()
        frame = read_blocking(stdin)
        if frame is None:
            return None
        source = frame[1].decode()
        sandboxes.keep_source(key, source)
    return source


if __name__ == "__main__":
    main()
