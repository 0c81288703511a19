"""Functions' schedule(when, type, channel, data) and runLater(when, functionName, data) globals."""

from __future__ import annotations

import json
import time

import pytest

from tests.function_helpers import EVAL_SOURCE, add_function, evaluate, eventually, wait_runs
from tests.support import DEV_ROOT_TOKEN, start_server
from tests.test_serve import http

# A call with bad arguments answers {ok: false} naming what is wrong, and creates no task.
BAD_CALLS = [
    ('schedule(true, "reminder", "room", {})', "when"),
    ('schedule(null, "reminder", "room", {})', "when"),
    ('schedule({}, "reminder", "room", {})', "when"),
    ('schedule(10, "", "room", {})', "message type"),
    ('schedule(10, 5, "room", {})', "message type"),
    ('schedule(10, "x".repeat(65), "room", {})', "message type"),
    ('schedule(10, "reminder", "", {})', "channel"),
    ('schedule(10, "reminder", "db-orders", {})', "database"),
    ('schedule(10, "reminder", "sys-users", {})', "system channel"),
    ('schedule(10, "reminder")', "channel"),
    ('runLater(10, "", {})', "function name"),
    ('runLater(10, 42, {})', "function name"),
    ('runLater()', "when"),
]


@pytest.mark.parametrize(("call", "named"), BAD_CALLS)
async def test_bad_arguments_answer_ok_false_naming_the_field(api, call, named):
    await add_function(api, "eval", EVAL_SOURCE)
    answer = await evaluate(api, await api.register(), call)
    assert answer["ok"] is False and named in answer["content"], answer
    assert await api.root("GET", "/tasks") == (200, [])


# --- end to end: the task is created, durably, and runs

ONCE_KEYS = {"id", "name", "type", "value", "meta", "at", "status", "next_run"}


async def _task(api, name: str) -> dict:
    status, task = await api.root("GET", f"/tasks/{name}")
    assert status == 200, task
    return task


async def test_run_later_runs_the_named_function_with_its_data(api):
    await add_function(api, "eval", EVAL_SOURCE)
    await add_function(api, "other", "function handle(task, kind, data) { log(kind, data.n, data.tags[1]); }",
                       "reminders")
    token = await api.register()
    answer = await evaluate(api, token, 'runLater(1, "other", {n: 7, tags: ["a", "b"]})')
    assert answer["ok"] is True, answer
    task = answer["content"]
    assert set(task) >= ONCE_KEYS, task
    assert (task["type"], task["value"], task["status"]) == ("function", "other", "scheduled")
    assert task["name"].startswith("once-") and task["meta"]["data"] == {"n": 7, "tags": ["a", "b"]}
    assert await info_history(api, "other") == []  # not yet: it is due in a second

    runs = await wait_runs(api, "other", 1)
    assert runs[0]["success"] and "fn_call 7 b" in runs[0]["output"], runs[0]
    done = await eventually(lambda: _completed(api, task["name"]), what="the task to be completed")
    assert [run["status"] for run in done["runs"]] == ["ok"]


async def _completed(api, name: str) -> dict | None:
    task = await _task(api, name)
    return task if task["status"] == "completed" and task["runs"] and task["runs"][0]["status"] == "ok" else None


async def info_history(api, name: str) -> list:
    status, body = await api.root("GET", f"/fn/info/{name}")
    assert status == 200, body
    return body["history"]


@pytest.mark.parametrize("when", ['"+2s"', "new Date(Date.now() + 2000).toISOString()", "2"])
async def test_schedule_publishes_the_message_to_realtime_members(api, clients, when):
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    member = await clients(api, "sse", await api.register())
    assert (await member.join("alerts"))["type"] == "ok"
    answer = await evaluate(api, token, f'schedule({when}, "reminder", "alerts", {{text: "stand up"}})')
    assert answer["ok"] is True, answer
    assert (answer["content"]["type"], answer["content"]["value"]) == ("message", "reminder")
    assert await member.quiet(1.0, ("reminder",)) == []  # not before its time
    frame = await member.next("reminder", timeout=10)
    assert (frame["channel"], json.loads(frame["data"])) == ("alerts", {"text": "stand up"})
    assert await member.quiet(1.5, ("reminder",)) == []  # once


async def test_a_scheduled_message_triggers_functions_by_type(api):
    await add_function(api, "eval", EVAL_SOURCE)
    await add_function(api, "on_reminder", "function handle(channel, type, data) { log(channel, type, data.n); }",
                       "reminder")
    answer = await evaluate(api, await api.register(), 'schedule(0, "reminder", "alerts", {n: 3})')
    assert answer["ok"] is True, answer
    runs = await wait_runs(api, "on_reminder", 1)
    assert "alerts reminder 3" in runs[0]["output"], runs[0]


async def test_scheduler_refusals_answer_ok_false_and_store_nothing(api):
    await add_function(api, "eval", EVAL_SOURCE)
    token = await api.register()
    for call, named in (('runLater(1, "missing", {})', "missing"), ('schedule("soon", "t", "room", 1)', "soon"),
                        ('runLater("later", "eval", {})', "later"), ('schedule(-5, "t", "room", 1)', "when"),
                        ('schedule("1999-01-01T00:00:00Z", "t", "room", 1)', "past")):
        answer = await evaluate(api, token, call)
        assert answer["ok"] is False and isinstance(answer["content"], str), (call, answer)
        assert named in answer["content"] or "when" in answer["content"] or "at" in answer["content"], (call, answer)
    assert await api.root("GET", "/tasks") == (200, [])


@pytest.mark.slow
def test_a_run_later_task_survives_a_restart(tmp_path):
    """Created durably: the server stops before the task is due, and the restarted one runs it."""
    server = start_server(tmp_path)
    try:
        for name, trigger, code in (("eval", "web", EVAL_SOURCE),
                                    ("later", "later", "function handle(task, kind, data) { log('ran', data.n); }")):
            status, text = http(server.url + "/fn/add", "POST", {"name": name, "trigger": trigger, "code": code},
                                DEV_ROOT_TOKEN)
            assert status == 200, text
        status, token = http(server.url + "/register", "POST", {"email": "r@example.com", "password": "pw-123456"})
        assert status == 200, token
        status, text = http(server.url + "/fn/exec/eval", "POST", {"expr": 'runLater(3, "later", {n: 42})'},
                            json.loads(token))
        assert status == 200 and json.loads(text)["ok"] is True, text
    finally:
        assert server.stop() == 0
    server = start_server(tmp_path)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status, text = http(server.url + "/fn/info/later", token=DEV_ROOT_TOKEN)
            assert status == 200, text
            history = json.loads(text)["history"]
            if history:
                break
            time.sleep(0.2)
        assert len(history) == 1 and history[0]["success"] and "ran 42" in history[0]["output"], history
    finally:
        server.stop()
