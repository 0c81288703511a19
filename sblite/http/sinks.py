"""Frame writers for realtime connections: SSE events and WebSocket text frames.

Both write to the connection's transport without waiting, so the hub can fan a message out
to thousands of members in one pass; the transport's buffer size tells the hub how far a
client has fallen behind. What one turn of the event loop sends to a connection goes out in
one write.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from aiohttp import WSCloseCode, web


# The kernel's send buffer counts too when a client stops reading: keep it small, so the
# outgoing limit (checked on what asyncio holds beyond it) bounds a connection's memory.
SEND_BUFFER_BYTES = 64 * 1024


class _TransportSink:
    """What both sinks share: the transport, its backlog, and whether the client is still there."""

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self._loop = asyncio.get_running_loop()
        self._queued: list[bytes] = []  # written together once this turn of the event loop ends
        self._queued_bytes = 0
        sock = self._transport.get_extra_info("socket") if self._transport is not None else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
            except OSError:
                pass

    def alive(self) -> bool:
        """False once the client has gone."""
        return self._transport is not None and not self._transport.is_closing()

    def pending_bytes(self) -> int:
        """Bytes the client has not taken yet."""
        return self._transport.get_write_buffer_size() + self._queued_bytes if self.alive() else 0

    def _queue(self, data: bytes) -> None:
        """Write `data` with whatever else this turn of the loop sends here: one system call for all."""
        if not self._queued:
            self._loop.call_soon(self._flush)
        self._queued.append(data)
        self._queued_bytes += len(data)

    def _flush(self) -> None:
        queued, self._queued, self._queued_bytes = self._queued, [], 0
        if queued and self.alive():
            self._transport.write(queued[0] if len(queued) == 1 else b"".join(queued))

    def _abort(self) -> None:
        self._flush()  # what was sent before goes out if the socket takes it, as with no queue
        if self._transport is not None:
            self._transport.abort()


class SseSink(_TransportSink):
    """Writes `data: <frame>` events as HTTP/1.1 chunks on a prepared event-stream response."""

    def __init__(self, request: web.Request) -> None:
        super().__init__(request)
        self.done = asyncio.Event()
        self.going_away = False

    def send(self, frame: bytes) -> None:
        """Write one event."""
        self._write(b"data: " + frame + b"\n\n")

    def keepalive(self) -> None:
        """Write a comment line; it also reveals a client that went away."""
        self._write(b": ping\n\n")

    def _write(self, event: bytes) -> None:
        if not self.alive():
            self.done.set()
            return
        # The response uses chunked transfer encoding: frame each event as one chunk.
        self._queue(b"%x\r\n%b\r\n" % (len(event), event))

    def close(self, going_away: bool) -> None:
        """End the stream: after what is buffered on shutdown, at once for a slow client."""
        self.going_away = going_away
        if going_away:
            self._flush()
        else:
            self._abort()
        self.done.set()


class WsSink(_TransportSink):
    """Writes unmasked, uncompressed WebSocket text frames."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        super().__init__(request)
        self._ws = ws
        self._closing: asyncio.Task | None = None

    def send(self, data: bytes) -> None:
        """Write one text frame."""
        if not self.alive():
            return
        size = len(data)
        if size < 126:
            header = struct.pack("!BB", 0x81, size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x81, 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 127, size)
        self._queue(header + data)

    def close(self, going_away: bool) -> None:
        """Close with 1001 on shutdown; drop a slow client at once."""
        if not going_away:
            self._abort()
            return
        self._flush()  # the close frame goes after every message queued before it
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._ws.close(code=WSCloseCode.GOING_AWAY,
                                                                 message=b"server shutting down"))

    async def wait_closed(self) -> None:
        """Wait for a close started by `close`."""
        if self._closing is not None:
            await self._closing
