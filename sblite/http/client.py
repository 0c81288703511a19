"""The one place a request's client address and scheme are decided (trusted proxies may forward them)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

from sblite.http.policy import Handler
from sblite.proxies import TrustedProxies


@dataclass(frozen=True)
class Client:
    """Who sent a request: the address and scheme handlers see as `request.remote` and `request.scheme`."""

    address: str | None
    scheme: str


CLIENT = web.RequestKey("client", Client)


def client_of(request: web.BaseRequest) -> Client:
    """The request's client as the middleware decided it; the TCP peer for requests it never saw."""
    return request.get(CLIENT) or Client(request.remote, request.scheme)


def client_middleware(trusted: TrustedProxies) -> Middleware:
    """A middleware handing every handler a request whose remote and scheme are the client's."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote
        client = Client(
            trusted.client_address(peer, request.headers.getall(hdrs.X_FORWARDED_FOR, ())),
            trusted.client_scheme(peer, request.scheme, request.headers.get(hdrs.X_FORWARDED_PROTO)))
        request[CLIENT] = client  # on the protocol's own request too, where the access log reads it
        if client == Client(peer, request.scheme):
            return await handler(request)
        return await handler(request.clone(remote=client.address or "", scheme=client.scheme))

    return middleware
