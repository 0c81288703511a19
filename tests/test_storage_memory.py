"""A 20 MB upload through the real client leaves the server's peak memory flat: the file is streamed to disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.node_runner import NODE_DIR, assert_suite_passed, install_node_packages
from tests.support import DEV_PK, start_server

FILE_BYTES = 20 * 1024 * 1024
# Peak RSS may grow by this much while the server takes and serves 20 MB: aiohttp's read buffers,
# a 512 KiB write buffer, the executor's threads (about 4 MiB measured). Holding the file would
# add 20 MiB or more.
ALLOWED_GROWTH = FILE_BYTES * 2 // 5


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def call(url: str, body: dict | None = None, token: str | None = None, multipart: bytes | None = None) -> object:
    headers = {"SB-PUBLIC-KEY": DEV_PK}
    data = None
    if body is not None:
        headers["Content-Type"], data = "application/json", json.dumps(body).encode()
    if multipart is not None:
        headers["Content-Type"], data = "multipart/form-data; boundary=b0undary", multipart
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30) as resp:
        return json.loads(resp.read())


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_20_mb_upload_keeps_the_servers_memory_flat(tmp_path: Path) -> None:
    node = install_node_packages()
    server = start_server(tmp_path)
    try:
        credentials = {"email": "big@example.com", "password": "pw-123456"}
        token = call(server.url + "/register", credentials)  # password hashing and first requests: warm-up
        token = call(server.url + "/login", credentials)
        small = (b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"w.bin\"\r\n\r\n"
                 + b"w" * 300_000 + b"\r\n--b0undary--\r\n")
        call(server.url + "/storage/upload", token=str(token), multipart=small)
        before = peak_rss(server.proc.pid)
        proc = subprocess.run([node, str(NODE_DIR / "storage_big.mjs")], cwd=NODE_DIR, capture_output=True,
                              text=True, timeout=120,
                              env={**os.environ, "SBLITE_URL": server.url, "SBLITE_TOKEN": str(token)})
        after = peak_rss(server.proc.pid)
        assert_suite_passed("storage_big.mjs", proc.returncode, proc.stdout + proc.stderr, server)
        assert after - before < ALLOWED_GROWTH, (
            f"peak RSS grew by {(after - before) / 2**20:.1f} MiB for a {FILE_BYTES / 2**20:.0f} MiB upload "
            f"({before / 2**20:.1f} → {after / 2**20:.1f} MiB)")
        print(f"peak RSS {before / 2**20:.1f} → {after / 2**20:.1f} MiB")
    finally:
        assert server.stop(signal.SIGTERM) == 0
