"""Social login (`/oauth/*`, spec §1.3): not supported yet, answered 501 with a clear message.

StaticBackend redirects to Twitter, Google or Facebook and polls `/oauth/get-user` for the
result; that needs an app registered with each provider and a public callback URL, which a
self-hosted sblite does not have by default. Every path under /oauth/ answers the same 501,
with CORS, so the client shows the message instead of a network error.
"""

from __future__ import annotations

from aiohttp import web

from sblite.http.policy import OPEN, PolicyRoutes
from sblite.http.responses import error_response

NOT_SUPPORTED = ("social login (/oauth/*) is not supported by sblite yet: it needs accounts with outside "
                 "providers (Twitter, Google, Facebook); sign users in with /register and /login, or a magic link")

routes = PolicyRoutes()


@routes.route("*", "/oauth/{path:.*}", OPEN)
async def oauth(request: web.Request) -> web.Response:
    """501 for every social-login path."""
    return error_response(501, NOT_SUPPORTED)
