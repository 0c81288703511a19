"""POST /extra/htmltox: pages rendered by headless Chromium, the address rules of fetch(), 501 without it."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from sblite.app import create_app
from sblite.services.render import find_chromium
from tests.conftest import Api, make_config

CHROMIUM = find_chromium("")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
PAGE = "<html><body><h1>Rendered by sblite</h1><p>a test page</p></body></html>"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _page_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/slow", slow)
    return app


async def _api(aiohttp_client, tmp_path, **settings) -> Api:
    return Api(await aiohttp_client(create_app(make_config(tmp_path, **settings))))


async def _fetch_file(api: Api, token: str, url: str) -> tuple[str, bytes]:
    path = url.split("://", 1)[1].split("/", 1)[1]
    resp = await api.client.get(f"/{path}", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()
    return resp.content_type, await resp.read()


@needs_chromium
@pytest.mark.parametrize("to_pdf, fullpage, content_type, signature", [
    (True, False, "application/pdf", b"%PDF"),
    (False, False, "image/png", PNG_SIGNATURE),
    (False, True, "image/png", PNG_SIGNATURE),
])
async def test_a_loopback_page_renders_when_private_addresses_are_allowed(aiohttp_client, aiohttp_server, tmp_path,
                                                                         to_pdf, fullpage, content_type, signature):
    site = await aiohttp_server(_page_app())
    api = await _api(aiohttp_client, tmp_path, functions_fetch_allow_private=True)
    token = await api.register()
    url = f"http://127.0.0.1:{site.port}/page"
    status, stored = await api.call("POST", "/extra/htmltox", token, json={"toPDF": to_pdf, "url": url,
                                                                           "fullpage": fullpage})
    assert status == 200, stored
    assert set(stored) == {"id", "url"} and url not in stored.values()  # not the request echoed back
    got_type, data = await _fetch_file(api, token, stored["url"])
    assert got_type == content_type and data.startswith(signature) and len(data) > 500
    status, listed = await api.call("GET", "/storage/files", token)
    assert [f["id"] for f in listed["results"]] == [stored["id"]]


@needs_chromium
async def test_a_page_that_never_answers_is_504_within_the_timeout(aiohttp_client, aiohttp_server, tmp_path):
    site = await aiohttp_server(_page_app())
    api = await _api(aiohttp_client, tmp_path, functions_fetch_allow_private=True, render_timeout_seconds=1)
    token = await api.register()
    status, text = await api.call("POST", "/extra/htmltox", token,
                                  json={"toPDF": True, "url": f"http://127.0.0.1:{site.port}/slow"})
    assert status == 504 and "longer than 1 s" in text
    status, listed = await api.call("GET", "/storage/files", token)
    assert listed["total"] == 0


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/page", "http://localhost/", "http://[::1]/", "http://10.0.0.1/", "http://169.254.169.254/",
    "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/", "https://2130706433/",
])
async def test_non_public_addresses_are_refused_by_default(api, url):
    token = await api.register()
    status, text = await api.call("POST", "/extra/htmltox", token, json={"toPDF": True, "url": url})
    assert status == 400 and "htmltox refuses" in text and "functions_fetch_allow_private" in text, text
    assert (await api.call("GET", "/storage/files", token))[1]["total"] == 0


async def test_without_chromium_it_is_501_saying_how_to_enable_it(aiohttp_client, tmp_path):
    api = await _api(aiohttp_client, tmp_path, chromium_path=str(tmp_path / "no-such-chromium"))
    token = await api.register()
    status, text = await api.call("POST", "/extra/htmltox", token, json={"toPDF": True, "url": "https://example.com"})
    assert status == 501 and "install chromium" in text and "chromium_path" in text


@pytest.mark.parametrize("body, message", [
    ({}, "url is required"),
    ({"url": ""}, "url is required"),
    ({"url": 5}, "url is required"),
    ({"url": "https://example.com", "toPDF": "yes"}, "must be true or false"),
    ({"url": "https://example.com", "fullpage": 1}, "must be true or false"),
    ({"url": "ftp://example.com/file"}, "http:// or https://"),
    ({"url": "file:///etc/passwd"}, "http:// or https://"),
    ({"url": "javascript:alert(1)"}, "http:// or https://"),
    ({"url": "http:///nohost"}, "http:// or https://"),
    ({"url": "http://example.com:99999/"}, "invalid port"),
    ({"url": "https://example.com/" + "a" * 9000}, "limited to 8192"),
    ({"url": "http://no-such-host.invalid/"}, "does not resolve"),
    (["https://example.com"], "expected a JSON object"),
])
async def test_bad_requests_are_400(api, body, message):
    token = await api.register()
    status, text = await api.call("POST", "/extra/htmltox", token, json=body)
    assert status == 400 and message in text, text


async def test_htmltox_needs_a_session(api):
    status, text = await api.call("POST", "/extra/htmltox", json={"toPDF": True, "url": "https://example.com"})
    assert status == 401 and "missing authorization" in text


def test_a_configured_path_must_be_an_executable(tmp_path):
    script = tmp_path / "chrome"
    script.write_text("#!/bin/sh\n")
    assert find_chromium(str(script)) is None
    script.chmod(0o755)
    assert find_chromium(str(script)) == str(script)
