"""The listener's guard: a deadline for request headers and a cap on open connections.

aiohttp has no request-header timeout: a client that sends half a request line keeps its socket
(and a file descriptor) until `keepalive_timeout`. The guard sits between the listening socket and
aiohttp's protocol: it refuses connections over the cap with a 503, and closes a connection that
has not finished a request's headers within `header_timeout` of connecting, or of the first byte
after its previous request was handled. A request whose handler runs (an SSE stream, a WebSocket)
is never timed; it still counts toward the cap.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import cast
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

_BUSY_TEXT = b"too many open connections: try again later\n"
OVER_LIMIT_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT))
WARN_EVERY_SECONDS = 10.0

# File descriptors the rest of the server may need, kept out of the connection cap (measured: a
# fresh server holds about 25; each function worker holds its two pipes).
BASE_FDS = 64  # stdio, the event loop, the listener, logs, SQLite's journal files, headroom
FETCH_FDS = 100  # outgoing fetch() sockets: aiohttp's connector limit
FDS_PER_WORKER = 3
FDS_PER_DB_CONNECTION = 3  # the database file, its WAL and shared-memory files
MIN_CONNECTIONS = 16
MAX_OPEN_FILES = 1 << 20  # what "unlimited" counts as


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take over its request headers, and how many connections may be open."""

    header_timeout: float
    max_connections: int


def open_file_limit() -> int:
    """This process's soft limit on open file descriptors (RLIMIT_NOFILE)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return MAX_OPEN_FILES if soft == resource.RLIM_INFINITY else min(soft, MAX_OPEN_FILES)


def default_max_connections(open_files: int, workers: int, db_connections: int) -> int:
    """The open-file limit minus what the database, function workers and fetches may need."""
    reserve = BASE_FDS + FETCH_FDS + FDS_PER_WORKER * workers + FDS_PER_DB_CONNECTION * db_connections
    return max(MIN_CONNECTIONS, open_files - reserve)


class ConnectionGuard:
    """Counts open connections, refuses those over the cap, drops those that stall in their headers."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open = 0
        self.dropped = {"header_timeout": 0, "over_limit": 0}
        self._connections: dict[web.RequestHandler, _Connection] = {}
        self._last_warning = float("-inf")

    def install(self, app: web.Application) -> None:
        """Keep the guard in `app` (for /metrics) with the middleware that tells it a request's
        headers are complete."""
        app[CONNECTIONS] = self
        # Outermost, so that it also sees the requests an inner middleware answers itself.
        app.middlewares.insert(0, self._middleware)

    async def listen(self, server: web.Server, host: str, port: int) -> asyncio.Server:
        """Listen on host:port, handing each admitted connection to `server` (a runner's server)."""
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: _Connection(self, server, loop), host, port, backlog=128)

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        # Every parsed request passes here, unknown paths (404) included.
        connection = self._connections.get(request.protocol)
        if connection is None:  # served by a test client, not by listen()
            return await handler(request)
        connection.request_started()
        try:
            return await handler(request)
        finally:
            connection.request_finished()

    def admit(self) -> bool:
        """Whether a new connection may be served; a refusal is counted (and logged now and then)."""
        if self.open < self.limits.max_connections:
            return True
        self.dropped["over_limit"] += 1
        self._warn_over_limit()
        return False

    def track(self, handler: web.RequestHandler, connection: _Connection) -> None:
        """Count an admitted connection in."""
        self.open += 1
        self._connections[handler] = connection

    def release(self, handler: web.RequestHandler) -> None:
        """Count a closed connection out."""
        if self._connections.pop(handler, None) is not None:
            self.open -= 1

    def headers_timed_out(self) -> None:
        """Count a connection dropped for not finishing its request headers in time."""
        self.dropped["header_timeout"] += 1

    def _warn_over_limit(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            self._last_warning = now
            log.warning("max_connections (%d) reached: new connections are answered 503 and closed "
                        "(%d so far)", self.limits.max_connections, self.dropped["over_limit"])


CONNECTIONS = web.AppKey("connections", ConnectionGuard)


class _Connection(asyncio.Protocol):
    """One accepted socket: aiohttp's request handler behind a header deadline."""

    __slots__ = ("_busy", "_deadline", "_guard", "_handler", "_loop", "_server")

    def __init__(self, guard: ConnectionGuard, server: web.Server, loop: asyncio.AbstractEventLoop) -> None:
        self._guard = guard
        self._server = server
        self._loop = loop
        self._handler: web.RequestHandler | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit():
            stream = cast(asyncio.Transport, transport)
            stream.write(OVER_LIMIT_ANSWER)  # best effort: unread request bytes turn the close into a reset
            stream.close()
            return
        self._handler = handler = self._server()
        self._guard.track(handler, self)
        self._start_deadline()
        handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            return
        if self._deadline is None and not self._busy:  # the first byte of the next request
            self._start_deadline()
        self._handler.data_received(data)

    def eof_received(self) -> None:
        if self._handler is not None:
            self._handler.eof_received()

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        handler, self._handler = self._handler, None
        if handler is not None:
            self._guard.release(handler)
            handler.connection_lost(exc)

    def request_started(self) -> None:
        """The headers of a request are complete and its handler runs: no deadline while it does."""
        self._busy = True
        self._cancel_deadline()

    def request_finished(self) -> None:
        """The handler returned; the next bytes start the next request's deadline."""
        self._busy = False

    def _start_deadline(self) -> None:
        self._deadline = self._loop.call_later(self._guard.limits.header_timeout, self._headers_late)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self) -> None:
        self._deadline = None
        assert self._handler is not None  # connection_lost and request_started cancel the deadline
        self._guard.headers_timed_out()
        log.debug("closing a connection that did not finish its request headers in %s s",
                  self._guard.limits.header_timeout)
        self._handler.force_close()  # as aiohttp's own keep-alive timeout does
