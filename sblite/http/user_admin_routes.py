"""The app's users for root (the dashboard's Users page): list, add, change role, remove.

StaticBackend's own user routes act on the caller's account; these act on the whole app.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sblite.errors import BadRequest
from sblite.http.keys import USER_ADMIN
from sblite.http.policy import ROOT, PolicyRoutes, caller
from sblite.http.request import json_body, paging
from sblite.http.responses import json_response
from sblite.model import ACCOUNT_ADMIN_ROLE

routes = PolicyRoutes()
MAX_PAGE_SIZE = 100


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("invalid body: expected a JSON object")
    return body


@routes.get("/users", ROOT)
async def list_users(request: web.Request) -> web.Response:
    """Root: `?page=&size=` of the app's users, oldest first: `{page, size, total, results}` (no tokens)."""
    root = caller(request)
    paged = paging(request)
    return json_response(await request.app[USER_ADMIN].app_users(root, paged.page, min(paged.size, MAX_PAGE_SIZE)))


@routes.post("/users", ROOT)
async def add_user(request: web.Request) -> web.Response:
    """Root: `{email, password, role}` registers a user with an account of its own; the user."""
    root = caller(request)
    body = _object(await json_body(request))
    user = await request.app[USER_ADMIN].create_app_user(root, body.get("email"), body.get("password"),
                                                          body.get("role", ACCOUNT_ADMIN_ROLE))
    return json_response(user)


@routes.put("/users/{user_id}", ROOT)
async def change_role(request: web.Request) -> web.Response:
    """Root: `{role}` changes a user's role (0 to 100); not root's own."""
    root = caller(request)
    body = _object(await json_body(request))
    user = await request.app[USER_ADMIN].change_role(root, request.match_info["user_id"], body.get("role"))
    return json_response(user.public())


@routes.delete("/users/{user_id}", ROOT)
async def remove_user(request: web.Request) -> web.Response:
    """Root: delete a user of the app (not root itself)."""
    root = caller(request)
    await request.app[USER_ADMIN].delete_app_user(root, request.match_info["user_id"])
    return json_response(True)
