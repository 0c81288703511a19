"""`fetch()` for functions: HTTP(S) with aiohttp, refusing private addresses unless allowed."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from sblite.errors import BadRequest

FETCH_TIMEOUT_SECONDS = 10
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet (not loopback, private, link-local, ...)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_global and not ip.is_multicast


class PublicOnlyResolver(AbstractResolver):
    """Resolves names, then drops every non-public address (so a name cannot point inside)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        results = [r for r in await self._inner.resolve(host, port, family) if is_public(r["host"])]
        if not results:
            raise OSError(f"fetch refuses {host}: it is a loopback, private or link-local address")
        return results

    async def close(self) -> None:
        await self._inner.close()


async def _refuse_private(host: str) -> None:
    """BadRequest unless `host` (an address, or a name's addresses) is public.

    Checked here for a clear message; the resolver checks again at connect time, so a name
    cannot switch to an inside address in between.
    """
    try:
        addresses = [host.strip("[]")]
        is_public(addresses[0])
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            raise BadRequest(f"error calling fetch(): cannot resolve {host}: {exc}") from None
        addresses = [info[4][0] for info in infos]
    if not addresses or not all(is_public(address) for address in addresses):
        raise BadRequest(f"fetch refuses {host}: it is a loopback, private or link-local address")


class Fetcher:
    """One shared client session; `__call__` matches the host API's fetch signature."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str, options: dict[str, Any], limit: int) -> dict[str, Any]:
        """Fetch `url`; the status, the body as text (at most `limit` bytes) and the headers."""
        method = str(options.get("method") or "GET").upper()
        if method not in METHODS:
            raise BadRequest(f"fetch: unsupported method {method}")
        headers = options.get("headers") or {}
        if not isinstance(headers, dict):
            raise BadRequest("fetch: headers must be an object")
        body = options.get("body")
        if body is not None and not isinstance(body, str):
            raise BadRequest("fetch: body must be a string (use JSON.stringify)")
        if not self._allow_private:
            await _refuse_private(aiohttp.client.URL(url).host or "")
        try:
            async with self._client().request(method, url, headers={str(k): str(v) for k, v in headers.items()},
                                              data=body) as response:
                raw = await response.content.read(limit + 1)
                if len(raw) > limit:
                    raise BadRequest(f"fetch: the response is larger than {limit} bytes")
                return {"status": response.status, "body": raw.decode(response.charset or "utf-8", errors="replace"),
                        "headers": {k: v for k, v in response.headers.items()}}
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BadRequest(f"error calling fetch(): {exc or type(exc).__name__}") from None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=None if self._allow_private else PublicOnlyResolver())
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS))
        return self._session

    async def close(self) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()
