"""The two examples in a real browser: examples/live-chat and examples/realtime-event.

Each page is the example as a person runs it: the real `@staticbackend/js` 1.7.0 client bundled by
esbuild (`npm ci` and `npm run build` in examples/), served by a plain static file server on one
port and talking to a real `sblite serve` on another (so every call is cross-origin, as CORS must
allow). Functions are added with `bin/sblite`, the README's newcomer path. Debian's chromium runs
the pages through Playwright; screenshots go to tests/artifacts/examples/ (not committed).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from tests.browser_helpers import WIDTHS, axe_source, call, launch_chromium, require_chromium, serious_violations
from tests.support import DEV_ROOT_TOKEN, ServerProcess, start_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WRAPPER = ROOT / "bin" / "sblite"
ARTIFACTS = Path(__file__).parent / "artifacts" / "examples"  # git-ignored
CLIENT_VERSION = "1.7.0"
REALTIME_MS = 1000  # the bound for a chat message to reach the other window
PERSIST_S = 15  # bound for a function to have stored a message


def build_examples() -> None:
    """npm ci in examples/ when its packages are missing, then the bundles with esbuild."""
    npm = shutil.which("npm")
    if not npm:
        pytest.fail("npm is required to build the examples (install Node.js and npm)")
    client = EXAMPLES / "node_modules" / "@staticbackend" / "js" / "package.json"
    if not client.exists() or not (EXAMPLES / "node_modules" / "esbuild").exists():
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLES, capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"npm ci in examples failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    found = json.loads(client.read_text())["version"]
    if found != CLIENT_VERSION:
        pytest.fail(f"examples has @staticbackend/js {found}, expected {CLIENT_VERSION}; run npm ci there")
    proc = subprocess.run([npm, "run", "build"], cwd=EXAMPLES, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"npm run build in examples failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


class QuietHandler(SimpleHTTPRequestHandler):
    """Static files, without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """examples/ built and served over HTTP on a port of its own, as `npm start` does."""
    build_examples()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(EXAMPLES)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[Browser]:
    instance = launch_chromium(playwright, tmp_path)
    yield instance
    instance.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path)
    yield proc
    proc.stop()


def wrapper(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """bin/sblite from the repository root, pointed at the server as a person's shell would be."""
    env = {**os.environ, "SBLITE_URL": server.url}
    for name in ("SBLITE_ROOT_TOKEN", "SBLITE_PK"):
        env.pop(name, None)
    proc = subprocess.run([str(WRAPPER), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"bin/sblite {' '.join(args)} exited {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc


def open_page(browser: Browser, url: str, width: str = "wide") -> Page:
    """A page in a context of its own, failing the test on any script error."""
    w, h = WIDTHS[width]
    page = browser.new_context(viewport={"width": w, "height": h}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(url)
    return page


def register(page: Page, email: str, password: str = "example-pw-1") -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Register").click()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_for(probe: Callable[[], Any], seconds: float) -> Any:
    """Poll `probe` until it returns something truthy (returned) or the time is up (None)."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def documents(server: ServerProcess, collection: str) -> list[dict[str, Any]]:
    status, body = call(server.url, "GET", f"/sudo/{collection}?size=100", token=DEV_ROOT_TOKEN)
    assert status == 200, body
    return body["results"]


def test_live_chat_two_windows_chat_and_a_third_sees_the_stored_messages(browser: Browser, server: ServerProcess,
                                                                         static_url: str) -> None:
    added = wrapper(server, "function", "add", "--name", "new_msg", "--trigger", "chan_out",
                    "--source", "examples/live-chat/fn.js")
    assert added.stdout.strip() == "added new_msg (trigger chan_out, version 1)", added.stdout
    url = f"{static_url}/live-chat/?api={server.url}"

    ann = open_page(browser, url)
    register(ann, "ann@example.com")
    expect(ann.get_by_role("status")).to_have_text("Connected to lobby.")
    bob = open_page(browser, url, "narrow")
    register(bob, "bob@example.com")
    expect(bob.get_by_role("status")).to_have_text("Connected to lobby.")
    expect(ann.locator("#messages .notice").last).to_have_text("Someone joined lobby.")

    ann.get_by_label("Message", exact=True).fill("hello bob")
    ann.get_by_role("button", name="Send").click()
    on_bob = bob.locator("#messages .message", has_text="hello bob")
    expect(on_bob).to_be_visible(timeout=REALTIME_MS)
    expect(on_bob.locator(".who")).to_have_text("ann@example.com")
    expect(ann.locator("#messages .mine", has_text="hello bob").locator(".who")).to_have_text("you")

    bob.get_by_label("Message", exact=True).fill("hi ann")
    bob.get_by_label("Message", exact=True).press("Enter")
    expect(ann.locator("#messages .message", has_text="hi ann")).to_be_visible(timeout=REALTIME_MS)
    shot(ann, "live-chat-wide")
    shot(bob, "live-chat-narrow")

    # fn.js stored both, with the time it ran.
    stored = wait_for(lambda: len(docs := documents(server, "msgs_774_")) == 2 and docs, PERSIST_S)
    assert stored, documents(server, "msgs_774_")
    assert sorted((d["user"], d["text"]) for d in stored) == [("ann@example.com", "hello bob"),
                                                              ("bob@example.com", "hi ann")]
    assert all(d["sentOn"] for d in stored), stored

    # Someone opening the chat now sees the conversation so far, in order.
    cid = open_page(browser, url)
    register(cid, "cid@example.com")
    expect(cid.get_by_role("status")).to_have_text("Connected to lobby.")
    expect(cid.locator("#messages .message .text")).to_have_text(["hello bob", "hi ann"])
    assert serious_violations(cid, axe_source()) == []
    for page in (ann, bob, cid):
        assert page.errors == []  # type: ignore[attr-defined]


def test_realtime_event_posts_reach_other_pages_and_the_channel_refuses_anonymous(
        browser: Browser, server: ServerProcess, static_url: str) -> None:
    wrapper(server, "function", "add", "--name", "post_event", "--trigger", "web",
            "--source", "examples/realtime-event/fn.js")
    rule = json.loads((EXAMPLES / "realtime-event" / "channel-rule.json").read_text())
    status, body = call(server.url, "PUT", "/channels/updates", rule, token=DEV_ROOT_TOKEN)
    assert status == 200, body
    url = f"{static_url}/realtime-event/?api={server.url}"

    writer = open_page(browser, url)
    register(writer, "writer@example.com")
    reader = open_page(browser, url, "narrow")
    register(reader, "reader@example.com")
    for page in (writer, reader):
        expect(page.get_by_role("status")).to_contain_text("Joined updates")

    writer.get_by_label("Message", exact=True).fill("the deploy finished")
    writer.get_by_role("button", name="Post").click()
    expect(reader.locator("#events .live .text")).to_have_text(["the deploy finished"])
    expect(writer.locator("#events .live .text")).to_have_text(["the deploy finished"])
    expect(writer.get_by_label("Message", exact=True)).to_have_value("")
    shot(writer, "realtime-event-wide")
    shot(reader, "realtime-event-narrow")

    # A bad post is refused by the function and says why.
    writer.get_by_label("Message", exact=True).evaluate("el => { el.value = 'y'.repeat(2001); }")  # past maxlength
    writer.get_by_role("button", name="Post").click()
    expect(writer.locator("#post-error")).to_contain_text("1 to 2000 characters")

    stored = wait_for(lambda: documents(server, "events_774_"), PERSIST_S)
    assert [(d["channel"], d["message"]) for d in stored] == [("updates", "the deploy finished")], stored

    # A page opened later loads the stored history.
    later = open_page(browser, url)
    register(later, "later@example.com")
    expect(later.get_by_role("status")).to_contain_text("Joined updates")
    expect(later.locator("#events .event .text")).to_have_text(["the deploy finished"])
    assert serious_violations(later, axe_source()) == []

    # Without signing in, the channel rule refuses the page, and nothing published reaches it.
    anonymous = open_page(browser, url, "narrow")
    anonymous.get_by_role("button", name="Join without signing in").click()
    expect(anonymous.get_by_role("alert")).to_have_text("Refused: authentication required to join updates")
    call(server.url, "POST", "/publish-message", {"channel": "updates", "type": "event",
                                                  "data": json.dumps({"message": "for members only"})},
         token=DEV_ROOT_TOKEN)
    expect(reader.locator("#events .live .text").last).to_have_text("for members only")
    expect(anonymous.locator("#events li")).to_have_count(0)
    shot(anonymous, "realtime-event-anonymous-narrow")
    for page in (writer, reader, later, anonymous):
        assert page.errors == []  # type: ignore[attr-defined]


def test_bin_sblite_runs_the_cli_from_any_directory(server: ServerProcess, tmp_path: Path) -> None:
    env = {**os.environ, "SBLITE_URL": server.url}
    proc = subprocess.run([str(WRAPPER), "function", "list"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = subprocess.run([str(WRAPPER), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip(), version.stdout + version.stderr
