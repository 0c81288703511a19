"""Server-side functions (DESIGN §6, spec §4): management, triggers, web calls, host API, durability."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime, UTC

import pytest
from aiohttp import web

from sblite.app import create_app
from sblite.functions.host import MAX_DEPTH
from sblite.http.keys import ACCOUNTS, BUS, DATABASE, DISPATCHER, HUB
from sblite.model import Message
from sblite.store import DatabaseClosed
from tests.conftest import Api, make_config
from tests.function_helpers import (
    EVAL_SOURCE, add_function, eventually, evaluate, exec_fn, info, logged, logged_json, open_client,
    queued_jobs, update_function, wait_runs,
)
from tests.realtime_clients import CLIENTS, RealtimeClient
from tests.support import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, DEV_PK

TRACE = "function handle(body) { log(JSON.stringify(body)); }"
ECHO = "function handle(body, query, headers) { return {body: body, query: query, headers: headers}; }"


async def make_api(aiohttp_client, tmp_path, **overrides) -> Api:
    """An Api over an app built with config overrides."""
    return Api(await aiohttp_client(create_app(make_config(tmp_path, **overrides))))


# --- 1. management API


async def test_add_answers_the_function_and_refuses_a_duplicate(api):
    code = "function handle() { return 1; }"
    added = await add_function(api, "hello", code)
    assert (added["name"], added["trigger"], added["version"], added["code"]) == ("hello", "web", 1, code)
    assert isinstance(added["id"], str) and added["id"]
    status, text = await api.root("POST", "/fn/add", json={"name": "hello", "trigger": "web", "code": code})
    assert status == 409 and "hello" in text
    # the first one is untouched
    assert (await info(api, "hello"))["version"] == 1


@pytest.mark.parametrize("code, line", [
    ("function handle() {\n  return 1 +;\n}", 2),
    ("function handle() {\n  var x = ;\n}", 2),
    ("x = 'unterminated", 1),
    ("function handle() { return 1; }\n}", 2),
    ("\n\n\nfunction handle( {", 4),
])
async def test_a_syntax_error_is_refused_naming_its_line(api, code, line):
    status, text = await api.root("POST", "/fn/add", json={"name": "broken", "trigger": "web", "code": code})
    assert status == 400 and "SyntaxError" in text and f"line {line}" in text, (status, text)
    assert (await api.root("GET", "/fn/info/broken"))[0] == 404


async def test_code_that_only_compiles_inside_a_wrapper_is_refused(api):
    # Balanced against a `function anonymous() {...}` wrapper, but not a valid program on its own.
    code = "function handle() { return 1; }\n});\n(function() {"
    status, text = await api.root("POST", "/fn/add", json={"name": "sneaky", "trigger": "web", "code": code})
    assert status == 400 and "line 2" in text, (status, text)


BAD_ADD_BODIES = [
    ({"name": "", "trigger": "web", "code": "function handle() {}"}, "name"),
    ({"name": "has space", "trigger": "web", "code": "function handle() {}"}, "name"),
    ({"name": "a/b", "trigger": "web", "code": "function handle() {}"}, "name"),
    ({"name": "x" * 65, "trigger": "web", "code": "function handle() {}"}, "name"),
    ({"name": 7, "trigger": "web", "code": "function handle() {}"}, "name"),
    ({"trigger": "web", "code": "function handle() {}"}, "name"),
    ({"name": "f", "trigger": "", "code": "function handle() {}"}, "trigger"),
    ({"name": "f", "trigger": 5, "code": "function handle() {}"}, "trigger"),
    ({"name": "f", "code": "function handle() {}"}, "trigger"),
    ({"name": "f", "trigger": "x" * 200, "code": "function handle() {}"}, "trigger"),
    ({"name": "f", "trigger": "bad\nchannel", "code": "function handle() {}"}, "trigger"),
    ({"name": "f", "trigger": "web", "code": ""}, "code"),
    ({"name": "f", "trigger": "web", "code": "  \n "}, "code"),
    ({"name": "f", "trigger": "web"}, "code"),
    ({"name": "f", "trigger": "web", "code": 12}, "code"),
    ([{"name": "f"}], "body"),
]


async def test_add_refuses_bad_bodies(api):
    problems = []
    for body, word in BAD_ADD_BODIES:
        status, text = await api.root("POST", "/fn/add", json=body)
        if status != 400 or word not in text:
            problems.append((body, status, text))
    assert problems == []
    assert await api.root("GET", "/fn") == (200, [])


async def test_update_by_name_or_id_bumps_the_version_and_runs_the_new_code_at_once(api):
    user = await api.register()
    added = await add_function(api, "greet", "function handle() { return 'v1'; }")
    assert await exec_fn(api, "greet", user) == (200, "v1")

    updated = await update_function(api, {"name": "greet", "code": "function handle() { return 'v2'; }"})
    assert (updated["id"], updated["version"], updated["trigger"]) == (added["id"], 2, "web")
    assert await exec_fn(api, "greet", user) == (200, "v2")

    updated = await update_function(api, {"id": added["id"], "code": "function handle() { return 'v3'; }"})
    assert updated["version"] == 3
    assert await exec_fn(api, "greet", user) == (200, "v3")

    # a syntax error changes nothing
    status, text = await api.root("POST", "/fn/update", json={"name": "greet", "code": "function handle( {"})
    assert status == 400 and "line" in text
    assert (await info(api, "greet"))["version"] == 3
    assert await exec_fn(api, "greet", user) == (200, "v3")

    noop = "function handle() {}"
    for body in ({"name": "nope", "code": noop}, {"id": "no-such-id", "code": noop}):
        status, _ = await api.root("POST", "/fn/update", json=body)
        assert status == 404
    for body in ({"name": "greet", "trigger": 5}, {"name": "greet", "code": ""}, {"name": "greet", "code": 3}):
        status, _ = await api.root("POST", "/fn/update", json=body)
        assert status == 400, body
    assert (await info(api, "greet"))["version"] == 3

    # code and trigger at once
    updated = await update_function(api, {"name": "greet", "trigger": "lobby",
                                          "code": 'function handle(b) { log("got " + b.data); }'})
    assert (updated["version"], updated["trigger"]) == (4, "lobby")
    assert await api.root("POST", "/publish-message", json={"channel": "lobby", "type": "t", "data": "m"}) \
        == (200, True)
    run = (await wait_runs(api, "greet", 5))[0]  # after four web calls
    assert (logged(run), run["version"], run["trigger"]) == (["got m"], 4, "lobby")


async def test_a_message_function_uses_new_code_and_trigger_on_the_very_next_message(api):
    added = await add_function(api, "watcher", 'function handle(body) { log("v1:" + body.data); }', "tick")

    async def publish(kind: str, data: str) -> None:
        assert await api.root("POST", "/publish-message", json={"channel": "clock", "type": kind, "data": data}) \
            == (200, True)

    await publish("tick", "a")
    assert logged((await wait_runs(api, "watcher", 1))[0]) == ["v1:a"]

    await update_function(api, {"name": "watcher", "code": 'function handle(body) { log("v2:" + body.data); }'})
    await publish("tick", "b")
    history = await wait_runs(api, "watcher", 2)
    assert (logged(history[0]), history[0]["version"]) == (["v2:b"], 2)

    updated = await update_function(api, {"id": added["id"], "trigger": "tock"})
    assert (updated["trigger"], updated["version"]) == ("tock", 3)
    await publish("tick", "c")  # the old trigger no longer fires it
    await publish("tock", "d")
    history = await wait_runs(api, "watcher", 3)
    assert [logged(run) for run in history] == [["v2:d"], ["v2:b"], ["v1:a"]]
    assert [run["version"] for run in history] == [3, 2, 1]


@pytest.mark.parametrize("method, prefix", [
    ("GET", "/fn/del/"), ("POST", "/fn/del/"), ("GET", "/fn/delete/"), ("DELETE", "/fn/delete/"),
])
async def test_delete_by_either_route(api, method, prefix):
    user = await api.register()
    await add_function(api, "doomed", "function handle() { return 1; }")
    await add_function(api, "stays", "function handle() { return 2; }")
    await exec_fn(api, "doomed", user)
    assert await api.root(method, prefix + "doomed") == (200, True)
    assert (await api.root("GET", "/fn/info/doomed"))[0] == 404
    assert (await exec_fn(api, "doomed", user))[0] == 404
    assert [f["name"] for f in (await api.root("GET", "/fn"))[1]] == ["stays"]
    assert (await api.root(method, prefix + "doomed"))[0] == 404
    # the name is free again, and the new function starts with no history
    again = await add_function(api, "doomed", "function handle() { return 3; }")
    assert again["version"] == 1 and (await info(api, "doomed"))["history"] == []
    assert await exec_fn(api, "doomed", user) == (200, 3)


async def test_list_and_info(api):
    user = await api.register()
    first = await add_function(api, "alpha", 'function handle(b) { log("n=" + b.n); return b.n; }')
    await add_function(api, "beta", TRACE, "lobby")
    status, listed = await api.root("GET", "/fn")
    assert status == 200 and sorted(f["name"] for f in listed) == ["alpha", "beta"]
    assert {f["name"]: f["trigger"] for f in listed} == {"alpha": "web", "beta": "lobby"}
    for n in range(3):
        assert await exec_fn(api, "alpha", user, {"n": n}) == (200, n)
    shown = await info(api, "alpha")
    assert (shown["id"], shown["name"], shown["trigger"], shown["version"]) == (first["id"], "alpha", "web", 1)
    assert [logged(run) for run in shown["history"]] == [["n=2"], ["n=1"], ["n=0"]]
    assert all(run["functionId"] == first["id"] for run in shown["history"])
    assert shown["lastRun"] == shown["history"][0]["completed"]
    assert (await api.root("GET", "/fn/info/nope"))[0] == 404


async def test_runs_filter_by_name_and_failure(api):
    user = await api.register()
    await add_function(api, "good", "function handle() { return 1; }")
    await add_function(api, "bad", 'function handle() { throw new Error("nope"); }')
    for name in ("good", "bad", "good"):
        await exec_fn(api, name, user)

    async def runs(query: str) -> list[tuple[str, bool]]:
        status, body = await api.root("GET", "/fn/runs" + query)
        assert status == 200, body
        return [(run["name"], run["success"]) for run in body]

    assert await runs("") == [("good", True), ("bad", False), ("good", True)]
    assert await runs("?name=good") == [("good", True), ("good", True)]
    assert await runs("?failed=1") == [("bad", False)]
    assert await runs("?name=bad&failed=1") == [("bad", False)]
    assert await runs("?name=good&failed=1") == []
    assert (await api.root("GET", "/fn/runs?name=missing"))[0] == 404


async def test_secrets_are_readable_by_functions_and_never_shown_in_full(api):
    user = await api.register()
    await add_function(api, "secretive", "function handle() { return {key: env.API_KEY, other: env.SHORT}; }")
    value = "s3cret-value-xyz-1234"
    for name, secret in (("API_KEY", value), ("SHORT", "abc")):
        assert await api.root("POST", "/fn/secrets", json={"name": name, "value": secret}) == (200, True)
    status, listed = await api.root("GET", "/fn/secrets")
    assert status == 200 and sorted(s["name"] for s in listed) == ["API_KEY", "SHORT"]
    for shown in listed:
        assert shown["value"] and value not in shown["value"] and "abc" not in shown["value"]
    assert await exec_fn(api, "secretive", user) == (200, {"key": value, "other": "abc"})

    # a new value is seen by the very next run; a deleted secret is gone
    assert await api.root("POST", "/fn/secrets", json={"name": "API_KEY", "value": "rotated-value-99"}) == (200, True)
    assert (await exec_fn(api, "secretive", user))[1]["key"] == "rotated-value-99"
    assert await api.root("DELETE", "/fn/secrets/API_KEY") == (200, True)
    assert await exec_fn(api, "secretive", user) == (200, {"other": "abc"})
    assert (await api.root("DELETE", "/fn/secrets/API_KEY"))[0] == 404
    assert [s["name"] for s in (await api.root("GET", "/fn/secrets"))[1]] == ["SHORT"]


async def test_bad_secrets_are_refused(api):
    bodies = [{"name": "1abc", "value": "x"}, {"name": "has-dash", "value": "x"}, {"name": "", "value": "x"},
              {"name": "OK", "value": 5}, {"name": "OK"}, ["OK", "x"]]
    answers = [(await api.root("POST", "/fn/secrets", json=body))[0] for body in bodies]
    assert answers == [400] * len(bodies)
    assert await api.root("GET", "/fn/secrets") == (200, [])


# --- 2. message triggers and calling conventions


@pytest.mark.parametrize("transport", sorted(CLIENTS))
async def test_one_parameter_gets_the_message_three_get_parsed_data(api, clients, transport):
    await add_function(api, "whole", TRACE, "lobby")
    await add_function(api, "parts", "function handle(channel, type, data) { log(JSON.stringify("
                                     "{channel: channel, type: type, data: data, dataType: typeof data})); }", "lobby")
    client = await clients(api, transport, await api.register())
    await client.send("chan_in", '{"text": "hi", "n": 2}', "lobby")
    assert (await client.next())["type"] == "ok"

    body = logged_json((await wait_runs(api, "whole", 1))[0])
    assert body["data"] == '{"text": "hi", "n": 2}'
    assert (body["channel"], body["type"], body["sid"]) == ("lobby", "chan_out", public_alias(api, client))
    parts = logged_json((await wait_runs(api, "parts", 1))[0])
    assert parts == {"channel": "lobby", "type": "chan_out", "data": {"text": "hi", "n": 2}, "dataType": "object"}


def public_alias(api: Api, client: RealtimeClient) -> str:
    """What functions (and other members) get as a connection's `sid`: never the id /sse/msg takes."""
    alias = api.client.server.app[HUB].connection(client.sid).public_id
    assert alias != client.sid
    return alias


async def _chan_in(ctx, channel="room", data='{"n": 1}'):
    await ctx["client"].send("chan_in", data, channel)
    assert (await ctx["client"].next(("ok", "error")))["type"] == "ok"


async def _join(ctx):
    assert (await ctx["client"].join("room"))["type"] == "ok"


async def _create(ctx, col="notes"):
    status, doc = await ctx["api"].call("POST", f"/db/{col}", ctx["token"], json={"text": "x"})
    assert status in (200, 201), doc
    ctx["doc"] = doc


async def _update(ctx):
    await _create(ctx)
    status, _ = await ctx["api"].call("PUT", f"/db/notes/{ctx['doc']['id']}", ctx["token"], json={"text": "y"})
    assert status == 200


async def _increment(ctx):
    await _create(ctx)
    status, _ = await ctx["api"].call("PUT", f"/inc/notes/{ctx['doc']['id']}", ctx["token"],
                                      json={"field": "n", "range": 2})
    assert status == 200


async def _delete(ctx):
    await _update(ctx)
    status, _ = await ctx["api"].call("DELETE", f"/db/notes/{ctx['doc']['id']}", ctx["token"])
    assert status == 200


async def _publish(ctx, channel="game", kind="score"):
    assert await ctx["api"].root("POST", "/publish-message", json={"channel": channel, "type": kind,
                                                                   "data": {"p": 1}}) == (200, True)


@pytest.mark.parametrize("trigger, action, channel, kind", [
    ("chan_out", _chan_in, "room", "chan_out"),
    ("chan_in", _chan_in, "room", "chan_out"),
    ("joined", _join, "room", "joined"),
    ("db_created", _create, "db-notes", "db_created"),
    ("db_updated", _update, "db-notes", "db_updated"),
    ("db_updated", _increment, "db-notes", "db_updated"),
    ("db_deleted", _delete, "db-notes", "db_deleted"),
    ("score", _publish, "game", "score"),
    ("lobby", lambda ctx: _chan_in(ctx, "lobby"), "lobby", "chan_out"),
    ("db-tasks", lambda ctx: _create(ctx, "tasks"), "db-tasks", "db_created"),
])
async def test_triggers_match_a_type_or_a_channel(api, clients, trigger, action, channel, kind):
    token = await api.register()
    client = await clients(api, "sse", token)
    await add_function(api, "traced", TRACE, trigger)
    ctx = {"api": api, "token": token, "client": client}
    # a message that matches neither the type nor the channel fires nothing
    assert await api.root("POST", "/publish-message", json={"channel": "elsewhere", "type": "noise"}) == (200, True)
    await action(ctx)
    history = await wait_runs(api, "traced", 1)
    assert len(history) == 1, [logged(run) for run in history]
    body = logged_json(history[0])
    assert (body["channel"], body["type"]) == (channel, kind)
    assert history[0]["success"] and history[0]["trigger"] == trigger
    if kind == "chan_out":
        assert (body["sid"], body["data"]) == (public_alias(api, client), '{"n": 1}')
    elif kind == "joined":
        assert body["data"] == public_alias(api, client)
    elif kind.startswith("db_"):
        assert json.loads(body["data"])["id"] == ctx["doc"]["id"]
    else:
        assert json.loads(body["data"]) == {"p": 1}


@pytest.mark.parametrize("trigger, action", [
    ("ping", lambda ctx: _publish(ctx, "ping", "ping")),
    ("chan_out", lambda ctx: _chan_in(ctx, "chan_out")),
    ("chan_in", lambda ctx: _chan_in(ctx, "chan_in")),
])
async def test_a_message_matching_by_type_and_channel_fires_once(api, clients, trigger, action):
    token = await api.register()
    await add_function(api, "once", TRACE, trigger)
    await action({"api": api, "token": token, "client": await clients(api, "ws", token)})
    history = await wait_runs(api, "once", 1)
    assert len(history) == 1


async def test_message_runs_act_as_the_sender(api, clients):
    code = 'function handle(body) { var r = create("said", {text: body.data}); log(JSON.stringify(r)); }'
    await add_function(api, "recorder", code, "lobby")
    alice = await api.register()
    _, me = await api.call("GET", "/me", alice)
    client = await clients(api, "sse", alice)
    await client.send("chan_in", "hello", "lobby")
    result = logged_json((await wait_runs(api, "recorder", 1))[0])
    assert result["ok"] is True
    doc = result["content"]
    assert (doc["text"], doc["accountId"], doc["ownerId"]) == ("hello", me["accountId"], me["id"])
    _, page = await api.call("GET", "/db/said", alice)
    assert [d["id"] for d in page["results"]] == [doc["id"]]
    _, page = await api.call("GET", "/db/said", await api.register())  # another account sees nothing
    assert page["total"] == 0

    # /publish-message runs as root
    assert await api.root("POST", "/publish-message", json={"channel": "lobby", "type": "x", "data": "r"}) \
        == (200, True)
    result = logged_json((await wait_runs(api, "recorder", 2))[0])
    assert result["ok"] is True and result["content"]["accountId"] != me["accountId"]


# --- 3. web functions


WEB_BODIES = [
    (json.dumps({"a": 1, "b": [1, "x"], "c": None}), "application/json", {"a": 1, "b": [1, "x"], "c": None}),
    ("a=1&b=x&b=y&c=", "application/x-www-form-urlencoded", {"a": "1", "b": "x, y", "c": ""}),
    ("just some text", "text/plain", "just some text"),
    (None, "application/json", None),
    (None, "text/plain", None),
]


async def test_web_body_kinds(api):
    await add_function(api, "echo", ECHO)
    token = await api.register()
    problems = []
    for data, content_type, expected in WEB_BODIES:
        status, got = await api.call("POST", "/fn/exec/echo", token, data=data,
                                     headers={"Content-Type": content_type})
        if status != 200 or got["body"] != expected:
            problems.append((data, content_type, status, got))
    assert problems == []


async def test_web_query_and_headers(api):
    await add_function(api, "echo", ECHO)
    token = await api.register()
    for method in ("GET", "POST"):
        status, got = await api.call(method, "/fn/exec/echo?a=1&a=2&b=x", token,
                                     headers={"X-Custom": "value", "Cookie": "session=secret"})
        assert status == 200, got
        assert got["body"] is None
        assert got["query"] == {"a": ["1", "2"], "b": ["x"]}
        headers = {k.lower(): v for k, v in got["headers"].items()}
        assert headers["x-custom"] == ["value"]
        assert headers["sb-public-key"] == [api.pk]
        assert "authorization" not in headers and token not in json.dumps(got)
        assert "cookie" not in headers and "secret" not in json.dumps(got)


RETURNS = [
    ("function handle() {}", None),
    ("function handle() { return; }", None),
    ("function handle() { return null; }", None),
    ("function handle() { return 42; }", 42),
    ('function handle() { return "text"; }', "text"),
    ("function handle() { return [1, {a: true}]; }", [1, {"a": True}]),
    ("function handle() { return {nested: {list: [], none: null}}; }", {"nested": {"list": [], "none": None}}),
]


async def test_web_return_value_is_json(api):
    token = await api.register()
    problems = []
    for n, (code, expected) in enumerate(RETURNS):
        await add_function(api, f"ret{n}", code)
        resp = await api.client.post(f"/fn/exec/ret{n}", headers=api.headers(token))
        text = await resp.text()
        if resp.status != 200 or resp.content_type != "application/json" or json.loads(text) != expected:
            problems.append((code, resp.status, resp.content_type, text))
    assert problems == []


SCOPE_SOURCE = """
var calls = 0;
topLevelGlobal = (typeof topLevelGlobal === "number" ? topLevelGlobal : 0) + 1;
var seenEnv = env.GREETING;
function handle() {
    calls++;
    var leakedBefore = typeof leakedGlobal;
    leakedGlobal = true;
    return {calls: calls, topLevelGlobal: topLevelGlobal, leakedBefore: leakedBefore, seenEnv: seenEnv};
}
"""


async def test_every_run_starts_from_a_clean_scope(api):
    status, body = await api.root("POST", "/fn/secrets", json={"name": "GREETING", "value": "hello"})
    assert status == 200, body
    await add_function(api, "scoped", SCOPE_SOURCE)
    token = await api.register()
    answers = [await exec_fn(api, "scoped", token) for _ in range(4)]  # the same worker serves some twice
    expected = {"calls": 1, "topLevelGlobal": 1, "leakedBefore": "undefined", "seenEnv": "hello"}
    assert answers == [(200, expected)] * 4


async def test_large_inputs_and_results_cross_to_the_worker_whole(api):
    token = await api.register()
    await add_function(api, "big", "function handle(body) { return {got: body.text.length, "
                                   "back: body.text.toUpperCase()}; }")
    text = "ab" * 450_000  # 900 KB: many times a pipe's buffer, within the 1 MiB limit
    status, answer = await api.call("POST", "/fn/exec/big", token, data=io.BytesIO(json.dumps({"text": text}).encode()))
    assert status == 200
    assert answer["got"] == len(text) and answer["back"] == text.upper()

    too_big = io.BytesIO(json.dumps({"text": "x" * (1024 * 1024 + 1)}).encode())
    status, answer = await api.call("POST", "/fn/exec/big", token, data=too_big)
    assert status == 500 and "larger than 1048576 bytes" in answer
    status, answer = await exec_fn(api, "big", token, {"text": "still works"})
    assert (status, answer) == (200, {"got": 11, "back": "STILL WORKS"})


async def test_web_errors(api):
    token = await api.register()
    await add_function(api, "thrower", 'function handle() { throw new Error("kaboom-42"); }')
    status, text = await api.root("POST", "/fn/add", json={"name": "nohandle", "trigger": "web", "code": "var x = 1;"})
    assert status == 400 and "does not define a function named handle" in text
    await add_function(api, "ok", "function handle() { return true; }")
    status, text = await exec_fn(api, "thrower", token)
    assert status == 500 and "kaboom-42" in text
    assert (await exec_fn(api, "missing", token))[0] == 404
    assert (await api.call("POST", "/fn/exec/ok", None))[0] == 401
    assert (await api.call("POST", "/fn/exec/ok", "not-a-token"))[0] in (400, 401)
    assert await exec_fn(api, "ok", token, method="GET") == (200, True)
    # the thrown error is recorded too
    run = (await info(api, "thrower"))["history"][0]
    assert run["success"] is False and "kaboom-42" in run["error"]


# --- 4. host API


CRUD = """
function handle(body) {
  var a = create("items", {n: 1, tag: "x"});
  var b = create("items", {n: 2, tag: "y"});
  var c = create("items", {n: 3, tag: "x"});
  return {
    created: [a, b, c],
    page1: list("items", {page: 1, size: 2}),
    page2: list("items", {page: 2, size: 2}),
    desc: list("items", {page: 1, size: 2, desc: true}),
    plain: list("items"),
    byId: getById("items", a.content.id),
    xs: query("items", [["tag", "==", "x"]]),
    big: query("items", [["n", ">", 1]], {page: 1, size: 1, desc: true}),
    xcount: count("items", [["tag", "==", "x"]]),
    all: count("items"),
    updated: update("items", a.content.id, {n: 10}),
    deleted: del("items", b.content.id),
    after: count("items"),
    missing: getById("items", b.content.id)
  };
}
"""


def _ns(page: dict) -> list:
    return [doc["n"] for doc in page["content"]["results"]]


async def test_database_host_calls(api):
    token = await api.register()
    await add_function(api, "crud", CRUD)
    status, r = await exec_fn(api, "crud", token)
    assert status == 200, r
    for key, value in r.items():
        if key != "created" and key != "missing":
            assert value["ok"] is True, (key, value)
    assert [c["ok"] for c in r["created"]] == [True, True, True]
    a, b, _ = (c["content"] for c in r["created"])
    assert (r["page1"]["content"]["total"], _ns(r["page1"])) == (3, [1, 2])
    assert _ns(r["page2"]) == [3]
    assert _ns(r["desc"]) == [3, 2]
    assert _ns(r["plain"]) == [1, 2, 3]
    assert r["byId"]["content"] == a
    assert (_ns(r["xs"]), r["xs"]["content"]["total"]) == ([1, 3], 2)
    assert (_ns(r["big"]), r["big"]["content"]["total"]) == ([3], 2)
    assert (r["xcount"]["content"], r["all"]["content"], r["after"]["content"]) == (2, 3, 2)
    assert (r["updated"]["content"]["n"], r["updated"]["content"]["tag"]) == (10, "x")
    assert r["deleted"]["content"] == 1
    assert r["missing"]["ok"] is False and isinstance(r["missing"]["content"], str) and r["missing"]["content"]
    # the same documents over HTTP
    status, doc = await api.call("GET", f"/db/items/{a['id']}", token)
    assert status == 200 and doc["n"] == 10
    assert (await api.call("GET", f"/db/items/{b['id']}", token))[0] >= 400


async def test_database_host_calls_use_the_callers_permissions(api):
    alice, bob = await api.register(), await api.register()  # two accounts
    await add_function(api, "eval", EVAL_SOURCE)
    status, doc = await api.call("POST", "/db/vault_740_", alice, json={"secret": 1})
    assert status in (200, 201), doc
    doc_id = doc["id"]

    got = await evaluate(api, bob, f'getById("vault_740_", "{doc_id}")')
    assert got["ok"] is False and isinstance(got["content"], str)
    assert (await evaluate(api, bob, 'list("vault_740_")'))["content"]["total"] == 0
    assert (await evaluate(api, bob, 'query("vault_740_", [["secret", "==", 1]])'))["content"]["total"] == 0
    assert await evaluate(api, bob, 'count("vault_740_")') == {"ok": True, "content": 0}
    assert (await evaluate(api, bob, f'update("vault_740_", "{doc_id}", {{secret: 2}})'))["ok"] is False
    deleted = await evaluate(api, bob, f'del("vault_740_", "{doc_id}")')
    assert deleted == {"ok": True, "content": 0} or deleted["ok"] is False, deleted

    assert (await evaluate(api, alice, f'getById("vault_740_", "{doc_id}")'))["content"]["secret"] == 1
    assert (await evaluate(api, alice, 'list("vault_740_")'))["content"]["total"] == 1


async def test_host_database_writes_fire_db_events(api, clients):
    token = await api.register()
    member = await clients(api, "ws", token)
    assert (await member.join("db-items"))["type"] == "ok"
    await add_function(api, "eval", EVAL_SOURCE)
    created = (await evaluate(api, token, 'create("items", {n: 1})'))["content"]
    frame = await member.next("db_created")
    assert (frame["channel"], json.loads(frame["data"])) == ("db-items", created)
    await evaluate(api, token, f'update("items", "{created["id"]}", {{n: 2}})')
    assert json.loads((await member.next("db_updated"))["data"])["n"] == 2
    await evaluate(api, token, f'del("items", "{created["id"]}")')
    assert json.loads((await member.next("db_deleted"))["data"])["id"] == created["id"]


async def test_publish_and_send_reach_channel_members(api, clients):
    # Xano-style: a web function stores a record and tells a channel about it.
    code = """
    function handle(body) {
      var doc = create("orders", body);
      return {
        doc: doc,
        p: publish("shop", "event", {id: doc.content.id, via: "publish"}),
        s: send("event", {id: doc.content.id, via: "send"}, "shop"),
        t: publish("shop", "note", "plain text")
      };
    }"""
    await add_function(api, "order", code)
    member = await clients(api, "sse", await api.register())
    outsider = await clients(api, "sse", await api.register())
    assert (await member.join("shop"))["type"] == "ok"
    assert (await outsider.join("elsewhere"))["type"] == "ok"
    status, r = await exec_fn(api, "order", await api.register(), {"item": "book"})
    assert status == 200, r
    assert r["doc"]["ok"] and r["doc"]["content"]["item"] == "book"
    assert (r["p"]["ok"], r["s"]["ok"], r["t"]["ok"]) == (True, True, True)
    doc_id = r["doc"]["content"]["id"]
    first, second = await member.next("event"), await member.next("event")
    assert (first["channel"], json.loads(first["data"])) == ("shop", {"id": doc_id, "via": "publish"})
    assert (second["channel"], json.loads(second["data"])) == ("shop", {"id": doc_id, "via": "send"})
    assert (await member.next("note"))["data"] == "plain text"
    assert await outsider.quiet(0.3, ("event", "note")) == []


async def test_functions_cannot_publish_to_database_channels(api, clients):
    token = await api.register()
    member = await clients(api, "sse", token)
    assert (await member.join("db-orders"))["type"] == "ok"
    await add_function(api, "eval", EVAL_SOURCE)
    calls = ['publish("db-orders", "event", {})', 'publish("DB-orders", "event", {})',
             'send("event", {}, "db-orders")', 'publish("db-orders", "db_created", {id: "x"})']
    answers = {call: await evaluate(api, token, call) for call in calls}
    assert {call: (got["ok"], "database" in str(got["content"])) for call, got in answers.items()} == \
        {call: (False, True) for call in calls}, answers
    assert await member.quiet(0.3, ("event", "db_created")) == []


async def test_cache_is_namespaced_per_app(api):
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    steps = [
        ('cacheGet("k")', ""),
        ('cacheSet("k", "v")', None),
        ('cacheGet("k")', "v"),
        ('inc("n", 5)', 5),
        ('inc("n", 2)', 7),
        ('dec("n", 3)', 4),
        ('cacheGet("n")', "4"),
    ]
    for expression, content in steps:
        assert await evaluate(api, token, expression) == {"ok": True, "content": content}, expression

    status, creds = await api.call("GET", "/account/init?email=second@example.com&ui=1")
    assert status == 200, creds
    other = Api(api.client, pk=creds["pk"])
    await add_function(other, "eval", EVAL_SOURCE, token=creds["rootToken"])
    other_user = await other.register()
    assert await evaluate(other, other_user, 'cacheGet("k")') == {"ok": True, "content": ""}
    assert await evaluate(other, other_user, 'inc("n", 1)') == {"ok": True, "content": 1}
    assert await evaluate(other, other_user, 'cacheSet("k", "other")') == {"ok": True, "content": None}
    # the first app still has its own values
    assert await evaluate(api, token, 'cacheGet("k")') == {"ok": True, "content": "v"}
    assert await evaluate(api, token, 'inc("n", 1)') == {"ok": True, "content": 5}


async def test_send_mail(api):
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    got = await evaluate(api, token, 'sendMail({from: "a@x.com", to: "b@x.com", subject: "Hi", textBody: "t"})')
    assert got["ok"] is True
    assert (await evaluate(api, token, 'sendMail("nope")'))["ok"] is False


def _loopback_target() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"method": request.method, "body": await request.text(),
                                  "header": request.headers.get("X-Test")}, headers={"X-Reply": "yes"})

    target = web.Application()
    target.router.add_route("*", "/echo", answer)
    return target


async def test_fetch_refuses_private_addresses_by_default(api, aiohttp_server):
    server = await aiohttp_server(_loopback_target())  # something really listens on loopback
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    problems = []
    for host in ("127.0.0.1", "[::1]", "0.0.0.0", "10.0.0.1", "192.168.1.1", "169.254.169.254"):
        got = await evaluate(api, token, f'fetch("http://{host}:{server.port}/echo")')
        if got["ok"] is not False or not ("loopback" in got["content"] or "private" in got["content"]):
            problems.append((host, got))
    assert problems == []


async def test_fetch_refuses_a_name_that_resolves_to_loopback_and_says_why(api, aiohttp_server):
    server = await aiohttp_server(_loopback_target())
    await add_function(api, "eval", EVAL_SOURCE)
    got = await evaluate(api, await api.register(), f'fetch("http://localhost:{server.port}/echo")')
    assert got["ok"] is False, got  # never reaches the server
    assert "loopback" in got["content"] or "private" in got["content"], got


async def test_fetch_reaches_a_local_server_when_allowed(aiohttp_client, aiohttp_server, tmp_path):
    server = await aiohttp_server(_loopback_target())
    url = str(server.make_url("/echo"))
    api = await make_api(aiohttp_client, tmp_path, functions_fetch_allow_private=True)
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()

    got = await evaluate(api, token, f'fetch("{url}")')
    assert got["ok"] is True, got
    assert got["content"]["status"] == 200
    assert json.loads(got["content"]["body"]) == {"method": "GET", "body": "", "header": None}
    assert {k.lower(): v for k, v in got["content"]["headers"].items()}["x-reply"] == "yes"

    got = await evaluate(api, token, f'fetch("{url}", {{method: "POST", headers: {{"X-Test": "t"}}, body: "payload"}})')
    assert got["ok"] is True, got
    assert json.loads(got["content"]["body"]) == {"method": "POST", "body": "payload", "header": "t"}


BAD_HOST_CALLS = [
    'create("items")',
    'create("items", {}, 3)',
    'create("bad name!", {})',
    'create("items", [1, 2])',
    'getById("items")',
    'getById("items", 42)',
    'getById("items", "no-such-id")',
    'list("items", "x")',
    'list("items", {page: "one"})',
    'query("items", "nope")',
    'query("items", [["a", "~~", 1]])',
    'count("items", "x")',
    'update("items", "some-id")',
    'del()',
    'publish("room")',
    'publish("", "t", 1)',
    'send("t", 1)',
    'cacheGet()',
    'cacheGet("")',
    'cacheSet("k")',
    'inc("k", "x")',
    'inc("k", 1.5)',
    'fetch()',
    'fetch("notaurl")',
    'fetch("https://example.com", "x")',
    'fetch("https://example.com", {method: "BREW"})',
    'sendMail({})',
]


async def test_bad_host_calls_answer_ok_false(api):
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    problems = []
    for expression in BAD_HOST_CALLS:
        got = await evaluate(api, token, expression)  # the run itself succeeds: no exception reaches JS
        if not (isinstance(got, dict) and set(got) == {"ok", "content"} and got["ok"] is False
                and isinstance(got["content"], str) and got["content"]):
            problems.append((expression, got))
    assert problems == []


# --- 5. durability


async def test_a_failing_message_run_is_retried_parked_and_replayed(aiohttp_client, tmp_path):
    api = await make_api(aiohttp_client, tmp_path, functions_max_attempts=2)
    await add_function(api, "flaky", 'function handle(body) { throw new Error("broken: " + body.data); }', "work")
    assert await api.root("POST", "/publish-message", json={"channel": "jobs", "type": "work", "data": "job-1"}) \
        == (200, True)

    async def parked() -> list[dict]:
        status, body = await api.root("GET", "/fn/jobs")
        assert status == 200, body
        return body

    jobs = await eventually(parked, 8, "a parked job")
    assert len(jobs) == 1
    job = jobs[0]
    assert (job["function"], job["status"], job["attempts"]) == ("flaky", "parked", 2)
    assert "broken: job-1" in job["lastError"]
    assert (job["message"]["type"], job["message"]["channel"], job["message"]["data"]) == ("work", "jobs", "job-1")
    assert await api.root("GET", "/fn/jobs?status=parked") == (200, jobs)
    assert await queued_jobs(api) == []
    history = (await info(api, "flaky"))["history"]
    assert [run["success"] for run in history] == [False, False]
    assert all("broken: job-1" in run["error"] for run in history)

    await update_function(api, {"name": "flaky", "code": 'function handle(body) { log("fixed " + body.data); }'})
    assert await api.root("POST", f"/fn/jobs/{job['id']}/replay") == (200, True)
    history = await eventually(lambda: _succeeded(api, "flaky"), 5, "the replayed run")
    assert (logged(history[0]), history[0]["version"]) == (["fixed job-1"], 2)
    await eventually(lambda: _no_jobs(api), 5, "no job left")
    assert (await api.root("POST", f"/fn/jobs/{job['id']}/replay"))[0] == 404
    assert (await api.root("POST", "/fn/jobs/no-such-job/replay"))[0] == 404
    assert (await api.root("GET", "/fn/jobs?status=done"))[0] == 400


async def _succeeded(api: Api, name: str) -> list[dict] | None:
    history = (await info(api, name))["history"]
    return history if history and history[0]["success"] else None


async def _no_jobs(api: Api) -> bool:
    return (await api.root("GET", "/fn/jobs"))[1] == [] and await queued_jobs(api) == []


async def _burst(api: Api, count: int, timeout: float) -> list[int]:
    """Publish `count` burst messages (data 0..count-1); the sorted `n` of the tally documents once all exist."""
    published = await asyncio.gather(*(api.root("POST", "/publish-message",
                                                {"channel": "b", "type": "burst", "data": str(n)})
                                       for n in range(count)))
    assert published == [(200, True)] * count
    status, admin = await api.call("POST", "/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD})
    assert status == 200, admin

    async def tallied() -> list[int] | None:
        status, page = await api.call("GET", f"/db/tally?size={count + 50}", admin)
        assert status == 200, page
        return sorted(doc["n"] for doc in page["results"]) if page["total"] >= count else None

    return await eventually(tallied, timeout, f"{count} documents")


async def test_a_burst_waits_in_the_database_and_every_message_runs_once(aiohttp_client, tmp_path):
    api = await make_api(aiohttp_client, tmp_path, functions_max_running=4, functions_workers=2,
                         publish_limit_burst=1000)  # a burst far over the per-user publish limit
    await add_function(api, "tally", 'function handle(body) { create("tally", {n: Number(body.data)}); }', "burst")
    assert await _burst(api, 60, 20) == list(range(60))  # each message ran once
    await eventually(lambda: _no_jobs(api), 5, "no job left")
    dispatcher = api.client.server.app[DISPATCHER]
    assert (dispatcher.stats["succeeded"], dispatcher.stats["retried"]) == (60, 0)
    assert 1 < dispatcher.peak_held <= 4  # the rest waited in SQLite, not in memory
    assert dispatcher.held == 0


async def test_retries_that_come_due_during_a_burst_still_run_once_each(aiohttp_client, tmp_path):
    # Refills read on from the last job they started; retries are behind that point.
    api = await make_api(aiohttp_client, tmp_path, functions_max_running=4, functions_workers=2,
                         publish_limit_burst=1000)  # a burst far over the per-user publish limit
    code = """
    function handle(body) {
      var until = Date.now() + 8;
      while (Date.now() < until) {}
      var n = Number(body.data);
      if (n % 3 === 0 && inc("attempts-" + n, 1).content === 1) throw new Error("first attempt fails");
      create("tally", {n: n});
    }"""
    await add_function(api, "tally", code, "burst")
    assert await _burst(api, 240, 30) == list(range(240))
    await eventually(lambda: _no_jobs(api), 5, "no job left")
    dispatcher = api.client.server.app[DISPATCHER]
    assert (dispatcher.stats["succeeded"], dispatcher.stats["retried"], dispatcher.stats["parked"]) == (240, 80, 0)
    assert dispatcher.peak_held <= 4


async def test_a_message_whose_runs_cannot_be_stored_is_not_acknowledged(api):
    await add_function(api, "never", TRACE, "work")
    app = api.client.server.app
    app_id = (await app[ACCOUNTS].app_for_pk(DEV_PK)).id
    await app[DATABASE].close()  # as at shutdown: nothing can be written any more
    delivered: list[Message] = []
    app[BUS].subscribe(delivered.append)
    with pytest.raises(DatabaseClosed):
        await app[BUS].publish(Message(type="work", channel="q", data="x", app_id=app_id))
    assert delivered == []


async def test_queued_runs_resume_after_a_restart(aiohttp_client, tmp_path):
    config = make_config(tmp_path)
    first = Api(await aiohttp_client(create_app(config)))
    code = """
    function handle(body) {
      var n = inc("attempts-" + body.data, 1).content;
      if (n === 1) throw new Error("first attempt fails");
      create("done", {job: body.data, attempt: n});
    }"""
    await add_function(first, "resumable", code, "work")
    assert await first.root("POST", "/publish-message", json={"channel": "q", "type": "work", "data": "j1"}) \
        == (200, True)

    async def waiting_after_one_failure() -> list[dict] | None:
        jobs = await queued_jobs(first)
        return jobs if jobs and jobs[0]["attempts"] == 1 else None

    jobs = await eventually(waiting_after_one_failure, 5, "a job waiting for its retry")
    assert len(jobs) == 1 and "first attempt fails" in jobs[0]["lastError"]
    await first.client.close()  # the retry is 1 s away: it has not run
    closed_at = datetime.now(UTC)

    second = Api(await aiohttp_client(create_app(config)))
    status, admin = await second.call("POST", "/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD})
    assert status == 200, admin

    async def done() -> list[dict] | None:
        status, page = await second.call("GET", "/db/done", admin)
        assert status == 200, page
        return page["results"] or None

    docs = await eventually(done, 8, "the resumed run")
    assert [(d["job"], d["attempt"]) for d in docs] == [("j1", 2)]
    await eventually(lambda: _no_jobs(second), 5, "no job left")
    history = (await info(second, "resumable"))["history"]
    assert [run["success"] for run in history] == [True, False]
    assert _moment(history[0]["started"]) > closed_at  # run by the second app, not before the restart


# --- 6. run records and retention


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_every_run_is_recorded(api):
    token = await api.register()
    added = await add_function(api, "noisy", 'function handle(b) { log("a", 1, {b: 2}); console.log("c");'
                                             ' if (b && b.fail) throw new Error("bad thing"); return 1; }')
    assert await exec_fn(api, "noisy", token, {"fail": False}) == (200, 1)
    assert (await exec_fn(api, "noisy", token, {"fail": True}))[0] == 500
    failed, ok = (await info(api, "noisy"))["history"]
    assert (ok["success"], ok["error"]) == (True, None)
    assert ok["output"] == ["Function started", 'a 1 {"b":2}', "c", "Function completed"]
    assert failed["success"] is False and "bad thing" in failed["error"]
    assert failed["output"][:4] == ["Function started", 'a 1 {"b":2}', "c", "Function completed"]
    assert "bad thing" in failed["output"][-1]
    for run in (ok, failed):
        assert (run["functionId"], run["version"], run["trigger"]) == (added["id"], 1, "web")
        assert isinstance(run["durationMs"], (int, float)) and 0 <= run["durationMs"] < 5000
        started, completed = _moment(run["started"]), _moment(run["completed"])
        assert started <= completed
    assert ok["id"] != failed["id"]


async def test_history_keeps_the_newest_runs(aiohttp_client, tmp_path):
    api = await make_api(aiohttp_client, tmp_path, functions_history=3)
    token = await api.register()
    await add_function(api, "counted", 'function handle(b) { log("run " + b.n); return b.n; }')
    for n in range(5):
        assert await exec_fn(api, "counted", token, {"n": n}) == (200, n)
    history = (await info(api, "counted"))["history"]
    assert [logged(run) for run in history] == [["run 4"], ["run 3"], ["run 2"]]
    status, runs = await api.root("GET", "/fn/runs?name=counted")
    assert status == 200 and len(runs) == 3


@pytest.mark.parametrize("transport", ["sse", "ws"])
async def test_a_chan_in_is_acknowledged_only_once_its_function_run_is_stored(api, transport):
    await add_function(api, "slowpoke", "function handle(body) { var i = 0; while (i < 2e6) i++; return i; }",
                       trigger="chan_in")
    client = await open_client(api, transport, await api.register())
    try:
        for n in range(3):
            await client.send("chan_in", f"m{n}", "lobby")
            assert (await client.next(("ok", "error")))["type"] == "ok"
            queued = await queued_jobs(api)
            _, runs = await api.root("GET", "/fn/runs?name=slowpoke")
            assert len(queued) + len(runs) >= n + 1  # stored: waiting in the queue, or run already
    finally:
        await client.close()
    await wait_runs(api, "slowpoke", 3)


async def test_functions_triggering_each_other_are_cut_off(api):
    # Each run creates a document in the collection whose events trigger it: an endless chain.
    await add_function(api, "echo_chamber", 'function handle(c, t, doc) { create("loop", {n: doc.n + 1}); }',
                       trigger="db-loop")
    token = await api.register()
    await api.call("POST", "/db/loop", token, json={"n": 0})
    dispatcher = api.client.server.app[DISPATCHER]

    async def stopped() -> bool:
        return dispatcher.stats["dropped_too_deep"] == 1
    await eventually(stopped, what="the chain to be cut off")
    _, page = await api.call("GET", "/db/loop?size=100", token)
    assert sorted(doc["n"] for doc in page["results"]) == list(range(MAX_DEPTH + 1))


async def test_metrics_count_function_runs(api):
    await add_function(api, "counted", "function handle(b) { return 1; }", trigger="tick")
    await api.root("POST", "/publish-message", json={"channel": "c", "type": "tick", "data": "x"})
    await wait_runs(api, "counted", 1)
    resp = await api.client.get("/metrics", headers={"Authorization": "Bearer safe-to-use-in-dev-root-token"})
    text = await resp.text()
    assert 'sblite_function_runs_total{event="succeeded"} 1' in text
    assert "sblite_function_workers " in text and "sblite_function_workers 0" not in text
    assert "sblite_function_runs_held 0" in text
