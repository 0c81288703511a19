"""Functions: management, web calls, and recording every run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sblite import ids
from sblite.channels import validate_channel
from sblite.errors import ApiError, BadRequest, Conflict, NotFound
from sblite.functions.host import HostApi, RunContext
from sblite.functions.pool import Outcome, Request, WorkerPool
from sblite.functions.recorder import RunRecorder
from sblite.jsonutil import dumps_stored
from sblite.model import Identity, Message
from sblite.store import Duplicate, FunctionStore
from sblite.store.functions import FunctionRecord, RunRecord
from sblite.timeutil import now_text

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SOURCE_BYTES = 1024 * 1024
MAX_SECRET_BYTES = 64 * 1024
WEB = "web"


@dataclass(frozen=True)
class FunctionLimits:
    """Per-run limits, from the config."""

    timeout_seconds: float = 5
    memory_bytes: int = 32 * 1024 * 1024
    stack_bytes: int = 1024 * 1024
    host_calls: int = 1000
    io_bytes: int = 1024 * 1024
    log_lines: int = 100
    log_line_bytes: int = 8192
    history: int = 100
    web_wait_seconds: float = 30  # how long a web call waits for a free worker

    def for_worker(self) -> dict[str, int]:
        """The limits the worker applies itself."""
        return {"memory_bytes": self.memory_bytes, "stack_bytes": self.stack_bytes, "host_calls": self.host_calls,
                "io_bytes": self.io_bytes, "log_lines": self.log_lines, "log_line_bytes": self.log_line_bytes}


def validate_name(name: Any) -> str:
    """A function name, or BadRequest."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadRequest("invalid function name: use 1 to 64 characters among A-Z, a-z, 0-9, '_' and '-'")
    return name


def run_json(run: RunRecord) -> dict[str, Any]:
    """A run as the API shows it (StaticBackend's ExecHistory, plus sblite's fields)."""
    return {"id": run.id, "functionId": run.function_id, "version": run.version, "trigger": run.trigger,
            "messageId": run.message_id, "started": run.started, "completed": run.completed,
            "durationMs": round(run.duration_ms, 3), "success": run.success, "output": run.output,
            "error": run.error}


class FunctionService:
    """Stores functions, runs them in the worker pool, and records every run."""

    def __init__(self, store: FunctionStore, pool: WorkerPool, host: HostApi, limits: FunctionLimits) -> None:
        self._store = store
        self._pool = pool
        self._host = host
        self._recorder = RunRecorder(store, limits.history)
        self.limits = limits
        self._worker_limits = limits.for_worker()
        self._by_app: dict[str, dict[str, FunctionRecord]] = {}
        self._by_id: dict[str, FunctionRecord] = {}
        self._secrets: dict[str, dict[str, str]] = {}
        self._last_runs: dict[str, str] = {}  # function id -> when its latest run ended

    async def load(self) -> None:
        """Read every function into memory."""
        for record in await self._store.all_functions():
            self._remember(record)

    def _remember(self, record: FunctionRecord) -> None:
        self._by_app.setdefault(record.app_id, {})[record.name] = record
        self._by_id[record.id] = record

    def _forget(self, record: FunctionRecord) -> None:
        self._by_app.get(record.app_id, {}).pop(record.name, None)
        self._by_id.pop(record.id, None)
        self._last_runs.pop(record.id, None)

    async def flush(self) -> None:
        """Write every pending run record (before reading history, and at shutdown)."""
        await self._recorder.flush()

    @property
    def pool(self) -> WorkerPool:
        """The worker pool (for metrics and tests)."""
        return self._pool

    def named(self, app_id: str, name: object) -> FunctionRecord:
        """The app's function of this name, or NotFound."""
        record = self._by_app.get(app_id, {}).get(validate_name(name))
        if record is None:
            raise NotFound(f"function {name} not found")
        return record

    def by_id(self, function_id: str) -> FunctionRecord | None:
        """A function by id (None once deleted)."""
        return self._by_id.get(function_id)

    def matching(self, message: Message) -> list[FunctionRecord]:
        """The functions a message triggers: by its type or its channel, each once."""
        functions = self._by_app.get(message.app_id)
        if not functions:
            return []
        topics = {message.type, message.channel}
        if message.origin == "chan_in":
            topics.add("chan_in")
        topics.discard(WEB)
        return [record for record in functions.values() if record.trigger in topics]

    # --- management

    async def add(self, root: Identity, body: Any) -> dict[str, Any]:
        """Create a function from `{name, trigger, code}`; the code is compiled first."""
        body = _object(body)
        name, trigger, code = validate_name(body.get("name")), _trigger(body.get("trigger")), _code(body.get("code"))
        await self._check(code)
        now = now_text()
        record = FunctionRecord(id=ids.new_id(), app_id=root.app_id, name=name, trigger=trigger, code=code,
                                version=1, created=now, updated=now, last_run=None)
        try:
            await self._store.insert(record)
        except Duplicate:
            raise Conflict(f"a function named {name} exists already: use /fn/update") from None
        self._remember(record)
        return self.describe(record)

    async def update(self, root: Identity, body: Any) -> dict[str, Any]:
        """Change a function's code and/or trigger (by `id` or `name`); its version goes up by one."""
        body = _object(body)
        record = self._target(root, body)
        code = _code(body["code"]) if "code" in body else record.code
        trigger = _trigger(body["trigger"]) if body.get("trigger") else record.trigger
        if "code" in body:
            await self._check(code)
        updated = FunctionRecord(id=record.id, app_id=record.app_id, name=record.name, trigger=trigger, code=code,
                                 version=record.version + 1, created=record.created, updated=now_text(),
                                 last_run=record.last_run)
        await self._store.replace(updated)
        self._remember(updated)
        return self.describe(updated)

    def _target(self, root: Identity, body: dict[str, Any]) -> FunctionRecord:
        if isinstance(body.get("id"), str) and body["id"]:
            record = self._by_id.get(body["id"])
            if record is None or record.app_id != root.app_id:
                raise NotFound("function not found")
            return record
        return self.named(root.app_id, body.get("name"))

    async def delete(self, root: Identity, name: str) -> None:
        """Delete a function, its runs and its queued messages."""
        record = self.named(root.app_id, name)
        await self._store.delete(record.id)
        self._forget(record)

    def list_functions(self, root: Identity) -> list[dict[str, Any]]:
        """The app's functions, most recently changed first."""
        records = sorted(self._by_app.get(root.app_id, {}).values(), key=_updated_order, reverse=True)
        return [self.describe(record) for record in records]

    async def info(self, root: Identity, name: str) -> dict[str, Any]:
        """One function with its recent runs, newest first."""
        record = self.named(root.app_id, name)
        await self._recorder.flush()
        runs = await self._store.runs(record.id, self.limits.history)
        return {**self.describe(record), "history": [run_json(run) for run in runs]}

    async def runs(self, root: Identity, name: str | None, failed_only: bool, limit: int = 100) -> list[dict[str, Any]]:
        """The app's recent runs, optionally of one function and only failures."""
        function_id = self.named(root.app_id, name).id if name else None
        await self._recorder.flush()
        runs = await self._store.app_runs(root.app_id, function_id, failed_only, limit)
        names = {r.id: r.name for r in self._by_app.get(root.app_id, {}).values()}
        return [{**run_json(run), "name": names.get(run.function_id, "")} for run in runs]

    async def jobs(self, root: Identity, status: str, limit: int = 100) -> list[dict[str, Any]]:
        """The app's message-triggered runs that wait (queued) or were given up (parked)."""
        names = {r.id: r.name for r in self._by_app.get(root.app_id, {}).values()}
        await self._recorder.flush()
        return [{"id": job.id, "function": names.get(job.function_id, ""), "status": job.status,
                 "attempts": job.attempts, "lastError": job.last_error,
                 "message": {k: job.message.get(k) for k in ("sid", "type", "channel", "data")}}
                for job in await self._store.jobs(root.app_id, status, limit)]

    def describe(self, record: FunctionRecord) -> dict[str, Any]:
        """A function as the API shows it (StaticBackend's ExecData)."""
        return {"id": record.id, "accountId": "", "name": record.name, "trigger": record.trigger,
                "code": record.code, "version": record.version, "lastUpdated": record.updated,
                "lastRun": self._last_runs.get(record.id) or record.last_run or "0001-01-01T00:00:00Z",
                "history": None}

    async def _check(self, code: str) -> None:
        error = await self._pool.check(code, self._worker_limits, self.limits.timeout_seconds)
        if error:
            raise BadRequest(f"the function does not compile: {error}")

    # --- secrets

    async def set_secret(self, root: Identity, body: Any) -> None:
        """Create or replace a secret, visible to the app's functions as env.NAME."""
        body = _object(body)
        name, value = body.get("name"), body.get("value")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
            raise BadRequest("a secret name is a letter or '_' then up to 63 letters, digits or '_'")
        if not isinstance(value, str) or len(value.encode()) > MAX_SECRET_BYTES:
            raise BadRequest(f"a secret value is a string of at most {MAX_SECRET_BYTES} bytes")
        await self._store.set_secret(root.app_id, name, value, now_text())
        self._secrets.pop(root.app_id, None)

    async def list_secrets(self, root: Identity) -> list[dict[str, str]]:
        """Secret names with masked values (never shown in full)."""
        secrets = await self._store.secrets(root.app_id)
        return [{"name": name, "value": _mask(value)} for name, value in secrets.items()]

    async def delete_secret(self, root: Identity, name: str) -> None:
        """Delete a secret."""
        if not await self._store.delete_secret(root.app_id, name):
            raise NotFound(f"secret {name} not found")
        self._secrets.pop(root.app_id, None)

    async def _env(self, app_id: str) -> dict[str, str]:
        env = self._secrets.get(app_id)
        if env is None:
            env = self._secrets[app_id] = await self._store.secrets(app_id)
        return env

    # --- running

    async def call_web(self, identity: Identity, name: str, body: Any, query: dict[str, Any],
                       headers: dict[str, Any]) -> str:
        """Run a function for an HTTP caller; its return value's JSON, or ApiError(500) with its error."""
        record = self.named(identity.app_id, name)
        spec = {"kind": "web", "body": body, "query": query, "headers": headers}
        outcome = await self.run(record, spec, RunContext(identity.app_id, identity, record.id), WEB, None,
                                 wait=self.limits.web_wait_seconds)
        if outcome.busy:
            raise ApiError(outcome.error or "busy", status=503)
        if not outcome.ok:
            raise ApiError(f"error executing your function: {outcome.error}", status=500)
        return outcome.value_json

    async def run(self, record: FunctionRecord, spec: dict[str, Any], context: RunContext, trigger: str,
                  message_id: str | None, job_id: str | None = None, wait: float | None = None,
                  run_id: str | None = None) -> Outcome:
        """Run a function once and record the run (and finish its job when it succeeded).

        With `wait`, a run that finds no free worker within that many seconds is given up. `run_id`
        names the run's record (made up when not given).
        """
        spec = {**spec, "env": await self._env(record.app_id)}
        request = Request("run", record.code, self._worker_limits, key=f"{record.id}:{record.version}",
                          spec=dumps_stored(spec))
        started = now_text()
        if len(request.spec) > self.limits.io_bytes:
            outcome = Outcome(ok=False, error=f"the input is larger than {self.limits.io_bytes} bytes")
        else:
            outcome = await self._pool.run(request, self._host.handler(context), self.limits.timeout_seconds, wait)
        output = ["Function started", *outcome.logs, "Function completed"]
        if outcome.error:
            output.append(outcome.error)
        run = RunRecord(id=run_id or ids.new_id(), function_id=record.id, version=record.version, trigger=trigger,
                        message_id=message_id, started=started, completed=now_text(),
                        duration_ms=outcome.duration_ms, success=outcome.ok, output=output, error=outcome.error)
        outcome.recorded = self._recorder.record(record.app_id, run, job_id if outcome.ok else None)
        self._last_runs[record.id] = run.completed
        return outcome


def _updated_order(record: FunctionRecord) -> datetime:
    return datetime.fromisoformat(record.updated.replace("Z", "+00:00"))


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("invalid body: expected a JSON object")
    return body


def _trigger(trigger: Any) -> str:
    if trigger == WEB:
        return WEB
    try:
        return validate_channel(trigger)
    except BadRequest:
        raise BadRequest('invalid trigger: "web", a message type or a channel name') from None


def _code(code: Any) -> str:
    if not isinstance(code, str) or not code.strip():
        raise BadRequest('"code" must be the function\'s JavaScript source')
    if len(code.encode()) > MAX_SOURCE_BYTES:
        raise BadRequest(f"the source is larger than {MAX_SOURCE_BYTES} bytes")
    return code


def _mask(value: str) -> str:
    return "•" * 8 + value[-2:] if len(value) > 6 else "•" * 8
