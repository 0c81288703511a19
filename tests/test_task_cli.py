"""`sblite task ...`: preview computed locally; the other commands against a real `sblite serve` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from sblite.cli import main
from tests.support import DEV_PK, DEV_ROOT_TOKEN, run_cli, ServerProcess, start_server



# --- preview: no server


@pytest.mark.parametrize("argv, expected", [
    (["0 9 * * 1#1", "--tz", "Europe/Paris", "--after", "2025-01-01T00:00:00Z", "-n", "3"], [
        "at 09:00 on the first Monday of each month (Europe/Paris)",
        "  2025-01-06T08:00:00Z  Mon 2025-01-06 09:00:00 CET",
        "  2025-02-03T08:00:00Z  Mon 2025-02-03 09:00:00 CET",
        "  2025-03-03T08:00:00Z  Mon 2025-03-03 09:00:00 CET",
    ]),
    (["30 2 * * *", "--tz", "Europe/Paris", "--after", "2025-03-29T00:00:00Z", "-n", "3"], [
        "at 02:30 every day (Europe/Paris)",
        "  2025-03-29T01:30:00Z  Sat 2025-03-29 02:30:00 CET",
        "  2025-03-30T01:00:00Z  Sun 2025-03-30 03:00:00 CEST",  # 02:30 does not exist that day
        "  2025-03-31T00:30:00Z  Mon 2025-03-31 02:30:00 CEST",
    ]),
    (["@every 90m", "--after", "2024-12-31T23:30:00+01:00", "-n", "2"], [  # elapsed time from the epoch
        "every 1 hour and 30 minutes",
        "  2025-01-01T00:00:00Z  Wed 2025-01-01 00:00:00 UTC",
        "  2025-01-01T01:30:00Z  Wed 2025-01-01 01:30:00 UTC",
    ]),
])
def test_preview_prints_the_meaning_and_the_next_instants(capsys, argv, expected):
    assert run_cli(capsys, "task", "preview", *argv).splitlines() == expected


def test_preview_shows_ten_instants_from_now_by_default(capsys):
    lines = run_cli(capsys, "task", "preview", "@hourly").splitlines()
    assert lines[0] == "every hour on the hour (UTC)" and len(lines) == 11


@pytest.mark.parametrize("argv, message", [
    (["0 0 31 2 *"], "sblite: interval: '0 0 31 2 *' never fires"),
    (["61 * * * *"], "sblite: interval: '61 * * * *': minute field: 61 is out of range (0-59)"),
    (["@daily", "--tz", "Mars/Base"], "sblite: timezone: unknown time zone 'Mars/Base'"),
    (["@daily", "-n", "101"], "sblite: n: from 1 to 100, got 101"),
    (["@daily", "--after", "2025-01-01T00:00:00"], "sblite: --after: '2025-01-01T00:00:00' is not an RFC 3339 time"),
])
def test_preview_explains_what_is_wrong(capsys, argv, message):
    assert run_cli(capsys, "task", "preview", *argv).startswith(message)


@pytest.mark.slow
def test_preview_runs_as_a_command_without_any_server(tmp_path):
    env = {**os.environ, "SBLITE_URL": "http://127.0.0.1:9"}  # nothing listens there
    done = subprocess.run([sys.executable, "-m", "sblite", "task", "preview", "0 9 * * 1-5", "-n", "2",
                           "--after", "2025-01-03T12:00:00Z"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["at 09:00 on weekdays (UTC)",
                                        "  2025-01-06T09:00:00Z  Mon 2025-01-06 09:00:00 UTC",
                                        "  2025-01-07T09:00:00Z  Tue 2025-01-07 09:00:00 UTC"]


def test_task_options_are_checked_before_anything_is_sent(capsys):
    base = ["task", "add", "--name", "n", "--type", "message", "--value", "v", "--url", "http://127.0.0.1:9"]
    assert run_cli(capsys, *base, "--interval", "@daily", "--meta", "{oops").startswith(
        "sblite: --meta is not valid JSON")
    assert run_cli(capsys, *base, "--interval", "@daily", "--catchup-window", "6x").startswith(
        "sblite: --catchup-window: give a duration")
    with pytest.raises(SystemExit):  # argparse: one of --interval and --at
        main([*base])
    with pytest.raises(SystemExit):
        main([*base, "--interval", "@daily", "--at", "+1m"])
    with pytest.raises(SystemExit):
        main([*base[:5], "--type", "email", "--value", "v", "--interval", "@daily"])
    capsys.readouterr()
    assert run_cli(capsys, *base, "--interval", "@daily").startswith("sblite: cannot reach http://127.0.0.1:9")


# --- the commands that talk to a server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = start_server(tmp_path_factory.mktemp("task-cli"))
    yield served
    served.stop(signal.SIGTERM)


@pytest.fixture
def cli(server: ServerProcess, capsys, monkeypatch):
    """The command line pointed at the server (the dev root alias is its default token)."""
    monkeypatch.setenv("SBLITE_URL", server.url)
    for name in ("SBLITE_ROOT_TOKEN", "SBLITE_PK"):
        monkeypatch.delenv(name, raising=False)
    return lambda *argv: run_cli(capsys, "task", *argv)


def _root(server: ServerProcess, path: str) -> object:
    request = urllib.request.Request(server.url + path, headers={
        "SB-PUBLIC-KEY": DEV_PK, "Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _wait_for_run(server: ServerProcess, name: str) -> list[dict]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        runs = _root(server, f"/tasks/{name}/runs")
        if runs and all(run["status"] not in ("queued", "running") for run in runs):
            return runs
        time.sleep(0.05)
    raise AssertionError(f"no finished run of {name}: {runs}")


@pytest.mark.slow
def test_add_list_info_update_and_delete(server, cli):
    added = cli("add", "--name", "monday-news", "--type", "message", "--value", "news", "--interval", "0 9 * * 1#1",
                "--tz", "Europe/Paris", "--meta", '{"channel": "news", "data": "hello"}')
    assert added.startswith("added monday-news: at 09:00 on the first Monday of each month (Europe/Paris); next in ")
    assert "+01:00" in added or "+02:00" in added  # the next run in the task's zone too

    listed = cli("list")
    line = next(line for line in listed.splitlines() if line.startswith("monday-news"))
    assert "message" in line and "scheduled" in line and "at 09:00 on the first Monday" in line and "Z (" in line

    info = cli("info", "monday-news")
    assert "monday-news  message news  scheduled" in info and "0 9 * * 1#1" in info
    assert "overlap skip, catch-up latest (window 6 hours)" in info and '"channel": "news"' in info
    assert "no runs yet" in info

    updated = cli("update", "monday-news", "--interval", "@every 1h", "--overlap", "allow")
    assert updated.startswith("updated monday-news: every hour; next in ")
    task = _root(server, "/tasks/monday-news")
    assert (task["interval"], task["overlap"], task["timezone"]) == ("@every 1h", "allow", "Europe/Paris")

    assert cli("delete", "monday-news") == "deleted monday-news\n"
    assert cli("info", "monday-news").startswith("sblite: 404")


@pytest.mark.slow
def test_run_pause_resume_and_history(server, cli, capsys, tmp_path):
    source = tmp_path / "report.js"
    source.write_text('function handle(name, type, data) { log("ran " + name + " " + JSON.stringify(data)); }')
    added = run_cli(capsys, "function", "add", "--name", "report", "--trigger", "web", "--source", str(source))
    assert added.startswith("added report")
    cli("add", "--name", "report", "--type", "function", "--value", "report", "--interval", "@daily",
        "--meta", '{"data": {"x": 1}}')
    assert cli("run", "report").startswith("started report: run ")
    assert [run["status"] for run in _wait_for_run(server, "report")] == ["ok"]
    history = cli("info", "report").splitlines()[5:]
    assert len(history) == 1 and "ok (manual)" in history[0] and 'ran report {\\"x\\":1}' in history[0]

    assert cli("pause", "report", "--note", "quiet week") == "paused report (quiet week)\n"
    line = next(line for line in cli("list").splitlines() if line.startswith("report"))
    assert "paused" in line
    assert "(quiet week)" in cli("info", "report").splitlines()[0]
    assert cli("resume", "report").startswith("resumed report: at 00:00 every day (UTC); next in ")
    assert cli("update", "report", "--rename", "daily-report").startswith("updated daily-report: at 00:00 every day")
    assert "daily-report" in {task["name"] for task in _root(server, "/tasks")}
    cli("delete", "daily-report")


@pytest.mark.slow
def test_one_off_task_and_bad_input(server, cli):
    added = cli("add", "--name", "later", "--type", "message", "--value", "remind", "--at", "+2h",
                "--meta", '{"channel": "me", "data": "stretch"}')
    assert added.startswith("added later: ") and ("next in 1 hour 59 minutes" in added or "next in 2 hours" in added)
    assert _root(server, "/tasks/later")["at"]

    refused = cli("add", "--name", "never", "--type", "message", "--value", "v", "--interval", "0 0 31 2 *")
    assert refused.startswith("sblite: 400: interval: '0 0 31 2 *' never fires")
    refused = cli("add", "--name", "badzone", "--type", "message", "--value", "v", "--interval", "@daily",
                  "--tz", "Europe/Pari")
    assert refused.startswith("sblite: 400: timezone: unknown time zone")
    refused = cli("add", "--name", "past", "--type", "message", "--value", "v", "--at", "2001-01-01T00:00:00Z")
    assert refused.startswith("sblite: 400: at: ")
    names = {task["name"] for task in _root(server, "/tasks")}
    assert "later" in names and not names & {"never", "badzone", "past"}  # nothing stored
    assert cli("update", "later").startswith("sblite: give at least one field")
    assert cli("pause", "nothing-here").startswith("sblite: 404")
    cli("delete", "later")
