"""Functions (spec §4): management (root), web calls, runs, parked jobs and secrets."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sblite.errors import BadRequest, NotFound
from sblite.http.keys import DISPATCHER, FUNCTIONS
from sblite.http.policy import ROOT, USER, PolicyRoutes, caller
from sblite.http.request import form_body, json_body
from sblite.http.responses import json_response, json_text_response
from sblite.jsonutil import loads

routes = PolicyRoutes()
HIDDEN_HEADERS = {"authorization", "cookie"}


@routes.post("/fn/add", ROOT)
async def add(request: web.Request) -> web.Response:
    """Root: create a function `{name, trigger, code}`."""
    root = caller(request)
    return json_response(await request.app[FUNCTIONS].add(root, await json_body(request)))


@routes.post("/fn/update", ROOT)
async def update(request: web.Request) -> web.Response:
    """Root: change a function's code and/or trigger."""
    root = caller(request)
    return json_response(await request.app[FUNCTIONS].update(root, await json_body(request)))


@routes.route("*", "/fn/del/{name}", ROOT)
@routes.route("*", "/fn/delete/{name}", ROOT)
async def delete(request: web.Request) -> web.Response:
    """Root: delete a function."""
    root = caller(request)
    await request.app[FUNCTIONS].delete(root, request.match_info["name"])
    return json_response(True)


@routes.get("/fn/info/{name}", ROOT)
async def info(request: web.Request) -> web.Response:
    """Root: one function with its recent runs, newest first."""
    root = caller(request)
    return json_response(await request.app[FUNCTIONS].info(root, request.match_info["name"]))


@routes.get("/fn", ROOT)
async def list_functions(request: web.Request) -> web.Response:
    """Root: every function of the app."""
    root = caller(request)
    return json_response(request.app[FUNCTIONS].list_functions(root))


@routes.get("/fn/runs", ROOT)
async def runs(request: web.Request) -> web.Response:
    """Root: recent runs; `?name=` one function, `?failed=1` failures only."""
    root = caller(request)
    failed = request.query.get("failed", "") not in ("", "0", "false")
    return json_response(await request.app[FUNCTIONS].runs(root, request.query.get("name") or None, failed))


@routes.get("/fn/jobs", ROOT)
async def jobs(request: web.Request) -> web.Response:
    """Root: message-triggered runs waiting (`?status=queued`) or given up (`parked`, the default)."""
    root = caller(request)
    status = request.query.get("status", "parked")
    if status not in ("parked", "queued"):
        raise BadRequest("status must be parked or queued")
    found = await request.app[FUNCTIONS].jobs(root, status)
    return json_response(found)


@routes.post("/fn/jobs/{id}/replay", ROOT)
async def replay(request: web.Request) -> web.Response:
    """Root: run a parked job again."""
    root = caller(request)
    if not await request.app[DISPATCHER].replay(root.app_id, request.match_info["id"]):
        raise NotFound("no parked job with this id")
    return json_response(True)


@routes.route("*", "/fn/exec/{name}", USER)
async def execute(request: web.Request) -> web.Response:
    """Any user: run a function with `handle(body, query, headers)`; answers its return value."""
    identity = caller(request)
    body, query, headers = await _web_arguments(request)
    value = await request.app[FUNCTIONS].call_web(identity, request.match_info["name"], body, query, headers)
    return json_text_response(value)


@routes.post("/fn/sudoexec/{name}", ROOT)
async def sudo_execute(request: web.Request) -> web.Response:
    """Root: run a function as root."""
    root = caller(request)
    body, query, headers = await _web_arguments(request)
    return json_text_response(await request.app[FUNCTIONS].call_web(root, request.match_info["name"], body, query,
                                                                   headers))


async def _web_arguments(request: web.Request) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The body (JSON, form fields, or text), the query and the headers as StaticBackend passes them."""
    raw = await request.read()
    kind = request.content_type
    if not raw:
        body: Any = None
    elif kind == "application/json":
        try:
            body = loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"invalid JSON body: {exc}") from None
    elif kind == "application/x-www-form-urlencoded":
        form = await form_body(request)
        body = {key: ", ".join(str(v) for v in form.getall(key)) for key in form}
    else:
        body = raw.decode(request.charset or "utf-8", errors="replace")
    query = {key: request.query.getall(key) for key in request.query}
    headers: dict[str, list[str]] = {}
    for key, value in request.headers.items():
        if key.lower() not in HIDDEN_HEADERS:
            headers.setdefault(key, []).append(value)
    return body, query, headers


@routes.post("/fn/secrets", ROOT)
async def set_secret(request: web.Request) -> web.Response:
    """Root: set a secret `{name, value}` for the app's functions (env.NAME)."""
    root = caller(request)
    await request.app[FUNCTIONS].set_secret(root, await json_body(request))
    return json_response(True)


@routes.get("/fn/secrets", ROOT)
async def list_secrets(request: web.Request) -> web.Response:
    """Root: secret names, values masked."""
    root = caller(request)
    return json_response(await request.app[FUNCTIONS].list_secrets(root))


@routes.delete("/fn/secrets/{name}", ROOT)
async def delete_secret(request: web.Request) -> web.Response:
    """Root: delete a secret."""
    root = caller(request)
    await request.app[FUNCTIONS].delete_secret(root, request.match_info["name"])
    return json_response(True)
