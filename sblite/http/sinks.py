"""Frame writers for realtime connections: SSE events and WebSocket text frames.

Both write straight to the connection's transport without waiting, so the hub can fan a
message out to thousands of members in one pass; the transport's buffer size tells the hub
how far a client has fallen behind.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from aiohttp import WSCloseCode, web


# The kernel's send buffer counts too when a client stops reading: keep it small, so the
# outgoing limit (checked on what asyncio holds beyond it) bounds a connection's memory.
SEND_BUFFER_BYTES = 64 * 1024


def _small_send_buffer(request: web.Request) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        except OSError:
            pass


class SseSink:
    """Writes `data: <frame>` events as HTTP/1.1 chunks on a prepared event-stream response."""

    def __init__(self, request: web.Request) -> None:
        self._transport = request.transport
        self.done = asyncio.Event()
        self.going_away = False
        _small_send_buffer(request)

    def send(self, frame: bytes) -> None:
        """Write one event."""
        self._write(b"data: " + frame + b"\n\n")

    def keepalive(self) -> None:
        """Write a comment line; it also reveals a client that went away."""
        self._write(b": ping\n\n")

    def _write(self, event: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            self.done.set()
            return
        # The response uses chunked transfer encoding: frame each event as one chunk.
        transport.write(b"%x\r\n%b\r\n" % (len(event), event))

    def pending_bytes(self) -> int:
        """Bytes the client has not taken yet."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None and not transport.is_closing() else 0

    def alive(self) -> bool:
        """False once the client has gone."""
        return self._transport is not None and not self._transport.is_closing()

    def close(self, going_away: bool) -> None:
        """End the stream: after what is buffered on shutdown, at once for a slow client."""
        self.going_away = going_away
        if not going_away and self._transport is not None:
            self._transport.abort()
        self.done.set()


class WsSink:
    """Writes unmasked, uncompressed WebSocket text frames."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self._transport = request.transport
        self._ws = ws
        self._closing: asyncio.Task | None = None
        _small_send_buffer(request)

    def send(self, data: bytes) -> None:
        """Write one text frame."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        size = len(data)
        if size < 126:
            header = struct.pack("!BB", 0x81, size)
        elif size < 65536:
            header = struct.pack("!BBH", 0x81, 126, size)
        else:
            header = struct.pack("!BBQ", 0x81, 127, size)
        transport.write(header + data)

    def pending_bytes(self) -> int:
        """Bytes the client has not taken yet."""
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None and not transport.is_closing() else 0

    def alive(self) -> bool:
        """False once the client has gone."""
        return self._transport is not None and not self._transport.is_closing()

    def close(self, going_away: bool) -> None:
        """Close with 1001 on shutdown; drop a slow client at once."""
        if not going_away:
            if self._transport is not None:
                self._transport.abort()
            return
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._ws.close(code=WSCloseCode.GOING_AWAY,
                                                                 message=b"server shutting down"))

    async def wait_closed(self) -> None:
        """Wait for a close started by `close`."""
        if self._closing is not None:
            await self._closing
