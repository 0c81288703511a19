"""user_created and user_deleted on `sys-users`: published by every path that creates or deletes a user,
without secrets, visible to root connections and to functions only."""

from __future__ import annotations

import json

import pytest

from sblite.http.keys import ACCOUNTS, BUS
from sblite.model import Message
from tests.conftest import Api
from tests.function_helpers import EVAL_SOURCE, add_function, eventually, evaluate, wait_runs
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_PK

PUBLIC_KEYS = {"id", "accountId", "email", "role", "created"}


async def _root_session(api: Api) -> str:
    """A session token of the dev app's root user (role 100), for a realtime connection."""
    status, token = await api.call("POST", "/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD})
    assert status == 200, token
    return token


def _bus_log(api: Api) -> list[Message]:
    """Every message the app's bus delivers from now on."""
    seen: list[Message] = []
    api.client.server.app[BUS].subscribe(seen.append)
    return seen


def _user_events(seen: list[Message]) -> list[tuple[str, str, dict]]:
    return [(m.type, m.channel, json.loads(m.data)) for m in seen if m.type in ("user_created", "user_deleted")]


async def test_every_path_publishes_without_secrets(api, clients):
    root = await clients(api, "sse", await _root_session(api))
    assert (await root.join("sys-users"))["type"] == "ok"

    status, owner = await api.call("POST", "/register", json={"email": "Owner@Example.com", "password": "owner-pw-1"})
    assert status == 200
    created = await root.next("user_created")
    assert created["channel"] == "sys-users"
    user = json.loads(created["data"])
    assert set(user) == PUBLIC_KEYS and (user["email"], user["role"]) == ("owner@example.com", 50)
    assert "owner-pw-1" not in created["data"]
    status, me = await api.call("GET", "/me", owner)
    assert (user["id"], user["accountId"]) == (me["id"], me["accountId"])

    status, member = await api.call("POST", "/account/users", owner, json={"email": "m@example.com",
                                                                          "password": "member-pw-1"})
    assert status == 200, member
    added = json.loads((await root.next("user_created"))["data"])
    assert added == member and set(added) == PUBLIC_KEYS and added["role"] == 0

    assert await api.call("DELETE", f"/account/users/{member['id']}", owner) == (200, True)
    deleted = await root.next("user_deleted")
    assert (deleted["channel"], json.loads(deleted["data"])) == ("sys-users", member)


async def test_account_init_publishes_in_the_new_app(api):
    seen = _bus_log(api)
    resp = await api.client.get("/account/init?email=founder@example.com&ui=1")
    assert resp.status == 200
    credentials = await resp.json()
    events = [m for m in seen if m.type == "user_created"]
    assert len(events) == 1
    user = json.loads(events[0].data)
    assert (events[0].channel, user["email"], user["role"]) == ("sys-users", "founder@example.com", 100)
    assert set(user) == PUBLIC_KEYS and credentials["pw"] not in events[0].data
    assert credentials["rootToken"].split("|")[-1] not in events[0].data  # the per-user token stays secret
    accounts = api.client.server.app[ACCOUNTS]
    new_app, dev_app = await accounts.app_for_pk(credentials["pk"]), await accounts.app_for_pk(DEV_PK)
    assert events[0].app_id == new_app.id != dev_app.id
    assert events[0].identity is not None and events[0].identity.user_id == user["id"]  # acts as the new root


async def test_failed_changes_publish_nothing(api):
    token = await api.register("taken@example.com")
    seen = _bus_log(api)
    status, _ = await api.call("POST", "/register", json={"email": "taken@example.com", "password": "secret-pw"})
    assert status == 400
    status, _ = await api.call("POST", "/account/users", token, json={"email": "taken@example.com",
                                                                      "password": "secret-pw"})
    assert status == 400
    status, _ = await api.call("DELETE", "/account/users/no-such-user", token)
    assert status == 404
    status, _ = await api.call("POST", "/register", json={"email": "short@example.com", "password": "x"})
    assert status == 400
    assert _user_events(seen) == []


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_only_root_connections_see_account_events(api, clients, transport):
    token = await api.register()
    member = await clients(api, transport, token)
    refused = await member.join("sys-users")
    assert refused["type"] == "error" and "only root" in refused["data"]
    assert (await member.join("SYS-users"))["type"] == "error"  # the prefix in any case
    anonymous = await clients(api, transport)
    assert (await anonymous.join("sys-users"))["type"] == "error"
    await member.send("chan_in", "forged", "sys-users")
    assert "system channel" in (await member.next("error"))["data"]

    await api.register()
    assert await member.quiet(0.3, ("user_created",)) == []


async def test_nobody_but_the_server_publishes_on_system_channels(api):
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    for call in ('publish("sys-users", "user_created", {})', 'send("user_deleted", {}, "sys-users")',
                 'publish("sys-anything", "t", 1)'):
        answer = await evaluate(api, token, call)
        assert answer["ok"] is False and "system channel" in answer["content"], (call, answer)
    status, text = await api.root("POST", "/publish-message", {"channel": "sys-users", "type": "user_created",
                                                               "data": "{}"})
    assert status == 400 and "system channel" in text


async def test_functions_subscribe_by_type_and_run_as_the_new_user(api):
    code = """function handle(body) {
        var user = JSON.parse(body.data);
        var res = create("profiles", {userId: user.id, email: user.email, channel: body.channel});
        if (!res.ok) throw new Error(res.content);
    }"""
    await add_function(api, "on_signup", code, "user_created")
    await add_function(api, "on_leave", "function handle(channel, type, data) { log(type, data.email); }",
                       "user_deleted")
    token = await api.register("newcomer@example.com")
    await wait_runs(api, "on_signup", 1)

    async def profile() -> dict | None:
        status, page = await api.call("GET", "/db/profiles", token)
        assert status == 200, page
        return page["results"][0] if page["total"] else None

    doc = await eventually(profile, what="the profile the function created")
    status, me = await api.call("GET", "/me", token)
    assert (doc["userId"], doc["email"], doc["channel"]) == (me["id"], "newcomer@example.com", "sys-users")
    assert doc["ownerId"] == me["id"]  # written as the new user

    status, member = await api.call("POST", "/account/users", token, json={"email": "gone@example.com",
                                                                          "password": "secret-pw"})
    assert status == 200
    assert await api.call("DELETE", f"/account/users/{member['id']}", token) == (200, True)
    runs = await wait_runs(api, "on_leave", 1)
    assert runs[0]["success"] and "user_deleted gone@example.com" in runs[0]["output"]

