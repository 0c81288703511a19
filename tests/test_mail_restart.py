"""`sblite serve` as a real process: mail queued while the SMTP server is down survives a restart and goes
out; `sblite mail` reads the outbox."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.smtp_server import SmtpServer
from tests.support import DEV_ROOT_TOKEN, free_port, start_server
from tests.test_serve import http

pytestmark = pytest.mark.slow
MAIL = {"from": "shop@example.com", "to": "ann@example.org", "subject": "Kept through a restart", "body": "hi"}


def poll(probe: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Call `probe` until it gives something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def sblite(*args: str, ok: bool = True) -> str:
    """Run the sblite command line; what it printed."""
    done = subprocess.run([sys.executable, "-m", "sblite", *args], capture_output=True, text=True, timeout=60)
    assert (done.returncode == 0) == ok, (done.returncode, done.stdout, done.stderr)
    return done.stdout + done.stderr


def only_mail(url: str) -> dict:
    status, body = http(url + "/mail/outbox", token=DEV_ROOT_TOKEN)
    assert status == 200, body
    results = json.loads(body)["results"]
    assert len(results) == 1
    return results[0]


def test_a_queued_mail_is_sent_after_a_restart(tmp_path):
    port = free_port()  # nothing listens there yet: every attempt fails until the SMTP server starts
    env = {"SBLITE_SMTP_HOST": "127.0.0.1", "SBLITE_SMTP_PORT": str(port), "SBLITE_SMTP_SECURITY": "none",
           "SBLITE_MAIL_MAX_ATTEMPTS": "20"}
    first = start_server(tmp_path, env=env)
    try:
        assert http(first.url + "/sudo/sendmail", "POST", MAIL, DEV_ROOT_TOKEN) == (200, "true")
        failed = poll(lambda: (m := only_mail(first.url))["attempts"] >= 1 and m, "a failed attempt")
        assert failed["status"] == "queued" and "Connection" in failed["lastError"]
    finally:
        assert first.stop(signal.SIGTERM) == 0
    with SmtpServer(port=port) as smtp:
        second = start_server(tmp_path, env=env)
        try:
            sent = poll(lambda: (m := only_mail(second.url))["status"] == "sent" and m, "the mail to be sent")
            assert sent["attempts"] >= 2
            assert [m.message["Subject"] for m in smtp.messages()] == ["Kept through a restart"]
        finally:
            assert second.stop(signal.SIGTERM) == 0
    # Without SMTP the server says at start-up that mail is not delivered; the outbox is still there.
    third = start_server(tmp_path)
    try:
        assert "mail is NOT delivered" in third.output()
        mail = only_mail(third.url)
        assert mail["status"] == "sent"
        listed = sblite("mail", "list", "--url", third.url)
        assert "mail is kept here, not sent" in listed and f"{mail['id']}  sent" in listed, listed
        shown = sblite("mail", "show", mail["id"], "--url", third.url)
        assert "Subject:   Kept through a restart" in shown and "--- html ---\nhi" in shown, shown
        assert "400: no SMTP server" in sblite("mail", "replay", mail["id"], "--url", third.url, ok=False)
    finally:
        assert third.stop(signal.SIGTERM) == 0
