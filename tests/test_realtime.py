"""Realtime behaviour, run once over SSE and once over WebSocket (spec §3, DESIGN §5)."""

from __future__ import annotations

import asyncio
import json

import pytest

from sblite.app import create_app
from sblite.http.keys import CHANNELS as CHANNELS_KEY, HUB
from tests.conftest import Api, make_config
from tests.realtime_clients import CLIENTS, RealtimeClient, publish_firehose
from tests.support import DEV_ROOT_TOKEN


def base_url(api: Api) -> str:
    """The test server's URL without a trailing slash."""
    return str(api.client.make_url("")).rstrip("/")


def hub_alias(api: Api, client: RealtimeClient) -> str:
    """The public alias other members see for a client's connection."""
    return api.client.server.app[HUB].connection(client.sid).public_id


@pytest.fixture(params=sorted(CLIENTS))
def transport(request) -> str:
    """Each test runs over both transports."""
    return request.param


@pytest.fixture
async def connect(api, transport):
    """Open realtime clients (authenticated when given a token); closes them after the test."""
    opened: list[RealtimeClient] = []

    async def make(token: str | None = None, target: Api | None = None) -> RealtimeClient:
        target = target or api
        client = await CLIENTS[transport](target.client.session, base_url(target), target.pk).open()
        opened.append(client)
        if token:
            reply = await client.auth(token)
            assert reply["type"] == "token" and reply["data"] == token
        return client

    yield make
    for client in opened:
        await client.close()


async def test_init_auth_and_bad_token(api, connect):
    client = await connect()
    assert len(client.sid) == 36
    reply = await client.auth("not-a-token")
    assert (reply["type"], reply["data"]) == ("error", "invalid token")
    token = await api.register()
    client = await connect()  # over SSE, a connection answers only to the token its first message carried
    reply = await client.auth(token)
    assert reply == {"sid": client.sid, "type": "token", "data": token, "channel": "", "token": "",
                     "auth": {"accountId": "", "userId": "", "email": "", "role": 0}, "base": ""}


async def test_only_echo_auth_and_open_channels_before_auth(api, connect):
    client = await connect()
    await client.send("echo", "hello")
    assert (await client.next())["data"] == "echo: hello"
    await client.send("chan_in", "x", "lobby")
    assert "authenticate first" in (await client.next("error"))["data"]
    assert "authentication required" in (await client.join("lobby"))["data"]
    assert (await api.root("PUT", "/channels/public-*", json={"auth": False}))[0] == 200
    assert (await client.join("public-news")) ["type"] == "ok"


async def test_join_chan_in_presence_leave(api, connect):
    alice = await connect(await api.register())
    bob = await connect(await api.register())
    assert (await alice.join("lobby"))["data"] == "lobby"
    assert (await alice.next("joined"))["data"] == alice.sid
    assert (await bob.join("lobby"))["type"] == "ok"
    assert (await bob.next("joined"))["data"] == bob.sid
    assert (await alice.next("joined"))["data"] == hub_alias(api, bob)  # others see an alias, never the id

    await alice.send("chan_in", json.dumps({"text": "hi"}), "lobby")
    ok = await alice.next()
    assert (ok["type"], ok["data"]) == ("ok", "")
    for member, sender_seen_as in ((alice, alice.sid), (bob, hub_alias(api, alice))):
        frame = await member.next("chan_out")
        assert frame["data"] == '{"text": "hi"}' and frame["channel"] == "lobby"
        assert frame["sid"] == sender_seen_as and frame["token"] == ""

    await bob.send("presence", "lobby")
    assert (await bob.next("presence"))["data"] == "2"
    await bob.send("leave", "lobby")
    assert (await bob.next())["type"] == "ok"
    await alice.send("presence", "lobby")
    assert (await alice.next("presence"))["data"] == "1"
    await alice.send("chan_in", "after", "lobby")
    assert (await alice.next("chan_out"))["data"] == "after"
    assert await bob.quiet(kinds=("chan_out",)) == []


@pytest.mark.parametrize("kind, data, channel, error", [
    ("chan_in", "x", None, "no channel was specified"),
    ("chan_in", "x", "db-notes", "you cannot write to database channel"),
    ("chan_in", "x", "DB-notes", "you cannot write to database channel"),
    ("dance", "x", None, "dance command not found"),
    ("join", "", None, "invalid channel name"),
    ("join", "x" * 200, None, "invalid channel name"),
])
async def test_refused_messages(api, connect, kind, data, channel, error):
    client = await connect(await api.register())
    await client.send(kind, data, channel)
    reply = await client.next()
    assert reply["type"] == "error" and error in reply["data"]


async def test_db_events_filtered_by_read_permission(api, connect):
    alice_token, bob_token = await api.register(), await api.register()
    alice, bob = await connect(alice_token), await connect(bob_token)
    root = await connect()
    await root.auth((await api.call("POST", "/login", json={"email": "admin@dev.com",
                                                            "password": "devpw1234"}))[1])
    for member in (alice, bob, root):
        for channel in ("db-notes", "db-board_744_"):
            assert (await member.join(channel))["type"] == "ok"
    _, note = await api.call("POST", "/db/notes", alice_token, json={"text": "private"})
    created = await alice.next("db_created")
    assert json.loads(created["data"]) == note and created["channel"] == "db-notes"
    assert json.loads((await root.next("db_created"))["data"])["id"] == note["id"]
    assert await bob.quiet(kinds=("db_created",)) == []

    _, post = await api.call("POST", "/db/board_744_", alice_token, json={"text": "public"})
    for member in (alice, bob):
        assert json.loads((await member.next("db_created"))["data"])["id"] == post["id"]
    await api.call("PUT", f"/inc/board_744_/{post['id']}", alice_token, json={"field": "likes", "range": 1})
    assert json.loads((await bob.next("db_updated"))["data"])["likes"] == 1
    await api.call("DELETE", f"/db/board_744_/{post['id']}", alice_token)
    deleted = json.loads((await bob.next("db_deleted"))["data"])
    assert deleted["id"] == post["id"] and deleted["likes"] == 1


async def test_root_publishes_custom_types(api, connect):
    member = await connect(await api.register())
    await member.join("lobby")
    assert await api.root("POST", "/publish-message",
                          json={"channel": "lobby", "type": "event", "data": {"n": 1}}) == (200, True)
    frame = await member.next("event")
    assert (frame["data"], frame["sid"]) == ('{"n":1}', "user-msg")
    status, text = await api.call("POST", "/publish-message", await api.register(),
                                  json={"channel": "lobby", "type": "event", "data": "x"})
    assert status == 400 and "invalid root token" in text
    status, text = await api.root("POST", "/publish-message", json={"channel": "", "type": "event"})
    assert status == 400


async def test_server_only_channel(api, connect):
    assert (await api.root("PUT", "/channels/news", json={"publish": "server"}))[1]["publish"] == "server"
    member = await connect(await api.register())
    await member.join("news")
    await member.send("chan_in", "x", "news")
    assert "read-only" in (await member.next("error"))["data"]
    await api.root("POST", "/publish-message", json={"channel": "news", "type": "headline", "data": "y"})
    assert (await member.next("headline"))["data"] == "y"


async def test_history_is_replayed_in_order_after_ok(api, connect):
    await api.root("PUT", "/channels/room-*", json={"history": 3})
    writer = await connect(await api.register())
    for n in range(5):
        await writer.send("chan_in", f"m{n}", "room-1")
        await writer.next("ok")
    await api.client.server.app[CHANNELS_KEY].flush()
    reader = await connect(await api.register())
    await reader.send("join", "room-1")
    frames = [await reader.next() for _ in range(5)]
    assert [f["type"] for f in frames] == ["ok", "chan_out", "chan_out", "chan_out", "joined"]
    assert [f["data"] for f in frames[1:4]] == ["m2", "m3", "m4"]
    assert all(f.get("history") is True for f in frames[1:4])
    assert "history" not in frames[0] and "history" not in frames[4]


async def test_history_includes_everything_published_before_the_join(api, connect):
    await api.root("PUT", "/channels/ticker", json={"history": 3, "publish": "server"})
    reader = await connect(await api.register())
    for attempt in range(10):  # no waiting between the publishes and the join
        channel = "ticker"
        for n in range(4):
            await api.root("POST", "/publish-message",
                           json={"channel": channel, "type": "tick", "data": f"{attempt}.{n}"})
        assert (await reader.join(channel))["type"] == "ok"
        replay = [await reader.next() for _ in range(3)]
        assert [f["data"] for f in replay] == [f"{attempt}.{n}" for n in (1, 2, 3)]
        await reader.send("leave", channel)
        await reader.next("ok")


async def test_a_client_that_goes_away_is_forgotten(api, connect):
    token = await api.register()
    stays, leaves = await connect(token), await connect(token)
    for client in (stays, leaves):
        await client.join("room")
    await leaves.close()
    async with asyncio.timeout(5):
        while True:
            await stays.send("presence", "room")
            if (await stays.next("presence"))["data"] == "1":
                break
            await asyncio.sleep(0.1)


async def test_history_survives_a_restart(aiohttp_client, tmp_path, transport):
    config = make_config(tmp_path)
    first = Api(await aiohttp_client(create_app(config)))
    await first.root("PUT", "/channels/log", json={"history": 2, "publish": "server"})
    for n in range(3):
        await first.root("POST", "/publish-message", json={"channel": "log", "type": "entry", "data": f"e{n}"})
    token = await first.register()
    await first.client.close()  # shuts the app down: pending history writes are flushed

    second = Api(await aiohttp_client(create_app(config)))
    client = await CLIENTS[transport](second.client.session, base_url(second)).open()
    try:
        await client.auth(token)
        assert (await client.join("log"))["type"] == "ok"
        replay = [await client.next() for _ in range(2)]
        assert [(f["type"], f["data"], f["history"]) for f in replay] == [("entry", "e1", True), ("entry", "e2", True)]
    finally:
        await client.close()


@pytest.mark.parametrize("limit, value", [("realtime_max_channels", 2), ("realtime_max_messages_per_second", 3)])
async def test_limits_answer_errors(aiohttp_client, tmp_path, transport, limit, value):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, **{limit: value}))))
    client = await CLIENTS[transport](api.client.session, base_url(api)).open()
    try:
        await client.auth(await api.register())
        for n in range(6):
            await client.send("join", f"c{n}")
        replies = [f for f in await client.quiet(0.5) if f["type"] in ("ok", "error")]
        errors = [f["data"] for f in replies if f["type"] == "error"]
        assert len([f for f in replies if f["type"] == "ok"]) <= value and errors
        expected = "too many channels" if limit == "realtime_max_channels" else "rate limit exceeded"
        assert all(expected in e for e in errors)
        hub = api.client.server.app[HUB]
        if limit == "realtime_max_messages_per_second":
            assert hub.stats["rate_limited"] == len(errors)
    finally:
        await client.close()


async def test_connections_per_user_are_bounded(aiohttp_client, tmp_path, transport):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, realtime_max_connections_per_user=1))))
    token = await api.register()
    first = await CLIENTS[transport](api.client.session, base_url(api)).open()
    second = await CLIENTS[transport](api.client.session, base_url(api)).open()
    try:
        assert (await first.auth(token))["type"] == "token"
        assert "too many realtime connections" in (await second.auth(token))["data"]
        await asyncio.wait_for(second.ended.wait(), 5)
    finally:
        await first.close()
        await second.close()


async def test_sse_message_checks(api, connect, transport):
    if transport != "sse":
        pytest.skip("POST /sse/msg is the SSE transport's")
    client = await connect(await api.register())
    assert (await client.post({"sid": "nope", "type": "echo"}))[0] == 404
    status, text = await client.post({"sid": client.sid, "token": "someone-else", "type": "join", "data": "x"})
    assert status == 401 and "does not match" in text
    async with api.client.session.post(base_url(api) + "/sse/msg", data=b"{nope",
                                       headers={"SB-PUBLIC-KEY": api.pk}) as resp:
        assert resp.status == 400
    await client.close()
    await asyncio.sleep(0.1)
    assert (await client.post({"sid": client.sid, "token": client.token, "type": "echo"}))[0] == 404


async def test_channel_rules_api(api):
    assert await api.root("GET", "/channels") == (200, [])
    assert await api.root("PUT", "/channels/vip-*", json={"auth": True, "history": 5}) == \
        (200, {"name": "vip-*", "auth": True, "publish": "members", "history": 5})
    assert (await api.root("GET", "/channels/vip-*"))[1]["history"] == 5
    for body, message in [({"history": -1}, "history"), ({"publish": "all"}, "publish"),
                          ({"auth": "yes"}, "auth"), ({"colour": 1}, "unknown"), ([1], "invalid body")]:
        status, text = await api.root("PUT", "/channels/vip-*", json=body)
        assert status == 400 and message in text
    assert (await api.root("GET", "/channels/vip-*"))[1]["history"] == 5
    status, _ = await api.call("PUT", "/channels/x", await api.register(), json={})
    assert status == 400
    assert await api.root("DELETE", "/channels/vip-*") == (200, True)
    assert (await api.root("DELETE", "/channels/vip-*"))[0] == 404
    assert (await api.root("GET", "/channels/vip-*"))[0] == 404


async def test_a_client_that_never_reads_is_cut_off_and_others_get_everything(aiohttp_client, tmp_path, transport):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, realtime_max_outgoing_bytes=256 * 1024,
                                                           publish_limit_burst=1000))))
    token = await api.register()
    fast = await CLIENTS[transport](api.client.session, base_url(api)).open()
    await fast.auth(token)
    await fast.join("firehose")
    stalled = await _stalled_member(api, transport, token, "firehose")
    hub = api.client.server.app[HUB]
    try:
        await publish_firehose(api, fast, "firehose")
        assert hub.stats["slow_consumers_disconnected"] == 1
        assert hub.member_count(hub.connection(fast.sid).app_id, "firehose") == 1
    finally:
        await fast.close()
        await stalled()


async def _stalled_member(api: Api, transport: str, token: str, channel: str):
    """A member that joins and then never reads; returns a function that closes it."""
    session, url = api.client.session, base_url(api)
    if transport == "ws":
        ws = await session.ws_connect(f"{url}/ws?sbpk={api.pk}", heartbeat=None)
        init = json.loads((await ws.receive()).data)
        await ws.send_str(json.dumps({"type": "auth", "data": token}))
        await ws.send_str(json.dumps({"type": "join", "data": channel}))
        await asyncio.sleep(0.2)
        assert init["type"] == "init"
        return ws.close
    response = await session.get(f"{url}/sse/connect?sbpk={api.pk}")
    await response.content.readline()
    await response.content.readline()
    sid = json.loads((await response.content.readline())[6:])["data"]
    for message in ({"type": "auth", "data": token}, {"type": "join", "data": channel}):
        async with session.post(f"{url}/sse/msg", json={"sid": sid, "token": token, **message},
                                headers={"SB-PUBLIC-KEY": api.pk}) as resp:
            assert resp.status == 200

    async def close() -> None:
        response.close()
    return close


async def test_oversized_messages_are_refused(aiohttp_client, tmp_path, transport):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, realtime_max_frame_bytes=1024))))
    client = await CLIENTS[transport](api.client.session, base_url(api)).open()
    try:
        await client.auth(await api.register())
        if transport == "sse":
            status, text = await client.post({"sid": client.sid, "token": client.token, "type": "echo",
                                              "data": "x" * 2000})
            assert status == 413 and "1024 bytes" in text
        else:
            await client.send("echo", "x" * 2000)
            await asyncio.wait_for(client.ended.wait(), 5)
            assert client.ws.close_code == 1009  # message too big
    finally:
        await client.close()


async def test_metrics_count_realtime_events(api, connect):
    client = await connect(await api.register())
    await client.join("lobby")
    await client.send("dance")
    await client.next("error")
    resp = await api.client.get("/metrics", headers={"Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    text = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert "sblite_realtime_connections 1" in text
    assert 'sblite_realtime_events_total{event="errors_sent"} 1' in text
    assert 'sblite_bus_messages_total{type="joined"} 1' in text
    assert (await api.call("GET", "/metrics", await api.register()))[0] == 400
