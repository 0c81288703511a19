"""Scheduled tasks (spec §5, with the JSON API StaticBackend lacks): root only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sblite.http.keys import TASKS
from sblite.http.policy import ROOT, PolicyRoutes, caller
from sblite.http.request import form_body, json_body
from sblite.http.responses import json_response

routes = PolicyRoutes()


@routes.get("/tasks/preview", ROOT)
async def preview(request: web.Request) -> web.Response:
    """Root: what `?interval=` (or `?at=`) in `?tz=` means, and its next `?n=` instants."""
    query = request.query
    return json_response(request.app[TASKS].preview(query.get("interval"), query.get("tz") or query.get("timezone"),
                                                    query.get("n"), query.get("at")))


@routes.get("/tasks", ROOT)
async def list_tasks(request: web.Request) -> web.Response:
    """Root: the app's tasks."""
    return json_response(request.app[TASKS].list_tasks(caller(request)))


@routes.post("/tasks", ROOT)
async def create(request: web.Request) -> web.Response:
    """Root: create a task."""
    return json_response(await request.app[TASKS].create(caller(request), await json_body(request)))


@routes.get("/tasks/{name}", ROOT)
async def get(request: web.Request) -> web.Response:
    """Root: a task with its recent runs."""
    return json_response(await request.app[TASKS].get(caller(request), request.match_info["name"]))


@routes.put("/tasks/{name}", ROOT)
async def update(request: web.Request) -> web.Response:
    """Root: change some of a task's fields."""
    body = await json_body(request)
    return json_response(await request.app[TASKS].update(caller(request), request.match_info["name"], body))


@routes.delete("/tasks/{name}", ROOT)
async def delete(request: web.Request) -> web.Response:
    """Root: delete a task and its history."""
    await request.app[TASKS].delete(caller(request), request.match_info["name"])
    return json_response(True)


@routes.post("/tasks/{name}/run", ROOT)
async def run_now(request: web.Request) -> web.Response:
    """Root: run a task now; the run."""
    return json_response(await request.app[TASKS].run_now(caller(request), request.match_info["name"]))


@routes.post("/tasks/{name}/pause", ROOT)
async def pause(request: web.Request) -> web.Response:
    """Root: pause a task, `{note}` optional."""
    body = await json_body(request, required=False)
    return json_response(await request.app[TASKS].pause(caller(request), request.match_info["name"], body))


@routes.post("/tasks/{name}/resume", ROOT)
async def resume(request: web.Request) -> web.Response:
    """Root: resume a paused task."""
    return json_response(await request.app[TASKS].resume(caller(request), request.match_info["name"]))


@routes.get("/tasks/{name}/runs", ROOT)
async def runs(request: web.Request) -> web.Response:
    """Root: a task's recent runs, `?limit=` (100)."""
    return json_response(await request.app[TASKS].runs(caller(request), request.match_info["name"],
                                                       request.query.get("limit")))


@routes.get("/tasks/{name}/preview", ROOT)
async def task_preview(request: web.Request) -> web.Response:
    """Root: a task's next `?n=` instants."""
    return json_response(request.app[TASKS].task_preview(caller(request), request.match_info["name"],
                                                         request.query.get("n")))


@routes.post("/ui/tasks/new", ROOT)
async def ui_new(request: web.Request) -> web.StreamResponse:
    """Root: StaticBackend's admin form (`name, type, value, interval, meta`); 303 to /ui/tasks."""
    form = await form_body(request)
    body: dict[str, Any] = {key: form.get(key) for key in ("name", "type", "value", "interval", "meta")
                            if form.get(key) is not None}
    await request.app[TASKS].create(caller(request), body)
    raise web.HTTPSeeOther("/ui/tasks")


def metric_lines(app: web.Application) -> list[str]:
    """The scheduler's lines for /metrics."""
    stats = app[TASKS].stats
    lateness = stats.lateness
    return [
        "# HELP sblite_task_runs_total Task runs by outcome (missed counts instants).",
        "# TYPE sblite_task_runs_total counter",
        *(f'sblite_task_runs_total{{status="{status}"}} {stats.runs[status]}'
          for status in ("ok", "failed", "skipped", "missed")),
        "# HELP sblite_task_lateness_seconds How late scheduled runs start after their instant.",
        "# TYPE sblite_task_lateness_seconds histogram",
        *(f'sblite_task_lateness_seconds_bucket{{le="{bound}"}} {count}' for bound, count in lateness.cumulative()),
        f"sblite_task_lateness_seconds_sum {lateness.sum:.6f}",
        f"sblite_task_lateness_seconds_count {lateness.count}",
        "# HELP sblite_task_internal_errors_total Scheduler steps that failed (logged; the task is tried again).",
        "# TYPE sblite_task_internal_errors_total counter",
        f"sblite_task_internal_errors_total {stats.internal_errors}",
        "# HELP sblite_tasks_scheduled Enabled tasks waiting for their next run.",
        "# TYPE sblite_tasks_scheduled gauge",
        f"sblite_tasks_scheduled {app[TASKS].scheduled()}",
    ]
