"""The real `@staticbackend/js` 1.7.0 client, driven by Node, against a real `sblite serve`.

The client is installed from the npm registry into tests/node (node_modules is git-ignored);
tests/node/client_suite.mjs asserts every result and prints `N passed, M failed` last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support import start_server

NODE_DIR = Path(__file__).parent / "node"
SUITE = NODE_DIR / "client_suite.mjs"
CLIENT_VERSION = "1.7.0"
SUITE_TIMEOUT = 120


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def node_client() -> str:
    """Path of the node binary, once @staticbackend/js is installed in tests/node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are required for the real-client test (install Node.js >= 18)")
    major = int(re.match(r"v(\d+)", _run([node, "--version"], 30).stdout.strip()).group(1))
    if major < 18:
        pytest.fail(f"Node.js >= 18 is required (global fetch); found major version {major}")

    installed = NODE_DIR / "node_modules" / "@staticbackend" / "js" / "package.json"
    if not installed.exists():
        verb = "ci" if (NODE_DIR / "package-lock.json").exists() else "install"
        proc = _run([npm, verb, "--no-audit", "--no-fund"], 600)
        if proc.returncode != 0:
            pytest.fail(f"npm {verb} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    version = json.loads(installed.read_text())["version"]
    if version != CLIENT_VERSION:
        pytest.fail(f"tests/node has @staticbackend/js {version}, expected {CLIENT_VERSION}; run npm ci there")
    return node


@pytest.mark.slow
def test_real_js_client_against_sblite_serve(node_client: str, tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        try:
            proc = subprocess.run(
                [node_client, str(SUITE)],
                cwd=NODE_DIR,
                env={**os.environ, "SBLITE_URL": server.url},
                capture_output=True,
                text=True,
                timeout=SUITE_TIMEOUT,
            )
            suite_code, suite_out = proc.returncode, proc.stdout + proc.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            err = exc.stderr or b""
            text = (out.decode(errors="replace") if isinstance(out, bytes) else out) + (
                err.decode(errors="replace") if isinstance(err, bytes) else err
            )
            suite_code, suite_out = None, f"(timed out after {SUITE_TIMEOUT}s)\n{text}"
    finally:
        stop_code = server.stop(signal.SIGTERM)
    server_out = server.output()

    assert suite_code == 0, (
        f"client suite exited with {suite_code}\n--- suite output ---\n{suite_out}\n"
        f"--- server output ---\n{server_out}"
    )
    assert re.search(r"^\d+ passed, 0 failed$", suite_out, re.MULTILINE), suite_out
    assert stop_code == 0, f"sblite serve exited with {stop_code} on SIGTERM\n{server_out}"
