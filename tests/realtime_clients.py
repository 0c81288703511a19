"""Test clients for both realtime transports, with one interface so behaviour tests run on each."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import aiohttp

from tests.support import DEV_PK

if TYPE_CHECKING:
    from tests.conftest import Api

TIMEOUT = 5.0


class RealtimeClient:
    """Frames arrive in a queue; `send` speaks the transport's way."""

    transport = ""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, pk: str = DEV_PK) -> None:
        self.session, self.base_url, self.pk = session, base_url, pk
        self.frames: asyncio.Queue[dict] = asyncio.Queue()
        self.sid = ""
        self.token: str | None = None
        self.ended = asyncio.Event()
        self._reader: asyncio.Task | None = None

    async def open(self) -> RealtimeClient:
        """Connect and wait for `init`."""
        await self._connect()
        self._reader = asyncio.ensure_future(self._read())
        init = await self.next("init")
        self.sid = init["data"]
        return self

    async def auth(self, token: str) -> dict:
        """Send auth and return the reply frame."""
        self.token = token
        await self.send("auth", token)
        return await self.next()

    async def join(self, channel: str) -> dict:
        """Join and return the `ok` (or error) frame."""
        await self.send("join", channel)
        return await self.next(("ok", "error"))

    async def next(self, kind: str | tuple[str, ...] | None = None, timeout: float = TIMEOUT) -> dict:
        """The next frame (of `kind`, or one of several kinds, skipping others)."""
        kinds = (kind,) if isinstance(kind, str) else kind
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.frames.get()
                if kinds is None or frame["type"] in kinds:
                    return frame

    async def quiet(self, within: float = 0.3, kinds: tuple[str, ...] = ()) -> list[dict]:
        """Frames (of `kinds`, or any) that arrive within `within` seconds."""
        got = []
        try:
            async with asyncio.timeout(within):
                while True:
                    frame = await self.frames.get()
                    if not kinds or frame["type"] in kinds:
                        got.append(frame)
        except TimeoutError:
            return got

    async def close(self) -> None:
        """Disconnect."""
        if self._reader is not None:
            self._reader.cancel()
        await self._disconnect()

    async def send(self, kind: str, data: Any = None, channel: str | None = None) -> None:
        raise NotImplementedError

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _read(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError


class SseClient(RealtimeClient):
    """GET /sse/connect for frames, POST /sse/msg to send, as @staticbackend/js does."""

    transport = "sse"

    async def _connect(self) -> None:
        self._response = await self.session.get(f"{self.base_url}/sse/connect?sbpk={self.pk}")
        assert self._response.status == 200, await self._response.text()
        assert self._response.headers["Content-Type"] == "text/event-stream"

    async def _read(self) -> None:
        try:
            async for line in self._response.content:
                if line.startswith(b"data: "):
                    await self.frames.put(json.loads(line[6:]))
        except (aiohttp.ClientError, asyncio.CancelledError):
            pass
        finally:
            self.ended.set()

    async def post(self, message: dict) -> tuple[int, str]:
        """POST one message to /sse/msg; (status, body)."""
        headers = {"SB-PUBLIC-KEY": self.pk}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session.post(f"{self.base_url}/sse/msg", json=message, headers=headers) as resp:
            return resp.status, await resp.text()

    async def send(self, kind: str, data: Any = None, channel: str | None = None) -> None:
        message = {"sid": self.sid, "token": self.token, "type": kind, "data": data}
        if channel is not None:
            message["channel"] = channel
        status, body = await self.post(message)
        assert (status, body) == (200, "true"), (status, body)

    async def _disconnect(self) -> None:
        self._response.close()


class WsClient(RealtimeClient):
    """One WebSocket carrying JSON Payload frames both ways."""

    transport = "ws"

    async def _connect(self) -> None:
        self.ws = await self.session.ws_connect(f"{self.base_url}/ws?sbpk={self.pk}", heartbeat=None)

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self.frames.put(json.loads(msg.data))
        except asyncio.CancelledError:
            pass
        finally:
            self.ended.set()

    async def send(self, kind: str, data: Any = None, channel: str | None = None) -> None:
        message = {"sid": self.sid, "token": self.token, "type": kind, "data": data}
        if channel is not None:
            message["channel"] = channel
        await self.ws.send_str(json.dumps(message))

    async def _disconnect(self) -> None:
        await self.ws.close()


CLIENTS = {"sse": SseClient, "ws": WsClient}


async def publish_firehose(api: Api, fast: RealtimeClient, channel: str, count: int = 300) -> None:
    """Root publishes `count` 40 KB messages (~12 MB, more than socket buffers hold); `fast` gets each, in order."""
    blob = "x" * 40_000
    for n in range(count):
        status, _ = await api.root("POST", "/publish-message",
                                   json={"channel": channel, "type": "blob", "data": f"{n}:{blob}"})
        assert status == 200
    received = [(await fast.next("blob"))["data"].split(":")[0] for _ in range(count)]
    assert received == [str(n) for n in range(count)]
