"""The StaticBackend live-chat tutorial, end to end, against a real `sblite serve`.

The tutorial's server-side function is written unchanged to a file and added with the CLI,
exactly as a user would. tests/node/tutorial_chat.mjs then drives the real `@staticbackend/js`
1.7.0 client: register and log in, connect over Server-Sent Events, join "lobby" in onAuth,
send a chat message with chan_in, receive the chan_out, and poll the `msgs_774_` collection
until the function has persisted the message with its `sentOn` field. Finally the run and its
"success" log line are checked through `sblite function info` and `GET /fn/info/new_msg`.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support import DEV_PK, DEV_ROOT_TOKEN, ServerProcess, start_server
from tests.node_runner import assert_suite_passed, run_script
from tests.test_real_client import node  # noqa: F401  (a fixture)

SCRIPT = "tutorial_chat.mjs"
SCRIPT_TIMEOUT = 90
CLI_TIMEOUT = 60

# The tutorial's function, unchanged.
TUTORIAL_FUNCTION = """\
function handle(body) {
    log("DEBUG: inside ssf", body);
    try {
        var msg = JSON.parse(body.data);
        msg.sentOn = new Date();
        var res = create("msgs_774_", msg);
        if (!res.ok) { log("unable to create msg", res.content); return; }
        log("success");
    } catch(ex) { log("error parsing data", ex); }
}
"""


def sblite_cli(server: ServerProcess, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `python -m sblite ...` as a user would, pointed at the server by SBLITE_URL."""
    env = {**os.environ, "SBLITE_URL": server.url}
    for name in ("SBLITE_ROOT_TOKEN", "SBLITE_PK"):  # the dev defaults, as on a fresh machine
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "sblite", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=CLI_TIMEOUT)


def root_get(server: ServerProcess, path: str) -> tuple[int, object]:
    """GET a root route with the dev root token."""
    request = urllib.request.Request(server.url + path, headers={
        "SB-PUBLIC-KEY": DEV_PK, "Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


@pytest.mark.slow
def test_live_chat_tutorial_end_to_end(node: str, tmp_path: Path) -> None:  # noqa: F811
    server = start_server(tmp_path)
    stopped = False
    try:
        (tmp_path / "fn.js").write_text(TUTORIAL_FUNCTION)
        added = sblite_cli(server, tmp_path, "function", "add", "--name", "new_msg", "--trigger", "chan_out",
                           "--source", "./fn.js")
        assert added.returncode == 0, f"function add exited with {added.returncode}\n{added.stdout}{added.stderr}"
        assert added.stdout.strip() == "added new_msg (trigger chan_out, version 1)", added.stdout + added.stderr

        code, out = run_script(node, SCRIPT, server, SCRIPT_TIMEOUT)
        assert_suite_passed(SCRIPT, code, out, server)
        doc_line = re.search(r"^DOC (\{.*\})$", out, re.MULTILINE)
        assert doc_line, out
        doc = json.loads(doc_line.group(1))
        assert doc["text"] == "hello from the tutorial" and doc["sentOn"], doc

        info = sblite_cli(server, tmp_path, "function", "info", "new_msg")
        assert info.returncode == 0, f"function info exited with {info.returncode}\n{info.stdout}{info.stderr}"
        assert "trigger=chan_out" in info.stdout, info.stdout
        assert "success" in info.stdout, info.stdout
        assert re.search(r"^\s+success$", info.stdout, re.MULTILINE), info.stdout

        status, described = root_get(server, "/fn/info/new_msg")
        assert status == 200
        assert isinstance(described, dict) and described["name"] == "new_msg", described
        assert described["trigger"] == "chan_out", described
        history = described["history"]
        assert isinstance(history, list) and history, described
        winners = [run for run in history if "success" in run["output"]]
        assert len(winners) == 1, json.dumps(history, indent=2)
        run = winners[0]
        assert run["success"] is True and run["error"] is None, run
        assert run["trigger"] == "chan_out", run
        debug = [line for line in run["output"] if line.startswith("DEBUG: inside ssf ")]
        assert len(debug) == 1, run["output"]
        body = json.loads(debug[0][len("DEBUG: inside ssf "):])
        assert body["type"] == "chan_out" and body["channel"] == "lobby", body
        assert json.loads(body["data"])["text"] == "hello from the tutorial", body
        assert not any(line.startswith(("unable to create msg", "error parsing data")) for line in run["output"]), run

        stop_code = server.stop(signal.SIGTERM)
        stopped = True
        assert stop_code == 0, f"sblite serve exited with {stop_code} on SIGTERM\n{server.output()}"
    finally:
        if not stopped:
            server.stop(signal.SIGTERM)
