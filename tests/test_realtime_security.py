"""Realtime connections cannot be taken over by someone who learns their id (issue 11).

Members see each other under a public alias that no /sse/msg call can address; a connection
bound to a user stays that user's; every posted message must carry the token the connection
authenticated with (before auth: the token its first message carried). Failed `auth` attempts
are throttled per client address, with /login's limits, and per connection.
"""

from __future__ import annotations

import pytest

from sblite.app import create_app
from sblite.http.keys import HUB
from sblite.services.realtime import AUTH_FAILURES_PER_CONNECTION
from tests.conftest import Api, make_config
from tests.function_helpers import base_url, open_client
from tests.realtime_clients import CLIENTS, RealtimeClient, SseClient
from tests.support import DEV_ROOT_TOKEN


async def raw_post(api: Api, message: dict, bearer: str | None = None) -> tuple[int, str]:
    """POST /sse/msg as anyone may: any body, any Authorization header."""
    headers = {"SB-PUBLIC-KEY": api.pk}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    async with api.client.session.post(f"{base_url(api)}/sse/msg", json=message, headers=headers) as resp:
        return resp.status, await resp.text()


async def metrics_text(api: Api) -> str:
    """The /metrics page."""
    resp = await api.client.get("/metrics", headers=api.headers(DEV_ROOT_TOKEN))
    assert resp.status == 200
    return await resp.text()


def metric(text: str, series: str) -> int:
    """The value of one series of a /metrics page (0 when absent)."""
    return next((int(row[len(series) + 1:]) for row in text.splitlines() if row.startswith(series + " ")), 0)


def counter(text: str, event: str) -> int:
    """One realtime event counter of a /metrics page."""
    return metric(text, f'sblite_realtime_events_total{{event="{event}"}}')


async def seen_ids(victim: RealtimeClient, watcher: RealtimeClient, channel: str = "lobby") -> set[str]:
    """Every id the watcher learns of the victim: its `joined` data and sid, its `chan_out` sid."""
    assert (await victim.join(channel))["type"] == "ok"
    joined = await watcher.next("joined")
    await victim.send("chan_in", "hello", channel)
    out = await watcher.next("chan_out")
    return {joined["data"], joined["sid"], out["sid"]}


async def still_receives(victim: RealtimeClient, sender: RealtimeClient, channel: str = "lobby") -> None:
    """The victim still gets what is published on the channel."""
    await sender.send("chan_in", "are you there?", channel)
    assert (await victim.next("chan_out"))["data"] == "are you there?"


@pytest.mark.parametrize("victim_transport", sorted(CLIENTS))
async def test_a_member_cannot_take_over_a_connection_it_saw(api, clients, victim_transport):
    victim_token, attacker_token = await api.register(), await api.register()
    victim = await clients(api, victim_transport, victim_token)
    attacker = await clients(api, "sse", attacker_token)
    assert (await attacker.join("lobby"))["type"] == "ok"
    await attacker.next("joined")
    seen = await seen_ids(victim, attacker)
    await victim.next("chan_out")

    # The attack: re-bind the victim's connection to the attacker, then leave the channel for it.
    for sid in seen | {victim.sid}:  # even the real id, as if it had leaked some other way
        for message in ({"sid": sid, "token": attacker_token, "type": "auth", "data": attacker_token},
                        {"sid": sid, "token": attacker_token, "type": "leave", "data": "lobby"},
                        {"sid": sid, "type": "leave", "data": "lobby"}):
            status, _ = await raw_post(api, message, attacker_token)
            assert status in (401, 404), (sid == victim.sid, message)

    connection = api.client.server.app[HUB].connection(victim.sid)
    assert connection.identity.user_id != (await api.call("GET", "/me", attacker_token))[1]["id"]
    assert connection.channels == {"lobby"}
    await still_receives(victim, attacker)


@pytest.mark.parametrize("transport", sorted(CLIENTS))
async def test_members_see_an_alias_and_each_connection_sees_itself(api, clients, transport):
    alice = await clients(api, transport, await api.register())
    bob = await clients(api, transport, await api.register())
    assert (await bob.join("lobby"))["type"] == "ok"
    assert (await bob.next("joined"))["data"] == bob.sid
    seen = await seen_ids(alice, bob)
    assert len(seen) == 1 and alice.sid not in seen
    alias = seen.pop()
    assert len(alias) == len(alice.sid)
    own_joined = await alice.next("joined")
    assert (own_joined["data"], own_joined["sid"]) == (alice.sid, alice.sid)
    assert (await alice.next("chan_out"))["sid"] == alice.sid  # `pl.sid === sb.wsId` marks one's own messages
    if transport == "sse":
        assert (await raw_post(api, {"sid": alias, "type": "echo"}))[0] == 404


async def test_a_websocket_cannot_be_driven_through_sse_msg(api, clients):
    token = await api.register()
    ws = await clients(api, "ws", token)
    for message in ({"sid": ws.sid, "token": token, "type": "leave", "data": "lobby"},
                    {"sid": ws.sid, "type": "auth", "data": token},
                    {"sid": ws.sid, "type": "echo"}):
        status, text = await raw_post(api, message, token)
        assert status == 404 and "unknown or closed connection" in text
    assert await ws.quiet(0.2) == []


@pytest.mark.parametrize("transport", sorted(CLIENTS))
async def test_a_bound_connection_is_not_rebound_to_another_user(api, clients, transport):
    own_token, other_token = await api.register(), await api.register()
    client = await clients(api, transport, own_token)
    before = counter(await metrics_text(api), "refused_rebind")
    if transport == "sse":  # the owner's own key, another user's token as data
        status, _ = await client.post({"sid": client.sid, "token": own_token, "type": "auth", "data": other_token})
        assert status == 200
    else:
        await client.send("auth", other_token)
    refused = await client.next()
    assert refused["type"] == "error" and "another user" in refused["data"]
    assert counter(await metrics_text(api), "refused_rebind") == before + 1
    assert (await client.auth(own_token))["type"] == "token"  # the same user again is fine
    assert (await client.join("lobby"))["type"] == "ok"


@pytest.mark.parametrize("kind, data, channel", [
    ("echo", "x", None), ("auth", "{token}", None), ("join", "lobby", None), ("leave", "lobby", None),
    ("chan_in", "x", "lobby"), ("presence", "lobby", None), ("dance", "x", None),
])
@pytest.mark.parametrize("token, bearer", [
    (None, None), ("", None), ("someone-else", None), ("{other}", "{other}"), (None, "{other}"),
    ("{own}", "{other}"),
])
async def test_every_posted_message_carries_the_connections_token(api, clients, kind, data, channel,
                                                                  token, bearer):
    own, other = await api.register(), await api.register()
    client = await clients(api, "sse", own)
    fill = {"{own}": own, "{other}": other, "{token}": own}
    message = {"sid": client.sid, "type": kind, "data": fill.get(data, data)}
    if token is not None:
        message["token"] = fill.get(token, token)
    if channel:
        message["channel"] = channel
    status, text = await raw_post(api, message, fill.get(bearer, bearer))
    assert status == 401 and "does not match" in text
    assert await client.quiet(0.2) == []
    message["token"] = own
    assert (await raw_post(api, message, own))[0] == 200


async def test_before_auth_a_connection_answers_only_to_the_token_it_first_sent(api, clients):
    assert (await api.root("PUT", "/channels/open-*", json={"auth": False}))[0] == 200
    owner = await clients(api, "sse")
    owner.token = "not-a-valid-session-token"  # what the real client sends when its token is bad
    await owner.send("auth", "not-a-valid-session-token")
    assert (await owner.next())["data"] == "invalid token"
    attacker_token = await api.register()
    for message in ({"type": "join", "data": "open-room"}, {"type": "echo", "data": "x"},
                    {"type": "auth", "data": attacker_token, "token": attacker_token},
                    {"type": "join", "data": "open-room", "token": attacker_token}):
        status, _ = await raw_post(api, {"sid": owner.sid, **message}, message.get("token"))
        assert status == 401, message
    assert await owner.quiet(0.2) == []
    assert (await owner.join("open-room"))["type"] == "ok"  # the owner, anonymous, still can


async def test_an_unclaimed_connection_is_claimed_by_its_first_message(api, clients):
    owner: SseClient = await clients(api, "sse")
    await owner.send("echo", "first")  # no token at all: the connection answers to none
    assert (await owner.next("echo"))["data"] == "echo: first"
    token = await api.register()
    status, _ = await raw_post(api, {"sid": owner.sid, "token": token, "type": "auth", "data": token}, token)
    assert status == 401
    assert api.client.server.app[HUB].connection(owner.sid).identity is None


# --- failed auth attempts are throttled per client address (shared with /login) and per connection


async def try_auth(client: RealtimeClient, data: str) -> dict:
    """Send `auth` with `data`, keeping the token the connection answers to; the reply frame."""
    await client.send("auth", data)
    return await client.next(("token", "error"))


def auth_attempts(text: str, outcome: str) -> int:
    """Realtime auth attempts of one outcome on a /metrics page."""
    return metric(text, f'sblite_auth_attempts_total{{action="realtime",outcome="{outcome}"}}')


@pytest.mark.parametrize("transport", sorted(CLIENTS))
async def test_failed_auth_is_throttled_per_address(aiohttp_client, tmp_path, transport):
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, auth_throttle_address_failures=3))))
    token = await api.register()
    opened = [await open_client(api, transport) for _ in range(3)]
    try:
        for n, client in enumerate(opened):
            client.token = "not-a-token"  # SSE: the token every message of this connection carries
            assert (await try_auth(client, f"bad-{n}"))["data"] == "invalid token"
        refused = await try_auth(opened[0], token)  # even a good token, until the address cools down
        assert refused["type"] == "error" and "try again in" in refused["data"], refused
        status, text = await api.call("POST", "/login", json={"email": "x@example.com", "password": "nope"})
        assert status == 429, text  # the same limits as sign-in
        page = await metrics_text(api)
        assert (auth_attempts(page, "failed"), auth_attempts(page, "refused")) == (3, 1)
        assert counter(page, "auth_throttled") == 1
    finally:
        for client in opened:
            await client.close()


@pytest.mark.parametrize("transport", sorted(CLIENTS))
async def test_failed_auth_is_throttled_per_connection(api, clients, transport):
    client = await clients(api, transport)
    client.token = "not-a-token"
    for n in range(AUTH_FAILURES_PER_CONNECTION):
        assert (await try_auth(client, f"bad-{n}"))["data"] == "invalid token"
    token = await api.register()
    refused = await try_auth(client, token)
    assert refused["type"] == "error" and "on this connection: try again in" in refused["data"]
    fresh = await clients(api, transport)
    assert (await fresh.auth(token))["type"] == "token"  # the address is not blocked
