"""`fetch()` for functions: HTTP(S) with aiohttp, refusing non-public addresses unless allowed.

Every connection the client makes is checked, whatever led to it (an IP literal in any form, a
name, a redirect, a name whose answer changed): the resolver drops non-public answers, and the
socket factory refuses the very address about to be connected to. Redirects are followed here,
one hop at a time, so each hop goes through the same connector.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from typing import Any
from collections.abc import Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from sblite.errors import BadRequest

FETCH_TIMEOUT_SECONDS = 10  # for the whole fetch, redirects included
MAX_REDIRECTS = 10
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
REDIRECTS = {301, 302, 303, 307, 308}
BODY_HEADERS = {"content-type", "content-length", "content-encoding", "content-language", "content-location"}
CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}
NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressCheck = Callable[[IPAddress], bool]  # True: fetch must not connect there


def is_non_public(ip: IPAddress) -> bool:
    """Whether an address is off the public internet: loopback, private, link-local, multicast, ..."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return is_non_public(embedded)
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    return (not ip.is_global or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or site_local)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%")[0])  # a link-local address may carry its zone


class RefusedAddress(PermissionError):
    """fetch() was about to connect to an address it must not reach."""

    def __init__(self, target: str) -> None:
        super().__init__(errno.EACCES, f"fetch refuses {target}: it is a loopback, private, link-local "
                                       "or other non-public address")


class PublicOnlyResolver(AbstractResolver):
    """Resolves names, then drops every refused address (so a name cannot point inside)."""

    def __init__(self, refuse: AddressCheck) -> None:
        self._inner = DefaultResolver()
        self._refuse = refuse

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        """The name's addresses that may be reached; RefusedAddress when there are none."""
        answers = await self._inner.resolve(host, port, family)
        results = [r for r in answers if not self._refuse(_address(r["host"]))]
        if not results:
            raise RefusedAddress(host)
        return results

    async def close(self) -> None:
        """Close the system resolver."""
        await self._inner.close()


def guarded_socket_factory(refuse: AddressCheck) -> Callable[[tuple[Any, ...]], socket.socket]:
    """A TCPConnector socket factory that refuses to open a socket towards a refused address."""
    def make(addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        if refuse(_address(sockaddr[0])):
            raise RefusedAddress(sockaddr[0])
        return socket.socket(family, kind, proto)
    return make


class Fetcher:
    """One shared client session; `__call__` matches the host API's fetch signature."""

    def __init__(self, allow_private: bool, refuse: AddressCheck = is_non_public,
                 resolver: AbstractResolver | None = None) -> None:
        """`refuse` says which addresses are off limits; `resolver` looks names up (by default the
        system's, dropping refused answers). Neither applies when `allow_private` is set."""
        self._allow_private = allow_private
        self._refuse = refuse
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str, options: dict[str, Any], limit: int) -> dict[str, Any]:
        """Fetch `url`, following redirects: the status, body text (at most `limit` bytes) and headers."""
        method = str(options.get("method") or "GET").upper()
        if method not in METHODS:
            raise BadRequest(f"fetch: unsupported method {method}")
        headers = options.get("headers") or {}
        if not isinstance(headers, dict):
            raise BadRequest("fetch: headers must be an object")
        body = options.get("body")
        if body is not None and not isinstance(body, str):
            raise BadRequest("fetch: body must be a string (use JSON.stringify)")
        target = _http_url(None, url)
        if target is None:
            raise BadRequest("fetch needs an http:// or https:// URL")
        try:
            async with asyncio.timeout(FETCH_TIMEOUT_SECONDS):
                headers = {str(k): str(v) for k, v in headers.items()}
                return await self._follow(method, target, headers, body, limit)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BadRequest(f"error calling fetch(): {exc or type(exc).__name__}") from None

    async def _follow(self, method: str, url: URL, headers: dict[str, str], body: str | None,
                      limit: int) -> dict[str, Any]:
        """Request `url`, then each redirect's target (each one a fresh, checked connection)."""
        for hop in range(MAX_REDIRECTS + 1):
            try:
                async with self._client().request(method, url, headers=headers, data=body,
                                                  allow_redirects=False) as response:
                    location = response.headers.get("Location")
                    if response.status not in REDIRECTS or location is None:
                        return await _answer(response, limit)
            except aiohttp.ClientConnectorError as exc:
                if not isinstance(exc.os_error, RefusedAddress):
                    raise
                raise BadRequest(str(exc.os_error.strerror) + (f" (redirected to {url})" if hop else "")) from None
            following = _http_url(url, location)
            if following is None:
                raise BadRequest(f"fetch: {url} redirected to {location!r}, which is not an http(s) URL")
            status = response.status
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", None  # what browsers do; 307 and 308 keep both
                headers = {k: v for k, v in headers.items() if k.lower() not in BODY_HEADERS}
            if following.origin() != url.origin():
                headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
            url = following
        raise BadRequest(f"fetch: too many redirects (more than {MAX_REDIRECTS})")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._allow_private:
                connector = aiohttp.TCPConnector()
            else:
                if self._resolver is None:
                    self._resolver = PublicOnlyResolver(self._refuse)
                connector = aiohttp.TCPConnector(resolver=self._resolver,
                                                 socket_factory=guarded_socket_factory(self._refuse))
            # trust_env stays off: through a proxy, the guard would check the proxy, not the target
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def close(self) -> None:
        """Close the session and the resolver."""
        if self._session is not None:
            await self._session.close()
        if self._resolver is not None:
            await self._resolver.close()


async def _answer(response: aiohttp.ClientResponse, limit: int) -> dict[str, Any]:
    """The final response as the host API returns it; BadRequest past `limit` bytes."""
    raw = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        raw += chunk
        if len(raw) > limit:
            raise BadRequest(f"fetch: the response is larger than {limit} bytes")
    return {"status": response.status, "body": raw.decode(response.charset or "utf-8", errors="replace"),
            "headers": {k: v for k, v in response.headers.items()}}


def _http_url(base: URL | None, text: str) -> URL | None:
    """`text` (resolved against `base` if given) when it is an http(s) URL with a host; else None."""
    try:
        url = URL(text) if base is None else base.join(URL(text))
    except (ValueError, TypeError):
        return None
    return url if url.scheme in ("http", "https") and url.host else None
