"""A function worker process: runs one invocation at a time in a fresh QuickJS context.

Started by the server as `python -m sblite.functions.worker`; it reads `run` messages on
stdin and answers on stdout. Host functions (`create`, `publish`, ...) are forwarded to the
server, which runs them through the same services as the HTTP API. The server enforces the
wall-time limit by killing this process; memory, stack, host calls and log size are limited
here.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import sys
import time
from typing import Any, BinaryIO

import quickjs

from sblite.functions.protocol import encode, read_blocking

ADDRESS_SPACE_LIMIT = 1024 * 1024 * 1024  # a backstop behind QuickJS' own memory limit
# Below the server's priority: waking a worker should not preempt the event loop, which
# serves every other request (and the worker's own host calls).
WORKER_NICENESS = 5

PRELUDE = r"""
(function () {
  var hostCall = globalThis.__host, hostLog = globalThis.__log;
  delete globalThis.__host;
  delete globalThis.__log;
  function show(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return String(value);
    try { var text = JSON.stringify(value); return text === undefined ? String(value) : text; }
    catch (e) { return String(value); }
  }
  function log() {
    var parts = [];
    for (var i = 0; i < arguments.length; i++) parts.push(show(arguments[i]));
    hostLog(parts.join(" "));
  }
  globalThis.log = log;
  globalThis.console = { log: log, info: log, warn: log, error: log, debug: log };
  var names = ["create", "list", "getById", "query", "count", "update", "del", "publish", "send",
               "fetch", "cacheGet", "cacheSet", "inc", "dec", "sendMail"];
  names.forEach(function (name) {
    globalThis[name] = function () {
      var args = JSON.stringify(Array.prototype.slice.call(arguments));
      return JSON.parse(hostCall(name, args === undefined ? "[]" : args));
    };
  });
  globalThis.env = Object.freeze({});  // each run sets its app's secrets; checks see none
  var baseline = {};
  Object.getOwnPropertyNames(globalThis).forEach(function (name) { baseline[name] = true; });
  // One run: drop every global an earlier run added, then run the source's top level in a
  // fresh scope (`scope`, compiled once per sandbox) and call the `handle` it defines.
  globalThis.__invoke = function (scope, specText) {
    Object.getOwnPropertyNames(globalThis).forEach(function (name) {
      if (!baseline[name]) delete globalThis[name];
    });
    var spec = JSON.parse(specText);
    globalThis.env = Object.freeze(spec.env || {});
    var handle = scope();
    if (typeof handle !== "function") throw new Error('unable to find function "handle"');
    var args;
    if (spec.kind === "message") {
      if (handle.length === 1) {
        args = [spec.message];
      } else {
        var data = spec.message.data;
        try { data = JSON.parse(data); } catch (e) {}
        args = [spec.message.channel, spec.message.type, data];
      }
    } else if (spec.kind === "task") {
      args = handle.length === 1 ? [spec.body] : [spec.name, "fn_call", spec.body];
    } else {
      args = [spec.body, spec.query, spec.headers];
    }
    var result = handle.apply(null, args);
    var text = JSON.stringify(result);
    return text === undefined ? "null" : text;
  };
})();
"""


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
                return _failure(f"host call limit reached ({self.limits['host_calls']} per run)")
            if not isinstance(args, str) or len(args) > self.limits["io_bytes"]:
                return _failure(f"arguments too large (limit {self.limits['io_bytes']} bytes)")
            self._stdout.write(encode({"op": "call", "name": str(name), "logs": self._take_logs()}, args))
            self._stdout.flush()
            reply = read_blocking(self._stdin)
            if reply is None or reply[0].get("op") != "result":
                return _failure("the server did not answer")
            return reply[1].decode()
        except Exception as exc:  # noqa: BLE001 - must not reach QuickJS
            return _failure(f"host call failed: {exc}")

    def _take_logs(self) -> list[str]:
        logs, self.logs = self.logs, []
        return logs


def _failure(message: str) -> str:
    return json.dumps({"ok": False, "content": message})


class Sandbox:
    """A QuickJS context with the prelude loaded, reused for the runs of one function version.

    The source is compiled once, as the body of a function; each run calls that function, so
    its top-level code runs again in a fresh scope (top-level variables start over), after
    the globals an earlier run added are deleted. A run that fails discards the sandbox.
    This costs a fraction of a new context, or of compiling the source, per run.
    """

    def __init__(self, source: str, limits: dict[str, int]) -> None:
        self.invocation: Invocation | None = None
        self.context = quickjs.Context()
        self._apply(limits)
        self.context.add_callable("__host", lambda name, args: self.invocation.host(name, args))
        self.context.add_callable("__log", lambda line: self.invocation.log(line))
        self.context.eval(PRELUDE)
        self._invoke = self.context.get("__invoke")
        # The source's first line stays line 1, so error positions match what the user wrote.
        self._scope = self.context.eval("(function () {" + source +
                                        '\n;return typeof handle === "function" ? handle : undefined;\n})')

    def _apply(self, limits: dict[str, int]) -> None:
        self.limits = limits
        self.context.set_memory_limit(limits["memory_bytes"])
        self.context.set_max_stack_size(limits["stack_bytes"])

    def run(self, invocation: Invocation, spec: str) -> str:
        """Call `handle` for one run; its JSON result."""
        self.invocation = invocation
        if invocation.limits is not self.limits:
            self._apply(invocation.limits)
        return self._invoke(self._scope, spec)


class Sandboxes:
    """The sandboxes and sources of the most recently run function versions."""

    def __init__(self, size: int = 16, sources: int = 64) -> None:
        self._size = size
        self._by_key: dict[str, Sandbox] = {}
        self._sources_size = sources
        self._sources: dict[str, str] = {}

    def source(self, key: str) -> str | None:
        """The source of a function version, if the server sent it already."""
        return self._sources.get(key)

    def keep_source(self, key: str, source: str) -> None:
        """Remember a function version's source (the server sends it only when asked)."""
        _keep_newest(self._sources, key, source, self._sources_size)

    def take(self, key: str, source: str, limits: dict[str, int]) -> Sandbox:
        """The sandbox of a function version (made if needed); it is given back with `give`."""
        sandbox = self._by_key.pop(key, None)
        return sandbox if sandbox is not None else Sandbox(source, limits)

    def give(self, key: str, sandbox: Sandbox) -> None:
        """Keep a sandbox whose run went well."""
        _keep_newest(self._by_key, key, sandbox, self._size)


def _keep_newest(entries: dict[str, Any], key: str, value: Any, size: int) -> None:
    """Store `value`, then drop the oldest entries beyond `size`."""
    entries[key] = value
    while len(entries) > size:
        entries.pop(next(iter(entries)))


def run(key: str, source: str, spec: str, limits: dict[str, int], stdin: BinaryIO, stdout: BinaryIO,
        sandboxes: Sandboxes) -> tuple[dict[str, Any], str]:
    """Call `handle` for one run; the outcome as a `done` message and the result's JSON."""
    invocation = Invocation(limits, stdin, stdout)
    started = time.monotonic()
    outcome: dict[str, Any] = {"op": "done", "ok": True, "error": None}
    value = "null"
    try:
        sandbox = sandboxes.take(key, source, limits)
        value = sandbox.run(invocation, spec)
        if len(value) > limits["io_bytes"]:
            raise ValueError(f"the result is larger than {limits['io_bytes']} bytes")
        sandboxes.give(key, sandbox)
    except Exception as exc:  # noqa: BLE001 - every JS failure is reported, not raised
        value = "null"
        outcome.update(ok=False, error=_describe(exc))
    outcome["logs"] = invocation.logs
    outcome["dropped_logs"] = invocation.dropped_logs
    outcome["host_calls"] = invocation.host_calls
    outcome["duration_ms"] = (time.monotonic() - started) * 1000
    return outcome, value


_POSITION = re.compile(r"<input>:(\d+):(\d+)")


def check(source: str, limits: dict[str, int]) -> dict[str, Any]:
    """Evaluate the source with every host call refused; a syntax error names its line.

    Top-level code runs (it usually only defines `handle`), but it can reach nothing: the
    server gives this process no host calls, and kills it at the deadline.
    """
    context = quickjs.Context()
    context.set_memory_limit(limits["memory_bytes"])
    context.set_max_stack_size(limits["stack_bytes"])
    context.add_callable("__host", lambda name, args: _failure("no host calls while checking"))
    context.add_callable("__log", lambda line: None)
    try:
        context.eval(PRELUDE)
        context.eval(source)
        if context.eval('typeof handle') != "function":
            return {"op": "checked", "error": "the source does not define a function named handle"}
    except Exception as exc:  # noqa: BLE001 - reported to the caller
        message, _, stack = str(exc).strip().partition("\n")
        position = _POSITION.search(stack) or _POSITION.search(message)
        if position:
            message = f"{_POSITION.sub('', message).rstrip(' at')} (line {position.group(1)}, column {position.group(2)})"
        return {"op": "checked", "error": message}
    return {"op": "checked", "error": None}


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
        try:
            os.sched_setscheduler(0, batch, os.sched_param(0))
        except OSError:
            pass


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
            answer, value = check(payload.decode(), limits), ""
        else:
            source = _source(head["key"], stdin, stdout, sandboxes)
            if source is None:
                return
            answer, value = run(head["key"], source, payload.decode(), limits, stdin, stdout, sandboxes)
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
