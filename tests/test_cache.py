"""Root's cache: GET/POST /sudo/cache, values shared with functions' cacheGet/cacheSet, FIFO queues."""

from __future__ import annotations

import asyncio

import pytest

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.function_helpers import EVAL_SOURCE, add_function, evaluate


async def test_values_are_the_ones_functions_see(api):
    assert await api.root("POST", "/sudo/cache", {"key": "greeting", "value": "hello"}) == (200, True)
    assert await api.root("GET", "/sudo/cache?key=greeting") == (200, "hello")
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    assert await evaluate(api, token, 'cacheGet("greeting")') == {"ok": True, "content": "hello"}
    assert (await evaluate(api, token, 'cacheSet("from-fn", "set in a function")'))["ok"]
    assert await api.root("GET", "/sudo/cache?key=from-fn") == (200, "set in a function")
    assert (await evaluate(api, token, 'inc("hits", 3)'))["content"] == 3
    assert await api.root("GET", "/sudo/cache?key=hits") == (200, "3")


async def test_a_missing_key_is_404(api):
    status, text = await api.root("GET", "/sudo/cache?key=nothing-here")
    assert (status, text) == (404, "cache key nothing-here has no value\n")


async def test_queue_is_first_in_first_out_and_empty_is_blank(api):
    for value in ("one", "two", "three"):
        assert await api.root("POST", "/sudo/cache", {"key": "jobs", "value": value, "type": "queue"}) == (200, True)
    assert [await api.root("GET", "/sudo/cache?key=jobs&type=queue") for _ in range(4)] == [
        (200, "one"), (200, "two"), (200, "three"), (200, "")]
    status, _ = await api.root("GET", "/sudo/cache?key=jobs")
    assert status == 404  # a queue and a value of the same key are apart


async def test_concurrent_dequeues_never_hand_out_a_value_twice(api):
    values = [f"v{n}" for n in range(30)]
    for value in values:
        await api.root("POST", "/sudo/cache", {"key": "q", "value": value, "type": "queue"})
    got = await asyncio.gather(*(api.root("GET", "/sudo/cache?key=q&type=queue") for _ in range(40)))
    taken = [value for status, value in got if value]
    assert sorted(taken) == sorted(values) and len(got) == 40


async def test_queues_survive_a_restart(aiohttp_client, tmp_path):
    first = await aiohttp_client(create_app(make_config(tmp_path)))
    await Api(first).root("POST", "/sudo/cache", {"key": "kept", "value": "still here", "type": "queue"})
    await first.close()
    second = Api(await aiohttp_client(create_app(make_config(tmp_path))))
    assert await second.root("GET", "/sudo/cache?key=kept&type=queue") == (200, "still here")


@pytest.mark.parametrize("body, message", [
    ({"value": "v"}, "cache key is required"),
    ({"key": "", "value": "v"}, "cache key is required"),
    ({"key": 5, "value": "v"}, "cache key is required"),
    ({"key": "k" * 1001, "value": "v"}, "limited to 1000 characters"),
    ({"key": "bad\nkey", "value": "v"}, "printable"),
    ({"key": "k", "value": 5}, "value must be a string"),
    ({"key": "k"}, "value must be a string"),
    ({"key": "k", "value": "v", "type": "stack"}, 'type must be "queue"'),
    (["k", "v"], "expected a JSON object"),
])
async def test_bad_writes_are_400_and_change_nothing(api, body, message):
    status, text = await api.root("POST", "/sudo/cache", body)
    assert status == 400 and message in text, text
    assert (await api.root("GET", "/sudo/cache?key=k"))[0] == 404
    assert await api.root("GET", "/sudo/cache?key=k&type=queue") == (200, "")


async def test_values_past_the_io_limit_are_refused(aiohttp_client, tmp_path):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, functions_max_io_bytes=100))))
    for kind in ("", "queue"):
        status, text = await api.root("POST", "/sudo/cache", {"key": "k", "value": "\u00e9" * 51, "type": kind})
        assert (status, text) == (400, "cache values are text of at most 100 bytes\n")
    assert await api.root("POST", "/sudo/cache", {"key": "k", "value": "x" * 100}) == (200, True)


@pytest.mark.parametrize("query, message", [
    ("", "cache key is required"),
    ("?key=", "cache key is required"),
    ("?key=k&type=list", 'type must be "queue"'),
    ("?key=a%0Ab", "printable"),
])
async def test_bad_reads_are_400(api, query, message):
    status, text = await api.root("GET", f"/sudo/cache{query}")
    assert status == 400 and message in text, text


async def test_cache_routes_are_root_only(api):
    token = await api.register()
    for method, body in (("GET", None), ("POST", {"key": "k", "value": "v"})):
        status, text = await api.call(method, "/sudo/cache?key=k", token, json=body)
        assert status == 400 and "invalid root token" in text
    assert (await api.root("GET", "/sudo/cache?key=k"))[0] == 404
