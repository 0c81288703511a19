"""Magic-link sign-in (spec §1.3): `POST /login/magic` mails a link, `GET /login/magic` trades its code."""

from __future__ import annotations

from aiohttp import web

from sblite.http.attempts import account_key, limited
from sblite.http.keys import MAGIC
from sblite.http.policy import OPEN, PolicyRoutes
from sblite.http.request import json_body, request_app
from sblite.http.responses import json_response, token_response

routes = PolicyRoutes()


@routes.post("/login/magic", OPEN)
async def request_link(request: web.Request) -> web.Response:
    """Mail a sign-in link `{fromEmail, fromName, email, subject, body, link}`; `true` (unknown emails too)."""
    app = await request_app(request)
    await request.app[MAGIC].request(app, await json_body(request), request.remote)
    return json_response(True)


@routes.get("/login/magic", OPEN)
async def sign_in(request: web.Request) -> web.Response:
    """`?email=&code=`: the session token for a right, live code; 401 otherwise, 429 past the attempt limits."""
    app = await request_app(request)
    email, code = request.query.get("email"), request.query.get("code")
    token = await limited(request, "login", account_key(app, email or None),
                          lambda: request.app[MAGIC].complete(app, email, code))
    return token_response(token)
