"""StaticBackend routes sblite does not support, answered 501 with what to do instead (spec §1.3, §7).

A 501 with a reason tells a person moving an app from StaticBackend what is missing; a 404 would
look like a typo. Every answer carries CORS, so the client shows the message instead of a
network error.
"""

from __future__ import annotations

from aiohttp import web

from sblite.http.policy import OPEN, Handler, PolicyRoutes
from sblite.http.responses import error_response

# path → why sblite answers 501 there
NOT_SUPPORTED = {
    "/oauth/{path:.*}": (
        "social login (/oauth/*) is not supported by sblite yet: it needs accounts with outside providers "
        "(Twitter, Google, Facebook); sign users in with /register and /login, or a magic link"),
    "/extra/sms": "text messages (/extra/sms) are not supported by sblite: they need a Twilio account",
    "/stripe": "billing (/stripe) is part of StaticBackend's hosted service; sblite has no billing",
    "/account/portal": "billing (/account/portal) is part of StaticBackend's hosted service; sblite has no billing",
    "/account/auth": "/account/auth belongs to StaticBackend's hosted sign-up; sblite has none",
    "/account/add-db": "several databases per customer are not supported by sblite: create another app with "
                       "/account/init",
}

routes = PolicyRoutes()


def _answer(reason: str) -> Handler:
    async def not_supported(request: web.Request) -> web.Response:
        """501 with the reason."""
        return error_response(501, reason)
    return not_supported


for _path, _reason in NOT_SUPPORTED.items():
    routes.route("*", _path, OPEN)(_answer(_reason))
