"""The real `@staticbackend/js` 1.7.0 client, driven by Node, against a real `sblite serve`.

The client is installed from the npm registry into tests/node (node_modules is git-ignored).
Each suite asserts every result and prints `N passed, M failed` last:
- client_suite.mjs: accounts, documents, queries, bulk operations, the permission matrix;
- realtime_suite.mjs: two users of two accounts over Server-Sent Events (the client's
  `connect`/`send`, with the `eventsource` npm package as Node's EventSource);
- accounts_suite.mjs: associations, promoteUser, login with an accountId, convertURLToX, socialLogin;
- search_suite.mjs: search() over documents functions index;
- storage_suite.mjs: uploads, listFiles, storageUsage, resizeImage, ranges, another account's files.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.node_runner import NODE_DIR, assert_suite_passed, install_node_packages, run_script
from tests.support import start_server

SUITE_TIMEOUT = 120
# Every tests/node/*_suite.mjs runs against a server with default settings.
SUITES = sorted(path.name for path in NODE_DIR.glob("*_suite.mjs"))


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the real client installed."""
    return install_node_packages()


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES)
def test_real_js_client_against_sblite_serve(node: str, tmp_path: Path, suite: str) -> None:
    server = start_server(tmp_path)
    try:
        code, output = run_script(node, suite, server, SUITE_TIMEOUT)
    finally:
        stop_code = server.stop(signal.SIGTERM)
    assert_suite_passed(suite, code, output, server)
    assert stop_code == 0, f"sblite serve exited with {stop_code} on SIGTERM\n{server.output()}"
