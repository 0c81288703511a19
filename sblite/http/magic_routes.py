"""Magic-link sign-in (spec §1.3): `POST /login/magic` mails a link, `GET /login/magic` trades its code."""

from __future__ import annotations

from aiohttp import web

from sblite.http.keys import AUTH_THROTTLE, MAGIC
from sblite.http.policy import OPEN, PolicyRoutes
from sblite.http.request import json_body, request_app
from sblite.http.responses import error_response, json_response, token_response
from sblite.services.accounts import MAX_EMAIL_LENGTH

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
    account = (app.id, email.strip().lower()[:MAX_EMAIL_LENGTH]) if email else None
    throttle = request.app[AUTH_THROTTLE]
    ticket = throttle.begin("login", request.remote, account)
    if ticket.refused:
        response = error_response(429, ticket.message)
        response.headers["Retry-After"] = str(ticket.retry_after)
        return response
    try:
        token = await request.app[MAGIC].complete(app, email, code)
    except BaseException:
        throttle.failed(ticket)
        raise
    throttle.succeeded(ticket)
    return token_response(token)
