"""The per-user limit on custom messages: chan_in, /publish-message and functions' publish() share it.

Over the limit a message is refused, never dropped silently: an `error` frame on the realtime
connection, a 429 with Retry-After over HTTP, `{ok: false}` from publish(); /metrics counts it.
"""

from __future__ import annotations

import pytest

from sblite.app import create_app
from sblite.errors import TooManyRequests
from sblite.model import Identity
from sblite.services.publish_limit import PublishLimiter
from tests.conftest import Api, make_config
from tests.function_helpers import EVAL_SOURCE, add_function, evaluate, open_client
from tests.realtime_clients import CLIENTS, RealtimeClient
from tests.support import DEV_ROOT_TOKEN

BURST = 3


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _user(user_id: str, app_id: str = "app") -> Identity:
    return Identity(app_id=app_id, account_id="acct", user_id=user_id, email="", role=0)


# (steps, expected outcomes): a step is (seconds passed before it, user, path); True = allowed.
LIMIT_CASES = {
    "a burst passes, the next is refused": (
        [(0, "u", "chan_in")] * 4, [True, True, True, False]),
    "the bucket refills at the rate": (
        [(0, "u", "chan_in")] * 3 + [(0.4, "u", "chan_in"), (0.1, "u", "chan_in"), (0, "u", "chan_in")],
        [True, True, True, False, True, False]),
    "every path counts for the same user": (
        [(0, "u", "chan_in"), (0, "u", "function"), (0, "u", "publish_message"), (0, "u", "function")],
        [True, True, True, False]),
    "users do not share a bucket": (
        [(0, "u", "chan_in")] * 3 + [(0, "v", "chan_in"), (0, "u", "chan_in")],
        [True, True, True, True, False]),
    "a quiet user starts afresh": (
        [(0, "u", "function")] * 4 + [(10, "u", "function")] * 3,
        [True, True, True, False, True, True, True]),
}


@pytest.mark.parametrize("case", sorted(LIMIT_CASES))
def test_limit_rules(case: str) -> None:
    steps, expected = LIMIT_CASES[case]
    clock = FakeClock()
    limiter = PublishLimiter(2, BURST, clock=clock)  # 2 a second on average, bursts of 3
    outcomes = []
    for passed, user, path in steps:
        clock.now += passed
        try:
            limiter.admit(path, _user(user))
            outcomes.append(True)
        except TooManyRequests as exc:
            assert exc.status == 429 and exc.retry_after >= 1 and "rate limit exceeded" in exc.message
            outcomes.append(False)
    assert outcomes == expected
    assert sum(limiter.stats[path, "refused"] for path in ("chan_in", "function", "publish_message")) == \
        expected.count(False)


def test_apps_do_not_share_a_bucket_and_memory_is_bounded() -> None:
    clock = FakeClock()
    limiter = PublishLimiter(1, 1, max_keys=10, clock=clock)
    limiter.admit("chan_in", _user("u", "one"))
    limiter.admit("chan_in", _user("u", "two"))  # the same user id in another app
    with pytest.raises(TooManyRequests):
        limiter.admit("chan_in", _user("u", "one"))
    for n in range(50):
        limiter.admit("function", _user(f"user{n}"))
    assert limiter.tracked_users() <= 10
    clock.now += 5  # drained buckets are forgotten
    limiter.admit("function", _user("late"))
    assert limiter.tracked_users() == 1


async def _app(aiohttp_client, tmp_path) -> Api:
    # One message a second on average, bursts of 3: a test sends its burst well within a second.
    return Api(await aiohttp_client(create_app(make_config(tmp_path, publish_limit_per_second=1,
                                                           publish_limit_burst=BURST))))


async def _metric(api: Api, path: str, outcome: str) -> int:
    resp = await api.client.get("/metrics", headers=api.headers(DEV_ROOT_TOKEN))
    assert resp.status == 200
    text = await resp.text()
    line = f'sblite_publish_messages_total{{path="{path}",outcome="{outcome}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    assert len(found) == 1, text
    return int(found[0][len(line):])


async def _chat(client: RealtimeClient, data: str) -> dict:
    await client.send("chan_in", data, "room")
    return await client.next(("ok", "error"))


@pytest.mark.parametrize("transport", sorted(CLIENTS))
async def test_chan_in_over_the_limit_gets_an_error_frame(aiohttp_client, tmp_path, transport):
    api = await _app(aiohttp_client, tmp_path)
    sender = await open_client(api, transport, await api.register())
    member = await open_client(api, transport, await api.register())
    try:
        assert (await member.join("room"))["type"] == "ok"
        replies = [await _chat(sender, f"m{n}") for n in range(BURST + 2)]
        assert [reply["type"] for reply in replies] == ["ok"] * BURST + ["error"] * 2
        assert "rate limit exceeded" in replies[-1]["data"] and "per user" in replies[-1]["data"]
        received = [(await member.next("chan_out"))["data"] for _ in range(BURST)]
        assert received == [f"m{n}" for n in range(BURST)]
        assert await member.quiet(0.3, ("chan_out",)) == []  # the refused ones reached nobody
        assert await _metric(api, "chan_in", "allowed") == BURST
        assert await _metric(api, "chan_in", "refused") == 2
    finally:
        await sender.close()
        await member.close()


async def test_a_users_connections_share_one_limit(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path)
    token = await api.register()
    first, second = await open_client(api, "sse", token), await open_client(api, "ws", token)
    other = await open_client(api, "sse", await api.register())
    try:
        assert [(await _chat(first, "a"))["type"] for _ in range(BURST)] == ["ok"] * BURST
        assert (await _chat(second, "b"))["type"] == "error"  # another connection, the same user
        assert (await _chat(other, "c"))["type"] == "ok"  # another user
    finally:
        for client in (first, second, other):
            await client.close()


async def test_publish_message_over_the_limit_is_a_429_with_retry_after(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path)
    member = await open_client(api, "sse", await api.register())
    try:
        assert (await member.join("news"))["type"] == "ok"
        body = {"channel": "news", "type": "headline", "data": "x"}
        answers = [await api.root("POST", "/publish-message", body) for _ in range(BURST)]
        assert answers == [(200, True)] * BURST
        resp = await api.client.post("/publish-message", json=body, headers=api.headers(DEV_ROOT_TOKEN))
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        assert "rate limit exceeded" in await resp.text()
        assert len([await member.next("headline") for _ in range(BURST)]) == BURST
        assert await member.quiet(0.3, ("headline",)) == []
        assert await _metric(api, "publish_message", "refused") == 1
    finally:
        await member.close()


async def test_a_functions_publish_over_the_limit_answers_ok_false(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path)
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    member = await open_client(api, "sse", await api.register())
    try:
        assert (await member.join("feed"))["type"] == "ok"
        calls = "[1, 2, 3, 4, 5].map(function (n) { return send('item', n, 'feed'); })"
        results = await evaluate(api, token, calls)
        assert [result["ok"] for result in results] == [True] * BURST + [False] * 2, results
        assert "rate limit exceeded" in results[-1]["content"]
        assert [(await member.next("item"))["data"] for _ in range(BURST)] == ["1", "2", "3"]
        assert await member.quiet(0.3, ("item",)) == []
        assert await _metric(api, "function", "refused") == 2
        # The run's identity is the caller: its own chat is refused too now, another user's is not.
        chat = await open_client(api, "sse", token)
        try:
            assert (await _chat(chat, "hi"))["type"] == "error"
        finally:
            await chat.close()
        assert (await evaluate(api, await api.register(), "send('item', 6, 'feed')"))["ok"] is True
    finally:
        await member.close()


async def test_system_messages_are_not_counted(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path)
    token = await api.register()
    member = await open_client(api, "sse", token)
    try:
        for n in range(BURST + 2):  # joins publish `joined`; writes publish db_created
            assert (await member.join(f"room{n}"))["type"] == "ok"
            status, _ = await api.call("POST", "/db/notes", token, json={"n": n})
            assert status == 201
        assert (await _chat(member, "still allowed"))["type"] == "ok"
    finally:
        await member.close()
