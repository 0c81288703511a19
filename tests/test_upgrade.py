"""Safe upgrades: a file of every earlier schema version migrates, keeps its data, and is copied first.

The fixtures (tests/upgrade_fixtures.py) are made by running the released migrations up to each
version, with rows in every table. The store opens each one; a real `sblite serve --prod` opens
the oldest and the newest, where the user still logs in and the function and task are listed.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sblite.store import Database
from sblite.store.migrations import DESCRIPTIONS, MIGRATIONS
from sblite.store.upgrade import copy_name, upgrade_copies
from tests.support import start_server
from tests.upgrade_fixtures import (
    DOC_DATA, DOC_ID, EMAIL, FUNCTION, PASSWORD, PK, ROOT_TOKEN, TASK, make_fixture, table_counts,
    tables_without_rows,
)

CURRENT = len(MIGRATIONS)
EARLIER = list(range(1, CURRENT))


def _inspect(path: Path) -> tuple[int, str, dict[str, int]]:
    """(schema version, integrity_check's answer, rows per table) of a closed file."""
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        return version, integrity, table_counts(conn)
    finally:
        conn.close()


def test_each_migration_has_a_one_line_description() -> None:
    assert len(DESCRIPTIONS) == len(MIGRATIONS)
    assert all(text.strip() and "\n" not in text for text in DESCRIPTIONS)


@pytest.mark.parametrize("version", EARLIER)
def test_each_fixture_has_rows_in_every_table(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.db"
    make_fixture(path, version)
    assert _inspect(path)[0] == version
    assert tables_without_rows(path) == [], "add a row for the new table to SEEDS in tests/upgrade_fixtures.py"


@pytest.mark.parametrize("version", EARLIER)
async def test_store_migrates_every_earlier_version_and_copies_it_first(
        tmp_path: Path, version: int, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sblite.db"
    make_fixture(path, version)
    _, _, before = _inspect(path)
    caplog.set_level(logging.INFO, logger="sblite.store.upgrade")
    db = Database(path)
    await db.open()
    try:
        doc = await db.read(lambda c: c.execute("SELECT data FROM documents WHERE id = ?", (DOC_ID,)).fetchone())
        counted = await db.read(lambda c: c.execute("SELECT SUM(n) FROM document_counts").fetchone()[0])
        started = await db.started()
    finally:
        await db.close()
    copy = copy_name(path, version)
    assert db.upgrade_copy == copy and copy.name == f"sblite.db.pre-v{version}.bak"
    assert any(str(copy) in record.getMessage() for record in caplog.records), caplog.text
    assert started == [] and copy.exists(), "the migrating start keeps its copy"
    migrated_version, integrity, after = _inspect(path)
    assert (migrated_version, integrity) == (CURRENT, "ok")
    assert {table: after[table] for table in before} == before, "every row of the old file is still there"
    assert doc[0] == DOC_DATA and counted == 1
    assert _inspect(copy) == (version, "ok", before), "the copy is the file as it was before migrating"

    again = Database(path)
    await again.open()
    try:
        assert again.upgrade_copy is None
        assert await again.started() == [copy]
    finally:
        await again.close()
    assert upgrade_copies(path) == []


async def test_a_new_file_and_an_up_to_date_one_are_never_copied(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    for _ in range(2):  # created, then opened at the current version
        db = Database(path)
        await db.open()
        try:
            assert db.upgrade_copy is None
            await db.started()
        finally:
            await db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db"]


def _check(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sblite", "migrate", "--check", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.mark.parametrize("where", ["--db", "--config", "SBLITE_DB", "default"])
def test_migrate_check_finds_the_file_as_the_server_does(tmp_path: Path, where: str) -> None:
    path = tmp_path / "sblite.db"
    make_fixture(path, CURRENT - 1)
    (tmp_path / "sblite.toml").write_text(f"db = {json.dumps(str(path))}\n")
    args, env = {"--db": (["--db", str(path)], {}), "--config": (["--config", str(tmp_path / "sblite.toml")], {}),
                 "SBLITE_DB": ([], {"SBLITE_DB": str(path)}), "default": ([], {})}[where]
    proc = _check(*args, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and f"schema version {CURRENT - 1}," in proc.stdout, proc


@pytest.mark.parametrize("version", [1, CURRENT - 1, CURRENT])
def test_migrate_check_reports_and_changes_nothing(tmp_path: Path, version: int) -> None:
    path = tmp_path / "sblite.db"
    make_fixture(path, version)
    content, mtime = path.read_bytes(), path.stat().st_mtime_ns
    proc = _check("--db", str(path))
    assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sblite.db"], "no copy, no journal left behind"
    assert f"schema version {version}, this sblite's is {CURRENT}" in proc.stdout
    if version == CURRENT:
        assert proc.returncode == 0 and "up to date" in proc.stdout, proc
        return
    assert proc.returncode == 1, proc
    listed = [line.strip() for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert listed == [f"{n + 1}: {DESCRIPTIONS[n]}" for n in range(version, CURRENT)]
    assert str(copy_name(path, version)) in proc.stdout


def test_migrate_check_of_a_missing_or_newer_file_is_an_error(tmp_path: Path) -> None:
    missing = _check("--db", str(tmp_path / "absent.db"))
    assert missing.returncode == 2 and "no database at" in missing.stderr, missing
    assert not (tmp_path / "absent.db").exists()
    newer = tmp_path / "newer.db"
    make_fixture(newer, CURRENT)
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {CURRENT + 1}")
    proc = _check("--db", str(newer))
    assert proc.returncode == 2 and "newer than this sblite's" in proc.stderr, proc


def _call(url: str, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"SB-PUBLIC-KEY": PK, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.parametrize("version", [1, CURRENT - 1])
def test_sblite_serve_upgrades_an_old_file(tmp_path: Path, version: int) -> None:
    path = tmp_path / "data" / "sblite.db"
    path.parent.mkdir()
    make_fixture(path, version)
    copy = copy_name(path, version)
    server = start_server(tmp_path, "--db", str(path), "--prod")
    try:
        assert f"copied {path} to {copy} before migrating" in server.output()
        token = _call(server.url, "POST", "/login", body={"email": EMAIL, "password": PASSWORD})
        assert _call(server.url, "GET", f"/db/notes/{DOC_ID}", token)["title"] == "kept through upgrades"
        if version >= 4:
            assert FUNCTION in [fn["name"] for fn in _call(server.url, "GET", "/fn", ROOT_TOKEN)]
        if version >= 5:
            assert _call(server.url, "GET", f"/tasks/{TASK}", ROOT_TOKEN)["name"] == TASK
        running = _check("--db", str(path))  # reads the server's WAL, read-only
        assert running.returncode == 0 and "up to date" in running.stdout, running
    finally:
        assert server.stop() == 0, server.output()
    assert copy.exists(), "kept after the migrating start"
    assert _inspect(path)[:2] == (CURRENT, "ok")

    server = start_server(tmp_path, "--db", str(path), "--prod")
    try:
        deadline = time.monotonic() + 10  # the copy goes, then the log line is written: wait for both
        while (copy.exists() or f"removed {copy}" not in server.output()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not copy.exists(), "the next successful start removes the copy"
        assert f"removed {copy}" in server.output()
        _call(server.url, "POST", "/login", body={"email": EMAIL, "password": PASSWORD})
    finally:
        assert server.stop() == 0, server.output()
