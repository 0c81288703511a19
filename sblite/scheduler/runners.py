"""What each task type does when it runs: the message it publishes, the job it queues, the request it makes.

Message runs are rows in the claim's own write (the message is stored with the claim, so it
is published once); function runs are jobs in the durable queue, stored in that write too;
http runs call the URL once the claim is committed, through the same client and address
rules as a function's fetch().
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from sblite.errors import ApiError
from sblite.jsonutil import dumps
from sblite.model import Identity, Message
from sblite.scheduler.definition import form_fields, iso, is_json
from sblite.store.functions import Job
from sblite.store.tasks import TaskRecord, TaskRun

# fetch(url, {method, headers, body}, limit_bytes) → {status, body, headers}; BadRequest on network errors.
Fetch = Callable[[str, dict[str, Any], int], Awaitable[dict[str, Any]]]
OUTPUT_BODY_CHARS = 1000  # of a response body kept in the run's output


class FunctionQueue(Protocol):
    """The durable job queue of function runs (the dispatcher)."""

    def exists(self, app_id: str, name: str) -> bool:
        """Whether the app has a function of this name."""

    def task_job(self, app_id: str, name: str, body: dict[str, Any], identity: Identity) -> Job:
        """A job that runs the named function with a task's body; NotFound without such a function."""

    def store_jobs(self, conn: Any, jobs: Sequence[Job]) -> None:
        """Queue jobs inside a write under way."""

    def start_jobs(self, jobs: Sequence[Job]) -> None:
        """The jobs are committed: run them."""


def identity_of(task: TaskRecord) -> Identity:
    """Who the task runs as (the root user who created it, for tasks made through the API)."""
    data = task.identity
    return Identity(app_id=task.app_id, account_id=data["account_id"], user_id=data["user_id"],
                    email=data["email"], role=data["role"])


def identity_json(identity: Identity) -> dict[str, Any]:
    """An identity as a task stores it."""
    return {"account_id": identity.account_id, "user_id": identity.user_id, "email": identity.email,
            "role": identity.role}


def as_text(data: Any) -> str:
    """Message data is a string: a string as it is, anything else as its JSON."""
    return data if isinstance(data, str) else dumps(data)


def message_of(task: TaskRecord) -> Message:
    """What a message task publishes: type `value` with `meta.data` on `meta.channel`."""
    return Message(type=task.value, channel=task.meta["channel"], data=as_text(task.meta.get("data", "")),
                   sid=task.id, app_id=task.app_id, identity=identity_of(task))


def function_body(task: TaskRecord, run: TaskRun) -> dict[str, Any]:
    """A function task's message: `handle(body)` gets it whole, `handle(task, "fn_call", data)` its parts."""
    # `channel` carries the task name to the three-parameter form, which reads (channel, type, data).
    return {"task": task.name, "type": "fn_call", "channel": task.name, "data": task.meta.get("data"),
            "scheduledFor": iso(run.scheduled_for), "runId": run.id, "taskId": task.id}


@dataclass(frozen=True)
class HttpOutcome:
    """How an http task's call went."""

    ok: bool
    output: list[str]
    error: str | None
    response: Message | None  # the body, published as `http_response`


async def call(fetch: Fetch, task: TaskRecord, run: TaskRun, limit: int) -> HttpOutcome:
    """Make an http task's request; a non-2xx answer or a network error fails the run."""
    meta = task.meta
    ct = meta.get("ct") or "application/x-www-form-urlencoded"
    data = meta.get("data")
    body = as_text(data) if is_json(ct) else urlencode(form_fields(data))
    headers = {**meta.get("headers", {}), "Content-Type": ct, "X-Sblite-Task": task.name,
               "X-Sblite-Task-Run": run.id, "X-Sblite-Scheduled-For": iso(run.scheduled_for) or ""}
    method = meta.get("method") or "POST"
    try:
        answer = await fetch(task.value, {"method": method, "headers": headers, "body": body or None}, limit)
    except ApiError as exc:
        return HttpOutcome(ok=False, output=[f"{method} {task.value}"], error=exc.message, response=None)
    status, text = int(answer["status"]), str(answer["body"])
    response = Message(type="http_response", channel=f"{task.name}-http-response", data=text, sid="system",
                       app_id=task.app_id, identity=identity_of(task))
    output = [f"{method} {task.value} -> {status}", text[:OUTPUT_BODY_CHARS]]
    ok = 200 <= status < 300
    return HttpOutcome(ok=ok, output=output, error=None if ok else f"HTTP {status}", response=response)
