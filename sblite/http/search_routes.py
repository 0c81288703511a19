"""Full-text search (spec §7): `POST /search` for users, and root's per-collection field indexing."""

from __future__ import annotations

from aiohttp import web

from sblite.errors import BadRequest
from sblite.http.keys import SEARCH
from sblite.http.policy import ROOT, USER, PolicyRoutes, caller
from sblite.http.request import json_body
from sblite.http.responses import json_response

routes = PolicyRoutes()


@routes.post("/search", USER)
async def search(request: web.Request) -> web.Response:
    """`{col, keywords, size?}` → the readable matching documents, best first (`[]` when none)."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest('invalid body: expected {"col": "collection", "keywords": "words"}')
    found = await request.app[SEARCH].search(caller(request), body.get("col"), body.get("keywords"),
                                             body.get("size"))
    return json_response(found)


@routes.get("/search/{col}", ROOT)
async def info(request: web.Request) -> web.Response:
    """Root: a collection's index, `{collection, fields, entries}`."""
    return json_response(await request.app[SEARCH].info(caller(request), request.match_info["col"]))


@routes.put("/search/{col}", ROOT)
async def set_fields(request: web.Request) -> web.Response:
    """Root: `{fields: [...]}` indexed on every write from now on, and for the documents stored now."""
    body = await json_body(request)
    return json_response(await request.app[SEARCH].set_fields(caller(request), request.match_info["col"], body))


@routes.delete("/search/{col}", ROOT)
async def drop(request: web.Request) -> web.Response:
    """Root: remove a collection's index, entries and fields."""
    await request.app[SEARCH].drop(caller(request), request.match_info["col"])
    return json_response(True)
