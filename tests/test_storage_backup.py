"""`sblite backup` copies the database and its files: every row of the copy has its file, byte for byte."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from sblite.files import disk_path
from sblite.services.files import copy_files
from sblite.store import Database
from sblite.store.files import FileRecord, FileStore
from tests.storage_support import files_under, multipart
from tests.support import DEV_PK, DEV_ROOT_TOKEN, start_server


def call(url: str, method: str = "GET", body: bytes | None = None, token: str | None = None,
         ctype: str = "application/json") -> tuple[int, bytes]:
    headers = {"SB-PUBLIC-KEY": DEV_PK, "Content-Type": ctype}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def upload(base: str, token: str, data: bytes, filename: str) -> dict:
    body, ctype = multipart([("file", filename, data, None)])
    status, answer = call(base + "/storage/upload", "POST", body, token, ctype)
    assert status == 200, answer
    return json.loads(answer)


def rows(db: Path) -> list[tuple[str, str, int]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT id, ext, size FROM files ORDER BY seq").fetchall()


def backup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sblite", "backup", *args], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.slow
def test_backup_copies_the_database_and_every_file_it_lists(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    server = start_server(live)
    try:
        status, token = call(server.url + "/register", "POST", b'{"email": "b@example.com", "password": "pw-123456"}')
        token = json.loads(token)
        contents = {name: hashlib.sha256(name.encode()).digest() * 1000 for name in ("a.png", "b.txt", "c.mp4")}
        uploaded = {name: upload(server.url, token, data, name) for name, data in contents.items()}
        status, _ = call(server.url + f"/sudostorage/delete?id={uploaded['b.txt']['id']}", "POST",
                         token=DEV_ROOT_TOKEN)
        assert status == 200

        target = tmp_path / "out.db"
        done = backup(str(target), "--db", str(live / "sblite.db"))  # while the server runs
        assert done.returncode == 0, done.stderr
        assert "2 file(s)" in done.stdout, done.stdout
        copied = rows(target)
        assert [row[0] for row in copied] == [uploaded["a.png"]["id"], uploaded["c.mp4"]["id"]]
        for file_id, ext, size in copied:
            path = disk_path(tmp_path / "out-files", file_id, ext)
            assert path.stat().st_size == size
        assert len(files_under(tmp_path / "out-files")) == 2

        again = backup(str(target), "--db", str(live / "sblite.db"))
        assert again.returncode != 0 and "exists already" in again.stderr
        (tmp_path / "other-files").mkdir()
        again = backup(str(tmp_path / "other.db"), "--db", str(live / "sblite.db"))
        assert again.returncode != 0 and "other-files exists already" in again.stderr
        assert not (tmp_path / "other.db").exists()
    finally:
        assert server.stop() == 0

    restored = start_server(tmp_path, "--db", str(tmp_path / "out.db"))  # out-files/ is found beside it
    try:
        status, token = call(restored.url + "/login", "POST", b'{"email": "b@example.com", "password": "pw-123456"}')
        assert status == 200, token
        token = json.loads(token)
        for name in ("a.png", "c.mp4"):
            status, data = call(uploaded[name]["url"].replace(server.url, restored.url), token=token)
            assert status == 200 and data == contents[name], name
    finally:
        restored.stop(signal.SIGTERM)


@pytest.mark.slow
def test_backup_finds_a_configured_files_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "uploads"
    config = tmp_path / "sblite.toml"
    config.write_text(f'db = "{tmp_path / "app.db"}"\nstorage_dir = "{elsewhere}"\n')
    server = start_server(tmp_path, "--config", str(config), "--db", str(tmp_path / "app.db"))
    try:
        _, token = call(server.url + "/register", "POST", b'{"email": "c@example.com", "password": "pw-123456"}')
        answer = upload(server.url, json.loads(token), b"configured", "c.txt")
    finally:
        assert server.stop() == 0
    assert len(files_under(elsewhere)) == 1
    done = backup(str(tmp_path / "copy.db"), "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert disk_path(tmp_path / "copy-files", answer["id"], ".txt").read_bytes() == b"configured"
    bad = backup(str(tmp_path / "copy2.db"), "--config", str(tmp_path / "missing.toml"))
    assert bad.returncode != 0 and "cannot read config file" in bad.stderr


async def test_a_file_deleted_while_the_backup_runs_loses_its_row_in_the_copy(tmp_path: Path) -> None:
    """Rows go before files: a file missing after the database was copied was deleted, so the copy forgets it."""
    source = Database(tmp_path / "live.db", read_connections=1)
    await source.open()
    store = FileStore(source)
    ids = ["0a1b2c3d-0000-4000-8000-00000000000" + str(i) for i in range(3)]
    for file_id in ids:
        await store.insert(FileRecord(id=file_id, app_id="app", account_id="acct", owner_id="me",
                                      key=f"app/acct/{file_id}.bin", name="x", ext=".bin",
                                      content_type="application/octet-stream", size=3, public=False, created="now"))
        path = disk_path(tmp_path / "live-files", file_id, ".bin")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"abc")
    await source.backup_to(tmp_path / "copy.db")
    await source.close()
    disk_path(tmp_path / "live-files", ids[1], ".bin").unlink()  # deleted after the database was copied

    copy = Database(tmp_path / "copy.db", read_connections=1)
    await copy.open()
    try:
        copied, missing = await copy_files(FileStore(copy), tmp_path / "live-files", tmp_path / "copy-files")
    finally:
        await copy.close()
    assert (copied, missing) == (2, [ids[1]])
    assert [row[0] for row in rows(tmp_path / "copy.db")] == [ids[0], ids[2]]
    assert files_under(tmp_path / "copy-files") == {Path(i[:2], f"{i}.bin") for i in (ids[0], ids[2])}
