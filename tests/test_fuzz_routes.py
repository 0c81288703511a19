"""Every route, odd input: never an internal error, and a refused request changes no stored data.

Hypothesis walks the routes of a real app on a real socket, fills their path variables, and
sends generated bodies and query strings as three callers (anonymous, a user, root). The data
tables are read from the SQLite file before and after each refused request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from sblite.app import create_app
from tests.conftest import make_config
from tests.support import DEV_PK, DEV_ROOT_TOKEN

STREAMING = {"/sse/connect", "/ws"}  # answer a stream that stays open: not walked
ANY_METHOD = ("GET", "POST", "PUT", "DELETE", "PATCH")
# StaticBackend answers these with 500 on purpose (README, "Where sblite differs"): not internal errors.
DELIBERATE_500 = ("error finding database", "invalid email: this email is already registered", "invalid code",
                  "document not found", "Please use a different/valid email.", "error executing your function")
# Records of activity rather than stored data: a function run that fails is still recorded.
ACTIVITY = {"function_runs": None, "function_jobs": None, "functions": {"last_run"}}
REQUEST_SECONDS = 15
# Callers, weighted towards the one a route serves (by its path, not by how it is declared).
ROOT_PATHS = ("/sudo", "/fn/add", "/fn/update", "/fn/del", "/fn/info", "/fn/runs", "/fn/jobs", "/fn/secrets",
              "/fn/sudoexec", "/channels", "/publish-message", "/account/users", "/setrole", "/metrics")
ROOT_FIRST = ["root", "root", "user", "anonymous"]
USER_FIRST = ["user", "user", "root", "anonymous"]


@dataclass(frozen=True)
class Case:
    """One generated request."""

    method: str
    path: str
    query: str
    body: bytes
    content_type: str | None
    caller: str
    public_key: str | None


# --- generated input

def deep(depth: int, kind: str) -> bytes:
    """JSON nested `depth` levels deep."""
    if kind == "[":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


ODD_NUMBERS = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 10**400, 1.5, -0.0, 1e308,
               5e-324]
ODD_TEXT = ["", " ", "x", "n", "notes", "pub_notes", "a" * 300, "\x00", "..", "../x", "a.b", 'a"b', "a\\b", "id",
            "accountId", "ownerId", "created", "web", "db-notes", "pub-x", "<script>", "é😀", "\u2028",
            "true", "null", "1", "==", "in", "!in", ">", "nope"]
KEYS = ["email", "password", "name", "code", "trigger", "field", "range", "update", "clauses", "sid", "type",
        "data", "channel", "value", "token", "role", "userId", "id", "accountId", "auth", "publish", "history",
        "expr", "body", "a"]

scalars = st.one_of(st.none(), st.booleans(), st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_TEXT),
                    st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function: hypothesis reads its source to check that it uses `inner`.
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4))


values = st.recursive(scalars, _containers, max_leaves=12)
clauses = st.lists(st.lists(st.one_of(st.sampled_from(ODD_TEXT), values), min_size=0, max_size=4), max_size=3)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


MALFORMED = [
    b"", b" ", b"{", b"[", b'{"a":1,}', b"[1,]", b"NaN", b"Infinity", b"-Infinity", b"1e999", b"[1e999]",
    b'"\\ud800"', b'{"\\udc00": 1}', b'["\\ud83d"]', b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16"),
    b"\xff\xfe\x00", b"nul", b"{}{}", b'{"a" 1}', b"[" * 100_000, b"12345678901234567890" * 3,
    b"[" + b"9" * 5_000 + b"]", b'"' + b"\\" * 101 + b'"', b'{"email": "a@b.c", "password": ' + b"1" * 30 + b"}",
]
deep_bodies = st.builds(deep, st.sampled_from([5_000, 1_000, 100_000, 1_025, 255, 101, 99]), st.sampled_from("[{"))
# Near-valid bodies of the routes' own shapes, with values at the edges.
TRICKY = [
    {"field": "n", "range": 10**400}, {"field": "n", "range": 2**63}, {"field": "n", "range": -(2**63)},
    {"field": "n", "range": 1e308}, {"field": "tags", "range": 1}, {"update": {"n": 10**400}, "clauses": []},
    {"update": {}, "clauses": [["n", ">", 10**400]]}, {"email": "a@b.c", "password": 10**400},
    {"email": ["a@b.c"], "password": "pw123456"}, {"name": "f", "trigger": "web", "code": "x"},
    {"name": "f", "trigger": 1, "code": "function handle() {}"}, {"sid": "x", "type": "echo", "data": 10**400},
    {"channel": "pub-x", "type": "t", "data": {"a": 10**400}}, {"userId": "x", "role": 10**400},
    {"auth": 10**400, "publish": "anyone", "history": 2**63}, {"name": "X", "value": 10**400},
]
FORMS = [  # for the form content types
    b"email=%ff%fe", b"email=\xff", b"a=1&b", b"--x\r\n\r\n", b"--x\r\n\r\nv\r\n--x--\r\n",
    b'--x\r\nContent-Disposition: form-data; name="email"\r\nContent-Transfer-Encoding: nope\r\n\r\nv\r\n--x--\r\n',
    b'--x\r\nContent-Disposition: form-data; name="email"; filename="f"\r\n\r\nv\r\n--x--\r\n',
    b"--x\r\nbad header\r\n\r\nv\r\n--x--\r\n",
]
bodies = st.one_of(  # deep and malformed JSON, the cases most likely to break, weigh the most
    deep_bodies, st.sampled_from(MALFORMED), st.sampled_from(TRICKY).map(_json), deep_bodies,
    st.sampled_from(MALFORMED), st.sampled_from(FORMS),
    st.dictionaries(st.sampled_from(KEYS), values, max_size=5).map(_json),
    clauses.map(_json), values.map(_json), st.binary(max_size=48),
)


def _filter_param(value: Any) -> str:
    return base64.b64encode(_json(value)).decode()


QUERY_VALUES = ["", "0", "-1", "1", "2", "abc", "1e5", " 1", "true", "false", "99999999999999999999",
                "9223372036854775807", "9223372036854775808", "-9223372036854775809", "9" * 4_400, "1_000",
                "id", "created", "updated", "a.b", "..", '"', "\x00", "é", "parked", "queued", "%", "+=/"]
query_values = st.one_of(st.sampled_from(QUERY_VALUES), st.sampled_from(QUERY_VALUES), st.text(max_size=10),
                         clauses.map(_filter_param), st.sampled_from([1_000, 101]).map(
                             lambda depth: base64.b64encode(deep(depth, "[")).decode()))
QUERY_KEYS = ["page", "size", "desc", "sort", "bulk", "ids", "x", "name", "failed", "status", "code", "email"]
PAGES = ["99999999999999999999", "9223372036854775807", "4611686018427387904", "0", "-1", "abc", "1"]


@st.composite
def queries(draw: st.DrawFn) -> str:
    """A query string: often a page and a size at the edges, and a few other parameters."""
    pairs = [(key, draw(st.sampled_from(PAGES))) for key in ("page", "size") if draw(st.booleans())]
    return urlencode(pairs + draw(st.lists(st.tuples(st.sampled_from(QUERY_KEYS), query_values), max_size=3)))


def segments(known: list[str]) -> st.SearchStrategy[str]:
    """Path segments: known ids and names, odd text, random text."""
    return st.one_of(st.sampled_from(known), st.sampled_from(known), st.sampled_from(ODD_TEXT[1:]),
                     st.text(min_size=1, max_size=16),
                     st.sampled_from(["9" * 30, "%", "%00", "a/b", "a?b", "a#b", " "]))


def cases(routes: list[tuple[str, str, tuple[str, ...]]], known: list[str]) -> st.SearchStrategy[Case]:
    """Requests to the given routes: (method, path template, its variable names)."""
    @st.composite
    def build(draw: st.DrawFn) -> Case:
        method, template, names = draw(st.sampled_from(routes))
        path = template
        for name in names:
            path = path.replace("{" + name + "}", quote(draw(segments(known)), safe=""), 1)
        return Case(
            method=draw(st.sampled_from(ANY_METHOD)) if method == "*" else method,
            path=path, query=draw(queries()), body=draw(bodies),
            content_type=draw(st.sampled_from(["application/json"] * 6 + [
                "multipart/form-data", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", None,
                "text/plain",
                "application/x-www-form-urlencoded; charset=nope", "application/json; charset=utf-16"])),
            caller=draw(st.sampled_from(ROOT_FIRST if template.startswith(ROOT_PATHS) else USER_FIRST)),
            public_key=draw(st.sampled_from([DEV_PK] * 10 + [None, "nope"])))
    return build()


# --- the app and what it stores

def walkable_routes(app: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, path template, variable names) of every route but HEAD and the streams."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path")
        if route.method == "HEAD" or template is None or template in STREAMING:
            continue
        names = tuple(part[1:-1] for part in template.split("/") if part.startswith("{"))
        found.add((route.method, template, names))
    return sorted(found)


def by_area(routes: list[tuple[str, str, tuple[str, ...]]]) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
    """Routes grouped by the first segment of their path."""
    areas: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
    for route in routes:
        areas.setdefault(route[1].split("/")[1], []).append(route)
    return areas


def snapshot(db_path: Path) -> dict[str, list[str]]:
    """Every table's rows (activity records left out), read from the database file."""
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        result = {}
        for table in tables:
            ignored = ACTIVITY.get(table, set())
            if ignored is None:
                continue
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")') if row[1] not in ignored]
            select = ", ".join(f'"{column}"' for column in columns)
            result[table] = sorted(repr(row) for row in conn.execute(f'SELECT {select} FROM "{table}"'))
        return result


class InternalErrors(logging.Handler):
    """Collects what the error middleware logs about unexpected exceptions."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Harness:
    """A real app on a real socket, driven from a loop of its own (hypothesis calls are not async)."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.config = make_config(tmp_path)
        self.client = self.run(self._start())
        self.tokens = {"anonymous": None, "root": DEV_ROOT_TOKEN}
        self.known: list[str] = []

    async def _start(self) -> TestClient:
        client = TestClient(TestServer(create_app(self.config)))
        await client.start_server()
        return client

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the harness loop."""
        return self.loop.run_until_complete(coro)

    async def seed(self) -> None:
        """A user, and a document of theirs, so that some generated ids and names exist."""
        answer = await self.send("POST", "/register", _json({"email": "fuzz@example.com", "password": "pw123456"}))
        self.tokens["user"] = json.loads(answer[1])
        headers = self.headers("user", DEV_PK, "application/json")
        async with self.client.post("/db/notes", data=_json({"n": 1.5, "tags": ["a"]}), headers=headers) as resp:
            doc = await resp.json()
        async with self.client.get("/me", headers=headers) as resp:
            me = await resp.json()
        self.known = ["notes", doc["id"], "pub_notes", me["id"], me["accountId"]]

    def headers(self, caller: str, public_key: str | None, content_type: str | None) -> dict[str, str]:
        """The headers of one caller."""
        headers = {}
        if public_key is not None:
            headers["SB-PUBLIC-KEY"] = public_key
        if self.tokens[caller]:
            headers["Authorization"] = f"Bearer {self.tokens[caller]}"
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    async def send(self, method: str, path: str, body: bytes, query: str = "", caller: str = "anonymous",
                   public_key: str | None = DEV_PK, content_type: str | None = "application/json") -> tuple[int, str]:
        """One request; (status, body text)."""
        url = URL(path + (f"?{query}" if query else ""), encoded=True)
        async with asyncio.timeout(REQUEST_SECONDS):
            async with self.client.request(method, url, data=body,
                                           headers=self.headers(caller, public_key, content_type)) as resp:
                return resp.status, await resp.text()

    def close(self) -> None:
        """Stop the server and the loop."""
        self.run(self.client.close())
        self.loop.close()


def test_no_route_answers_an_internal_error_or_changes_data_when_it_refuses(tmp_path):
    harness = Harness(tmp_path)
    errors = InternalErrors()
    logging.getLogger("sblite").addHandler(errors)
    try:
        harness.run(harness.seed())
        routes = walkable_routes(harness.client.server.app)
        assert len(routes) > 40  # the walk sees the whole API

        def check(case: Case) -> None:
            before = snapshot(Path(harness.config.db))
            errors.records.clear()
            status, text = harness.run(harness.send(case.method, case.path, case.body, case.query, case.caller,
                                                    case.public_key, case.content_type))
            internal = [record.getMessage() for record in errors.records]
            assert internal == [], internal
            assert status != 500 or text.startswith(DELIBERATE_500), (status, text[:300])
            if status >= 400:
                assert snapshot(Path(harness.config.db)) == before, (status, text[:300])

        # Hypothesis favours the first routes of one long list; a few examples per area cover them all.
        for members in by_area(routes).values():
            examples = 4 + 2 * len(members)  # about 250 in all
            settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))(given(case=cases(members, harness.known))(check))()
    finally:
        logging.getLogger("sblite").removeHandler(errors)
        harness.close()
