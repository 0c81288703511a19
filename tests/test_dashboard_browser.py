"""The dashboard in a real browser (Debian's chromium through Playwright) against a real `sblite serve`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.browser_helpers import (
    WIDTHS, axe_source, call, launch_chromium, require_chromium, screenshot, serious_violations,
)
from tests.smtp_server import SmtpServer
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_PK, DEV_ROOT_TOKEN, ServerProcess, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright, once chromium is known to be there."""
    require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A dev-mode server for the module's tests."""
    proc = start_server(tmp_path_factory.mktemp("dashboard"))
    yield proc
    proc.stop()


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[Browser]:
    """Chromium with a fresh profile, closed after the test."""
    instance = launch_chromium(playwright, tmp_path)
    yield instance
    instance.close()


def open_page(browser: Browser, url: str, width: str = "wide", **options: Any) -> Page:
    """A page in a new context (its own cookies) at `url`, failing the test on any script error."""
    w, h = WIDTHS[width]
    context: BrowserContext = browser.new_context(viewport={"width": w, "height": h}, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    page.goto(url)
    return page


def sign_in(page: Page, email: str = DEV_ADMIN_EMAIL, password: str = DEV_ADMIN_PASSWORD) -> None:
    """Fill in the sign-in form and send it."""
    page.get_by_label("Admin email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_sign_in_with_the_password_shows_the_overview_and_survives_a_reload(browser: Browser,
                                                                           server: ServerProcess) -> None:
    page = open_page(browser, server.url)
    expect(page.get_by_role("heading", name="Sign in to sblite")).to_be_visible()
    sign_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#who")).to_have_text(DEV_ADMIN_EMAIL)
    page.reload()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    assert "sblite_session" not in page.evaluate("document.cookie")  # HttpOnly: no script can read it
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_wrong_password_shows_a_readable_error(browser: Browser, server: ServerProcess) -> None:
    page = open_page(browser, server.url)
    sign_in(page, password="not-the-password")
    expect(page.get_by_role("alert")).to_have_text("invalid email/password")
    expect(page.get_by_role("heading", name="Sign in to sblite")).to_be_visible()
    assert page.context.cookies() == []


def test_sign_in_with_the_root_token(browser: Browser, server: ServerProcess) -> None:
    page = open_page(browser, server.url)
    page.get_by_text("Use the root token instead").click()
    page.get_by_label("Root token", exact=True).fill(DEV_ROOT_TOKEN)
    page.get_by_role("button", name="Sign in with the token").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_sign_out_ends_the_session(browser: Browser, server: ServerProcess) -> None:
    page = open_page(browser, server.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to sblite")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to sblite")).to_be_visible()
    status = page.evaluate("async () => (await fetch('/overview', {headers: {'SB-PUBLIC-KEY': 'dev_memory_pk'}}))"
                           ".status")
    assert status == 401


CHANGE = """async (csrf) => {
  const headers = {'SB-PUBLIC-KEY': 'dev_memory_pk', 'Content-Type': 'application/json'};
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const resp = await fetch('/fn/add', {method: 'POST', headers, body: JSON.stringify(
    {name: 'csrf_probe_' + (csrf ? 'with' : 'without'), trigger: 'web', code: 'function handle() { return 1; }'})});
  return [resp.status, await resp.text()];
}"""


def test_a_change_with_the_cookie_but_without_the_csrf_token_is_refused(browser: Browser,
                                                                         server: ServerProcess) -> None:
    page = open_page(browser, server.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    status, text = page.evaluate(CHANGE, None)
    assert status == 403 and "X-CSRF-Token" in text
    csrf = page.evaluate("async () => (await (await fetch('/_/session')).json()).csrf")
    status, text = page.evaluate(CHANGE, csrf)
    assert status == 200, text
    names = [fn["name"] for fn in call(server.url, "GET", "/fn", token=DEV_ROOT_TOKEN)[1]]
    assert "csrf_probe_with" in names and "csrf_probe_without" not in names


def test_the_overview_shows_keys_counts_failed_runs_and_the_client_snippet(browser: Browser,
                                                                            tmp_path: Path) -> None:
    proc = start_server(tmp_path)
    try:
        url = proc.url
        _, user = call(url, "POST", "/register", {"email": "someone@example.com", "password": "secret-pw"})
        for i in range(3):
            assert call(url, "POST", "/db/notes", {"i": i}, token=user)[0] == 201
        broken = {"name": "broken", "trigger": "web", "code": "function handle() { throw new Error('kaput'); }"}
        assert call(url, "POST", "/fn/add", broken, token=DEV_ROOT_TOKEN)[0] == 200
        assert call(url, "POST", "/fn/sudoexec/broken", {}, token=DEV_ROOT_TOKEN)[0] >= 400
        task = {"name": "tick", "type": "message", "value": "tick", "meta": {"channel": "lobby", "data": "hi"},
                "interval": "@every 1h"}
        assert call(url, "POST", "/tasks", task, token=DEV_ROOT_TOKEN)[0] == 200
        _, overview = call(url, "GET", "/overview", token=DEV_ROOT_TOKEN)

        page = open_page(browser, url)
        sign_in(page)
        expected = {"users": 2, "collections": 1, "documents": 3, "functions": 1, "tasks": 1, "connections": 0}
        for key, value in expected.items():
            expect(page.locator(f"[data-count={key}] dd")).to_have_text(str(value))
        expect(page.locator("#pk")).to_have_text(DEV_PK)
        token = page.locator("#root-token")
        assert overview["rootToken"] not in token.inner_text()  # masked
        page.get_by_role("button", name="Show").click()
        expect(token).to_have_text(overview["rootToken"])
        expect(page.locator("#failed-runs")).to_contain_text("broken")
        expect(page.locator("#failed-runs")).to_contain_text("kaput")
        expect(page.locator("#dev-warning")).to_contain_text("Dev mode")
        expect(page.locator("#snippet")).to_have_text(f'new Backend("{DEV_PK}", "{url}")')
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        page.get_by_role("button", name="Copy public key").click()
        expect(page.get_by_role("status")).to_have_text("public key copied")
        assert page.evaluate("navigator.clipboard.readText()") == DEV_PK
    finally:
        proc.stop()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_passes_the_accessibility_check_and_is_photographed(browser: Browser, server: ServerProcess,
                                                                       width: str) -> None:
    source = axe_source()
    page = open_page(browser, server.url, width, bypass_csp=True)  # so that axe can be injected
    expect(page.get_by_role("heading", name="Sign in to sblite")).to_be_visible()
    assert serious_violations(page, source) == []
    screenshot(page, f"signin-{WIDTHS[width][0]}")
    sign_in(page, password="not-the-password")
    expect(page.get_by_role("alert")).to_be_visible()
    assert serious_violations(page, source) == []
    sign_in(page)
    expect(page.locator("[data-count=users] dd")).to_be_visible()
    assert serious_violations(page, source) == []
    screenshot(page, f"overview-{WIDTHS[width][0]}")
    assert_no_sideways_scroll(page, width)
    for name, ready, prepare in PAGE_VISITS:
        page.goto(f"{server.url}/#/{name}")
        expect(page.locator(ready)).to_be_visible()
        prepare(page)
        assert serious_violations(page, source) == [], name
        page.evaluate("document.getElementById('status').textContent = ''")  # the toast would float mid-picture
        screenshot(page, f"{name}-{WIDTHS[width][0]}")
        assert_no_sideways_scroll(page, width)


def assert_no_sideways_scroll(page: Page, width: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {width}"


def open_a_function(page: Page) -> None:
    """Open the editor on a function (made over the API) with a marked error, and run it."""
    page.get_by_role("button", name="New function").click()
    page.get_by_label("Name", exact=True).fill(f"shown_{page.viewport_size['width']}")  # type: ignore[index]
    page.get_by_label("Code", exact=True).fill("function handle(body) {\n  log('a long line of logging', body);\n"
                                               "  return {ok: true};\n}\n")
    page.get_by_role("button", name="Create function").click()
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-log")).to_be_visible()
    page.get_by_label("Code", exact=True).fill("function handle(body) {\n  return {ok: true;\n}\n")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".editor-gutter .bad")).to_be_visible()


def open_a_task(page: Page) -> None:
    """Create a task, run it once and show its history, then open the form with a previewed schedule."""
    name = f"shown_{page.viewport_size['width']}"  # type: ignore[index]
    page.get_by_role("button", name="New task").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Message type").fill("tick")
    page.get_by_label("Schedule", exact=True).fill("@every 1h")
    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    page.get_by_role("button", name=f"Run now: {name}").click()
    expect(page.locator("#task-runs-table")).to_contain_text("manual")
    page.get_by_role("button", name="New task").click()
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_label("Schedule", exact=True).fill("0 9 * * 1-5")
    expect(page.locator("#task-next li")).to_have_count(5)


def open_a_document(page: Page) -> None:
    """Create two documents through the page and leave the second open in the editor."""
    for text in ("first", "second"):
        text = f"{text} at {page.viewport_size['width']}"  # type: ignore[index]
        page.locator("#new-document").click()
        page.get_by_label("Collection", exact=True).fill("notes_744_")
        page.get_by_label("Document (JSON)").fill(json.dumps({"text": text, "width": page.viewport_size}))
        page.get_by_role("button", name="Create document").click()
        expect(page.locator("#doc-title")).not_to_have_text("New document")  # the new one is open
        expect(page.locator("#doc-rows")).to_contain_text(text)


def watch_a_channel(page: Page) -> None:
    """Watch lobby, publish on it and store a rule."""
    page.get_by_role("button", name="Watch", exact=True).click()
    expect(page.locator("#live-state")).to_contain_text("Watching lobby")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#frames")).to_contain_text("hello from the dashboard")
    page.get_by_label("Channel name or pattern").fill(f"room-{page.viewport_size['width']}-*")  # type: ignore[index]
    page.get_by_role("button", name="Save rule").click()
    expect(page.locator("#rules-table")).to_be_visible()


def add_a_user(page: Page) -> None:
    """Add a member through the form."""
    email = f"member-{page.viewport_size['width']}@example.com"  # type: ignore[index]
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("secret-pw-1")
    page.get_by_label("Role", exact=True).select_option("0")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_label(f"Role of {email}")).to_have_value("0")


# Each page after the overview: its hash, what shows it is loaded, and what to do before the check.
PAGE_VISITS = [
    ("functions", "#fn-list", open_a_function),
    ("tasks", "#task-list", open_a_task),
    ("data", "#collections", open_a_document),
    ("users", "#user-table", add_a_user),
    ("realtime", "#live-channels", watch_a_channel),
]


def test_functions_a_syntax_error_is_marked_on_its_line_then_the_fixed_function_runs_and_logs(
        browser: Browser, server: ServerProcess) -> None:
    page = open_page(browser, server.url + "/#/functions")
    sign_in(page)
    expect(page.get_by_role("heading", name="Functions", exact=True)).to_be_visible()
    page.get_by_role("button", name="New function").click()
    page.get_by_label("Name", exact=True).fill("greet")
    code = page.get_by_label("Code", exact=True)
    code.fill('function handle(body) {\n  log("hello " + body.who\n  return {greeted: body.who};\n}\n')
    page.get_by_role("button", name="Create function").click()
    error = page.locator("#fn-code-error")
    expect(error).to_contain_text("Line 3")
    expect(page.locator(".editor-gutter [data-line='3']")).to_have_class("bad")
    expect(page.locator(".editor-view [data-line='3']")).to_have_class("line bad")
    assert call(server.url, "GET", "/fn/info/greet", token=DEV_ROOT_TOKEN)[0] == 404  # refused, not saved

    code.fill('function handle(body) {\n  log("hello " + body.who);\n  return {greeted: body.who};\n}\n')
    page.get_by_role("button", name="Create function").click()
    expect(page.get_by_role("status")).to_have_text("greet saved (version 1)")
    expect(page.locator("#fn-code-error")).to_be_empty()
    expect(page.locator(".editor-gutter .bad")).to_have_count(0)
    expect(page.locator("#fn-table")).to_contain_text("greet")

    page.get_by_label("JSON body (as root)").fill("{not json")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-body-error")).to_contain_text("not JSON")
    page.get_by_label("JSON body (as root)").fill('{"who": "Ada"}')
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-value")).to_contain_text('"greeted": "Ada"')
    expect(page.locator("#run-log")).to_contain_text("hello Ada")
    expect(page.locator("#runs-table")).to_contain_text("greet")
    expect(page.locator("#fn-table")).to_contain_text("100% of 1")

    page.get_by_label("Secret name").fill("API_KEY")
    page.get_by_label("Value", exact=True).fill("s3cret-value")
    page.get_by_role("button", name="Save secret").click()
    expect(page.locator("#secrets-table")).to_contain_text("env.API_KEY")
    assert "s3cret-value" not in page.content()
    assert page.errors == []  # type: ignore[attr-defined]


def test_tasks_the_preview_follows_the_expression_and_an_every_second_task_fills_its_history(
        browser: Browser, server: ServerProcess) -> None:
    page = open_page(browser, server.url + "/#/tasks")
    sign_in(page)
    expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    page.get_by_role("button", name="New task").click()
    page.get_by_label("Name", exact=True).fill("ticker")
    page.get_by_label("Message type").fill("tick")
    schedule = page.get_by_label("Schedule", exact=True)
    page.get_by_label("Time zone").fill("Europe/Paris")
    schedule.press_sequentially("0 9 * * 1#")
    expect(page.locator("#task-preview-error")).to_contain_text("day-of-week")
    schedule.press_sequentially("1")
    expect(page.locator("#task-description")).to_contain_text("first Monday of each month")
    expect(page.locator("#task-next li")).to_have_count(5)
    expect(page.locator("#task-next li").first).to_contain_text("09:00:00 +0")

    page.get_by_label("Meta (JSON)").fill("{channel: lobby}")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator("#task-meta-error")).to_contain_text("not JSON")
    page.get_by_label("Meta (JSON)").fill('{"channel": "lobby", "data": "tick"}')
    schedule.fill("@every 1s")
    page.get_by_label("Time zone").fill("UTC")
    expect(page.locator("#task-description")).to_contain_text("every second")
    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("status")).to_have_text("ticker saved: every second")
    expect(page.locator("#task-table")).to_contain_text("every second")

    page.get_by_role("button", name="History of ticker").click()
    rows = page.locator("#task-runs-table tbody tr")
    expect(rows.first).to_contain_text("published tick on lobby")
    count = rows.count()
    expect(rows).not_to_have_count(count)  # more arrive while it is open

    page.get_by_role("button", name="Pause ticker").click()
    expect(page.get_by_role("status")).to_have_text("ticker paused")
    expect(page.locator("#task-table")).to_contain_text("paused")
    page.get_by_role("button", name="Run now: ticker").click()
    expect(page.get_by_role("status")).to_have_text("ticker ran: ok")
    expect(page.locator("#task-runs-table")).to_contain_text("manual")
    page.get_by_role("button", name="Resume ticker").click()
    expect(page.get_by_role("status")).to_have_text("ticker resumed")
    assert call(server.url, "GET", "/tasks/ticker", token=DEV_ROOT_TOKEN)[1]["status"] == "scheduled"
    call(server.url, "DELETE", "/tasks/ticker", token=DEV_ROOT_TOKEN)
    assert page.errors == []  # type: ignore[attr-defined]


def test_data_browse_filter_edit_create_and_delete_documents(browser: Browser, tmp_path: Path) -> None:
    proc = start_server(tmp_path)
    try:
        url = proc.url
        _, user = call(url, "POST", "/register", {"email": "writer@example.com", "password": "secret-pw"})
        docs = [{"title": f"note {i}", "n": i, "tag": "even" if i % 2 == 0 else "odd"} for i in range(25)]
        for doc in docs:
            assert call(url, "POST", "/db/notes_744_", doc, token=user)[0] == 201
        page = open_page(browser, url + "/#/data")
        page.on("dialog", lambda dialog: dialog.accept())
        sign_in(page)
        expect(page.get_by_role("heading", name="Collections")).to_be_visible()
        expect(page.locator("[data-count=notes_744_]")).to_have_text(" 25 documents")
        expect(page.locator("#collection-list")).to_contain_text(
            "every user of the app can read, the creator can write")

        page.get_by_role("button", name="notes_744_").click()
        expect(page.locator("#doc-total")).to_have_text("25 documents")
        expect(page.locator("#doc-rows li")).to_have_count(20)
        expect(page.locator("#doc-rows li").first).to_contain_text('"n":24')  # newest first
        page.get_by_label("Newest first").uncheck()
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#doc-rows li").first).to_contain_text('"n":0,')
        page.get_by_role("button", name="Next").click()
        expect(page.locator("#doc-rows li")).to_have_count(5)
        expect(page.get_by_text("Page 2 of 2")).to_be_visible()

        page.get_by_label("Filter", exact=True).fill("n >= 20 and tag == even")
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#doc-total")).to_contain_text("3 documents match")
        expect(page.locator("#doc-total")).to_contain_text('[["n",">=",20],["tag","==","even"]]')
        page.get_by_label("Filter", exact=True).fill("n ~ 3")
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#doc-filter-error")).to_contain_text("not understood")
        page.get_by_label("Filter", exact=True).fill('[["title", "==", "note 7"]]')
        page.get_by_role("button", name="Apply").click()
        expect(page.locator("#doc-rows li")).to_have_count(1)

        page.locator("#doc-rows button").click()
        editor = page.get_by_label("Document (JSON)")
        expect(editor).to_have_value('{\n  "title": "note 7",\n  "n": 7,\n  "tag": "odd"\n}\n')
        editor.fill('{\n  "title": "note seven",\n  "n": 7,\n  "tag": odd\n}\n')
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#doc-error")).to_contain_text("Line 4")
        expect(page.locator(".editor-gutter [data-line='4']")).to_have_class("bad")
        editor.fill('{"title": "note seven", "n": 7, "tag": "odd"}')
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("status")).to_have_text("Document saved")
        _, found = call(url, "POST", "/sudoquery/notes_744_", [["n", "==", 7]], token=DEV_ROOT_TOKEN)
        assert found["results"][0]["title"] == "note seven"

        page.get_by_role("button", name="Delete", exact=True).click()
        expect(page.get_by_role("status")).to_have_text("Document deleted")
        expect(page.locator("#doc-total")).to_contain_text("0 documents match")
        expect(page.locator("[data-count=notes_744_]")).to_have_text(" 24 documents")
        assert call(url, "POST", "/sudoquery/notes_744_", [["n", "==", 7]], token=DEV_ROOT_TOKEN)[1]["total"] == 0

        page.get_by_role("button", name="New document", exact=True).first.click()
        page.get_by_label("Collection", exact=True).fill("pub_board")
        page.get_by_label("Document (JSON)").fill('{"text": "hello"}')
        page.get_by_role("button", name="Create document").click()
        expect(page.get_by_role("status")).to_have_text("Document created in pub_board")
        expect(page.locator("#collection-list")).to_contain_text("anyone, even without a token, can read and write")
        expect(page.locator("[data-count=pub_board]")).to_have_text(" 1 document")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        proc.stop()


def test_realtime_watch_a_channel_see_published_frames_members_and_set_a_rule(browser: Browser,
                                                                            server: ServerProcess) -> None:
    page = open_page(browser, server.url + "/#/realtime")
    sign_in(page)
    expect(page.get_by_role("heading", name="Realtime", exact=True)).to_be_visible()
    page.get_by_label("Channel", exact=True).fill("dash-room")
    page.get_by_role("button", name="Watch", exact=True).click()
    expect(page.locator("#live-state")).to_have_text("Watching dash-room: frames appear below as they arrive.")
    expect(page.locator("#live-table")).to_contain_text("dash-room")
    page.get_by_label("Data").fill('{"text": "from the page"}')
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status")).to_have_text("Published chan_out on dash-room")
    expect(page.locator("#frames")).to_contain_text('"text": "from the page"')
    body = {"channel": "dash-room", "type": "news", "data": "from elsewhere"}
    assert call(server.url, "POST", "/publish-message", body, token=DEV_ROOT_TOKEN)[0] == 200
    expect(page.locator("#frames li").last).to_contain_text("news")
    expect(page.locator("#frames li").last).to_contain_text("from elsewhere")
    assert "safe-to-use" not in page.locator("#frames").inner_text()

    page.get_by_label("Channel name or pattern").fill("dash-*")
    page.get_by_label("Who may publish").select_option("server")
    page.get_by_label("History kept (0 to 1000)").fill("3")
    page.get_by_label("Only signed-in connections may join").uncheck()
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_have_text("Rule dash-* saved")
    expect(page.locator("#rules-table")).to_contain_text(
        "anyone may join, even without a token; only the server publishes (functions, tasks, root); "
        "the last 3 messages are kept and replayed on join")
    assert call(server.url, "GET", "/channels/dash-*", token=DEV_ROOT_TOKEN)[1] == {
        "name": "dash-*", "auth": False, "publish": "server", "history": 3}
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#live-state")).to_have_text("Stopped.")
    call(server.url, "DELETE", "/channels/dash-*", token=DEV_ROOT_TOKEN)
    assert page.errors == []  # type: ignore[attr-defined]


def test_users_add_change_the_role_of_and_remove_a_user(browser: Browser, server: ServerProcess) -> None:
    page = open_page(browser, server.url + "/#/users")
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page)
    expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
    expect(page.get_by_label(f"Role of {DEV_ADMIN_EMAIL}")).to_be_disabled()  # not your own
    page.get_by_label("Email").fill("new-person@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#user-form-error")).to_contain_text("password")
    page.get_by_label("Password").fill("secret-pw-1")
    page.get_by_label("Role", exact=True).select_option("0")
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status")).to_have_text("new-person@example.com added")
    role = page.get_by_label("Role of new-person@example.com")
    expect(role).to_have_value("0")
    role.select_option("50")
    expect(page.get_by_role("status")).to_have_text("new-person@example.com is now account admin (50)")
    users = call(server.url, "GET", "/users?size=100", token=DEV_ROOT_TOKEN)[1]["results"]
    assert [u["role"] for u in users if u["email"] == "new-person@example.com"] == [50]
    assert "token" not in page.locator("#user-table").inner_text().lower()
    page.get_by_role("button", name="Remove new-person@example.com").click()
    expect(page.get_by_role("status")).to_have_text("new-person@example.com removed")
    expect(page.locator("#user-table")).not_to_contain_text("new-person@example.com")
    assert page.errors == []  # type: ignore[attr-defined]


def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until the element matching `selector` has the focus."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def test_a_function_is_made_and_run_by_keyboard_alone(browser: Browser, server: ServerProcess) -> None:
    page = open_page(browser, server.url)
    sign_in(page)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    tab_to(page, "nav a[href='#/functions']")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Functions", exact=True)).to_be_visible()
    tab_to(page, "#new-function")
    page.keyboard.press("Enter")
    expect(page.locator("#fn-name")).to_be_focused()
    page.keyboard.type("by_keys")
    page.keyboard.press("Tab")
    expect(page.locator("#fn-trigger")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#fn-code")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("function handle(body) {")
    page.keyboard.press("Enter")
    page.keyboard.type("  log('typed');")
    page.keyboard.press("Enter")  # keeps the indentation
    page.keyboard.type("return 7;\n}")
    expect(page.locator("#fn-code")).to_have_value("function handle(body) {\n  log('typed');\n  return 7;\n}")
    page.keyboard.press("Tab")  # Tab leaves the editor: it is not a trap
    expect(page.get_by_role("button", name="Create function")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("by_keys saved (version 1)")
    tab_to(page, "#run-body")
    tab_to(page, "form.run button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator("#run-log")).to_contain_text("typed")
    expect(page.locator("#run-value")).to_have_text("7")
    assert page.errors == []  # type: ignore[attr-defined]


def test_mail_the_outbox_shows_a_parked_mail_as_text_and_replays_it(browser: Browser, tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        smtp.recorder.refuse = True
        proc = start_server(tmp_path, env={"SBLITE_SMTP_HOST": "127.0.0.1", "SBLITE_SMTP_PORT": str(smtp.port),
                                           "SBLITE_SMTP_SECURITY": "none", "SBLITE_MAIL_MAX_ATTEMPTS": "1"})
        try:
            mail = {"to": "ann@example.org", "toName": "Ann", "subject": "Parked one", "textBody": "line one\nline two",
                    "htmlBody": "<b>bold</b><img src=x onerror=\"document.title='pwned'\">"}
            assert call(proc.url, "POST", "/sudo/sendmail", mail, token=DEV_ROOT_TOKEN) == (200, True)
            page = open_page(browser, proc.url + "/#/mail", bypass_csp=True)
            sign_in(page)
            expect(page.get_by_role("heading", name="Mail", exact=True)).to_be_visible()
            page.get_by_label("Show").select_option("parked")
            expect(page.locator("#mail-table")).to_contain_text("Parked one")
            expect(page.locator("#mail-table")).to_contain_text("550")
            tab_to(page, "#mail-table button.link")
            page.keyboard.press("Enter")
            expect(page.get_by_role("heading", name="Parked one")).to_be_focused()
            expect(page.locator("#mail-text")).to_have_text("line one\nline two")
            expect(page.locator("#mail-html")).to_have_text(mail["htmlBody"])  # its source, never rendered
            expect(page.locator("#mail-detail")).to_contain_text("root (/sudo/sendmail)")
            assert page.locator("#mail-detail img").count() == 0 and page.title() != "pwned"
            source = axe_source()
            for width in WIDTHS:
                w, h = WIDTHS[width]
                page.set_viewport_size({"width": w, "height": h})
                assert serious_violations(page, source) == [], width
                assert_no_sideways_scroll(page, width)
            screenshot(page, "mail-390")
            smtp.recorder.refuse = False
            page.get_by_role("button", name="Replay the mail to ann@example.org: Parked one").click()
            expect(page.get_by_role("status")).to_have_text("Mail to ann@example.org queued again")
            deadline = time.monotonic() + 10
            while call(proc.url, "GET", "/mail/outbox?status=sent", token=DEV_ROOT_TOKEN)[1]["total"] == 0:
                assert time.monotonic() < deadline, "the replayed mail was not sent"
                time.sleep(0.05)
            page.get_by_label("Show").select_option("sent")
            expect(page.locator("#mail-table")).to_contain_text("Parked one")
            assert [m.message["Subject"] for m in smtp.messages()] == ["Parked one"]
            assert page.errors == []  # type: ignore[attr-defined]
        finally:
            proc.stop()
