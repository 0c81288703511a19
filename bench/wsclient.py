"""A lean WebSocket client for the benchmarks: text frames over one asyncio protocol.

The load generator shares the machine with the server, so what it spends per message is
taken from the server. aiohttp's client cost ~300 µs of CPU per chan_in message here, this
one ~210 µs: it frames and parses by hand, reads into one reused buffer and sends a burst
of messages with one write.

Client frames carry an all-zero masking key: the framing is what RFC 6455 requires, and
masking with zeros leaves the payload as it is, so nothing is XORed byte by byte in Python.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from urllib.parse import urlsplit

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA
ZERO_MASK = b"\x00\x00\x00\x00"
READ_SIZE = 64 * 1024


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + ZERO_MASK + payload


class _Protocol(asyncio.BufferedProtocol):
    """Reads the upgrade answer, then unmasked server frames; hands each text frame on.

    Buffered: the socket is read into one reused buffer, not into a new 256 KiB bytes
    object per read (which costs an mmap, an mremap and a munmap each time).
    """

    def __init__(self, on_text: Callable[[str], None], on_close: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._fragments = bytearray()
        self._read_buffer = memoryview(bytearray(READ_SIZE))
        self._on_text, self._on_close = on_text, on_close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._buffer += self._read_buffer[:nbytes]
        if not self.upgraded.done():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.upgraded.set_result(bytes(self._buffer[:end]))
            del self._buffer[:end + 4]
        self._frames()

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            size, start = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = struct.unpack_from("!H", buffer, 2)[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < start + size:
                return
            payload = bytes(buffer[start:start + size])
            del buffer[:start + size]
            self._frame(first & 0x0F, bool(first & 0x80), payload)

    def _frame(self, opcode: int, final: bool, payload: bytes) -> None:
        if opcode == PING:
            self.transport.write(client_frame(PONG, payload))
        elif opcode == CLOSE:
            self.transport.close()
        elif opcode in (TEXT, 0x0):  # a text frame, or a continuation of one
            self._fragments += payload
            if final:
                text, self._fragments = self._fragments.decode(), bytearray()
                self._on_text(text)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(ConnectionError("closed before the WebSocket upgrade"))
        self._on_close()


class WebSocket:
    """A client WebSocket: `queue` text, `flush` it in one write; received text goes to `on_text`."""

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol
        self._pending: list[bytes] = []

    @classmethod
    async def connect(cls, url: str, on_text: Callable[[str], None], on_close: Callable[[], None],
                      timeout: float = 10) -> WebSocket:
        """Open `ws://host:port/path?query` and complete the upgrade."""
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: _Protocol(on_text, on_close), parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        protocol.transport.write(
            f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = await asyncio.wait_for(protocol.upgraded, timeout)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            protocol.transport.close()
            raise ConnectionError(f"WebSocket upgrade refused: {status.decode(errors='replace')}")
        return cls(protocol)

    def queue(self, text: str) -> None:
        """Add a text frame to the next `flush`."""
        self._pending.append(client_frame(TEXT, text.encode()))

    def flush(self) -> None:
        """Write every queued frame at once."""
        if self._pending:
            self._protocol.transport.write(b"".join(self._pending))
            self._pending.clear()

    async def close(self) -> None:
        """Send a close frame and close the connection."""
        transport = self._protocol.transport
        if not transport.is_closing():
            transport.write(client_frame(CLOSE, struct.pack("!H", 1000)))
            transport.close()
        await asyncio.sleep(0)
