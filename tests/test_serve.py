"""`sblite serve` as a real process: start, persistence, modes, config, graceful shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.support import DEV_PK, DEV_ROOT_TOKEN, start_server

pytestmark = pytest.mark.slow


def http(url: str, method: str = "GET", body: object = None, token: str | None = None,
         pk: str = DEV_PK) -> tuple[int, str]:
    """One request with StaticBackend's headers; (status, body text)."""
    headers = {"SB-PUBLIC-KEY": pk, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_dev_server_persists_and_stops_cleanly(tmp_path):
    server = start_server(tmp_path)
    assert "Public key:\t\tdev_memory_pk" in server.output()
    assert "server started at: http://127.0.0.1:" in server.output()
    status, token = http(server.url + "/register", "POST", {"email": "p@example.com", "password": "pw-123456"})
    assert status == 200
    token = json.loads(token)
    status, _doc = http(server.url + "/db/notes", "POST", {"text": "kept"}, token)
    assert status == 201
    assert server.stop(signal.SIGTERM) == 0
    assert "shutting down" in server.output()
    assert not (tmp_path / "sblite.db-wal").exists()  # every connection closed, WAL checkpointed

    again = start_server(tmp_path)
    try:
        status, page = http(again.url + "/db/notes", token=token)  # same token: the key is kept
        assert status == 200 and json.loads(page)["results"][0]["text"] == "kept"
        status, _ = http(again.url + "/sudolistall", token=DEV_ROOT_TOKEN)
        assert status == 200
    finally:
        assert again.stop(signal.SIGINT) == 0


def test_dev_mode_refuses_non_loopback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sblite", "serve", "--host", "0.0.0.0", "--db",
                           str(tmp_path / "x.db")], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "dev mode only listens on a loopback address" in proc.stderr
    assert not (tmp_path / "x.db").exists()


def test_prod_mode_prints_credentials_once(tmp_path):
    server = start_server(tmp_path, "--prod")
    try:
        out = server.output()
        pk = re.search(r"Public key:\t\t(\S+)", out).group(1)
        root = re.search(r"Real root token:\t(\S+)", out).group(1)
        password = re.search(r"Password:\t(\S+)", out).group(1)
        assert pk != DEV_PK and "safe-to-use-in-dev-root-token" not in out and len(password) >= 12
        assert http(server.url + "/sudolistall", token=root, pk=pk) == (200, "[]")
        status, text = http(server.url + "/sudolistall", token=DEV_ROOT_TOKEN, pk=pk)
        assert status == 401 and "not in dev mode" in text
        status, _ = http(server.url + "/login", "POST", {"email": "admin@sblite.local", "password": password},
                         pk=pk)
        assert status == 200
    finally:
        assert server.stop() == 0
    again = start_server(tmp_path, "--prod")
    try:
        assert "Real root token" not in again.output()
        assert http(again.url + "/sudolistall", token=root, pk=pk) == (200, "[]")
    finally:
        assert again.stop() == 0


def test_environment_and_config_file(tmp_path):
    config = tmp_path / "sblite.toml"
    config.write_text("max_body_bytes = 4096\nmax_page_size = 7\n")
    server = start_server(tmp_path, "--config", str(config), env={"SBLITE_MAX_BODY_BYTES": "512"})
    try:
        status, token = http(server.url + "/register", "POST", {"email": "c@example.com", "password": "pw-123456"})
        token = json.loads(token)
        status, text = http(server.url + "/db/notes", "POST", {"blob": "x" * 1000}, token)
        assert status == 413 and "512 bytes" in text
        status, page = http(server.url + "/db/notes?size=50", token=token)
        assert json.loads(page)["size"] == 7
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("choice, served_by", [("", "uvloop"), ("uvloop", "uvloop"), ("asyncio", "asyncio")])
def test_event_loop_setting_picks_the_loop_that_serves(tmp_path, choice, served_by):
    server = start_server(tmp_path, env={"SBLITE_EVENT_LOOP": choice})
    try:
        status, text = http(server.url + "/metrics", token=DEV_ROOT_TOKEN)
        assert status == 200
        assert f'event_loop="{served_by}"' in text
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("content, message", [
    ("port = 'x'", "port must be a whole number"),
    ("nope = 1", "unknown setting(s): nope"),
    ("port = ", "not valid TOML"),
])
def test_bad_config_file_is_a_clear_error(tmp_path, content, message):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "sblite", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode != 0 and message in proc.stderr


def test_sigterm_closes_websockets_with_1001_and_ends_streams(tmp_path):
    import asyncio

    import aiohttp

    server = start_server(tmp_path)

    async def scenario() -> tuple[int | None, bool]:
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"{server.url}/ws?sbpk={DEV_PK}", heartbeat=None)
            assert json.loads((await ws.receive()).data)["type"] == "init"
            stream = await session.get(f"{server.url}/sse/connect?sbpk={DEV_PK}")
            await stream.content.readline()
            server.proc.send_signal(signal.SIGTERM)
            closing = await asyncio.wait_for(ws.receive(), 10)
            await asyncio.wait_for(stream.content.read(), 10)  # returns once the stream has ended
            code = ws.close_code if closing.type == aiohttp.WSMsgType.CLOSED else closing.data
            return code, stream.content.at_eof()

    try:
        code, ended = asyncio.run(scenario())
        assert code == 1001 and ended
        assert server.proc.wait(timeout=15) == 0
    finally:
        server.stop(signal.SIGKILL)


def test_cli_publish_and_backup_while_serving(tmp_path):
    import sqlite3

    server = start_server(tmp_path)
    env = {**os.environ, "SBLITE_URL": server.url}
    try:
        _status, token = http(server.url + "/register", "POST", {"email": "b@example.com", "password": "pw-123456"})
        http(server.url + "/db/notes", "POST", {"text": "backed up"}, json.loads(token))
        published = subprocess.run([sys.executable, "-m", "sblite", "publish", "--channel", "news", "--type",
                                    "event", "--data", "{}"], env=env, capture_output=True, text=True, timeout=30)
        assert published.returncode == 0 and "published event on news" in published.stdout, published.stderr
        target = tmp_path / "copy.db"
        backup = subprocess.run([sys.executable, "-m", "sblite", "backup", str(target), "--db",
                                 str(tmp_path / "sblite.db")], capture_output=True, text=True, timeout=30)
        assert backup.returncode == 0, backup.stderr
        again = subprocess.run([sys.executable, "-m", "sblite", "backup", str(target), "--db",
                                str(tmp_path / "sblite.db")], capture_output=True, text=True, timeout=30)
        assert again.returncode != 0 and "exists already" in again.stderr
        copy = sqlite3.connect(target)
        assert copy.execute("SELECT json_extract(data, '$.text') FROM documents").fetchall() == [("backed up",)]
        copy.close()
    finally:
        assert server.stop() == 0
