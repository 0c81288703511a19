"""Log lines: request targets with their secret values blanked, the JSON line format, and sblite serve's."""

from __future__ import annotations

import json
import logging
import sys
import urllib.request
from pathlib import Path

import pytest

from sblite.logs import JsonFormatter, redact_target
from tests.support import start_server


@pytest.mark.parametrize("target, expected", [
    ("/ping", "/ping"),
    ("/db/tasks?page=2&size=10", "/db/tasks?page=2&size=10"),
    ("/localfs/a/b/c.txt?token=eyJhbGciOi.x.y", "/localfs/a/b/c.txt?token=***"),
    ("/login/magic?email=a%40b.c&code=12345678", "/login/magic?email=a%40b.c&code=***"),
    ("/x?TOKEN=abc&Code=1", "/x?TOKEN=***&Code=***"),  # names in any case
    ("/x?to%6Ben=abc", "/x?to%6Ben=***"),  # an encoded name is still the name
    ("/x?password=hunter2&secret=s&access_token=a&refresh_token=r",
     "/x?password=***&secret=***&access_token=***&refresh_token=***"),
    ("/x?token=a&token=b", "/x?token=***&token=***"),  # every occurrence
    ("/x?token", "/x?token"),  # no value: nothing to hide
    ("/x?token=", "/x?token=***"),
    ("/x?tokens=keep&mytoken=keep", "/x?tokens=keep&mytoken=keep"),
    ("/ws?sbpk=dev_memory_pk", "/ws?sbpk=dev_memory_pk"),  # the public key is public
    ("/x?", "/x?"),
])
def test_redact_target(target: str, expected: str) -> None:
    assert redact_target(target) == expected


def _record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("sblite.access", logging.INFO, __file__, 1, message, args or None,
                               sys.exc_info() if exc else None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_time_level_logger_message_and_access_fields() -> None:
    fields = {"method": "GET", "path": "/ping", "status": 200, "duration_ms": 1.5, "client": "203.0.113.7"}
    line = JsonFormatter().format(_record("GET %s", "/ping", **fields))
    assert "\n" not in line
    data = json.loads(line)
    assert data.pop("time").endswith("+00:00")
    assert data == {"level": "INFO", "logger": "sblite.access", "message": "GET /ping", **fields}


def test_json_lines_hold_the_traceback_and_stay_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        line = JsonFormatter().format(_record("failed on %s", "/x\n", exc=True))
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "failed on /x\n" and "ValueError: bad\nthing" in data["exception"]
    assert "method" not in data


@pytest.mark.slow
def test_sblite_serve_writes_json_access_lines(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"SBLITE_LOG_FORMAT": "json", "SBLITE_TRUSTED_PROXIES": "127.0.0.1",
                                         "SBLITE_ACCESS_LOG": "true"})
    try:
        request = urllib.request.Request(server.url + "/ping?token=abc&n=1", headers={"X-Forwarded-For": "203.0.113.9"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
    finally:
        assert server.stop() == 0
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines), lines
    access = [line for line in lines if line["logger"] == "sblite.access"]
    assert [(a["method"], a["path"], a["status"], a["client"]) for a in access] == [
        ("GET", "/ping", 200, "127.0.0.1"),  # start_server's own readiness probe
        ("GET", "/ping?token=***&n=1", 200, "203.0.113.9")], access
    assert isinstance(access[-1]["duration_ms"], float) and "abc" not in server.output()
