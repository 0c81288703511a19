"""The document database (spec §2): /db, /query, /db/count, /inc, /newid and the root mirrors."""

from __future__ import annotations

from aiohttp import web

from sblite import ids
from sblite.errors import BadRequest
from sblite.http.keys import DOCUMENTS
from sblite.http.policy import ROOT, USER, USER_OR_PUB, PolicyRoutes, caller
from sblite.http.request import decode_filter_param, json_body, paging
from sblite.http.responses import json_response

routes = PolicyRoutes()


# Registered before /db/{col}/{id} so that /db/count/x is a count, as StaticBackend routes it.
@routes.post("/db/count/{col}", USER)
async def count(request: web.Request) -> web.Response:
    """How many readable documents match the (optional) clauses."""
    identity = caller(request)
    clauses = await json_body(request, required=False)
    total = await request.app[DOCUMENTS].count(identity, request.match_info["col"], clauses or [])
    return json_response({"count": total})


# Registered before /sudo/{col} so that "index" is not taken for a collection name.
@routes.post("/sudo/index", ROOT)
async def create_index(request: web.Request) -> web.Response:
    """StaticBackend's field index: `?col=&field=` (a dotted path) → true, also when it exists."""
    root = caller(request)
    col, field = _query(request, "col"), _query(request, "field")
    await request.app[DOCUMENTS].create_index(root.app_id, col, field)
    return json_response(True)


@routes.get("/sudo/index", ROOT)
async def list_indexes(request: web.Request) -> web.Response:
    """The field indexes of `?col=` (of every collection without it)."""
    root = caller(request)
    col = request.query.get("col") or None
    return json_response(await request.app[DOCUMENTS].list_indexes(root.app_id, col))


@routes.delete("/sudo/index", ROOT)
async def drop_index(request: web.Request) -> web.Response:
    """Drop the index on `?field=` of `?col=`; 404 when there is none."""
    root = caller(request)
    await request.app[DOCUMENTS].drop_index(root.app_id, _query(request, "col"), _query(request, "field"))
    return json_response(True)


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise BadRequest(f"missing query parameter: {name}")
    return value


@routes.post("/db/{col}", USER_OR_PUB)
@routes.post("/db/{col}/", USER_OR_PUB)
@routes.post("/sudo/{col}", ROOT)
@routes.post("/sudo/{col}/", ROOT)
async def create(request: web.Request) -> web.Response:
    """Create a document, many (`?bulk=1`), or fetch by ids (`?ids=`)."""
    identity = caller(request)
    col = request.match_info["col"]
    documents = request.app[DOCUMENTS]
    body = await json_body(request)
    if request.query.get("bulk"):
        await documents.create_many(identity, col, body)
        return json_response(True, status=201)
    if "ids" in request.query:
        return json_response(await documents.get_many(identity, col, body))
    return json_response(await documents.create(identity, col, body), status=201)


@routes.get("/db/{col}", USER_OR_PUB)
@routes.get("/db/{col}/", USER_OR_PUB)
@routes.get("/sudo/{col}", ROOT)
@routes.get("/sudo/{col}/", ROOT)
async def list_documents(request: web.Request) -> web.Response:
    """A page of readable documents."""
    identity = caller(request)
    page = await request.app[DOCUMENTS].list_documents(identity, request.match_info["col"], paging(request))
    return json_response(page)


@routes.put("/db/{col}", USER_OR_PUB)
@routes.put("/db/{col}/", USER_OR_PUB)
@routes.put("/sudo/{col}", ROOT)
@routes.put("/sudo/{col}/", ROOT)
async def update_many(request: web.Request) -> web.Response:
    """`?bulk=1`: update every matching writable document."""
    identity = caller(request)
    if not request.query.get("bulk"):
        raise BadRequest("missing document id: use PUT /db/{collection}/{id}, or ?bulk=1 to update many")
    body = await json_body(request)
    return json_response(await request.app[DOCUMENTS].update_many(identity, request.match_info["col"], body))


@routes.delete("/db/{col}", USER_OR_PUB)
@routes.delete("/db/{col}/", USER_OR_PUB)
@routes.delete("/sudo/{col}", ROOT)
@routes.delete("/sudo/{col}/", ROOT)
async def delete_many(request: web.Request) -> web.Response:
    """`?bulk=1&x=<base64 clauses>`: delete every matching writable document."""
    identity = caller(request)
    if not request.query.get("bulk"):
        raise BadRequest("missing document id: use DELETE /db/{collection}/{id}, or ?bulk=1&x= to delete many")
    clauses = decode_filter_param(request.query.get("x"))
    return json_response(await request.app[DOCUMENTS].delete_many(identity, request.match_info["col"], clauses))


@routes.get("/db/{col}/{id}", USER_OR_PUB)
@routes.get("/sudo/{col}/{id}", ROOT)
async def get_document(request: web.Request) -> web.Response:
    """One readable document."""
    identity = caller(request)
    doc = await request.app[DOCUMENTS].get(identity, request.match_info["col"], request.match_info["id"])
    return json_response(doc)


@routes.put("/db/{col}/{id}", USER_OR_PUB)
@routes.put("/sudo/{col}/{id}", ROOT)
async def update_document(request: web.Request) -> web.Response:
    """Shallow-merge the body into one writable document."""
    identity = caller(request)
    body = await json_body(request)
    doc = await request.app[DOCUMENTS].update(identity, request.match_info["col"], request.match_info["id"], body)
    return json_response(doc)


@routes.delete("/db/{col}/{id}", USER_OR_PUB)
@routes.delete("/sudo/{col}/{id}", ROOT)
async def delete_document(request: web.Request) -> web.Response:
    """Delete one writable document; answers how many were deleted."""
    identity = caller(request)
    deleted = await request.app[DOCUMENTS].delete(identity, request.match_info["col"], request.match_info["id"])
    return json_response(deleted)


@routes.post("/query/{col}", USER_OR_PUB)
@routes.post("/sudoquery/{col}", ROOT)
async def query(request: web.Request) -> web.Response:
    """A page of readable documents matching a JSON array of clauses."""
    identity = caller(request)
    clauses = await json_body(request)
    result = await request.app[DOCUMENTS].query(identity, request.match_info["col"], clauses, paging(request))
    return json_response(result)


@routes.put("/inc/{col}/{id}", USER)
async def increment(request: web.Request) -> web.Response:
    """Add `range` to a numeric `field` of one writable document."""
    identity = caller(request)
    body = await json_body(request)
    await request.app[DOCUMENTS].increment(identity, request.match_info["col"], request.match_info["id"], body)
    return json_response(True)


@routes.get("/sudolistall", ROOT)
@routes.get("/sudolistall/", ROOT)
async def list_collections(request: web.Request) -> web.Response:
    """Root: the names of the app's collections."""
    root = caller(request)
    return json_response(await request.app[DOCUMENTS].collections(root))


@routes.get("/newid", USER)
async def new_id(request: web.Request) -> web.Response:
    """A fresh document id."""
    return json_response(ids.new_id())
