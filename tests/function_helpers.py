"""Helpers for the server-side function tests: add functions, call them, wait for their runs."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from collections.abc import Awaitable, Callable

from tests.conftest import Api
from tests.realtime_clients import CLIENTS, RealtimeClient

WAIT = 10.0  # every wait is bounded by this many seconds unless told otherwise
POLL = 0.05


def base_url(api: Api) -> str:
    """The test server's URL without a trailing slash."""
    return str(api.client.make_url("")).rstrip("/")


async def add_function(api: Api, name: str, code: str, trigger: str = "web", token: str | None = None) -> dict:
    """Create a function (as the dev root unless `token` is given); its JSON."""
    status, body = await _root_call(api, "POST", "/fn/add", {"name": name, "trigger": trigger, "code": code}, token)
    assert status == 200, body
    return body


async def update_function(api: Api, body: dict, token: str | None = None) -> dict:
    """Update a function; its JSON."""
    status, answer = await _root_call(api, "POST", "/fn/update", body, token)
    assert status == 200, answer
    return answer


async def _root_call(api: Api, method: str, path: str, body: Any, token: str | None) -> tuple[int, Any]:
    if token is None:
        return await api.root(method, path, json=body)
    return await api.call(method, path, token, json=body)


async def info(api: Api, name: str, token: str | None = None) -> dict:
    """GET /fn/info/{name}."""
    status, body = await _root_call(api, "GET", f"/fn/info/{name}", None, token)
    assert status == 200, body
    return body


async def eventually(probe: Callable[[], Awaitable[Any]], timeout: float = WAIT, what: str = "a condition") -> Any:
    """Call `probe` until it returns something truthy (returned); AssertionError after `timeout` s."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await probe()
                if last:
                    return last
                await asyncio.sleep(POLL)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last probe gave {last!r}") from None


async def queued_jobs(api: Api, token: str | None = None) -> list[dict]:
    """GET /fn/jobs?status=queued."""
    status, body = await _root_call(api, "GET", "/fn/jobs?status=queued", None, token)
    assert status == 200, body
    return body


async def wait_runs(api: Api, name: str, count: int, timeout: float = WAIT, settle: bool = True) -> list[dict]:
    """The function's history once it holds at least `count` runs and (if `settle`) no job is queued."""
    async def probe() -> list[dict] | None:
        history = (await info(api, name))["history"]
        if len(history) < count:
            return None
        if settle and await queued_jobs(api):
            return None
        return history

    return await eventually(probe, timeout, f"{count} run(s) of {name}")


def logged(run: dict) -> list[str]:
    """The lines a run logged (its output without the started/completed markers and the error)."""
    output = run["output"]
    assert output[0] == "Function started", output
    end = output.index("Function completed")
    return output[1:end]


def logged_json(run: dict) -> Any:
    """The single JSON value a run logged."""
    lines = logged(run)
    assert len(lines) == 1, lines
    return json.loads(lines[0])


async def exec_fn(api: Api, name: str, token: str, body: Any = None, method: str = "POST") -> tuple[int, Any]:
    """Call /fn/exec/{name} with a JSON body; (status, decoded JSON or error text)."""
    return await api.call(method, f"/fn/exec/{name}", token, json=body)


async def evaluate(api: Api, token: str, expression: str) -> Any:
    """The value of a JS expression evaluated inside the `eval` web function (see EVAL_SOURCE)."""
    status, value = await exec_fn(api, "eval", token, {"expr": expression})
    assert status == 200, value
    return value


EVAL_SOURCE = "function handle(body) { return eval(body.expr); }"


async def open_client(api: Api, transport: str, token: str | None = None) -> RealtimeClient:
    """A realtime client of `api` (authenticated when given a token); the caller closes it."""
    client = await CLIENTS[transport](api.client.session, base_url(api), api.pk).open()
    if token:
        reply = await client.auth(token)
        assert reply["type"] == "token", reply
    return client
