"""Realtime transports on the wire, spoken over raw sockets: HTTP/1.0 SSE, WebSocket closes, slow readers."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import struct
from types import SimpleNamespace

import pytest
from aiohttp import WSMsgType
from aiohttp.http import WebSocketWriter

from sblite.app import create_app
from sblite.http.keys import HUB
from sblite.http.sinks import _text_frame
from tests.conftest import Api, make_config
from tests.realtime_clients import CLIENTS, publish_firehose
from tests.support import DEV_PK

TIMEOUT = 5
CLOSE, TEXT = 0x8, 0x1


def _address(api: Api) -> tuple[str, int]:
    return "127.0.0.1", api.client.server.port


async def _open_http(api: Api, request_line: str, headers: dict[str, str] | None = None):
    """A raw connection that sent one request; returns (reader, writer, response head)."""
    reader, writer = await asyncio.open_connection(*_address(api))
    lines = [request_line, f"Host: 127.0.0.1:{api.client.server.port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    return reader, writer, head.decode("latin-1")


def _events(body: bytes) -> list[dict]:
    """Parse a complete event stream; fails on any line that is not a comment, a `data:` field or blank."""
    events, data = [], []
    for line in body.decode().split("\n")[:-1]:
        if line == "":
            if data:
                events.append(json.loads("\n".join(data)))
            data = []
        elif line.startswith("data: "):
            data.append(line[6:])
        else:
            assert line.startswith(":"), f"not an event-stream line: {line!r}"
    assert not data, "the stream ended inside an event"
    return events


async def test_sse_over_http_1_0_is_a_plain_event_stream_that_ends_by_closing(api):
    reader, writer, head = await _open_http(api, f"GET /sse/connect?sbpk={DEV_PK} HTTP/1.0")
    try:
        assert head.startswith("HTTP/1.") and " 200 " in head.split("\r\n")[0]
        assert "transfer-encoding" not in head.lower()
        assert "keep-alive" not in head.lower()
        first = await asyncio.wait_for(reader.readuntil(b"data: "), TIMEOUT)
        first += await asyncio.wait_for(reader.readuntil(b"\n\n"), TIMEOUT)
        events = _events(first)
        assert [event["type"] for event in events] == ["init"]
        await api.root("POST", "/publish-message", json={"channel": "nobody", "type": "t", "data": "x"})
        api.client.server.app[HUB].close_all(going_away=True)
        rest = await asyncio.wait_for(reader.read(), TIMEOUT)  # the server closes: the body ends there
        assert _events(first + rest)[0]["type"] == "init"
    finally:
        writer.close()


class RawWebSocket:
    """A WebSocket client on a bare socket, so the test sees every byte the server writes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, api: Api) -> RawWebSocket:
        """Upgrade a raw connection to a WebSocket and read past `init`."""
        key = base64.b64encode(os.urandom(16)).decode()
        reader, writer, head = await _open_http(api, f"GET /ws?sbpk={DEV_PK} HTTP/1.1", {
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13"})
        assert head.startswith("HTTP/1.1 101"), head
        ws = cls(reader, writer)
        opcode, data = await ws.frame()
        assert opcode == TEXT and json.loads(data)["type"] == "init"
        return ws

    def send(self, opcode: int, data: bytes) -> None:
        """Write one masked frame (of under 64 KiB)."""
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))
        size = len(data)
        length = struct.pack("!B", 0x80 | size) if size < 126 else struct.pack("!BH", 0x80 | 126, size)
        self.writer.write(struct.pack("!B", 0x80 | opcode) + length + mask + masked)

    def send_json(self, message: dict) -> None:
        """Write one text frame."""
        self.send(TEXT, json.dumps(message).encode())

    async def frame(self, timeout: float = TIMEOUT) -> tuple[int, bytes]:
        """The next frame the server sent: (opcode, payload)."""
        first, size = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        size &= 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(size)

    async def frames_until_quiet(self, quiet: float) -> list[tuple[int, bytes]]:
        """Every frame until the server closes the socket or sends nothing for `quiet` seconds."""
        frames = []
        try:
            while True:
                frames.append(await self.frame(quiet))
        except (TimeoutError, asyncio.IncompleteReadError):
            return frames

    async def member_of(self, token: str, channel: str) -> None:
        """Authenticate and join a channel."""
        self.send_json({"type": "auth", "data": token})
        self.send_json({"type": "join", "data": channel})
        kinds = []
        while "ok" not in kinds:
            _, data = await self.frame()
            kinds.append(json.loads(data)["type"])
        assert "token" in kinds

    def close(self) -> None:
        """Drop the socket."""
        self.writer.close()


def _errors(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def _publish(api: Api, channel: str, count: int) -> None:
    for n in range(count):
        status, _ = await api.root("POST", "/publish-message", json={"channel": channel, "type": "t", "data": str(n)})
        assert status == 200


def _assert_nothing_after_close(frames: list[tuple[int, bytes]]) -> None:
    opcodes = [opcode for opcode, _ in frames]
    assert CLOSE in opcodes, opcodes
    assert opcodes.index(CLOSE) == len(opcodes) - 1, f"frames after the close frame: {opcodes}"


@pytest.mark.parametrize("backlog", [0, 100])
async def test_no_frame_follows_a_client_close(aiohttp_client, tmp_path, caplog, backlog):
    """Also with a backlog, when aiohttp waits for the socket to drain after sending its close frame."""
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, realtime_max_outgoing_bytes=16 << 20,
                                                           publish_limit_burst=1000))))
    ws = await RawWebSocket.open(api)
    try:
        await ws.member_of(await api.register(), "room")
        for _ in range(backlog):  # ~4 MB the client has not read yet: more than the socket buffers hold
            await api.root("POST", "/publish-message", json={"channel": "room", "type": "t", "data": "x" * 40_000})
        ws.send(CLOSE, struct.pack("!H", 1000))
        await _publish(api, "room", 20)
        _assert_nothing_after_close(await ws.frames_until_quiet(1))
        await asyncio.sleep(0.1)
        assert api.client.server.app[HUB].connection_count == 0
        assert api.client.server.app[HUB].stats["slow_consumers_disconnected"] == 0
        assert _errors(caplog) == []
    finally:
        ws.close()


async def test_no_frame_follows_a_server_close_the_client_has_not_answered(aiohttp_client, tmp_path, caplog):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, realtime_max_frame_bytes=1024))))
    ws = await RawWebSocket.open(api)
    try:
        await ws.member_of(await api.register(), "room")
        ws.send_json({"type": "echo", "data": "x" * 2000})  # over the frame limit: the server closes (1009)
        opcode, data = await ws.frame()
        while opcode != CLOSE:
            opcode, data = await ws.frame()
        assert struct.unpack("!H", data[:2])[0] == 1009
        await _publish(api, "room", 20)  # the server waits for our close reply; it must send nothing meanwhile
        assert await ws.frames_until_quiet(1) == []
        assert _errors(caplog) == []
    finally:
        ws.close()


async def _stalled_sse_member(api: Api, token: str, channel: str):
    """A raw SSE connection that joins a channel and then never reads."""
    reader, writer, _ = await _open_http(api, f"GET /sse/connect?sbpk={DEV_PK} HTTP/1.1")
    await asyncio.wait_for(reader.readuntil(b"data: "), TIMEOUT)
    sid = json.loads(await asyncio.wait_for(reader.readuntil(b"\n"), TIMEOUT))["data"]
    for message in ({"type": "auth", "data": token}, {"type": "join", "data": channel}):
        status, _ = await api.call("POST", "/sse/msg", json={"sid": sid, "token": token, **message})
        assert status == 200
    return writer.close


async def _stalled_ws_member(api: Api, token: str, channel: str):
    """A raw WebSocket that joins a channel and then never reads."""
    ws = await RawWebSocket.open(api)
    await ws.member_of(token, channel)
    return ws.close


@pytest.mark.parametrize("stalled_transport", ["sse", "ws"])
async def test_a_socket_that_never_reads_is_cut_off_and_another_member_gets_everything(
        aiohttp_client, tmp_path, stalled_transport):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, realtime_max_outgoing_bytes=256 * 1024,
                                                           publish_limit_burst=1000))))
    token = await api.register()
    fast = await CLIENTS["ws" if stalled_transport == "sse" else "sse"](
        api.client.session, str(api.client.make_url("")).rstrip("/")).open()
    await fast.auth(token)
    await fast.join("firehose")
    stall = _stalled_sse_member if stalled_transport == "sse" else _stalled_ws_member
    close_stalled = await stall(api, token, "firehose")
    hub = api.client.server.app[HUB]
    try:
        await publish_firehose(api, fast, "firehose")  # far more than the 256 KiB budget holds
        assert hub.stats["slow_consumers_disconnected"] == 1
        assert hub.member_count(hub.connection(fast.sid).app_id, "firehose") == 1
    finally:
        await fast.close()
        close_stalled()


class _Capture:
    """What aiohttp's WebSocket writer needs of a transport: it keeps what is written."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
async def test_websocket_text_frames_are_byte_for_byte_what_aiohttps_writer_makes(size):
    # The sink frames its batches itself (one write per batch instead of one per frame): its
    # frames must be exactly aiohttp's, at every length encoding's edges.
    capture = _Capture()
    writer = WebSocketWriter(SimpleNamespace(_paused=False), capture)
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    await writer.send_frame(data, WSMsgType.TEXT)
    assert _text_frame(data) == bytes(capture.data)
