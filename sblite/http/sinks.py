"""Outgoing side of realtime connections: SSE events and WebSocket text frames.

The hub hands a sink each frame without waiting, so it can fan a message out to thousands of
members in one pass. A sink keeps the frames in a bounded outbox (a list and its byte count).
SSE events go through aiohttp's `StreamResponse.write` (chunked over HTTP/1.1, a plain body over
HTTP/1.0). WebSocket frames are written only while aiohttp's `WebSocketResponse` is open, so
nothing follows a close frame aiohttp has sent. What one turn of the event loop queues for a
connection goes out in one write once the turn ends; the write runs at once, and becomes a task
only when it has to wait for the client to drain the socket (frames queued meanwhile wait in
the outbox, where the hub's byte budget sees them).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import types
from collections.abc import Coroutine, Generator
from typing import Any

from aiohttp import WSCloseCode, web


# The kernel's send buffer counts too when a client stops reading: keep it small, so the
# outgoing limit (checked on what asyncio holds beyond it) bounds a connection's memory.
SEND_BUFFER_BYTES = 64 * 1024


class State(enum.Enum):
    """Where a sink is in its life."""

    OPEN = "open"  # frames are queued and written
    CLOSING = "closing"  # the server is going away: what is queued goes out, then the stream ends
    CLOSED = "closed"  # nothing more is written


# Python 3.11 looks an Enum member up on its class in about 0.2 µs, and a delivery made several
# such lookups: the sinks compare with these instead (docs/performance.md).
_OPEN, _CLOSING, _CLOSED = State.OPEN, State.CLOSING, State.CLOSED


def start_eagerly(coro: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None] | None:
    """Run `coro` now up to its first wait: None if it finished, else a coroutine that finishes it.

    Python 3.12's eager tasks do this. A write to a socket that keeps up never waits, so most
    writes cost no task; only one that waits for the client to drain the socket needs one.
    """
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None

    async def rest() -> None:
        await _resume(coro, yielded)

    return rest()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> Generator[Any, Any, None]:
    """Continue a started coroutine inside the task that awaits this: what `yield from` does."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration:
                return


class _Outbox:
    """What both sinks share: the queued frames, their size, the write under way, and the state."""

    def __init__(self, request: web.Request) -> None:
        self.state = _OPEN
        self.done = asyncio.Event()  # set once the sink stops: closed, or the client gone
        self._transport = request.transport
        self._loop = asyncio.get_running_loop()
        self._frames: list[bytes] = []
        self._queued_bytes = 0
        self._flush_scheduled = False
        self._writing: asyncio.Task[None] | None = None  # a write waiting for the client to drain the socket
        sock = self._transport.get_extra_info("socket") if self._transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def alive(self) -> bool:
        """False once the client has gone or the sink is closed."""
        return self.state is _OPEN and self._transport is not None and not self._transport.is_closing()

    def pending_bytes(self) -> int:
        """Bytes queued or buffered by the transport that the client has not taken yet."""
        transport = self._transport
        if self.state is not _OPEN or transport is None or transport.is_closing():
            return 0
        return self._queued_bytes + transport.get_write_buffer_size()

    def _queue(self, data: bytes) -> None:
        """Add `data` to the outbox; it is written when this turn of the event loop ends."""
        if self.state is not _OPEN:
            return
        self._frames.append(data)
        self._queued_bytes += len(data)
        if not self._flush_scheduled and self._writing is None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write everything queued, unless a write is still waiting (it writes the rest when done)."""
        self._flush_scheduled = False
        if self._writing is not None or not self._frames or self.state is _CLOSED:
            return
        frames, self._frames, self._queued_bytes = self._frames, [], 0
        try:
            rest = self._write(frames)
        except ConnectionError:
            self._gone()
            return
        if rest is not None:
            self._writing = asyncio.ensure_future(self._finish_write(rest))

    async def _finish_write(self, rest: Coroutine[Any, Any, None]) -> None:
        """Finish a write that waits for the client, then write what was queued meanwhile."""
        try:
            await rest
        except ConnectionError:
            self._gone()  # the client left
        finally:
            self._writing = None
        self._flush()

    def _write(self, frames: list[bytes]) -> Coroutine[Any, Any, None] | None:
        """Write frames now; if the write has to wait for the client, a coroutine that finishes it."""
        raise NotImplementedError

    async def drained(self) -> None:
        """Wait until everything queued has been written (or the client has gone)."""
        while True:
            if self._writing is not None:
                await asyncio.shield(self._writing)
            elif self._frames and self.state is not _CLOSED:
                self._flush()
            else:
                return

    def _end(self, going_away: bool) -> None:
        """Stop taking frames: what is queued goes out on shutdown; otherwise drop the client."""
        if self.state is _CLOSED:
            return
        if going_away:
            self.state = _CLOSING
        else:
            if self._transport is not None and not self._transport.get_write_buffer_size():
                self._flush()  # what was queued before (an error frame, say) goes out if the socket takes it
            self.state = _CLOSED
            self._frames.clear()
            self._queued_bytes = 0
            if self._transport is not None:
                self._transport.abort()
        self.done.set()

    def _gone(self) -> None:
        """The client left: forget what is queued."""
        self.state = _CLOSED
        self._frames.clear()
        self._queued_bytes = 0
        self.done.set()


class SseSink(_Outbox):
    """Writes `data: <frame>` events on a prepared event-stream response."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        super().__init__(request)
        self._response = response
        self._queue(b": connected\n\n")  # goes out at once: the client sees the headers

    async def run(self, keepalive_seconds: float) -> None:
        """Keep the stream open until the sink stops; on shutdown, write what is queued and end the body."""
        while not self.done.is_set():
            try:
                await asyncio.wait_for(self.done.wait(), keepalive_seconds)
            except TimeoutError:
                self.keepalive()
        if self.state is _CLOSING:
            with contextlib.suppress(ConnectionError):
                await self.drained()
                await self._response.write_eof()
        self._gone()

    def send(self, frame: bytes) -> None:
        """Queue one event."""
        self._queue(b"data: " + frame + b"\n\n")

    def keepalive(self) -> None:
        """Queue a comment line: it keeps an idle stream open and reveals a client that went away."""
        self._queue(b": ping\n\n")

    def close(self, going_away: bool) -> None:
        """End the stream: after what is queued on shutdown, at once for a slow client."""
        self._end(going_away)

    def _write(self, frames: list[bytes]) -> Coroutine[Any, Any, None] | None:
        return start_eagerly(self._response.write(frames[0] if len(frames) == 1 else b"".join(frames)))


class WsSink(_Outbox):
    """Sends text frames while aiohttp's WebSocket is open, and closes it with 1001 on shutdown."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        super().__init__(request)
        self._ws = ws
        self._closing: asyncio.Task[bool] | None = None

    def send(self, frame: bytes) -> None:
        """Queue one text frame."""
        self._queue(_text_frame(frame))

    def alive(self) -> bool:
        """False once the client has gone or a close frame was sent."""
        return not self._ws.closed and super().alive()

    def close(self, going_away: bool) -> None:
        """Close with 1001 after what is queued on shutdown; drop a slow client at once."""
        self._end(going_away)
        if going_away and self._closing is None:
            self._closing = asyncio.ensure_future(self._close_after_writes())

    async def wait_closed(self) -> None:
        """Wait for a close started by `close`."""
        if self._closing is not None:
            await self._closing
        self._gone()

    async def _close_after_writes(self) -> bool:
        await self.drained()
        return await self._ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    def _write(self, frames: list[bytes]) -> None:
        transport = self._transport
        if self._ws.closed or transport is None or transport.is_closing():
            return  # aiohttp has sent (or is sending) a close frame: nothing may follow it
        # aiohttp has no batched send: its writer makes one system call per frame, which costs
        # fan-out a fifth more CPU per delivery (docs/performance.md). So what one turn queued goes
        # out in one write of frames made byte for byte as aiohttp makes them (a test compares);
        # the write never waits: the hub's byte budget bounds what the transport holds.
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))


def _text_frame(data: bytes) -> bytes:
    """An unmasked, uncompressed WebSocket text frame (RFC 6455 §5.2), as aiohttp's writer makes it."""
    size = len(data)
    if size < 126:
        return struct.pack("!BB", 0x81, size) + data
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + data
    return struct.pack("!BBQ", 0x81, 127, size) + data
