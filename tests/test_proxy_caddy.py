"""sblite behind Debian's Caddy with the committed deploy/Caddyfile (its site on a loopback port, plain
HTTP): the realtime suite over SSE, WebSocket members, and the client address Caddy forwards."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.node_runner import assert_suite_passed, install_node_packages, run_script
from tests.proxy_support import Caddied, start_caddied
from tests.realtime_clients import WsClient
from tests.support import DEV_PK

pytestmark = pytest.mark.slow
SUITE = "realtime_suite.mjs"
_emails = itertools.count()


@pytest.fixture
def caddied(tmp_path: Path) -> Iterator[Caddied]:
    """Caddy in front of sblite serve (at most 3 failed sign-ins per address)."""
    stack = start_caddied(tmp_path, {"SBLITE_AUTH_THROTTLE_ADDRESS_FAILURES": "3"})
    yield stack
    assert stack.stop() == 0, stack.server.output()


def test_the_realtime_suite_passes_through_caddy(caddied: Caddied) -> None:
    code, output = run_script(install_node_packages(), SUITE, caddied.as_server(), 120)
    assert_suite_passed(SUITE, code, output + "\n--- caddy ---\n" + caddied.caddy_log(), caddied.as_server())


async def test_websocket_members_and_the_forwarded_address_through_caddy(caddied: Caddied) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(caddied.url + "/register", headers={"SB-PUBLIC-KEY": DEV_PK},
                                json={"email": "caddy@example.com", "password": "caddy-password-1"}) as resp:
            assert resp.status == 200, await resp.text()
            token = await resp.json()
        alice, bob = await WsClient(session, caddied.url).open(), await WsClient(session, caddied.url).open()
        try:
            for client in (alice, bob):
                assert (await client.auth(token))["type"] == "token"
                assert (await client.join("lobby"))["type"] == "ok"
            await alice.send("chan_in", "hello through caddy", "lobby")
            assert (await bob.next("chan_out"))["data"] == "hello through caddy"
        finally:
            await asyncio.gather(alice.close(), bob.close())

    async def fail_logins(address: str, count: int) -> list[int]:
        connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            statuses = []
            for _ in range(count):
                body = {"email": f"nobody{next(_emails)}@example.com", "password": "wrong-password"}
                headers = {"SB-PUBLIC-KEY": DEV_PK, "X-Forwarded-For": "203.0.113.1"}  # Caddy drops the claim
                async with session.post(caddied.url + "/login", headers=headers, json=body) as resp:
                    statuses.append(resp.status)
            return statuses

    assert await fail_logins("127.0.0.2", 4) == [401, 401, 401, 429]
    assert await fail_logins("127.0.0.3", 1) == [401]
