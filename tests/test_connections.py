"""Stalled and surplus connections against a real `sblite serve`: the header deadline and the cap."""

from __future__ import annotations

import asyncio
import select
import socket
import time
import urllib.request
from contextlib import ExitStack
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support import DEV_PK, DEV_ROOT_TOKEN, ServerProcess, start_server

pytestmark = pytest.mark.slow

HEADER_TIMEOUT = 1  # seconds (the setting is whole seconds)
CAP = 20
CLOSE_WITHIN = HEADER_TIMEOUT + 2.0  # the deadline plus room for a busy machine
HALF_REQUEST = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nSB-PUBLIC-KE"
PING = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nSB-PUBLIC-KEY: " + DEV_PK.encode() + b"\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ServerProcess]:
    """One server with a 1 s header deadline, a cap of 20 connections and 1 s SSE keepalives."""
    server = start_server(tmp_path_factory.mktemp("connections"), env={
        "SBLITE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT), "SBLITE_MAX_CONNECTIONS": str(CAP),
        "SBLITE_REALTIME_KEEPALIVE_SECONDS": "1"})
    yield server
    server.stop()


def port_of(server: ServerProcess) -> int:
    return int(server.url.rsplit(":", 1)[1])


def connect(server: ServerProcess, stack: ExitStack, first_bytes: bytes = b"") -> socket.socket:
    """A loopback socket to the server, closed when `stack` closes, that has sent `first_bytes`."""
    sock = stack.enter_context(socket.create_connection(("127.0.0.1", port_of(server)), timeout=5))
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes (or resets) `sock` within `seconds`; what it sends is read and dropped."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False


def answered(socks: list[socket.socket]) -> list[socket.socket]:
    """The sockets the server has sent something to, or closed, by now."""
    return select.select(socks, [], [], 0)[0]


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """One HTTP response with a Content-Length body: (status, body)."""
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(4096)
    return int(head.split()[1]), body


def metrics(server: ServerProcess) -> dict[str, float]:
    """The server's /metrics samples by name (with labels)."""
    request = urllib.request.Request(server.url + "/metrics", headers={
        "SB-PUBLIC-KEY": DEV_PK, "Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        text = resp.read().decode()
    return {name: float(value) for name, value in
            (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


def dropped(server: ServerProcess, reason: str) -> float:
    """Connections the server closed for `reason` so far (0 before it counts any)."""
    return metrics(server).get(f'sblite_http_connections_dropped_total{{reason="{reason}"}}', 0.0)


def ping_status(server: ServerProcess) -> int:
    """The status of a fresh GET /ping."""
    with urllib.request.urlopen(server.url + "/ping", timeout=5) as resp:
        return resp.status


def test_stalled_and_silent_connections_are_closed_after_the_header_timeout(server):
    before = dropped(server, "header_timeout")
    with ExitStack() as stack:
        stalled = [connect(server, stack, HALF_REQUEST) for _ in range(8)]
        silent = [connect(server, stack) for _ in range(2)]
        time.sleep(0.3)
        assert answered(stalled + silent) == []  # not before the deadline
        assert all(closed_within(sock, CLOSE_WITHIN) for sock in stalled + silent)
    assert dropped(server, "header_timeout") >= before + 10
    assert ping_status(server) == 200


def test_connections_over_the_cap_are_refused_until_stalled_ones_go(server):
    before = dropped(server, "over_limit")
    time.sleep(0.2)  # the server counts the /metrics connection out
    with ExitStack() as stack:
        socks = [connect(server, stack, HALF_REQUEST) for _ in range(CAP + 10)]
        time.sleep(0.3)
        refused = answered(socks)
        assert len(refused) == 10 and all(closed_within(sock, 1) for sock in refused)
        late = connect(server, stack, PING)  # a whole request, but no room for it
        assert closed_within(late, 1)
        assert all(closed_within(sock, CLOSE_WITHIN) for sock in socks)
    assert ping_status(server) == 200  # room again once the stalled ones were dropped
    assert dropped(server, "over_limit") >= before + 11


def test_refused_connection_gets_a_503_when_it_has_not_sent_yet(server):
    time.sleep(0.2)  # the server counts earlier connections out
    with ExitStack() as stack:
        holders = [connect(server, stack, HALF_REQUEST) for _ in range(CAP)]
        time.sleep(0.3)
        assert answered(holders) == []
        extra = connect(server, stack)
        status, body = read_response(extra)
        assert (status, body) == (503, b"too many open connections: try again later\n")
        assert all(closed_within(sock, CLOSE_WITHIN) for sock in holders)


def test_sse_stream_outlives_the_header_timeout_and_counts(server):
    with ExitStack() as stack:
        stream = connect(server, stack, f"GET /sse/connect?sbpk={DEV_PK} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        stream.settimeout(5)
        assert b"200 OK" in stream.recv(4096)
        assert metrics(server)["sblite_http_connections"] >= 2  # the stream and this request
        time.sleep(HEADER_TIMEOUT * 2)
        received = b""
        while b": ping" not in received:  # keepalive comments still arrive
            chunk = stream.recv(4096)
            assert chunk, "the SSE stream was closed"
            received += chunk


async def test_websocket_outlives_the_header_timeout(server):
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{server.url}/ws?sbpk={DEV_PK}") as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "init"
        await asyncio.sleep(HEADER_TIMEOUT * 2)
        await ws.send_json({"type": "echo", "data": "still here"})
        reply = await ws.receive_json(timeout=5)
        assert reply["type"] == "echo" and "still here" in reply["data"]


@pytest.mark.parametrize("first, status", [
    (PING, 200),
    (b"GET /no/such/route HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
    (b"GET /db/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", None),  # no public key: refused
])
def test_idle_keep_alive_connection_outlives_the_header_timeout(server, first, status):
    with ExitStack() as stack:
        sock = connect(server, stack, first)
        answer, _ = read_response(sock)
        assert answer == status if status else 400 <= answer < 500
        time.sleep(HEADER_TIMEOUT * 2)  # idle between requests: keepalive_timeout (75 s) applies
        sock.sendall(PING)
        assert read_response(sock) == (200, b"true")


def test_stalled_second_request_on_a_keep_alive_connection_is_dropped(server):
    with ExitStack() as stack:
        sock = connect(server, stack, PING)
        assert read_response(sock) == (200, b"true")
        sock.sendall(HALF_REQUEST)
        time.sleep(0.3)
        assert answered([sock]) == []
        assert closed_within(sock, CLOSE_WITHIN)


@pytest.mark.parametrize("open_files, workers, db_connections, cap", [
    (1024, 12, 6, 806),  # the usual soft limit, 2 CPUs: 64 + 100 + 3 * 12 + 3 * 6 kept back
    (4096, 8, 6, 3890),
    (256, 12, 6, 38),
    (200, 12, 6, 16),  # never below 16
])
def test_default_cap_keeps_descriptors_for_the_rest_of_the_server(open_files, workers, db_connections, cap):
    from sblite.http.connections import default_max_connections  # imported here: absent before the fix

    assert default_max_connections(open_files, workers, db_connections) == cap
