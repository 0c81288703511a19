"""Root's cache (spec §7): `GET /sudo/cache?key=K[&type=queue]` and `POST /sudo/cache {key,value,type}`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from sblite.errors import BadRequest
from sblite.http.keys import CONFIG, DATABASE
from sblite.http.policy import ROOT, PolicyRoutes, caller
from sblite.http.request import json_body
from sblite.http.responses import json_response
from sblite.services.cache import CacheService
from sblite.store import FunctionStore
from sblite.store.queues import QueueStore

CACHE = web.AppKey("cache", CacheService)

routes = PolicyRoutes()


def setup(app: web.Application) -> None:
    """Register the routes and build the cache service once the database is open."""
    routes.register(app)

    async def context(app: web.Application) -> AsyncIterator[None]:
        database = app[DATABASE]
        app[CACHE] = CacheService(FunctionStore(database), QueueStore(database), app[CONFIG].functions_max_io_bytes)
        yield

    app.cleanup_ctx.append(context)


@routes.get("/sudo/cache", ROOT)
async def get(request: web.Request) -> web.Response:
    """Root: a cached value (404 if none), or the next value of a queue ("" if it is empty)."""
    root = caller(request)
    return json_response(await request.app[CACHE].get(root.app_id, request.query.get("key"),
                                                      request.query.get("type")))


@routes.post("/sudo/cache", ROOT)
async def put(request: web.Request) -> web.Response:
    """Root: set a value, or append one to a queue with `type: "queue"`."""
    root = caller(request)
    body = _object(await json_body(request))
    await request.app[CACHE].put(root.app_id, body.get("key"), body.get("value"), body.get("type"))
    return json_response(True)


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("invalid body: expected a JSON object {key, value, type}")
    return value
