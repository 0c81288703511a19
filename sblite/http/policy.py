"""Who may call a route and whether browsers of other origins may: declared with each route.

Every route module builds its table with `PolicyRoutes` and names a policy on each route
(`@routes.post("/fn/add", ROOT)`). `register` adds the routes to the app and remembers each
route's policy; the middleware and the response hook below read it from the matched route, so
a route without a declared policy cannot exist and root routes never get CORS by omission.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from collections.abc import Awaitable, Callable

from aiohttp import web

from sblite.http.dashboard_auth import cookie_root
from sblite.http.request import request_root, request_user
from sblite.model import Identity

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access(enum.Enum):
    """Whose token a route needs before its handler runs."""

    NONE = "none"  # nobody is checked here: probes, sign-in, realtime transports (auth in-band)
    USER = "user"  # a session token of the app the public key names
    ROOT = "root"  # the root token


@dataclass(frozen=True)
class Policy:
    """A route's access rule and CORS behaviour."""

    access: Access
    cors: bool
    # pub_ collections: a caller without a token acts as the anonymous user.
    anonymous_on_pub: bool = False


PROBE = Policy(Access.NONE, cors=False)
OPEN = Policy(Access.NONE, cors=True)
USER = Policy(Access.USER, cors=True)
USER_OR_PUB = Policy(Access.USER, cors=True, anonymous_on_pub=True)
ROOT = Policy(Access.ROOT, cors=False)

ROUTE_POLICIES = web.AppKey("route_policies", dict)
CALLER = web.RequestKey("caller", Identity)


class PolicyRoutes:
    """A route table whose every route carries a `Policy`."""

    def __init__(self) -> None:
        self._defs: list[tuple[str, str, Handler, Policy]] = []

    def route(self, method: str, path: str, policy: Policy) -> Callable[[Handler], Handler]:
        """Register the decorated handler for `method` and `path` under `policy`."""
        def decorate(handler: Handler) -> Handler:
            self._defs.append((method, path, handler, policy))
            return handler
        return decorate

    def get(self, path: str, policy: Policy) -> Callable[[Handler], Handler]:
        """`route("GET", ...)`."""
        return self.route("GET", path, policy)

    def post(self, path: str, policy: Policy) -> Callable[[Handler], Handler]:
        """`route("POST", ...)`."""
        return self.route("POST", path, policy)

    def put(self, path: str, policy: Policy) -> Callable[[Handler], Handler]:
        """`route("PUT", ...)`."""
        return self.route("PUT", path, policy)

    def delete(self, path: str, policy: Policy) -> Callable[[Handler], Handler]:
        """`route("DELETE", ...)`."""
        return self.route("DELETE", path, policy)

    def register(self, app: web.Application) -> None:
        """Add the routes (in declaration order) and a preflight route for each CORS path."""
        policies: dict[web.AbstractRoute, Policy] = app.setdefault(ROUTE_POLICIES, {})
        preflights: dict[str, Policy] = {}
        for method, path, handler, policy in self._defs:
            policies[app.router.add_route(method, path, handler)] = policy
            if policy.cors and method != "*":
                preflights.setdefault(path, policy)
        for path, policy in preflights.items():
            policies[app.router.add_route("OPTIONS", path, _preflight)] = policy


async def _preflight(request: web.Request) -> web.StreamResponse:
    """Answered by the middleware; routes OPTIONS to the path's policy."""
    return web.Response()


def policy_of(request: web.Request) -> Policy | None:
    """The declared policy of the route that matched; None for 404s and 405s."""
    return request.app[ROUTE_POLICIES].get(request.match_info.route)


def caller(request: web.Request) -> Identity:
    """The identity the route's policy established (USER and ROOT routes only)."""
    return request[CALLER]


@web.middleware
async def policy_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer CORS preflights, then check the caller the route's policy asks for."""
    policy = policy_of(request)
    if policy is None:
        return await handler(request)
    if request.method == "OPTIONS" and policy.cors:
        return web.Response()
    if policy.access is Access.ROOT:
        # The dashboard's session cookie (CSRF-checked) when the request has no Authorization header.
        request[CALLER] = await cookie_root(request) or await request_root(request)
    elif policy.access is Access.USER:
        pub = policy.anonymous_on_pub and request.match_info.get("col", "").startswith("pub_")
        request[CALLER] = await request_user(request, anonymous_ok=pub)
    return await handler(request)


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response gets, and the CORS headers of client-facing routes."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    policy = policy_of(request)
    if policy is not None and policy.cors:
        _add_cors_headers(request, response)


def _add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """StaticBackend's CORS headers: the Origin echoed, no credentials."""
    for vary in ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"):
        response.headers.add("Vary", vary)
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = request.headers.get(
            "Access-Control-Request-Method", "").upper()
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "")
