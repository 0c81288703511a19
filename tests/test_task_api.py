"""The /tasks API: every field checked (a 400 that names it, and nothing stored), the task and run shapes."""

from __future__ import annotations

import json
import re

from sblite.app import create_app
from tests.conftest import Api, make_config
from tests.function_helpers import add_function
from tests.support import DEV_ROOT_TOKEN

MESSAGE = {"name": "tick", "type": "message", "value": "tick", "meta": {"channel": "lobby", "data": "hi"},
           "interval": "@every 1h"}
HTTP = {"name": "hook", "type": "http", "value": "https://example.com/hook", "interval": "@daily"}
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


async def tasks(api: Api) -> list[dict]:
    status, body = await api.root("GET", "/tasks")
    assert status == 200, body
    return body


async def create(api: Api, body: dict) -> dict:
    status, task = await api.root("POST", "/tasks", json=body)
    assert status == 200, task
    return task


# (what, body, the field the 400 names)
INVALID = [
    ("no name", {**MESSAGE, "name": None}, "name"),
    ("name missing", {k: v for k, v in MESSAGE.items() if k != "name"}, "name"),
    ("name with a slash", {**MESSAGE, "name": "a/b"}, "name"),
    ("name too long", {**MESSAGE, "name": "x" * 65}, "name"),
    ("reserved name", {**MESSAGE, "name": "preview"}, "name"),
    ("a name kept for functions' one-offs", {**MESSAGE, "name": "once-mine"}, "name"),
    ("unknown type", {**MESSAGE, "type": "cron"}, "type"),
    ("type missing", {k: v for k, v in MESSAGE.items() if k != "type"}, "type"),
    ("empty value", {**MESSAGE, "value": ""}, "value"),
    ("value not a string", {**MESSAGE, "value": 3}, "value"),
    ("no such function", {**MESSAGE, "type": "function", "value": "nope", "meta": {}}, "value"),
    ("not an http URL", {**HTTP, "value": "ftp://example.com/"}, "value"),
    ("message type too long", {**MESSAGE, "value": "t" * 65}, "value"),
    ("meta not JSON", {**MESSAGE, "meta": "{nope"}, "meta"),
    ("meta a list", {**MESSAGE, "meta": [1]}, "meta"),
    ("meta with an unknown key", {**MESSAGE, "meta": {"chanel": "lobby"}}, "meta.chanel"),
    ("message without a channel", {**MESSAGE, "meta": {"data": "x"}}, "meta.channel"),
    ("message on a system channel", {**MESSAGE, "meta": {"channel": "sys-tasks"}}, "meta.channel"),
    ("channel with a control character", {**MESSAGE, "meta": {"channel": "a\nb"}}, "meta.channel"),
    ("unknown method", {**HTTP, "meta": {"method": "FETCH"}}, "meta.method"),
    ("form data that is no object", {**HTTP, "meta": {"data": "[1, 2]"}}, "meta.data"),
    ("headers that are no JSON", {**HTTP, "meta": {"HTTPHeaders": "nope"}}, "meta.HTTPHeaders"),
    ("header values not strings", {**HTTP, "meta": {"headers": {"X-A": 1}}}, "meta.headers"),
    ("a bad header name", {**HTTP, "meta": {"headers": {"X A": "1"}}}, "meta.headers"),
    ("a bad content type", {**HTTP, "meta": {"ct": 5}}, "meta.ct"),
    ("cron out of range", {**MESSAGE, "interval": "61 * * * *"}, "interval"),
    ("seven fields", {**MESSAGE, "interval": "0 0 0 1 1 * 2030"}, "interval"),
    ("unknown descriptor", {**MESSAGE, "interval": "@fortnightly"}, "interval"),
    ("@every too short", {**MESSAGE, "interval": "@every 0s"}, "interval"),
    ("interval not a string", {**MESSAGE, "interval": 5}, "interval"),
    ("no schedule", {k: v for k, v in MESSAGE.items() if k != "interval"}, "interval"),
    ("interval and at", {**MESSAGE, "at": "+10m"}, "interval"),
    ("at not a time", {**{k: v for k, v in MESSAGE.items() if k != "interval"}, "at": "tomorrow"}, "at"),
    ("at in the past", {**{k: v for k, v in MESSAGE.items() if k != "interval"}, "at": "2001-01-01T00:00:00Z"}, "at"),
    ("at a number", {**{k: v for k, v in MESSAGE.items() if k != "interval"}, "at": 12}, "at"),
    ("unknown zone", {**MESSAGE, "timezone": "Mars/Olympus"}, "timezone"),
    ("zone not a string", {**MESSAGE, "timezone": 1}, "timezone"),
    ("enabled not a boolean", {**MESSAGE, "enabled": "yes"}, "enabled"),
    ("unknown overlap", {**MESSAGE, "overlap": "never"}, "overlap"),
    ("unknown catchup", {**MESSAGE, "catchup": "some"}, "catchup"),
    ("catch-up window too short", {**MESSAGE, "catchup_window": 5}, "catchup_window"),
    ("catch-up window not a duration", {**MESSAGE, "catchup_window": "soon"}, "catchup_window"),
    ("keep_runs zero", {**MESSAGE, "keep_runs": 0}, "keep_runs"),
    ("keep_runs a float", {**MESSAGE, "keep_runs": 1.5}, "keep_runs"),
    ("keep_days negative", {**MESSAGE, "keep_days": -1}, "keep_days"),
    ("a misspelt field", {**MESSAGE, "intervall": "@daily"}, "intervall"),
]


async def test_every_invalid_field_is_a_400_that_names_it_and_stores_nothing(api: Api) -> None:
    await add_function(api, "exists", "function handle() {}", trigger="web")
    for what, body, field in INVALID:
        status, text = await api.root("POST", "/tasks", json=body)
        assert status == 400, (what, text)
        assert text.startswith(f"{field}:"), (what, text)
    assert await tasks(api) == []
    for kind in ("message", "function", "http"):  # each valid once, so the table above fails for its own reason
        body = {"message": MESSAGE, "http": HTTP, "function": {**MESSAGE, "type": "function", "value": "exists",
                                                                "meta": {}}}[kind]
        await create(api, {**body, "name": kind})
    assert len(await tasks(api)) == 3


async def test_meta_is_limited_to_what_a_run_may_carry(aiohttp_client, tmp_path) -> None:
    api = Api(await aiohttp_client(create_app(make_config(tmp_path, functions_max_io_bytes=1000))))
    status, text = await api.root("POST", "/tasks", json={**MESSAGE, "meta": {"channel": "lobby", "data": "x" * 1000}})
    assert status == 400 and text.startswith("meta: larger than 1000 bytes"), text
    assert await tasks(api) == []


async def test_a_body_that_is_not_an_object_is_a_400(api: Api) -> None:
    for body in ("[]", "3", "{"):
        status, text = await api.call("POST", "/tasks", DEV_ROOT_TOKEN, data=body)
        assert status == 400, text
    assert await tasks(api) == []


async def test_an_invalid_update_changes_nothing(api: Api) -> None:
    created = await create(api, MESSAGE)
    for body, field in (({"interval": "nope"}, "interval"), ({"meta": {"channel": ""}}, "meta.channel"),
                        ({"type": "http"}, "value"), ({"overlap": 1}, "overlap"), ({"timezone": "X/Y"}, "timezone")):
        status, text = await api.root("PUT", "/tasks/tick", json=body)
        assert status == 400 and text.startswith(f"{field}:"), (body, text)
    status, task = await api.root("GET", "/tasks/tick")
    assert status == 200
    assert {k: task[k] for k in created} == created


async def test_the_task_json(api: Api) -> None:
    task = await create(api, {**MESSAGE, "interval": "0 9 * * 1#1", "timezone": "Europe/Paris"})
    assert set(task) == {"id", "name", "type", "value", "meta", "interval", "at", "timezone", "enabled", "paused_note",
                         "overlap", "catchup", "catchup_window", "keep_runs", "keep_days", "last_run", "next_run",
                         "next_run_local", "description", "status", "created", "updated"}
    assert task["status"] == "scheduled" and task["enabled"] is True
    assert (task["overlap"], task["catchup"], task["catchup_window"]) == ("skip", "latest", 21600)
    assert (task["keep_runs"], task["keep_days"]) == (100, 14)
    assert RFC3339_UTC.fullmatch(task["next_run"]) and task["last_run"] is None
    assert task["next_run_local"].endswith(("+01:00", "+02:00")) and "T09:00:00" in task["next_run_local"]
    assert task["description"] == "at 09:00 on the first Monday of each month (Europe/Paris)"
    assert task["meta"] == {"channel": "lobby", "data": "hi"}
    assert [t["name"] for t in await tasks(api)] == ["tick"]


async def test_staticbackends_shape_is_accepted(api: Api) -> None:
    meta = json.dumps({"data": '{"a": 1}', "channel": "", "method": "", "ct": "",
                       "HTTPHeaders": json.dumps({"X-Key": "k"})})
    task = await create(api, {"id": "", "name": "demo task", "type": "http", "value": "https://example.com/x",
                              "meta": meta, "interval": "*/5 * * * *", "last": "0001-01-01T00:00:00Z", "base": ""})
    assert task["meta"] == {"method": "POST", "ct": "application/x-www-form-urlencoded", "headers": {"X-Key": "k"},
                            "data": '{"a": 1}'}
    status, found = await api.root("GET", "/tasks/demo%20task")
    assert status == 200 and found["name"] == "demo task" and found["runs"] == []


async def test_a_name_is_unique_per_app(api: Api) -> None:
    await create(api, MESSAGE)
    status, text = await api.root("POST", "/tasks", json=MESSAGE)
    assert status == 409, text
    await create(api, {**MESSAGE, "name": "other"})
    status, text = await api.root("PUT", "/tasks/other", json={"name": "tick"})
    assert status == 409, text


async def test_update_rename_and_delete(api: Api) -> None:
    created = await create(api, MESSAGE)
    status, task = await api.root("PUT", "/tasks/tick", json={"name": "tock", "meta": {"channel": "news"}})
    assert status == 200, task
    assert (task["name"], task["meta"]["channel"], task["next_run"]) == ("tock", "news", created["next_run"])
    status, task = await api.root("PUT", "/tasks/tock", json={"interval": "@every 2h", "timezone": "Asia/Tokyo"})
    assert status == 200 and task["description"] == "every 2 hours" and task["timezone"] == "Asia/Tokyo"
    status, text = await api.root("GET", "/tasks/tick")
    assert status == 404, text
    status, answer = await api.root("DELETE", "/tasks/tock")
    assert (status, answer) == (200, True)
    assert await tasks(api) == []
    status, text = await api.root("DELETE", "/tasks/tock")
    assert status == 404


async def test_a_one_off_task_and_turning_it_into_a_repeating_one(api: Api) -> None:
    once = {k: v for k, v in MESSAGE.items() if k != "interval"}
    task = await create(api, {**once, "at": "2099-01-01T10:00:00+01:00"})
    assert (task["at"], task["next_run"], task["interval"]) == ("2099-01-01T09:00:00Z", "2099-01-01T09:00:00Z", None)
    assert task["description"].startswith("once, at 2099-01-01T09:00:00+00:00")
    status, task = await api.root("PUT", "/tasks/tick", json={"meta": {"channel": "elsewhere"}})
    assert status == 200 and task["at"] == "2099-01-01T09:00:00Z"  # the time stays as it was
    status, task = await api.root("PUT", "/tasks/tick", json={"interval": "@hourly"})
    assert status == 200 and (task["at"], task["interval"]) == (None, "@hourly")


async def test_pause_with_a_note_and_resume(api: Api) -> None:
    created = await create(api, MESSAGE)
    status, task = await api.root("POST", "/tasks/tick/pause", json={"note": "holidays"})
    assert status == 200, task
    assert (task["status"], task["enabled"], task["paused_note"]) == ("paused", False, "holidays")
    assert task["next_run"] == created["next_run"]
    status, task = await api.root("POST", "/tasks/tick/resume")
    assert status == 200 and (task["status"], task["paused_note"]) == ("scheduled", None)
    assert task["next_run"] == created["next_run"]  # the schedule did not move
    status, text = await api.root("POST", "/tasks/tick/pause", json={"note": 5})
    assert status == 400 and text.startswith("note:")


async def test_run_now_answers_the_run(api: Api, clients) -> None:
    await create(api, MESSAGE)
    member = await clients(api, "sse", await api.register())
    assert (await member.join("lobby"))["type"] == "ok"
    status, run = await api.root("POST", "/tasks/tick/run")
    assert status == 200, run
    assert set(run) == {"id", "task", "scheduled_for", "trigger", "status", "started", "finished", "duration_ms",
                        "output", "error", "job_id", "function_run_id"}
    assert (run["task"], run["trigger"], run["status"], run["error"]) == ("tick", "manual", "ok", None)
    frame = await member.next("tick")
    assert (frame["channel"], frame["data"]) == ("lobby", "hi")
    status, found = await api.root("GET", "/tasks/tick/runs?limit=5")
    assert status == 200 and [r["id"] for r in found] == [run["id"]]
    status, task = await api.root("GET", "/tasks/tick")
    assert task["last_run"] == run["scheduled_for"]
    for limit in ("0", "x", "5000"):
        status, text = await api.root("GET", f"/tasks/tick/runs?limit={limit}")
        assert status == 400 and text.startswith("limit:"), text


async def test_preview(api: Api) -> None:
    status, body = await api.root("GET", "/tasks/preview?interval=0%209%20*%20*%201%231&tz=Europe/Paris&n=3")
    assert status == 200, body
    assert body["description"] == "at 09:00 on the first Monday of each month (Europe/Paris)"
    assert len(body["next"]) == 3
    for instant in body["next"]:
        assert RFC3339_UTC.fullmatch(instant["utc"]) and "T09:00:00+0" in instant["local"]
    status, body = await api.root("GET", "/tasks/preview?at=%2B10m")
    assert status == 200 and len(body["next"]) == 1 and body["interval"] is None
    for query, field in (("interval=nope", "interval"), ("interval=@daily&tz=No/Where", "timezone"),
                         ("interval=@daily&n=0", "n"), ("interval=@daily&n=x", "n"), ("", "interval"),
                         ("at=yesterday", "at")):
        status, text = await api.root("GET", f"/tasks/preview?{query}")
        assert status == 400 and text.startswith(f"{field}:"), (query, text)


async def test_a_tasks_own_preview(api: Api) -> None:
    await create(api, {**MESSAGE, "interval": "@every 30m"})
    status, body = await api.root("GET", "/tasks/tick/preview?n=4")
    assert status == 200, body
    assert len(body["next"]) == 4 and body["description"] == "every 30 minutes"


async def test_tasks_are_root_only(api: Api) -> None:
    token = await api.register()
    for method, path in (("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/tasks/preview?interval=@daily"),
                         ("POST", "/tasks/tick/run")):
        status, _ = await api.call(method, path, token, json=MESSAGE)
        assert status in (400, 401), (method, path, status)
        status, _ = await api.call(method, path, None, json=MESSAGE)
        assert status == 401, (method, path, status)
    assert await tasks(api) == []


async def test_staticbackends_form_route(api: Api) -> None:
    meta = json.dumps({"channel": "lobby", "data": "x"})
    resp = await api.client.post("/ui/tasks/new", data={"name": "form", "type": "message", "value": "t",
                                                         "interval": "@daily", "meta": meta},
                                 headers={"Authorization": f"Bearer {DEV_ROOT_TOKEN}", "SB-PUBLIC-KEY": api.pk},
                                 allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ui/tasks"
    assert [t["name"] for t in await tasks(api)] == ["form"]
    resp = await api.client.post("/ui/tasks/new", data={"name": "bad", "type": "message", "value": "t"},
                                 headers={"Authorization": f"Bearer {DEV_ROOT_TOKEN}", "SB-PUBLIC-KEY": api.pk},
                                 allow_redirects=False)
    assert resp.status == 400


async def test_metrics_show_the_scheduler(api: Api) -> None:
    await create(api, MESSAGE)
    await api.root("POST", "/tasks/tick/run")
    resp = await api.client.get("/metrics", headers={"Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    text = await resp.text()
    assert 'sblite_task_runs_total{status="ok"} 1' in text
    assert 'sblite_task_lateness_seconds_bucket{le="+Inf"}' in text
    assert "sblite_tasks_scheduled 1" in text
