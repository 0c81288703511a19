"""sblite behind Debian's real nginx with the committed deploy/nginx.conf: realtime over SSE and WebSocket,
HTTP/1.0 upstreams, and the client address and scheme nginx forwards (believed only from trusted proxies)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.node_runner import assert_suite_passed, install_node_packages, run_script
from tests.proxy_support import Proxied, run_client, start_proxied
from tests.realtime_clients import WsClient
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_PK

pytestmark = pytest.mark.slow
SUITE = "realtime_suite.mjs"
SUITE_TIMEOUT = 120
_emails = itertools.count()


@pytest.fixture(scope="module")
def node() -> str:
    """The node binary, with the real client installed."""
    return install_node_packages()


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Proxied]:
    """nginx (HTTP/1.1 to sblite, as committed) in front of sblite serve."""
    stack = start_proxied(tmp_path, {"SBLITE_AUTH_THROTTLE_ADDRESS_FAILURES": "3"})
    yield stack
    assert stack.stop() == 0, stack.server.output()


@pytest.mark.parametrize("http_1_0", [False, True], ids=["http1.1", "nginx-default-http1.0"])
def test_the_realtime_suite_passes_through_nginx(node: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 http_1_0: bool) -> None:
    stack = start_proxied(tmp_path, http_1_0=http_1_0)
    monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(stack.cert))  # Node trusts the test certificate
    try:
        code, output = run_script(node, SUITE, stack.as_server(), SUITE_TIMEOUT)
    finally:
        stop_code = stack.stop()
    assert_suite_passed(SUITE, code, output + "\n--- nginx error log ---\n" + stack.nginx_log(), stack.as_server())
    assert stop_code == 0, stack.server.output()


async def _call(session: aiohttp.ClientSession, stack: Proxied, method: str, path: str, *,
                forwarded_for: str | None = None, **kwargs: object) -> tuple[int, object]:
    headers = {"SB-PUBLIC-KEY": DEV_PK, **({"X-Forwarded-For": forwarded_for} if forwarded_for else {})}
    async with session.request(method, stack.url + path, headers=headers, ssl=stack.ssl_context(),
                               **kwargs) as resp:  # type: ignore[arg-type]
        text = await resp.text()
        return resp.status, json.loads(text) if resp.content_type == "application/json" else text


def test_websocket_members_talk_through_nginx(proxied: Proxied) -> None:
    # (SSE through nginx: the realtime suite above, with the real client.)
    run_client(_websocket_members_talk(proxied))


async def _websocket_members_talk(proxied: Proxied) -> None:
    connector = aiohttp.TCPConnector(ssl=proxied.ssl_context(), force_close=True)  # none left to close at the end
    async with aiohttp.ClientSession(connector=connector) as session:
        status, token = await _call(session, proxied, "POST", "/register",
                                    json={"email": "ws@example.com", "password": "ws-password-1"})
        assert status == 200, token
        alice, bob = await WsClient(session, proxied.url).open(), await WsClient(session, proxied.url).open()
        try:
            for client in (alice, bob):
                assert (await client.auth(str(token)))["type"] == "token"
                assert (await client.join("lobby"))["type"] == "ok"
            await alice.send("chan_in", "from alice", "lobby")
            await bob.send("chan_in", "from bob", "lobby")
            for client in (alice, bob):
                assert {(await client.next("chan_out"))["data"] for _ in range(2)} == {"from alice", "from bob"}
        finally:
            await alice.close()
            await bob.close()


def test_the_throttle_sees_the_address_nginx_forwarded(proxied: Proxied) -> None:
    run_client(_throttle_sees_the_forwarded_address(proxied))


async def _throttle_sees_the_forwarded_address(proxied: Proxied) -> None:
    # Clients on 127.0.0.2 and 127.0.0.3 (no trusted proxies: only 127.0.0.1 is) reach nginx, which
    # appends the address it saw to X-Forwarded-For; what a client writes there itself is ignored.
    async def fail_logins(address: str, count: int, claim: str | None = None) -> list[int]:
        connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            statuses = []
            for _ in range(count):
                body = {"email": f"nobody{next(_emails)}@example.com", "password": "wrong-password"}
                statuses.append((await _call(session, proxied, "POST", "/login", forwarded_for=claim, json=body))[0])
            return statuses

    assert await fail_logins("127.0.0.2", 3, claim="203.0.113.1") == [401, 401, 401]
    assert await fail_logins("127.0.0.2", 1, claim="203.0.113.2") == [429]  # a new claim is no new client
    assert await fail_logins("127.0.0.3", 1) == [401]  # another client is not locked out
    deadline = time.monotonic() + 5  # an access line is written just after its response is sent
    while True:
        access = [line for line in proxied.server.output().splitlines() if "sblite.access: POST /login" in line]
        if len(access) == 5 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert [line.rsplit(" ", 1)[1] for line in access] == ["127.0.0.2"] * 4 + ["127.0.0.3"], access


def test_the_dashboard_cookie_is_secure_behind_https_nginx(proxied: Proxied) -> None:
    run_client(_dashboard_cookie_is_secure(proxied))


async def _dashboard_cookie_is_secure(proxied: Proxied) -> None:
    body = {"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}
    async with aiohttp.ClientSession() as session, \
            session.post(proxied.url + "/_/session", ssl=proxied.ssl_context(), json=body) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.cookies["sblite_session"]["secure"]  # nginx said https, from a trusted address


def test_plain_http_is_redirected_to_https_but_for_certificate_challenges(proxied: Proxied) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(proxied.http_url + "/ping?x=1", timeout=5)
    with info.value:
        assert info.value.code == 301 and info.value.headers["Location"] == "https://127.0.0.1/ping?x=1"
    with pytest.raises(urllib.error.HTTPError) as info:  # certbot's challenges are answered, not redirected
        opener.open(proxied.http_url + "/.well-known/acme-challenge/none", timeout=5)
    with info.value:
        assert info.value.code == 404


@pytest.mark.parametrize("trusted", [(), ("10.0.0.0/8",)], ids=["none", "another-network"])
async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(aiohttp_client, tmp_path: Path,
                                                                    trusted: tuple[str, ...]) -> None:
    config = make_config(tmp_path, trusted_proxies=trusted, auth_throttle_address_failures=3)
    api = Api(await aiohttp_client(create_app(config)))
    resp = await api.client.post("/_/session", headers={"X-Forwarded-Proto": "https"},
                                 json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD})
    assert resp.status == 200 and not resp.cookies["sblite_session"]["secure"]
    statuses = []
    for n in range(4):  # a new claimed address each time: all of them are still 127.0.0.1
        resp = await api.client.post("/login", headers={"SB-PUBLIC-KEY": DEV_PK, "X-Forwarded-For": f"203.0.113.{n}"},
                                     json={"email": f"x{n}@example.com", "password": "wrong-password"})
        statuses.append(resp.status)
    assert statuses == [401, 401, 401, 429]
