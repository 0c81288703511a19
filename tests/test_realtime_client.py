"""Realtime with the real `@staticbackend/js` 1.7.0 client, driven by Node, against a real `sblite serve`.

tests/node/realtime_suite.mjs connects two users of two accounts over Server-Sent Events (the
client's `connect`/`send`, with the `eventsource` npm package as Node's EventSource), asserts
every frame and prints `N passed, M failed` last.
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
from tests.test_real_client import NODE_DIR, node_client  # noqa: F401  (node_client is a fixture)

SUITE = NODE_DIR / "realtime_suite.mjs"
EVENTSOURCE_VERSION = "3.0.7"
SUITE_TIMEOUT = 120


@pytest.fixture(scope="session")
def realtime_node(node_client: str) -> str:  # noqa: F811
    """Path of the node binary, once the `eventsource` polyfill is installed in tests/node too."""
    installed = NODE_DIR / "node_modules" / "eventsource" / "package.json"
    if not installed.exists():  # node_modules from before eventsource was a dependency
        npm = shutil.which("npm")
        if not npm:
            pytest.fail("npm is required for the realtime client test")
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"npm ci failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    version = json.loads(installed.read_text())["version"]
    if version != EVENTSOURCE_VERSION:
        pytest.fail(f"tests/node has eventsource {version}, expected {EVENTSOURCE_VERSION}; run npm ci there")
    return node_client


@pytest.mark.slow
def test_real_js_client_realtime_against_sblite_serve(realtime_node: str, tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        try:
            proc = subprocess.run(
                [realtime_node, str(SUITE)],
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
        f"realtime suite exited with {suite_code}\n--- suite output ---\n{suite_out}\n"
        f"--- server output ---\n{server_out}"
    )
    assert re.search(r"^\d+ passed, 0 failed$", suite_out, re.MULTILINE), suite_out
    assert stop_code == 0, f"sblite serve exited with {stop_code} on SIGTERM\n{server_out}"
