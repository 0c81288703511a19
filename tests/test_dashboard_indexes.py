"""What the dashboard's Indexes card shows: GET /sudo/index/advisor."""

from __future__ import annotations

import pytest

from sblite.app import create_app
from sblite.services.index_advisor import SUGGEST_AFTER, SUGGEST_WINDOW_SECONDS
from tests.conftest import Api, make_config


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, {"slowQueryMs": 200, "autoIndex": False}),
    ({"slow_query_ms": -1, "auto_index": True}, {"slowQueryMs": -1, "autoIndex": True}),
])
async def test_the_advisor_route_says_what_makes_a_suggestion(aiohttp_client, tmp_path, settings, expected):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, **settings))))
    assert await api.root("GET", "/sudo/index/advisor") == (200, {
        **expected, "suggestAfter": SUGGEST_AFTER, "windowSeconds": SUGGEST_WINDOW_SECONDS})
    # that only root may read it, test_route_policies checks for every root route
