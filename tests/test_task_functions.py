"""Function tasks: through the durable job queue, both handler shapes, retries, parking and function_parked."""

from __future__ import annotations

import json

from sblite.http.keys import BUS
from sblite.model import Message
from tests.conftest import make_config
from tests.function_helpers import add_function, eventually, logged_json, wait_runs as wait_function_runs
from tests.task_helpers import FakeClock, clocked_api, create_task, service, tick, wait_runs


def task(function: str, **extra) -> dict:
    return {"name": "job", "type": "function", "value": function, "meta": {"data": '{"n": 7}'},
            "interval": "@every 1h", **extra}


async def test_a_three_parameter_handler_gets_the_task_name_fn_call_and_the_data(aiohttp_client, tmp_path) -> None:
    api = await clocked_api(aiohttp_client, make_config(tmp_path), FakeClock())
    await add_function(api, "three", "function handle(name, type, data) { log(JSON.stringify([name, type, data])); }")
    await create_task(api, task("three"))
    status, run = await api.root("POST", "/tasks/job/run")
    assert status == 200 and (run["status"], run["job_id"] is not None) == ("running", True)
    [done] = await wait_runs(api, "job", 1)
    assert done["status"] == "ok", done
    [function_run] = await wait_function_runs(api, "three", 1)
    assert logged_json(function_run) == ["job", "fn_call", {"n": 7}]
    assert done["function_run_id"] == function_run["id"]
    assert done["output"] == ['["job","fn_call",{"n":7}]']


async def test_a_one_parameter_handler_gets_the_whole_body(aiohttp_client, tmp_path) -> None:
    clock = FakeClock()
    api = await clocked_api(aiohttp_client, make_config(tmp_path), clock)
    await add_function(api, "one", "function handle(body) { log(JSON.stringify(body)); }")
    await create_task(api, task("one", interval="@every 1s"))
    await tick(api, clock)
    [done] = await wait_runs(api, "job", 1)
    [function_run] = await wait_function_runs(api, "one", 1)
    body = logged_json(function_run)
    assert {k: body[k] for k in ("task", "type", "data", "scheduledFor", "runId")} == {
        "task": "job", "type": "fn_call", "data": '{"n": 7}', "scheduledFor": done["scheduled_for"],
        "runId": done["id"]}


async def test_a_function_that_fails_twice_then_succeeds_ends_ok(aiohttp_client, tmp_path) -> None:
    api = await clocked_api(aiohttp_client, make_config(tmp_path, functions_max_attempts=3), FakeClock())
    code = """function handle(name, type, data) {
        var n = inc("attempts", 1).content;
        if (n < 3) throw new Error("attempt " + n + " fails");
        log("attempt " + n + " works");
    }"""
    await add_function(api, "flaky", code)
    await create_task(api, task("flaky"))
    status, run = await api.root("POST", "/tasks/job/run")
    assert status == 200, run
    [done] = await wait_runs(api, "job", 1, timeout=20)  # retries after 1 s, then 5 s
    assert (done["status"], done["error"], done["output"]) == ("ok", None, ["attempt 3 works"])
    attempts = await wait_function_runs(api, "flaky", 3)
    assert [r["success"] for r in attempts] == [True, False, False]  # newest first
    assert done["function_run_id"] == attempts[0]["id"]


async def test_a_parked_job_fails_the_run_and_is_announced(aiohttp_client, tmp_path) -> None:
    api = await clocked_api(aiohttp_client, make_config(tmp_path, functions_max_attempts=1), FakeClock())
    seen: list[Message] = []
    api.client.app[BUS].subscribe(seen.append)
    await add_function(api, "broken", 'function handle() { throw new Error("no luck"); }')
    await create_task(api, task("broken"))
    await api.root("POST", "/tasks/job/run")
    [done] = await wait_runs(api, "job", 1)
    assert done["status"] == "failed" and "no luck" in done["error"]
    parked = await eventually(lambda: _first(seen, "function_parked"), 5.0, "function_parked")
    assert parked.channel == "sys-functions"
    data = json.loads(parked.data)
    assert (data["function"], data["status"], data["attempts"]) == ("broken", "parked", 1)
    assert "no luck" in data["lastError"]
    task_run = await eventually(lambda: _first(seen, "task_run"), 5.0, "task_run")
    assert task_run.channel == "sys-tasks"
    assert {k: json.loads(task_run.data)[k] for k in ("task", "status", "trigger")} == {
        "task": "job", "status": "failed", "trigger": "manual"}


async def _first(seen: list[Message], kind: str) -> Message | None:
    return next((message for message in seen if message.type == kind), None)


async def test_a_function_deleted_after_the_task_fails_its_runs(aiohttp_client, tmp_path) -> None:
    api = await clocked_api(aiohttp_client, make_config(tmp_path), FakeClock())
    await add_function(api, "gone", "function handle() {}")
    await create_task(api, task("gone"))
    status, _ = await api.root("DELETE", "/fn/del/gone")
    assert status == 200
    status, run = await api.root("POST", "/tasks/job/run")
    assert status == 200 and run["status"] == "failed" and "gone" in run["error"]
    assert service(api).stats.runs["failed"] == 1
