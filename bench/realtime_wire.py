"""Minimal realtime clients for the benchmark: SSE and WebSocket members on raw asyncio protocols.

A member reads into one preallocated buffer (asyncio.BufferedProtocol: recv_into, no 256 KiB
allocation per read) and decodes frames as JSON only while it sets up (init, token, ok,
presence). Once it has joined, it only counts frames and reads the send timestamp of
`chan_out` frames with one regex over the bytes received, so one receiving process can
follow tens of thousands of deliveries per second on a shared CPU.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

CHANNEL = "bench"
BUCKET_NS = 100_000  # latency histogram resolution: 0.1 ms
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# The `data` of a bench chan_in is "b:<phase>:<monotonic send ns>"; chan_out carries it verbatim.
CHAN_OUT = re.compile(rb'"type":"chan_out","data":"b:(\d+):(\d+)"')
SSE_DATA = re.compile(rb"data: ([^\n]*)\n\n")
MAX_ERRORS = 20
BUFFER_BYTES = 16 * 1024


def bench_data(phase: int, sent_ns: int) -> str:
    """The chan_in data string of one bench message."""
    return f"b:{phase}:{sent_ns}"


@dataclass
class Tally:
    """What the members of one process received: per phase counts, receive span and latencies."""

    frames: int = 0
    last_frame_ns: int = 0
    disconnects: int = 0
    count: dict[int, int] = field(default_factory=dict)
    first_ns: dict[int, int] = field(default_factory=dict)
    last_ns: dict[int, int] = field(default_factory=dict)
    hist: dict[int, dict[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def record(self, matches: list[tuple[bytes, bytes]], now: int) -> None:
        """Count chan_out frames received at `now` and file their latencies by phase."""
        for phase_text, sent_text in matches:
            phase = int(phase_text)
            bucket = (now - int(sent_text)) // BUCKET_NS
            hist = self.hist.get(phase)
            if hist is None:
                hist = self.hist[phase] = {}
                self.first_ns[phase] = now
                self.count[phase] = 0
            hist[bucket] = hist.get(bucket, 0) + 1
            self.count[phase] += 1
            self.last_ns[phase] = now

    def error(self, text: str) -> None:
        """Keep the first few problem descriptions."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(text)


class Member(asyncio.BufferedProtocol):
    """One realtime connection: HTTP handshake, then frames; replies are awaited by type.

    Received bytes live in buf[:fill]; `feed` consumes whole frames from the front.
    """

    transport_name = ""

    def __init__(self, tally: Tally, host: str, port: int, pk: str) -> None:
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.pumped = False  # read by a Pump thread: touch the transport only through the loop
        self.tally, self.host, self.port, self.pk = tally, host, port, pk
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(BUFFER_BYTES)
        self.fill = 0
        self.headers_done = False
        self.fast = False
        self.closing = False
        self.lost = False
        self.sid = ""
        self.token = ""
        self.received = 0
        self.frame_errors: list[str] = []
        self.opened: asyncio.Future[str] = loop.create_future()
        self.waiting: dict[str, asyncio.Future[str]] = {"init": self.opened}

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the HTTP request that opens the stream."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request())

    def get_buffer(self, sizehint: int) -> memoryview:
        """The free end of the buffer, doubled first when it is full."""
        if self.fill == len(self.buf):
            self.buf = self.buf + bytes(len(self.buf))  # a new object: the old one may still be exported
        return memoryview(self.buf)[self.fill:]

    def buffer_updated(self, nbytes: int) -> None:
        """Read the response head once, then whole frames."""
        self.fill += nbytes
        if not self.headers_done:
            end = self.buf.find(b"\r\n\r\n", 0, self.fill)
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            self.consume(end + 4)
            problem = self.check_head(head)
            if problem:
                self.fail(f"{self.transport_name} handshake refused: {problem}")
                self.close()
                return
            self.headers_done = True
        self.feed()

    def connection_lost(self, exc: Exception | None) -> None:
        """Count a connection the client did not close itself."""
        if not self.lost:
            self.gone(exc)
        self.fail("connection lost")

    def gone(self, exc: Exception | None) -> None:
        """The connection ended; a disconnect unless the client closed it."""
        self.lost = True
        if not self.closing:
            self.tally.disconnects += 1
            reason = exc or "closed by server"
            self.tally.error(f"{self.transport_name} member {self.sid or '?'} disconnected: {reason}")

    # --- subclasses

    def request(self) -> bytes:
        """The HTTP request bytes."""
        raise NotImplementedError

    def check_head(self, head: str) -> str:
        """'' when the response head is the expected one, else what is wrong."""
        raise NotImplementedError

    def feed(self) -> None:
        """Consume the complete frames at the start of the buffer."""
        raise NotImplementedError

    async def send(self, message: dict[str, Any]) -> None:
        """Send one client message."""
        raise NotImplementedError

    # --- shared

    def consume(self, size: int) -> None:
        """Drop the first `size` buffered bytes, moving the rest to the front (same length: allowed while exported)."""
        rest = self.fill - size
        if rest:
            self.buf[:rest] = self.buf[size:self.fill]
        self.fill = rest

    def counted(self, region_end: int, frames: int, now: int) -> None:
        """Account `frames` frames in buf[:region_end] and read the chan_out timestamps in it."""
        tally = self.tally
        tally.frames += frames
        tally.last_frame_ns = now
        matches = CHAN_OUT.findall(self.buf, 0, region_end)
        if matches:
            self.received += len(matches)
            tally.record(matches, now)

    def on_json(self, raw: bytes) -> None:
        """Setup mode: resolve the waiter for this frame type; remember error frames."""
        try:
            frame = json.loads(raw)
            kind, data = frame["type"], frame["data"]
        except (ValueError, KeyError, TypeError):
            self.tally.error(f"undecodable frame: {raw[:200]!r}")
            return
        waiter = self.waiting.pop(kind, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(data)
        elif kind == "error":
            self.frame_errors.append(data)
            for waiter in self.waiting.values():
                if not waiter.done():
                    waiter.set_exception(RuntimeError(f"server error frame: {data}"))
            self.waiting.clear()

    def want(self, kind: str) -> asyncio.Future[str]:
        """A future for the next frame of this type."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[kind] = future
        return future

    def fail(self, reason: str) -> None:
        """Fail every pending waiter."""
        for waiter in self.waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(reason))
        self.waiting.clear()

    async def call(self, message: dict[str, Any], reply: str, timeout: float) -> str:
        """Send a message and wait for the reply frame of type `reply`; its data."""
        future = self.want(reply)
        await self.send(message)
        return await asyncio.wait_for(future, timeout)

    async def open(self, timeout: float) -> str:
        """Wait for `init`; the connection id."""
        self.sid = await asyncio.wait_for(self.opened, timeout)
        return self.sid

    async def authenticate(self, token: str, timeout: float) -> None:
        """Send auth and wait for `token`."""
        self.token = token
        await self.call({"type": "auth", "data": token}, "token", timeout)

    async def join(self, channel: str, timeout: float) -> None:
        """Join a channel, then only count frames."""
        await self.call({"type": "join", "data": channel}, "ok", timeout)
        self.fast = True

    def in_loop(self, action: Any, *args: Any) -> None:
        """Run a transport action now, or on the event loop's thread while a Pump reads this member."""
        if self.pumped:
            self.loop.call_soon_threadsafe(action, *args)
        else:
            action(*args)

    def close(self) -> None:
        """Close the connection from the client side."""
        self.closing = True
        self.in_loop(self.close_transport)

    def close_transport(self) -> None:
        """Close the transport unless it is closing already (event loop thread only)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class SseMember(Member):
    """An event stream read as raw chunked HTTP/1.1; messages go out as POST /sse/msg."""

    transport_name = "sse"

    def __init__(self, tally: Tally, host: str, port: int, pk: str, session: aiohttp.ClientSession) -> None:
        super().__init__(tally, host, port, pk)
        self.session = session

    def request(self) -> bytes:
        """GET /sse/connect."""
        return (f"GET /sse/connect?sbpk={self.pk} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Accept: text/event-stream\r\n\r\n").encode()

    def check_head(self, head: str) -> str:
        """A 200 event stream."""
        status = head.split("\r\n", 1)[0]
        if not status.startswith("HTTP/1.1 200"):
            return status
        return "" if "text/event-stream" in head.lower() else "not an event stream"

    def feed(self) -> None:
        """Every event ends with a blank line; chunk framing around events is skipped over."""
        buf = self.buf
        end = buf.rfind(b"\n\n", 0, self.fill)
        if end < 0:
            return
        end += 2
        events = buf.count(b"data: ", 0, end)
        if events:
            self.counted(end, events, time.monotonic_ns())
            if not self.fast:
                for match in SSE_DATA.finditer(buf, 0, end):
                    self.on_json(match[1])
        self.consume(end)

    async def send(self, message: dict[str, Any]) -> None:
        """POST the message with this connection's sid and token."""
        body = {"sid": self.sid, "token": self.token, **message}
        async with self.session.post(f"http://{self.host}:{self.port}/sse/msg", json=body,
                                     headers={"SB-PUBLIC-KEY": self.pk}) as resp:
            text = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"POST /sse/msg {message.get('type')} answered {resp.status}: {text[:200]}")


class WsMember(Member):
    """A WebSocket client: masked text frames out, unmasked frames in; answers pings."""

    transport_name = "ws"

    def __init__(self, tally: Tally, host: str, port: int, pk: str) -> None:
        super().__init__(tally, host, port, pk)
        self.key = base64.b64encode(os.urandom(16))

    def request(self) -> bytes:
        """GET /ws with the upgrade headers."""
        return (f"GET /ws?sbpk={self.pk} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {self.key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()

    def check_head(self, head: str) -> str:
        """101 with the right Sec-WebSocket-Accept."""
        status = head.split("\r\n", 1)[0]
        if not status.startswith("HTTP/1.1 101"):
            return status
        accept = base64.b64encode(hashlib.sha1(self.key + WS_GUID).digest()).decode()
        return "" if f"sec-websocket-accept: {accept}".lower() in head.lower() else "bad Sec-WebSocket-Accept"

    def feed(self) -> None:
        """Walk the complete frames: count text frames, answer pings, honour close."""
        buf, pos, size, texts = self.buf, 0, self.fill, 0
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if size - pos < head + length:
                break
            opcode, start = first & 0x0F, pos + head
            pos = start + length
            if second & 0x80 or not first & 0x80:
                self.tally.error(f"ws: unexpected {'masked' if second & 0x80 else 'fragmented'} frame from server")
            if opcode == 1:
                texts += 1
                if not self.fast:
                    self.on_json(bytes(buf[start:pos]))
            elif opcode == 9:
                self.in_loop(self.write_frame, 0x8A, bytes(buf[start:pos]))
            elif opcode == 8:
                if not self.closing:
                    self.tally.disconnects += 1
                    self.tally.error(f"ws member {self.sid} closed by server: {bytes(buf[start:pos])!r}")
                self.close()
            elif opcode != 10:
                self.tally.error(f"ws: unexpected opcode {opcode}")
        if pos:
            if texts:
                self.counted(pos, texts, time.monotonic_ns())
            self.consume(pos)

    def write_frame(self, first: int, payload: bytes) -> None:
        """Write one masked client frame (FIN + opcode in `first`)."""
        if self.transport is None or self.transport.is_closing():
            return
        size = len(payload)
        if size < 126:
            head = bytes((first, 0x80 | size))
        elif size < 65536:
            head = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
        else:
            head = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
        key = os.urandom(4)
        self.transport.write(head + key + mask(payload, key))

    def send_now(self, message: dict[str, Any]) -> None:
        """Write one JSON text frame without waiting."""
        self.write_frame(0x81, json.dumps(message, separators=(",", ":")).encode())

    async def send(self, message: dict[str, Any]) -> None:
        """Write one JSON text frame."""
        self.send_now(message)


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR a payload with a 4-byte WebSocket masking key."""
    size = len(payload)
    if not size:
        return payload
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


async def connect(transport: str, tally: Tally, host: str, port: int, pk: str,
                  session: aiohttp.ClientSession, timeout: float) -> Member:
    """Open a member connection and wait for its `init`."""
    loop = asyncio.get_running_loop()
    if transport == "sse":
        factory: Any = lambda: SseMember(tally, host, port, pk, session)  # noqa: E731
    else:
        factory = lambda: WsMember(tally, host, port, pk)  # noqa: E731
    _, member = await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
    try:
        await member.open(timeout)
    except BaseException:
        member.close()
        raise
    return member


def post_session(limit: int) -> aiohttp.ClientSession:
    """An HTTP client for POST /sse/msg with at most `limit` keep-alive connections."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit),
                                 timeout=aiohttp.ClientTimeout(total=30))
