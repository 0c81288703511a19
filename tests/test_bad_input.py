"""Bad input answers a clear 400 and changes nothing: deep JSON, huge page numbers, overflowing sums."""

from __future__ import annotations

import base64
import json
import sqlite3
from contextlib import closing

import aiohttp
import pytest

from sblite.jsonutil import MAX_DEPTH, TooDeep, dumps_stored, exceeds_depth, loads
from tests.function_helpers import EVAL_SOURCE, add_function, base_url, evaluate, open_client
from tests.support import DEV_ROOT_TOKEN

LIMIT_TEXT = f"nested deeper than {MAX_DEPTH} levels"
FRAME_LIMIT = 65536  # realtime_max_frame_bytes by default


def deep_array(depth: int) -> bytes:
    """JSON text of `depth` nested arrays."""
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    """JSON text of `depth` nested objects: {"a": {"a": ... {} }}."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


async def stored(api, col: str = "notes") -> int:
    """How many documents the collection holds, as root sees it."""
    status, page = await api.root("GET", f"/sudo/{col}")
    assert status == 200, page
    return page["total"]


# (text, decodes within the limit): arrays and objects count alike; strings and numbers don't.
DEPTHS = [
    (deep_array(MAX_DEPTH), True),
    (deep_object(MAX_DEPTH), True),
    (deep_array(MAX_DEPTH + 1), False),
    (deep_object(MAX_DEPTH + 1), False),
    (b"[" * MAX_DEPTH + b"12345678901234567890" + b"]" * MAX_DEPTH, True),  # decoded by json, not orjson
    (b"[" * (MAX_DEPTH + 1) + b"12345678901234567890" + b"]" * (MAX_DEPTH + 1), False),
    (b'["' + b"[" * 5_000 + b'"]', True),  # brackets inside a string
    (b"[" + b"[]," * 5_000 + b"[]]", True),  # wide, not deep
    (deep_array(1_000_000), False),  # deeper than either decoder goes
]


@pytest.mark.parametrize(("text", "within"), DEPTHS)
def test_loads_refuses_json_nested_deeper_than_the_limit(text, within):
    for form in (text, text.decode()):
        if within:
            assert loads(form) == json.loads(text)
        else:
            with pytest.raises(TooDeep, match=LIMIT_TEXT):
                loads(form)


def test_text_this_server_wrote_decodes_at_any_depth_either_decoder_reaches():
    assert loads(deep_array(900), max_depth=None) == json.loads(deep_array(900))
    with pytest.raises(TooDeep, match="nested too deeply"):
        loads(deep_array(100_000), max_depth=None)


def test_a_value_too_deep_to_encode_is_a_value_error_not_a_recursion_error():
    value: list = []
    for _ in range(5_000):
        value = [value]
    with pytest.raises(TooDeep):
        dumps_stored(value)


@pytest.mark.parametrize(("value", "limit", "exceeds"), [
    (1, 0, False), ([], 0, True), ([], 1, False), ({"a": [1, {"b": {}}]}, 4, False),
    ({"a": [1, {"b": {}}]}, 3, True), ([[], [[]], []], 2, True), ("[[[[", 1, False),
])
def test_exceeds_depth(value, limit, exceeds):
    assert exceeds_depth(value, limit) is exceeds


# (method, path, as root): every route that reads a JSON body.
BODY_ROUTES = [
    ("POST", "/db/notes", False),
    ("POST", "/db/notes?bulk=1", False),
    ("POST", "/db/notes?ids=1", False),
    ("POST", "/query/notes", False),
    ("POST", "/db/count/notes", False),
    ("PUT", "/db/notes?bulk=1", False),
    ("PUT", "/inc/notes/abc", False),
    ("POST", "/sudo/notes", True),
    ("POST", "/sudoquery/notes", True),
    ("POST", "/register", False),
    ("POST", "/login", False),
    ("POST", "/publish-message", True),
    ("POST", "/fn/add", True),
    ("POST", "/fn/secrets", True),
    ("POST", "/fn/exec/nothing", False),
    ("POST", "/sse/msg", False),
]


@pytest.mark.parametrize(("method", "path", "as_root"), BODY_ROUTES)
async def test_deep_json_bodies_are_refused_with_the_limit(api, method, path, as_root):
    token = DEV_ROOT_TOKEN if as_root else await api.register()
    problems = []
    for shape in (deep_array, deep_object):
        for depth in (MAX_DEPTH + 1, 1_000, 5_000, 100_000):
            body = shape(depth)
            status, text = await api.call(method, path, token, data=body)
            if path == "/sse/msg" and len(body) > FRAME_LIMIT:
                expected = status == 413  # realtime messages are limited in bytes first
            else:
                expected = status == 400 and LIMIT_TEXT in text
            if not expected:
                problems.append((shape.__name__, depth, status, str(text)[:200]))
    assert problems == []
    assert await stored(api) == 0


async def test_deep_json_with_big_numbers_takes_the_slow_path_and_is_refused(api):
    token = await api.register()
    body = b"[" * 5_000 + b"12345678901234567890" + b"]" * 5_000  # 20 digits: decoded by json, not orjson
    status, text = await api.call("POST", "/db/notes", token, data=body)
    assert (status, LIMIT_TEXT in text) == (400, True), (status, text[:300])


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH - 1, 10])
async def test_a_document_within_the_limit_is_stored_and_read_back(api, depth):
    token = await api.register()
    status, created = await api.call("POST", "/db/notes", token, data=deep_object(depth))
    assert status == 201, created
    status, page = await api.call("GET", "/db/notes", token)  # the page wraps it two levels deeper
    assert status == 200 and page["results"][0]["a"] == json.loads(deep_object(depth))["a"]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 999])
async def test_a_document_too_deep_to_encode_is_refused_before_it_is_stored(api, depth):
    # Deeper than orjson encodes (255) falls to json, which fails near the recursion limit.
    token = await api.register()
    status, text = await api.call("POST", "/db/notes", token, data=deep_object(depth))
    assert (status, LIMIT_TEXT in text) == (400, True), (status, text[:300])
    assert await stored(api) == 0


async def test_an_update_too_deep_is_refused_and_leaves_the_document(api):
    token = await api.register()
    status, doc = await api.call("POST", "/db/notes", token, json={"n": 1})
    assert status == 201, doc
    status, text = await api.call("PUT", f"/db/notes/{doc['id']}", token, data=deep_object(999))
    assert (status, LIMIT_TEXT in text) == (400, True), (status, text[:300])
    assert (await api.call("GET", f"/db/notes/{doc['id']}", token))[1]["n"] == 1


async def test_a_document_stored_deeper_before_the_limit_stays_readable_and_updatable(api, tmp_path):
    token = await api.register()
    status, doc = await api.call("POST", "/db/notes", token, json={"n": 1})
    assert status == 201, doc
    old = {"n": 1, "old": json.loads(deep_object(300))}
    with closing(sqlite3.connect(tmp_path / "test.db")) as conn, conn:  # as an earlier version stored it
        conn.execute("UPDATE documents SET data = ? WHERE id = ?", (json.dumps(old), doc["id"]))
    member = await open_client(api, "ws", token)
    try:
        assert (await member.join("db-notes"))["type"] == "ok"
        assert (await api.call("GET", f"/db/notes/{doc['id']}", token))[1]["old"] == old["old"]
        status, updated = await api.call("PUT", f"/db/notes/{doc['id']}", token, json={"n": 2})
        assert (status, updated["n"], updated["old"]) == (200, 2, old["old"])
        assert json.loads((await member.next("db_updated"))["data"])["n"] == 2
    finally:
        await member.close()


@pytest.mark.parametrize("depth", [1_000, 5_000])
async def test_a_deep_bulk_delete_filter_is_refused(api, depth):
    token = await api.register()
    assert (await api.call("POST", "/db/notes", token, json={"n": 1}))[0] == 201
    x = base64.b64encode(deep_array(depth)).decode()
    status, text = await api.call("DELETE", f"/db/notes?bulk=1&x={x}", token)
    assert status == 400, text
    assert await stored(api) == 1


async def test_a_deep_websocket_frame_gets_an_error_frame_and_the_socket_stays_open(api):
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(f"{base_url(api)}/ws?sbpk={api.pk}", heartbeat=None) as ws:
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "init"
        await ws.send_str(deep_array(30_000).decode())  # within the frame limit
        frame = json.loads((await ws.receive(timeout=5)).data)
        assert frame["type"] == "error"
        assert frame["data"] == f"invalid message: JSON nested deeper than {MAX_DEPTH} levels"
        await ws.send_str(json.dumps({"type": "echo", "data": "still here"}))
        assert "still here" in json.loads((await ws.receive(timeout=5)).data)["data"]


DEEP_JS = "(function () { var v = {}; for (var i = 0; i < %d; i++) v = {a: v}; return %s; })()"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300])
async def test_a_function_cannot_store_a_document_too_deep(api, depth):
    token = await api.register()
    await add_function(api, "eval", EVAL_SOURCE)
    got = await evaluate(api, token, DEEP_JS % (depth - 1, 'create("notes", v)'))
    assert got["ok"] is False and LIMIT_TEXT in got["content"], got
    got = await evaluate(api, token, 'create("notes", {n: 1})')
    assert got["ok"] is True, got
    update = 'update("notes", "' + got["content"]["id"] + '", {b: v})'
    got = await evaluate(api, token, DEEP_JS % (depth - 1, update))
    assert got["ok"] is False and LIMIT_TEXT in got["content"], got
    assert await stored(api) == 1


# (page, size, status, page answered): a page past the data is an empty page; one whose offset
# would not fit in SQLite's 64-bit integers is a 400 that says so.
PAGES = [
    ("99999999999999999999", None, 400, None),
    ("9223372036854775807", "1000", 400, None),
    ("9223372036854775807", "25", 400, None),
    ("9223372036854775807", "1", 200, 9223372036854775807),
    ("1000000000", "1000", 200, 1000000000),
    ("2", "1", 200, 2),
    ("0", None, 200, 1),
    ("-3", None, 200, 1),
    ("abc", None, 200, 1),
    ("9" * 5000, None, 200, 1),  # past Python's digit limit for int(): unparsable, like "abc"
]


@pytest.mark.parametrize(("page", "size", "status", "answered"), PAGES)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_huge_page_numbers_are_an_empty_page_or_a_400(api, method, page, size, status, answered):
    token = await api.register()
    assert (await api.call("POST", "/db/notes", token, json={"n": 1}))[0] == 201
    query = f"page={page}" + (f"&size={size}" if size else "")
    path = f"/db/notes?{query}" if method == "GET" else f"/query/notes?{query}"
    got, body = await api.call(method, path, token, json=[] if method == "POST" else None)
    assert got == status, body
    if status == 400:
        assert "page" in body and "64 bits" in body, body
    else:
        assert body["page"] == answered and body["total"] == 1, body


async def test_a_function_list_with_a_huge_page_gets_an_error(api):
    token = await api.register()
    await add_function(api, "eval", EVAL_SOURCE)
    got = await evaluate(api, token, 'list("notes", {page: 9223372036854775807, size: 100})')
    assert got["ok"] is False and "64 bits" in got["content"], got


# (stored value, range): sums that leave what JSON and SQLite hold.
INCREMENTS = [
    (1.5, 10**400),  # a float plus a huge whole number overflows the float
    (1e308, 10**308),  # a float sum that becomes infinite
    (1, 2**63),  # a range beyond 64 bits
    (2**63 - 1, 1),  # a whole-number sum beyond 64 bits
]


@pytest.mark.parametrize(("value", "amount"), INCREMENTS)
async def test_increments_that_overflow_are_refused(api, value, amount):
    token = await api.register()
    status, doc = await api.call("POST", "/db/notes", token, data=json.dumps({"n": value}))
    assert status == 201, doc
    status, text = await api.call("PUT", f"/inc/notes/{doc['id']}", token,
                                  data=json.dumps({"field": "n", "range": amount}))
    assert status == 400, text
    assert (await api.call("GET", f"/db/notes/{doc['id']}", token))[1]["n"] == value


def _part(headers: bytes, body: bytes = b"a@b.c") -> bytes:
    return b"--x\r\n" + headers + b"\r\n\r\n" + body + b"\r\n--x--\r\n"


MULTIPART = "multipart/form-data; boundary=x"
NAMED = b'Content-Disposition: form-data; name="email"'
# (content type, body): form bodies aiohttp cannot read.
FORMS = [
    ("multipart/form-data", b"--x\r\n\r\n"),  # no boundary
    (MULTIPART, b"garbage"),  # no starting boundary
    (MULTIPART, _part(b"")),  # a part without a name
    (MULTIPART, _part(NAMED + b"\r\nContent-Transfer-Encoding: nope")),
    (MULTIPART, _part(NAMED + b"\r\nContent-Type: text/plain; charset=nope")),
    (MULTIPART, _part(NAMED, b"\xff\xfe")),  # not UTF-8
    (MULTIPART, _part(NAMED + b"\r\nContent-Type: multipart/mixed; boundary=y")),  # nested
    (MULTIPART, _part(b"bad header line")),
    (MULTIPART, _part(b"A: b\r\n" * 200 + NAMED)),  # too many headers
    ("application/x-www-form-urlencoded; charset=nope", b"email=a@b.c"),
    ("application/x-www-form-urlencoded", b"email=\xff"),
]


@pytest.mark.parametrize(("content_type", "body"), FORMS)
async def test_unreadable_form_bodies_are_refused(api, content_type, body):
    token = await api.register()
    urlencoded = content_type.startswith("application/x-www-form-urlencoded")  # functions take only those forms
    for path in ("/account/init", "/fn/exec/nothing") if urlencoded else ("/account/init",):
        status, text = await api.call("POST", path, token, data=body, headers={"Content-Type": content_type})
        assert (status, "invalid form body" in text) == (400, True), (path, status, text)
