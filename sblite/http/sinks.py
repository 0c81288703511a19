"""Outgoing side of realtime connections: SSE events and WebSocket text frames.

The hub hands a sink each frame without waiting, so it can fan a message out to thousands of
members in one pass. A sink keeps the frames in a bounded outbox (a deque and its byte count)
that one writer per connection drains through aiohttp's own writers: `StreamResponse.write` for
SSE (chunked over HTTP/1.1, a plain body over HTTP/1.0) and `WebSocketResponse.send_frame` for
WebSocket, so nothing goes out after aiohttp has sent a close frame. The writer takes everything
queued when it wakes: the frames one turn of the event loop sends to a listener go out together.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
from collections import deque

from aiohttp import WSCloseCode, WSMsgType, web


# The kernel's send buffer counts too when a client stops reading: keep it small, so the
# outgoing limit (checked on what asyncio holds beyond it) bounds a connection's memory.
SEND_BUFFER_BYTES = 64 * 1024


class State(enum.Enum):
    """Where a sink is in its life."""

    OPEN = "open"  # frames are taken and written
    CLOSING = "closing"  # the server is going away: write what is queued, then end the stream
    CLOSED = "closed"  # nothing more is written


class _Outbox:
    """What both sinks share: the queued frames, their size, the state, and the client's transport."""

    def __init__(self, request: web.Request) -> None:
        self.state = State.OPEN
        self._transport = request.transport
        self._frames: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._aborting = False
        sock = self._transport.get_extra_info("socket") if self._transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def alive(self) -> bool:
        """False once the client has gone or the sink is closed."""
        return self.state is State.OPEN and self._transport is not None and not self._transport.is_closing()

    def pending_bytes(self) -> int:
        """Bytes queued or buffered by the transport that the client has not taken yet."""
        transport = self._transport
        if transport is None or not self.alive():
            return 0
        return self._queued_bytes + transport.get_write_buffer_size()

    def _queue(self, data: bytes) -> None:
        """Add `data` to the outbox and wake the writer if it is waiting."""
        if self.state is not State.OPEN:
            return
        self._frames.append(data)
        self._queued_bytes += len(data)
        self._wake()

    def _wake(self) -> None:
        wakeup, self._wakeup = self._wakeup, None
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _next_batch(self) -> list[bytes] | None:
        """Everything queued, once there is something; None when the sink is closed and drained."""
        while not self._frames:
            if self.state is not State.OPEN:
                return None
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        frames = list(self._frames)
        self._frames.clear()
        self._queued_bytes = 0
        return frames

    def _end(self, going_away: bool) -> None:
        """Stop taking frames: drain the outbox first on shutdown, drop the client at once otherwise."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSING if going_away else State.CLOSED
        if not going_away:
            self._aborting = True
            # What was queued before (an error frame, say) still goes out if the socket takes it
            # at once; a client that is behind is dropped now, with its backlog.
            if not self._frames or self._transport is None or self._transport.get_write_buffer_size():
                self._abort()
        self._wake()

    def _abort(self) -> None:
        self._frames.clear()
        self._queued_bytes = 0
        if self._transport is not None:
            self._transport.abort()

    def _finish(self) -> None:
        """The writer has stopped: nothing more is written."""
        self.state = State.CLOSED
        if self._aborting:
            self._abort()
        self._frames.clear()
        self._queued_bytes = 0


class SseSink(_Outbox):
    """Writes `data: <frame>` events on a prepared event-stream response."""

    def __init__(self, request: web.Request, keepalive_seconds: float) -> None:
        super().__init__(request)
        self._keepalive_seconds = keepalive_seconds
        self._keepalive = asyncio.get_running_loop().call_later(keepalive_seconds, self._ping)
        self._queue(b": connected\n\n")  # goes out at once: the client sees the headers

    def send(self, frame: bytes) -> None:
        """Queue one event."""
        self._queue(b"data: " + frame + b"\n\n")

    def _ping(self) -> None:
        """A comment line keeps an idle stream open and reveals a client that went away."""
        self._queue(b": ping\n\n")
        if self.state is State.OPEN:
            self._keepalive = asyncio.get_running_loop().call_later(self._keepalive_seconds, self._ping)

    def close(self, going_away: bool) -> None:
        """End the stream: after what is queued on shutdown, at once for a slow client."""
        self._end(going_away)

    async def run(self, response: web.StreamResponse) -> None:
        """Write queued events until the sink closes or the client goes; then end the body on shutdown."""
        try:
            while (batch := await self._next_batch()) is not None:
                await response.write(batch[0] if len(batch) == 1 else b"".join(batch))
            if self.state is State.CLOSING:
                await response.write_eof()
        except ConnectionError:
            pass  # the client left
        finally:
            self._finish()
            self._keepalive.cancel()


class WsSink(_Outbox):
    """Sends text frames through aiohttp's WebSocket writer, and closes with 1001 on shutdown."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        super().__init__(request)
        self._ws = ws
        self._writer = asyncio.ensure_future(self._run())

    def send(self, frame: bytes) -> None:
        """Queue one text frame."""
        self._queue(frame)

    def alive(self) -> bool:
        """False once the client has gone or a close frame was sent."""
        return not self._ws.closed and super().alive()

    def close(self, going_away: bool) -> None:
        """Close with 1001 after what is queued on shutdown; drop a slow client at once."""
        self._end(going_away)

    async def wait_closed(self) -> None:
        """Stop the writer (unless it is closing the socket on shutdown) and wait for it to finish."""
        if self.state is State.OPEN:
            self.state = State.CLOSED
            self._frames.clear()
            self._wake()
        await self._writer

    async def _run(self) -> None:
        ws = self._ws
        try:
            while (batch := await self._next_batch()) is not None:
                for frame in batch:
                    if ws.closed:  # aiohttp has sent a close frame: nothing may follow it
                        return
                    await ws.send_frame(frame, WSMsgType.TEXT)
            if self.state is State.CLOSING and not ws.closed:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        except ConnectionError:
            pass  # the client left
        finally:
            self._finish()
