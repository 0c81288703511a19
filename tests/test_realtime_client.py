"""Realtime with the real `@staticbackend/js` 1.7.0 client, driven by Node, against a real `sblite serve`.

tests/node/realtime_suite.mjs connects two users of two accounts over Server-Sent Events (the
client's `connect`/`send`, with the `eventsource` npm package as Node's EventSource), asserts
every frame and prints `N passed, M failed` last.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.node_runner import assert_suite_passed, run_script
from tests.support import start_server
from tests.test_real_client import node  # noqa: F401  (a fixture)

SUITE = "realtime_suite.mjs"
SUITE_TIMEOUT = 120


@pytest.mark.slow
def test_real_js_client_realtime_against_sblite_serve(node: str, tmp_path: Path) -> None:  # noqa: F811
    server = start_server(tmp_path)
    try:
        code, output = run_script(node, SUITE, server, SUITE_TIMEOUT)
    finally:
        stop_code = server.stop(signal.SIGTERM)
    assert_suite_passed(SUITE, code, output, server)
    assert stop_code == 0, f"sblite serve exited with {stop_code} on SIGTERM\n{server.output()}"
