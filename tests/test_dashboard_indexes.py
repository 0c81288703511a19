"""The Data page's Indexes card: GET /sudo/index/advisor, then in a real browser against a real `sblite serve`
started with slow_query_ms = 0, a suggestion made by the page's own filters, created with one click, dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, expect, sync_playwright

from sblite.app import create_app
from sblite.services.index_advisor import SUGGEST_AFTER, SUGGEST_WINDOW_SECONDS
from tests.browser_helpers import (
    WIDTHS, axe_source, call, launch_chromium, require_chromium, screenshot, serious_violations,
)
from tests.conftest import Api, make_config
from tests.support import DEV_ROOT_TOKEN, start_server
from tests.test_dashboard_browser import assert_no_sideways_scroll, open_page, sign_in

COL = "notes_744_"


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, {"slowQueryMs": 200, "autoIndex": False}),
    ({"slow_query_ms": -1, "auto_index": True}, {"slowQueryMs": -1, "autoIndex": True}),
])
async def test_the_advisor_route_says_what_makes_a_suggestion(aiohttp_client, tmp_path, settings, expected):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, **settings))))
    assert await api.root("GET", "/sudo/index/advisor") == (200, {
        **expected, "suggestAfter": SUGGEST_AFTER, "windowSeconds": SUGGEST_WINDOW_SECONDS})
    # that only root may read it, test_route_policies checks for every root route


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Debian's chromium through Playwright, closed after the test."""
    require_chromium()
    with sync_playwright() as playwright:
        instance = launch_chromium(playwright, tmp_path / "home")
        yield instance
        instance.close()


def indexed(url: str) -> list[str]:
    status, found = call(url, "GET", f"/sudo/index?col={COL}", token=DEV_ROOT_TOKEN)
    assert status == 200, found
    return [index["field"] for index in found]


@pytest.mark.slow
def test_a_suggested_index_is_created_with_one_click_then_dropped(browser: Browser, tmp_path: Path) -> None:
    config = tmp_path / "sblite.toml"
    config.write_text("slow_query_ms = 0\n")  # every query is slow: three filters on one field suggest an index
    proc = start_server(tmp_path, "--config", str(config))
    try:
        url = proc.url
        _, user = call(url, "POST", "/register", {"email": "writer@example.com", "password": "secret-pw"})
        for i in range(12):
            assert call(url, "POST", f"/db/{COL}", {"title": f"note {i}", "n": i}, token=user)[0] == 201
        page = open_page(browser, url + "/#/data", bypass_csp=True)  # so that axe can be injected
        sign_in(page)
        page.get_by_role("button", name=COL).click()
        suggestions = page.locator("#index-suggestions")
        expect(suggestions).to_contain_text("Every query counts as slow here (slow_query_ms = 0): 3 slow queries")
        expect(page.locator("#index-list")).to_contain_text("No field indexes yet")

        for i in range(SUGGEST_AFTER):  # the page's own filter makes the slow queries
            page.get_by_label("Filter", exact=True).fill(f"title == note {i}")
            page.get_by_role("button", name="Apply").click()
            expect(page.locator("#doc-total")).to_contain_text(f'[["title","==","note {i}"]]')
        expect(suggestions.locator("tbody tr")).to_have_count(1)
        expect(suggestions).to_contain_text(f"{SUGGEST_AFTER} slow queries filtered or sorted on title")
        page.reload()  # the collection list says which collection has suggestions
        expect(page.locator(f"[data-suggested={COL}]")).to_have_text("1 index suggested")
        page.get_by_role("button", name=COL).click()
        expect(page.get_by_role("button", name="Create index on title")).to_be_visible()
        source = axe_source()
        for width, (w, h) in WIDTHS.items():
            page.set_viewport_size({"width": w, "height": h})
            assert serious_violations(page, source) == [], width
            assert_no_sideways_scroll(page, width)
            screenshot(page, f"indexes-{w}")

        page.get_by_role("button", name="Create index on title").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_have_text("Index on title created")
        expect(page.get_by_role("region", name=f"Field indexes of {COL}")).to_be_focused()  # its button went
        fields = page.locator("#index-table tbody td code")
        expect(fields).to_have_text(["title"])
        expect(suggestions).to_contain_text("No suggestions yet")
        expect(page.locator(f"[data-suggested={COL}]")).to_have_count(0)
        assert indexed(url) == ["title"]

        page.get_by_label("Field", exact=True).fill("id")
        page.get_by_role("button", name="Add index").click()
        expect(page.locator("#index-error")).to_have_text("id is indexed already: indexes are for document fields")
        page.get_by_label("Field", exact=True).fill("a..b")
        page.get_by_role("button", name="Add index").click()
        expect(page.locator("#index-error")).to_have_text("invalid field name: 'a..b'")
        assert indexed(url) == ["title"]
        page.get_by_label("Field", exact=True).fill("n")
        page.get_by_role("button", name="Add index").click()
        expect(page.get_by_role("status")).to_have_text("Index on n created")
        expect(page.locator("#index-error")).to_be_empty()
        expect(fields).to_have_text(["title", "n"])
        assert indexed(url) == ["title", "n"]

        asked: list[str] = []

        def dismiss(dialog: Dialog) -> None:
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", dismiss)
        page.get_by_role("button", name="Drop the index on title").click()
        assert asked == [f"Drop the index on title of {COL}? Queries on title scan the collection again."]
        expect(fields).to_have_text(["title", "n"])
        assert indexed(url) == ["title", "n"]
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Drop the index on title").click()
        expect(page.get_by_role("status")).to_have_text("Index on title dropped")
        expect(fields).to_have_text(["n"])
        assert indexed(url) == ["n"]
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        proc.stop()


@pytest.mark.slow
def test_with_the_slow_query_log_off_the_card_says_the_advisor_sees_nothing(browser: Browser, tmp_path: Path) -> None:
    proc = start_server(tmp_path, env={"SBLITE_SLOW_QUERY_MS": "-1"})
    try:
        assert call(proc.url, "POST", f"/sudo/{COL}", {"title": "only"}, token=DEV_ROOT_TOKEN)[0] == 201
        page = open_page(browser, proc.url + "/#/data")
        sign_in(page)
        page.get_by_role("button", name=COL).click()
        expect(page.locator("#index-suggestions")).to_contain_text(
            "the slow-query log is off on this server (slow_query_ms = -1)")
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        proc.stop()
