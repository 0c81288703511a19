"""GET /overview (root): the app's keys, whether it runs in dev mode, and how many of each thing it has."""

from __future__ import annotations

from aiohttp import web

from sblite.errors import NotFound
from sblite.http.keys import ACCOUNTS, CONFIG, DATABASE, HUB
from sblite.http.policy import ROOT, PolicyRoutes, caller
from sblite.http.responses import token_response
from sblite.store.overview import OverviewStore
from sblite.tokens import format_root_token

routes = PolicyRoutes()


@routes.get("/overview", ROOT)
async def overview(request: web.Request) -> web.Response:
    """Root: pk, root token, dev mode, and counts of users, collections, documents, functions, tasks and
    live realtime connections (of the whole server)."""
    root = caller(request)
    store = OverviewStore(request.app[DATABASE])
    app = await request.app[ACCOUNTS].app_by_id(root.app_id)
    parts = await store.root_user(root.user_id)
    if parts is None:
        raise NotFound("the root user is gone")
    counts = await store.counts(root.app_id)
    return token_response({
        "pk": app.pk, "name": app.name, "email": root.email, "rootToken": format_root_token(*parts),
        "devMode": not request.app[CONFIG].prod,
        "counts": {"users": counts.users, "collections": counts.collections, "documents": counts.documents,
                   "functions": counts.functions, "tasks": counts.tasks,
                   "connections": request.app[HUB].connection_count},
    })
