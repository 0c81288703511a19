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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from common import BenchError, Server, expect, http, pocketbase_binary, start_pocketbase, start_sblite
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
_PUMPS: set[asyncio.Task[None]] = set()  # the readers of held SSE streams
AUTHED = '@request.auth.id != ""'


def seed_docs(start: int, count: int) -> list[dict[str, Any]]:
    """Documents for the list workload: `field` cycles through v0..v99."""
    return [{"title": "seed", "n": i, "field": f"v{i % SEED_VALUES}"} for i in range(start, start + count)]


class Sblite:
    """`sblite serve` with a registered user and the `web` function `bench_fn`."""

    name = "sblite"

    def __init__(self, workdir: Path) -> None:
        env = {"SBLITE_REALTIME_MAX_CONNECTIONS_PER_USER": "5000"}
        self.server: Server = start_sblite(workdir, env)
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
        """`count` WebSockets, each authenticated and joined to `db-bench`."""
        return await sblite_members(self.url, self.token, count, on_event)

    async def release_realtime(self, held: list[Any]) -> None:
        """Close what hold_realtime opened."""
        await asyncio.gather(*(ws.close() for ws in held))


async def sblite_members(url: str, token: str, count: int, on_event: OnEvent = None) -> list[WebSocket]:
    """`count` WebSockets joined to `db-bench`; after setup every text frame goes to `on_event`."""
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
            for kind, data, answer in (("auth", token, "token"), ("join", "db-bench", "ok")):
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

    def add_index(self) -> None:
        """An index on the list collection's filtered field, through the collections API."""
        body = {"indexes": ["CREATE INDEX idx_items_field ON items (field)"]}
        expect(*http(self.url + "/api/collections/items", "PATCH", body, self.admin), "add index")

    async def hold_realtime(self, count: int, on_event: OnEvent = None) -> list[Any]:
        """`count` SSE streams of /api/realtime, each subscribed to the `bench` collection."""
        return await pocketbase_members(self.url, self.token, count, on_event)

    async def release_realtime(self, held: list[Any]) -> None:
        """Close what hold_realtime opened."""
        for writer in held:
            writer.close()
        await asyncio.sleep(0.1)


async def pocketbase_members(url: str, token: str, count: int, on_event: OnEvent = None) -> list[Any]:
    """`count` SSE streams subscribed to `bench`; after setup whole events go to `on_event`."""
    gate = asyncio.Semaphore(50)
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])

    async def pump(reader: asyncio.StreamReader, carry: bytes) -> None:
        while chunk := await reader.read(65536):
            carry += chunk
            end = carry.rfind(b"\n\n") + 2
            if end > 1:
                if on_event:
                    on_event(carry[:end])
                carry = carry[end:]

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async def one() -> asyncio.StreamWriter:
            async with gate:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(f"GET /api/realtime HTTP/1.1\r\nHost: {host}:{port}\r\n"
                             "Accept: text/event-stream\r\n\r\n".encode())
                seen = b""
                while not (found := re.search(rb'"clientId":"([^"]+)"', seen)):
                    chunk = await asyncio.wait_for(reader.read(4096), 30)
                    if not chunk:
                        raise BenchError(f"PocketBase closed the realtime stream: {seen[:200]!r}")
                    seen += chunk
                body = {"clientId": found.group(1).decode(), "subscriptions": ["bench"]}
                async with session.post(url + "/api/realtime", json=body) as resp:
                    if resp.status != 204:
                        raise BenchError(f"POST /api/realtime answered {resp.status}: {await resp.text()}")
                task = asyncio.ensure_future(pump(reader, b""))
                _PUMPS.add(task)
                task.add_done_callback(_PUMPS.discard)
                return writer
        held = list(await asyncio.gather(*(one() for _ in range(count))))
    return held
