"""The two servers under test, set up alike: a user, its token, collections, a function, realtime clients.

Each target answers the same questions: the wrk request of a workload (url, method, body,
headers), how to seed the list collection, and how to hold N idle realtime connections.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from common import REPO_ROOT, BenchError, Server, expect, http, pocketbase_binary, start_pocketbase, start_sblite
from wsclient import WebSocket

EMAIL, PASSWORD = "bench@example.com", "bench-pw-1234"
CREATE_BODY = '{"title":"bench","n":%d,"done":false}'
FILTER_VALUE = "v7"
SEED_VALUES = 100  # the seeded documents' `field` takes this many values: 1% match the filter
SBLITE_PK, SBLITE_ROOT = "dev_memory_pk", "safe-to-use-in-dev-root-token"
SBLITE_FUNCTION = """\
function handle(body, query, headers) {
    var res = create("fnweb", body);
    if (!res.ok) throw new Error("create failed: " + res.content);
    return {id: res.content.id};
}
"""
SBLITE_CHAT_FUNCTION = """\
function handle(body) {
    var res = create("benchchat", {text: body.data});
    if (!res.ok) throw new Error("create failed: " + res.content);
}
"""
CHAT_CHANNEL = "bench-chat"
PB_HOOK = """\
routerAdd("POST", "/bench/fn", (e) => {
  const body = e.requestInfo().body;
  const rec = new Record($app.findCollectionByNameOrId("fnweb"));
  rec.set("title", body.title);
  rec.set("n", body.n);
  $app.save(rec);
  return e.json(200, { id: rec.id });
}, $apis.requireAuth());
"""
OnEvent = Callable[[bytes], None] | None
AUTHED = '@request.auth.id != ""'


def seed_docs(start: int, count: int) -> list[dict[str, Any]]:
    """Documents for the list workload: `field` cycles through v0..v99."""
    return [{"title": "seed", "n": i, "field": f"v{i % SEED_VALUES}"} for i in range(start, start + count)]


class Sblite:
    """`sblite serve` with a registered user, the `web` function `bench_fn` and `bench_chat` on chan_in.

    `tree` is the source to run (another checkout, for before/after figures); `transport` is
    what its realtime members use: "ws" (WebSocket) or "sse".
    """

    def __init__(self, workdir: Path, tree: Path = REPO_ROOT, name: str = "sblite", transport: str = "ws") -> None:
        self.name, self.transport = name, transport
        # The benchmark user sends far more than one person would: lift the per-connection and per-user limits.
        env = {"SBLITE_REALTIME_MAX_CONNECTIONS_PER_USER": "5000", "SBLITE_REALTIME_MAX_MESSAGES_PER_SECOND": "1000000",
               "SBLITE_PUBLISH_LIMIT_PER_SECOND": "1000000", "SBLITE_PUBLISH_LIMIT_BURST": "1000000"}
        self.env, self.tree = env, tree
        self.server: Server = start_sblite(workdir, env, tree)
        self.url = self.server.url
        self.pk = {"SB-PUBLIC-KEY": SBLITE_PK}
        status, token = http(self.url + "/register", "POST", {"email": EMAIL, "password": PASSWORD}, self.pk)
        self.token = expect(status, token, "POST /register")
        self.headers = {**self.pk, "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        root = {**self.pk, "Authorization": f"Bearer {SBLITE_ROOT}"}
        expect(*http(self.url + "/fn/add", "POST", {"name": "bench_fn", "trigger": "web", "code": SBLITE_FUNCTION},
                     root), "POST /fn/add")
        expect(*http(self.url + "/fn/exec/bench_fn", "POST", {"title": "smoke", "n": 0}, self.headers),
               "POST /fn/exec/bench_fn")
        expect(*http(self.url + "/fn/add", "POST", {"name": "bench_chat", "trigger": "chan_in",
                                                     "code": SBLITE_CHAT_FUNCTION}, root), "POST /fn/add")

    def create(self) -> dict[str, Any]:
        """wrk request: one authenticated document create."""
        return {"url": self.url + "/db/bench", "method": "POST", "body": CREATE_BODY, "headers": self.headers}

    def list(self) -> dict[str, Any]:
        """wrk request: a page of 25 matching one field."""
        return {"url": self.url + "/query/items?size=25", "method": "POST",
                "body": json.dumps([["field", "==", FILTER_VALUE]]), "headers": self.headers}

    def function(self) -> dict[str, Any]:
        """wrk request: the web function doing one create."""
        return {"url": self.url + "/fn/exec/bench_fn", "method": "POST", "body": CREATE_BODY, "headers": self.headers}

    def seed(self, count: int, chunk: int = 1000) -> None:
        """Bulk creates of `chunk` documents, four in flight."""
        def post(start: int) -> None:
            docs = seed_docs(start, min(chunk, count - start))
            expect(*http(self.url + "/db/items?bulk=1", "POST", docs, self.headers, timeout=120), "bulk create")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(post, range(0, count, chunk)))

    async def hold_realtime(self, count: int, on_event: OnEvent = None) -> list[Any]:
        """`count` members over the target's transport, each authenticated and joined to `db-bench`."""
        members = sblite_members if self.transport == "ws" else sblite_sse_members
        return await members(self.url, self.token, count, on_event)

    async def release_realtime(self, held: list[Any]) -> None:
        """Close what hold_realtime opened."""
        await asyncio.gather(*(member.close() for member in held))


async def sblite_members(url: str, token: str, count: int, on_event: OnEvent = None,
                         channel: str = "db-bench") -> list[WebSocket]:
    """`count` WebSockets joined to `channel`; after setup every text frame goes to `on_event`."""
    ws_url = url.replace("http://", "ws://") + f"/ws?sbpk={SBLITE_PK}"
    gate = asyncio.Semaphore(50)

    async def one() -> WebSocket:
        frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        state = {"setup": True}

        def on_text(text: str) -> None:
            if state["setup"]:
                frames.put_nowait(json.loads(text))
            elif on_event:
                on_event(text.encode())
        async with gate:
            ws = await WebSocket.connect(ws_url, on_text, lambda: None)
            await next_frame(frames, "init")
            for kind, data, answer in (("auth", token, "token"), ("join", channel, "ok")):
                ws.queue(json.dumps({"type": kind, "data": data}))
                ws.flush()
                await next_frame(frames, answer)
            state["setup"] = False
            return ws
    return list(await asyncio.gather(*(one() for _ in range(count))))


async def next_frame(frames: asyncio.Queue[dict[str, Any]], kind: str, timeout: float = 30) -> dict[str, Any]:
    """The next frame of type `kind`, skipping others; BenchError on an error frame."""
    while True:
        frame = await asyncio.wait_for(frames.get(), timeout)
        if frame.get("type") == kind:
            return frame
        if frame.get("type") == "error":
            raise BenchError(f"realtime error frame: {frame}")


class SseMember:
    """A held event stream and the task reading it."""

    def __init__(self, writer: asyncio.StreamWriter, task: asyncio.Task[None]) -> None:
        self.writer, self.task = writer, task

    async def close(self) -> None:
        """Close the stream."""
        self.writer.close()
        self.task.cancel()


Subscribe = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


async def sse_members(url: str, path: str, id_pattern: bytes, subscribe: Subscribe, count: int,
                      on_event: OnEvent, headers: dict[str, str] | None = None) -> list[SseMember]:
    """`count` event streams of `path`: read the id `id_pattern` finds, `subscribe` with it, then whole
    events go to `on_event`."""
    gate = asyncio.Semaphore(50)
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])

    async def one(session: aiohttp.ClientSession) -> SseMember:
        async with gate:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n\r\n".encode())
            seen = b""
            while not (found := re.search(id_pattern, seen)):
                chunk = await asyncio.wait_for(reader.read(4096), 30)
                if not chunk:
                    raise BenchError(f"{url} closed the event stream: {seen[:200]!r}")
                seen += chunk
            await subscribe(session, found.group(1).decode())
            await asyncio.sleep(0.05)  # answers may still arrive on the stream; what follows is the fan-out
            return SseMember(writer, asyncio.ensure_future(pump_events(reader, on_event)))
    async with aiohttp.ClientSession(headers=headers) as session:
        return list(await asyncio.gather(*(one(session) for _ in range(count))))


async def pump_events(reader: asyncio.StreamReader, on_event: OnEvent) -> None:
    """Hand whole events (up to the last blank line read) to `on_event` until the stream ends."""
    carry = b""
    while chunk := await reader.read(65536):
        carry += chunk
        end = carry.rfind(b"\n\n") + 2
        if end > 1:
            if on_event:
                on_event(carry[:end])
            carry = carry[end:]


async def post_ok(session: aiohttp.ClientSession, url: str, body: Any, status: int) -> None:
    """POST JSON; BenchError unless the answer has `status`."""
    async with session.post(url, json=body) as resp:
        if resp.status != status:
            raise BenchError(f"POST {url} answered {resp.status}: {await resp.text()}")


async def sblite_sse_members(url: str, token: str, count: int, on_event: OnEvent = None) -> list[SseMember]:
    """`count` event streams of /sse/connect joined to `db-bench`."""
    async def subscribe(session: aiohttp.ClientSession, sid: str) -> None:
        for kind, data in (("auth", token), ("join", "db-bench")):
            await post_ok(session, url + "/sse/msg", {"sid": sid, "token": token, "type": kind, "data": data}, 200)
    return await sse_members(url, f"/sse/connect?sbpk={SBLITE_PK}", rb'"type":"init".*?"data":"([^"]+)"',
                             subscribe, count, on_event, {"SB-PUBLIC-KEY": SBLITE_PK})


async def pocketbase_members(url: str, token: str, count: int, on_event: OnEvent = None) -> list[SseMember]:
    """`count` event streams of /api/realtime subscribed to `bench`."""
    async def subscribe(session: aiohttp.ClientSession, client_id: str) -> None:
        await post_ok(session, url + "/api/realtime", {"clientId": client_id, "subscriptions": ["bench"]}, 204)
    return await sse_members(url, "/api/realtime", rb'"clientId":"([^"]+)"', subscribe, count, on_event,
                             {"Authorization": f"Bearer {token}"})


class PocketBase:
    """`pocketbase serve` with a superuser, a user of `users`, collections and the /bench/fn hook."""

    name = "pocketbase"

    def __init__(self, workdir: Path) -> None:
        hooks = workdir / "pb_hooks"
        hooks.mkdir()
        (hooks / "bench.pb.js").write_text(PB_HOOK)
        self.server = start_pocketbase(workdir, hooks)
        self.db = workdir / "pb_data" / "data.db"
        self.url = self.server.url
        self.admin = admin = {"Authorization": self._superuser(workdir)}
        fields = [{"name": "title", "type": "text"}, {"name": "n", "type": "number"},
                  {"name": "done", "type": "bool"}, {"name": "field", "type": "text"},
                  {"name": "created", "type": "autodate", "onCreate": True},
                  {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}]
        for name in ("bench", "items", "fnweb"):
            body = {"name": name, "type": "base", "fields": fields,
                    "createRule": AUTHED, "listRule": AUTHED, "viewRule": AUTHED}
            expect(*http(self.url + "/api/collections", "POST", body, admin), f"create collection {name}")
        user = {"email": EMAIL, "password": PASSWORD, "passwordConfirm": PASSWORD}
        expect(*http(self.url + "/api/collections/users/records", "POST", user, admin), "create user")
        self.token = self._auth("users", EMAIL, PASSWORD)
        self.headers = {"Authorization": f"Bearer {self.token}"}
        expect(*http(self.url + "/bench/fn", "POST", {"title": "smoke", "n": 0}, self.headers), "POST /bench/fn")

    def _superuser(self, workdir: Path) -> str:
        """Create a superuser with the CLI and sign it in."""
        subprocess.run([pocketbase_binary(), "superuser", "upsert", "admin@bench.local", PASSWORD,
                        "--dir", str(workdir / "pb_data")], check=True, capture_output=True, timeout=60)
        return self._auth("_superusers", "admin@bench.local", PASSWORD)

    def _auth(self, collection: str, identity: str, password: str) -> str:
        status, body = http(f"{self.url}/api/collections/{collection}/auth-with-password", "POST",
                            {"identity": identity, "password": password})
        return str(expect(status, body, f"sign in to {collection}")["token"])

    def create(self) -> dict[str, Any]:
        """wrk request: one record create under the auth rule."""
        return {"url": self.url + "/api/collections/bench/records", "method": "POST", "body": CREATE_BODY,
                "headers": {**self.headers, "Content-Type": "application/json"}}

    def list(self) -> dict[str, Any]:
        """wrk request: a page of 25 matching one field."""
        return {"url": f"{self.url}/api/collections/items/records?filter=(field='{FILTER_VALUE}')&perPage=25",
                "method": "GET", "body": "", "headers": self.headers}

    def function(self) -> dict[str, Any]:
        """wrk request: the routerAdd hook saving one record."""
        return {"url": self.url + "/bench/fn", "method": "POST", "body": CREATE_BODY,
                "headers": {**self.headers, "Content-Type": "application/json"}}

    def seed(self, count: int) -> None:
        """Rows written straight into the collection's table (PocketBase reads them like any record)."""
        stamp = "2026-01-01 00:00:00.000Z"
        rows = [(d["title"], d["n"], d["field"], stamp, stamp) for d in seed_docs(0, count)]
        with sqlite3.connect(self.db, timeout=30) as conn:
            conn.executemany("INSERT INTO items (title, n, field, created, updated) VALUES (?, ?, ?, ?, ?)", rows)
        status, body = http(f"{self.url}/api/collections/items/records?perPage=1", headers=self.headers)
        if expect(status, body, "count items")["totalItems"] < count:
            raise BenchError(f"PocketBase sees {body['totalItems']} of {count} seeded records")

    async def hold_realtime(self, count: int, on_event: OnEvent = None) -> list[Any]:
        """`count` SSE streams of /api/realtime, each subscribed to the `bench` collection."""
        return await pocketbase_members(self.url, self.token, count, on_event)

    async def release_realtime(self, held: list[Any]) -> None:
        """Close what hold_realtime opened."""
        await asyncio.gather(*(member.close() for member in held))
