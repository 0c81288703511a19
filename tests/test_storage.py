"""File storage over the real app on a listening socket: upload, list, usage, serving, permissions, delete."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.storage_support import (
    BOUNDARY, files_under, multipart, path_of_url, post_parts, post_raw, upload,
)
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_ROOT_TOKEN

LIMIT_MB = 1
MB = 1024 * 1024
URL = re.compile(r"^http://127\.0\.0\.1:\d+/localfs/[0-9a-f-]{36}/[0-9a-f-]{36}/[0-9a-f-]{36}(\.[a-z0-9]{1,10})?$")


@pytest.fixture
async def api(aiohttp_client, tmp_path) -> Api:
    """The real app with a 1 MB upload limit; its files go to tmp_path/test-files."""
    return Api(await aiohttp_client(create_app(make_config(tmp_path, storage_max_upload_mb=LIMIT_MB))))


def files_dir(tmp_path: Path) -> Path:
    return tmp_path / "test-files"


def stored_files(tmp_path: Path) -> set[Path]:
    """Files in the storage directory, temporary ones included."""
    return files_under(files_dir(tmp_path))


async def get(api: Api, url: str, token: str | None = None, **headers: str):
    """GET a file URL (the test client speaks to the same server the URL names)."""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = await api.client.get(path_of_url(url), headers=headers)
    body = await resp.read()
    return resp, body


async def admin(api: Api) -> str:
    """A session token of the dev app's admin (role 100)."""
    status, token = await api.call("POST", "/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD})
    assert status == 200, token
    return token


async def listing(api: Api, token: str, query: str = "") -> dict:
    status, body = await api.call("GET", f"/storage/files{query}", token)
    assert status == 200, body
    return body


async def test_upload_lists_counts_and_serves_back(api: Api, tmp_path: Path) -> None:
    token = await api.register()
    small = await upload(api, token, b"hello world", "greeting.txt")
    big = await upload(api, token, b"\x00\x01" * 50_000, "clip.MP4", name="Holiday clip")
    assert URL.match(small["url"]) and small["url"].endswith(f"/{small['id']}.txt"), small
    assert big["url"].endswith(f"/{big['id']}.mp4"), big

    page = await listing(api, token)
    assert (page["page"], page["size"], page["total"]) == (1, 25, 2)
    first, second = page["results"]
    assert [first["id"], second["id"]] == [small["id"], big["id"]]  # oldest first
    assert set(first) >= {"id", "accountId", "key", "url", "size", "uploaded"}
    assert first["size"] == 11 and second["size"] == 100_000
    assert second["name"] == "Holiday clip" and first["name"] == "greeting.txt"
    assert first["url"] == small["url"] and first["key"] == small["url"].split("/localfs/")[1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", first["uploaded"])

    by_size = await listing(api, token, "?sort=size&desc=true")
    assert [r["id"] for r in by_size["results"]] == [big["id"], small["id"]]
    paged = await listing(api, token, "?page=2&size=1")
    assert paged["total"] == 2 and [r["id"] for r in paged["results"]] == [big["id"]]

    status, used = await api.call("GET", "/storage/usage", token)
    assert status == 200 and used == {"bytes": 100_011, "gb": 100_011 / 1024 ** 3}

    resp, body = await get(api, small["url"], token)
    assert resp.status == 200 and body == b"hello world"
    assert resp.headers["Content-Type"].startswith("text/plain")
    resp, body = await get(api, big["url"], token)
    assert resp.status == 200 and body == b"\x00\x01" * 50_000 and resp.headers["Content-Type"] == "video/mp4"
    head = await api.client.head(path_of_url(big["url"]), headers={"Authorization": f"Bearer {token}"})
    assert head.status == 200 and head.headers["Content-Length"] == "100000"
    assert stored_files(tmp_path) == {Path(small["id"][:2], small["id"] + ".txt"),
                                      Path(big["id"][:2], big["id"] + ".mp4")}


async def test_ranges_etags_and_last_modified(api: Api) -> None:
    token = await api.register()
    data = bytes(range(256)) * 40
    url = (await upload(api, token, data, "video.webm"))["url"]
    resp, body = await get(api, url, token)
    etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
    assert resp.headers["Accept-Ranges"] == "bytes"

    cases = [  # (Range, status, expected body, Content-Range)
        ("bytes=0-9", 206, data[:10], f"bytes 0-9/{len(data)}"),
        ("bytes=1000-", 206, data[1000:], f"bytes 1000-{len(data) - 1}/{len(data)}"),
        ("bytes=-16", 206, data[-16:], f"bytes {len(data) - 16}-{len(data) - 1}/{len(data)}"),
        (f"bytes={len(data)}-", 416, None, f"bytes */{len(data)}"),
    ]
    for header, status, expected, content_range in cases:
        resp, body = await get(api, url, token, Range=header)
        assert resp.status == status, header
        assert resp.headers["Content-Range"] == content_range, header
        if expected is not None:
            assert body == expected, header

    resp, body = await get(api, url, token, **{"If-None-Match": etag})
    assert resp.status == 304 and body == b""
    resp, body = await get(api, url, token, **{"If-Modified-Since": modified})
    assert resp.status == 304
    resp, body = await get(api, url, token, **{"If-None-Match": '"another"'})
    assert resp.status == 200 and body == data


async def test_one_account_never_reads_or_lists_another_accounts_private_files(api: Api) -> None:
    alice, bob = await api.register(), await api.register()
    status, _ = await api.call("POST", "/account/users", alice, json={"email": "carol@example.com",
                                                                       "password": "secret-pw"})
    assert status == 200
    status, carol = await api.call("POST", "/login", json={"email": "carol@example.com", "password": "secret-pw"})
    assert status == 200
    private = await upload(api, alice, b"alice's diary", "diary.txt")
    shared = await upload(api, alice, b"alice's poster", "poster.png", public="true")

    for who, token, status in [("bob", bob, 404), ("nobody", None, 404), ("a bad token", "not-a-token", 404),
                               ("alice", alice, 200), ("carol, same account", carol, 200),
                               ("root", DEV_ROOT_TOKEN, 200)]:
        resp, body = await get(api, private["url"], token)
        assert resp.status == status, who
        if status == 404:
            assert b"alice" not in body and body.startswith(b"file not found"), who
    resp, body = await get(api, private["url"] + f"?token={alice}")  # how an <img src> carries it
    assert resp.status == 200 and body == b"alice's diary"
    resp, body = await get(api, private["url"] + f"?token={bob}")
    assert resp.status == 404

    for token in (None, bob, "not-a-token"):  # public: anyone with the link, whatever token comes along
        resp, body = await get(api, shared["url"], token)
        assert resp.status == 200 and body == b"alice's poster"
    resp, _ = await get(api, private["url"].replace("/localfs/", "/localfs/x").replace("x", "", 1), bob)
    assert resp.status == 404

    assert (await listing(api, bob))["total"] == 0
    assert (await api.call("GET", "/storage/usage", bob))[1] == {"bytes": 0, "gb": 0}
    assert {r["id"] for r in (await listing(api, carol))["results"]} == {private["id"], shared["id"]}
    assert (await listing(api, await admin(api)))["total"] == 2  # root (the admin's session): the whole app


async def test_a_file_url_under_another_account_or_app_is_not_found(api: Api) -> None:
    alice, bob = await api.register(), await api.register()
    url = (await upload(api, alice, b"x", "a.txt", public="1"))["url"]
    _, me = await api.call("GET", "/me", bob)
    app_part, account_part, name = url.split("/localfs/")[1].split("/")
    base = url.split("/localfs/")[0] + "/localfs"
    for moved in [f"{base}/{app_part}/{me['accountId']}/{name}", f"{base}/{me['accountId']}/{account_part}/{name}",
                  f"{base}/{app_part}/{account_part}/{name.replace('.txt', '.html')}",
                  f"{base}/{app_part}/{account_part}/{name.split('.')[0]}"]:
        resp, _ = await get(api, moved)
        assert resp.status == 404, moved


@pytest.mark.parametrize("path", [
    "/localfs/../../test.db", "/localfs/%2e%2e/%2e%2e/test.db", "/localfs/a/b/..%2f..%2f..%2ftest.db",
    "/localfs/a/b/%2e%2e%2ftest-files%2ftmp", "/localfs/x/y/00000000-0000-4000-8000-000000000000",
    "/localfs/x/y/z", "/localfs//etc/passwd", "/localfs/a/b/..%5c..%5ctest.db", "/localfs/a/b/%00",
])
async def test_paths_that_are_not_a_stored_files_key_are_404(api: Api, path: str) -> None:
    resp = await api.client.get(path, headers={"Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    body = await resp.read()
    assert resp.status == 404 and b"SQLite" not in body


def _chunked(total: int) -> AsyncIterator[bytes]:
    async def body() -> AsyncIterator[bytes]:
        head, _ = multipart([("file", "big.bin", b"", None)])
        yield head[: head.index(b"\r\n\r\n") + 4]
        sent = 0
        while sent < total:
            yield b"z" * 65536
            sent += 65536
        yield f"\r\n--{BOUNDARY}--\r\n".encode()
    return body()


BAD_UPLOADS = [  # (what, body, content type, status, message start)
    ("a JSON body", b'{"file": "x"}', "application/json", 400, "invalid body: send a multipart/form-data"),
    ("no body", b"", None, 400, "invalid body"),
    ("urlencoded", b"file=abc", "application/x-www-form-urlencoded", 400, "invalid body"),
    ("no boundary", b"--x\r\n", "multipart/form-data", 400, "invalid form body"),
    ("no file field", multipart([("name", None, b"n", None)])[0], multipart([])[1], 400,
     "invalid form body: the `file` field is missing"),
    ("a file under another name", multipart([("upload", "a.txt", b"abc", None)])[0], multipart([])[1], 400,
     "invalid form body: the `file` field is missing"),
    ("an empty file", multipart([("file", "a.txt", b"", None)])[0], multipart([])[1], 400,
     "invalid file: the file is empty"),
    ("garbage after the boundary", f"--{BOUNDARY}\r\nno headers here".encode(), multipart([])[1], 400,
     "invalid form body"),
    ("a name field longer than 4096 bytes",
     multipart([("name", None, b"n" * 5000, None), ("file", "a.txt", b"abc", None)])[0], multipart([])[1], 400,
     "invalid form field name"),
    ("base64 transfer encoding",
     multipart([("file", "a.txt", b"YWJj", "text/plain\r\nContent-Transfer-Encoding: base64")])[0],
     multipart([])[1], 400, "invalid file part"),
    ("a file past the limit", multipart([("file", "a.bin", b"x" * (LIMIT_MB * MB + 1), None)])[0],
     multipart([])[1], 413, f"file too large: the limit is {LIMIT_MB} MB"),
    ("a body far past the limit", multipart([("file", "a.bin", b"x" * (3 * MB), None)])[0],
     multipart([])[1], 413, f"file too large: the limit is {LIMIT_MB} MB"),
]


@pytest.mark.parametrize(("what", "body", "ctype", "status", "message"), BAD_UPLOADS, ids=[b[0] for b in BAD_UPLOADS])
async def test_bad_uploads_are_4xx_and_store_nothing(api: Api, tmp_path: Path, what: str, body: bytes,
                                                     ctype: str | None, status: int, message: str) -> None:
    token = await api.register()
    got, text = await post_raw(api, "/storage/upload", token, body, ctype)
    assert got == status and text.startswith(message), (what, text)
    assert text.endswith("\n")
    assert stored_files(tmp_path) == set()
    assert (await listing(api, await admin(api)))["total"] == 0


async def test_a_streamed_upload_past_the_limit_is_cut_off_and_leaves_nothing(api: Api, tmp_path: Path) -> None:
    """No Content-Length (chunked): the limit applies while the bytes arrive, not to a declared size."""
    token = await api.register()
    resp = await api.client.post("/storage/upload", data=_chunked(2 * LIMIT_MB * MB), headers={
        "SB-PUBLIC-KEY": api.pk, "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert resp.status == 413 and (await resp.text()).startswith("file too large")
    assert stored_files(tmp_path) == set()
    assert (await listing(api, await admin(api)))["total"] == 0
    # a file of exactly the limit, streamed the same way, is fine
    resp = await api.client.post("/storage/upload", data=_chunked(LIMIT_MB * MB), headers={
        "SB-PUBLIC-KEY": api.pk, "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert resp.status == 200, await resp.text()
    assert (await listing(api, token))["results"][0]["size"] == LIMIT_MB * MB


async def test_storage_routes_need_a_user(api: Api) -> None:
    body, ctype = multipart([("file", "a.txt", b"abc", None)])
    assert (await post_raw(api, "/storage/upload", None, body, ctype))[0] == 401
    assert (await api.call("GET", "/storage/files"))[0] == 401
    assert (await api.call("GET", "/storage/usage"))[0] == 401
    assert (await post_raw(api, "/extra/resizeimg", None, body, ctype))[0] == 401


async def test_listing_pages_are_clamped_and_bounded(aiohttp_client, tmp_path: Path) -> None:
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, max_page_size=2))))
    token = await api.register()
    for name in ("a.txt", "b.txt", "c.txt"):
        await upload(api, token, name.encode(), name)
    page = await listing(api, token, "?size=50")
    assert (page["size"], page["total"], len(page["results"])) == (2, 3, 2)
    assert (await listing(api, token, "?page=99"))["results"] == []
    status, text = await api.call("GET", f"/storage/files?page={10 ** 30}", token)
    assert status == 400 and text.startswith(f"page {10 ** 30} is too large"), text


@pytest.mark.parametrize("sort", ["name", "size;DROP TABLE files", "SIZE", "created"])
async def test_listing_with_an_unknown_sort_is_400(api: Api, sort: str) -> None:
    token = await api.register()
    status, text = await api.call("GET", f"/storage/files?sort={sort}", token)
    assert status == 400 and text.startswith("invalid sort"), text


async def test_root_deletes_row_then_file(api: Api, tmp_path: Path) -> None:
    token = await api.register()
    gone, kept = await upload(api, token, b"bye", "a.txt"), await upload(api, token, b"stay", "b.txt")
    for method in ("GET", "POST", "DELETE"):  # StaticBackend's route answers any method
        status, answer = await api.root(method, f"/sudostorage/delete?id={gone['id']}")
        if method == "GET":
            assert (status, answer) == (200, True)
            assert stored_files(tmp_path) == {Path(kept["id"][:2], kept["id"] + ".txt")}
        else:
            assert status == 404 and answer.startswith("file not found")
    assert [r["id"] for r in (await listing(api, token))["results"]] == [kept["id"]]
    assert (await get(api, gone["url"], token))[0].status == 404
    for bad in ("", "?id=", "?id=nope", "?id=../../test.db", "?id=00000000-0000-4000-8000-000000000000"):
        status, _ = await api.root("POST", f"/sudostorage/delete{bad}")
        assert status == 404, bad
    status, _ = await api.call("POST", f"/sudostorage/delete?id={kept['id']}", token)  # a user is not root
    assert status in (400, 401)
    assert (await listing(api, token))["total"] == 1


async def test_uploaded_pages_never_run_as_pages_of_this_origin(api: Api) -> None:
    token = await api.register()
    for name, ctype in [("x.html", "text/html"), ("x.svg", "image/svg+xml")]:
        url = (await upload(api, token, b"<script>alert(1)</script>", name))["url"]
        resp, _ = await get(api, url, token)
        assert resp.headers["Content-Type"].startswith(ctype)
        assert resp.headers["Content-Security-Policy"].startswith("sandbox")
        assert resp.headers["Content-Disposition"] == "attachment"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_declared_type_is_kept_only_when_the_extension_says_nothing(api: Api) -> None:
    token = await api.register()
    cases = [("a.png", "text/html", "image/png"), ("noext", "audio/ogg", "audio/ogg"),
             ("noext", "text/html; charset=utf-8", "text/html"), ("noext", "garbage", "application/octet-stream"),
             ("noext", None, "application/octet-stream")]
    for filename, declared, served in cases:
        status, body = await post_parts(api, "/storage/upload", token, [("file", filename, b"abc", declared)])
        assert status == 200, body
        resp, _ = await get(api, body["url"], token)
        assert resp.headers["Content-Type"].split(";")[0] == served, (filename, declared)


async def test_public_by_default_when_configured(aiohttp_client, tmp_path: Path) -> None:
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, storage_public_default=True))))
    token = await api.register()
    open_file = await upload(api, token, b"for everyone", "a.txt")
    closed = await upload(api, token, b"for us", "b.txt", public="false")
    assert (await get(api, open_file["url"]))[0].status == 200
    assert (await get(api, closed["url"]))[0].status == 404
    assert (await get(api, closed["url"], token))[0].status == 200


async def test_base_url_from_config(aiohttp_client, tmp_path: Path) -> None:
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, storage_url="https://files.example.com/"))))
    token = await api.register()
    answer = await upload(api, token, b"abc", "a.txt")
    assert answer["url"].startswith("https://files.example.com/localfs/")
    assert (await listing(api, token))["results"][0]["url"] == answer["url"]


async def test_leftover_temporary_files_are_dropped_at_start(aiohttp_client, tmp_path: Path) -> None:
    leftovers = files_dir(tmp_path) / "tmp"
    leftovers.mkdir(parents=True)
    (leftovers / "0a0b.part").write_bytes(b"half an upload")
    await aiohttp_client(create_app(make_config(tmp_path)))
    assert stored_files(tmp_path) == set()


async def test_an_upload_cut_off_midway_leaves_nothing(api: Api, tmp_path: Path, caplog) -> None:
    """The client goes away after 900 KB: the temporary file goes too, and no row is written."""
    token = await api.register()
    body, ctype = multipart([("file", "a.bin", b"q" * 1_000_000, None)])
    host, port = api.client.server.host, api.client.server.port
    _, writer = await asyncio.open_connection(host, port)
    writer.write((f"POST /storage/upload HTTP/1.1\r\nHost: {host}\r\nSB-PUBLIC-KEY: {api.pk}\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
                  ).encode() + body[:900_000])  # past one 512 KiB write, however the reads split it
    await writer.drain()
    deadline = time.monotonic() + 10
    while not stored_files(tmp_path) and time.monotonic() < deadline:  # the upload has begun
        await asyncio.sleep(0.01)
    assert stored_files(tmp_path), "the temporary file never appeared"
    writer.close()
    await writer.wait_closed()
    while stored_files(tmp_path) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert stored_files(tmp_path) == set()
    assert (await listing(api, await admin(api)))["total"] == 0
    assert "unexpected error" not in caplog.text
