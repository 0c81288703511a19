"""QuickJS sandboxes for function runs: a fresh context for every run, so no run sees another's.

A context holds every built-in (`Array.prototype`, `JSON`, `Object.prototype`...) and the host
globals (`log`, `create`, `env`...). Any run may change them, so a context serves one run and is
dropped: the next run, perhaps another user's, starts from pristine built-ins, as StaticBackend's
fresh VM per run does. Only this module touches QuickJS.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Protocol

import quickjs

PRELUDE = r"""
(function () {
  var hostCall = globalThis.__host, hostLog = globalThis.__log;
  var stringify = JSON.stringify, parse = JSON.parse;
  delete globalThis.__host;
  delete globalThis.__log;
  function show(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return String(value);
    try { var text = stringify(value); return text === undefined ? String(value) : text; }
    catch (e) { return String(value); }
  }
  function log() {
    var parts = [];
    for (var i = 0; i < arguments.length; i++) parts.push(show(arguments[i]));
    hostLog(parts.join(" "));
  }
  globalThis.log = log;
  globalThis.console = { log: log, info: log, warn: log, error: log, debug: log };
  ["create", "list", "getById", "query", "count", "update", "del", "publish", "send", "fetch", "cacheGet",
   "cacheSet", "inc", "dec", "sendMail", "schedule", "runLater",
   "indexDocument", "search"].forEach(function (name) {
    globalThis[name] = function () {
      var args = stringify(Array.prototype.slice.call(arguments));
      return parse(hostCall(name, args === undefined ? "[]" : args));
    };
  });
  globalThis.env = Object.freeze({});  // a run sets its app's secrets; checks see none
  // The run: set `env`, run the source's top level (`scope`) and call the `handle` it defines.
  // JSON is the one captured above, so the answer is JSON whatever the run did to the global one.
  globalThis.__invoke = function (scope, specText) {
    delete globalThis.__invoke;
    var spec = parse(specText);
    globalThis.env = Object.freeze(spec.env || {});
    var handle = scope();
    if (typeof handle !== "function") throw new Error('unable to find function "handle"');
    var args;
    if (spec.kind === "message") {
      if (handle.length === 1) {
        args = [spec.message];
      } else {
        var data = spec.message.data;
        try { data = parse(data); } catch (e) {}
        args = [spec.message.channel, spec.message.type, data];
      }
    } else if (spec.kind === "task") {
      args = handle.length === 1 ? [spec.body] : [spec.name, "fn_call", spec.body];
    } else {
      args = [spec.body, spec.query, spec.headers];
    }
    var text = stringify(handle.apply(null, args));
    return text === undefined ? "null" : text;
  };
})();
"""

# The source becomes the body of a function, so its top-level variables are the run's own. Its
# first line stays line 1, so error positions match what the user wrote.
SCOPE = '(function () {%s\n;return typeof handle === "function" ? handle : undefined;\n})'


class Host(Protocol):
    """What a run's host functions reach: the server's host calls and the run's log."""

    def host(self, name: Any, args: Any) -> str:
        """Answer one host call as JSON text; never raises."""

    def log(self, line: Any) -> None:
        """Keep one log line."""


class Sandbox:
    """A new QuickJS context with the prelude loaded and a function's source compiled, for one run."""

    def __init__(self, source: str, limits: dict[str, int]) -> None:
        self.limits = limits
        # The context's callables reach the run's host through this list, not through `self`:
        # no reference cycle, so a spent context is freed as soon as it is dropped.
        self._host: list[Host] = []
        host = self._host
        self._context = quickjs.Context()
        self._context.set_memory_limit(limits["memory_bytes"])
        self._context.set_max_stack_size(limits["stack_bytes"])
        self._context.add_callable("__host", lambda name, args: host[0].host(name, args))
        self._context.add_callable("__log", lambda line: host[0].log(line))
        self._context.eval(PRELUDE)
        self._invoke = self._context.get("__invoke")
        self._scope = self._context.eval(SCOPE % source)

    def run(self, host: Host, spec: str) -> str:
        """Call `handle` for the one run this sandbox is for; its JSON result."""
        if self._host:
            raise RuntimeError("a sandbox serves one run only")
        self._host.append(host)
        return str(self._invoke(self._scope, spec))


class Sandboxes:
    """The sources of recent function versions, and a sandbox made ahead for the next run."""

    def __init__(self, sources: int = 64) -> None:
        self._sources_size = sources
        self._sources: dict[str, str] = {}
        self._spare: tuple[str, Sandbox] | None = None
        self._spent: Sandbox | None = None

    def source(self, key: str) -> str | None:
        """The source of a function version, if the server sent it already."""
        return self._sources.get(key)

    def keep_source(self, key: str, source: str) -> None:
        """Remember a function version's source (the server sends it only when asked)."""
        self._sources[key] = source
        while len(self._sources) > self._sources_size:
            self._sources.pop(next(iter(self._sources)))

    def take(self, key: str, source: str, limits: dict[str, int]) -> Sandbox:
        """A fresh sandbox for one run: the one made ahead if it is for this version and limits."""
        spare, self._spare = self._spare, None
        if spare is not None and spare[0] == key and spare[1].limits == limits:
            sandbox = spare[1]
        else:
            sandbox = Sandbox(source, limits)
        self._spent = sandbox  # dropped by `prepare`, after the run's answer is on its way
        return sandbox

    def prepare(self, key: str, source: str, limits: dict[str, int]) -> None:
        """Drop the last run's context and make the next run's, while the server reads the answer."""
        self._spent = self._spare = None
        with contextlib.suppress(Exception):  # the run itself makes it again and reports the error
            self._spare = (key, Sandbox(source, limits))


_POSITION = re.compile(r"<input>:(\d+):(\d+)")


def check(source: str, limits: dict[str, int]) -> dict[str, Any]:
    """Evaluate the source with every host call refused; a syntax error names its line.

    Top-level code runs (it usually only defines `handle`), but it can reach nothing: the
    server gives this process no host calls, and kills it at the deadline.
    """
    context = quickjs.Context()
    context.set_memory_limit(limits["memory_bytes"])
    context.set_max_stack_size(limits["stack_bytes"])
    context.add_callable("__host", lambda name, args: failure("no host calls while checking"))
    context.add_callable("__log", lambda line: None)
    try:
        context.eval(PRELUDE)
        context.eval(source)
        if context.eval('typeof handle') != "function":
            return {"op": "checked", "error": "the source does not define a function named handle"}
    except Exception as exc:  # reported to the caller
        message, _, stack = str(exc).strip().partition("\n")
        position = _POSITION.search(stack) or _POSITION.search(message)
        if position:
            where = f"line {position.group(1)}, column {position.group(2)}"
            message = f"{_POSITION.sub('', message).rstrip(' at')} ({where})"
        return {"op": "checked", "error": message}
    return {"op": "checked", "error": None}


def failure(message: str) -> str:
    """A host call's answer that reports `message` as its failure."""
    return json.dumps({"ok": False, "content": message})
