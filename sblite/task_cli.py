"""`sblite task ...`: scheduled tasks on a running server (HTTP with the root token), and a local preview."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

from sblite import cron
from sblite.manage import CommandError, add_connection_options, call

TYPES = ("function", "message", "http")
OVERLAP = ("skip", "queue_one", "allow")
CATCHUP = ("latest", "all", "skip")
UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def _path(name: str, *rest: str) -> str:
    return "/".join(["/tasks", urllib.parse.quote(name, safe=""), *rest])


def _body(args: argparse.Namespace) -> dict[str, Any]:
    """The task fields given on the command line (only those given)."""
    body: dict[str, Any] = {}
    for option, key in (("type", "type"), ("value", "value"), ("interval", "interval"),
                        ("at", "at"), ("tz", "timezone"), ("overlap", "overlap"), ("catchup", "catchup"),
                        ("keep_runs", "keep_runs"), ("keep_days", "keep_days")):
        if getattr(args, option, None) is not None:
            body[key] = getattr(args, option)
    if args.meta is not None:
        try:
            body["meta"] = json.loads(args.meta)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--meta is not valid JSON: {exc}") from None
    if args.catchup_window is not None:
        window = args.catchup_window.strip()
        try:
            length = (timedelta(seconds=int(window)) if window.isdigit()
                      else cron.parse_duration(window, "--catchup-window"))
        except cron.ScheduleError as exc:
            raise CommandError(exc.message) from None
        body["catchup_window"] = length // cron.SECOND
    return body


def task_add(args: argparse.Namespace) -> None:
    """Create a task."""
    body = {"name": args.name, **_body(args)}
    if args.disabled:
        body["enabled"] = False
    task = call(args, "POST", "/tasks", body)
    print(f"added {task['name']}: {_when(task)}")


def task_update(args: argparse.Namespace) -> None:
    """Change some of a task's fields."""
    body = _body(args)
    if args.rename is not None:
        body["name"] = args.rename
    if not body:
        raise CommandError("give at least one field to change (see sblite task update --help)")
    task = call(args, "PUT", _path(args.name), body)
    print(f"updated {task['name']}: {_when(task)}")


def task_list(args: argparse.Namespace) -> None:
    """Print every task with its next run, in words and as a time."""
    tasks = call(args, "GET", "/tasks")
    if not tasks:
        print("no tasks")
    for task in tasks:
        print(f"{task['name']:<24} {task['type']:<8} {task['status']:<9} {_when(task)}")


def task_info(args: argparse.Namespace) -> None:
    """Print a task and its recent runs."""
    task = call(args, "GET", _path(args.name))
    meta = json.dumps(task.get("meta") or {})
    print(f"{task['name']}  {task['type']} {task['value']}  {task['status']}"
          + (f" ({task['paused_note']})" if task.get("paused_note") else ""))
    print(f"  schedule  {task.get('interval') or 'at ' + str(task.get('at'))}  = {task.get('description')}")
    print(f"  next run  {_next(task)}")
    print(f"  last run  {task.get('last_run') or 'never'}")
    print(f"  overlap {task.get('overlap')}, catch-up {task.get('catchup')} "
          f"(window {_duration_words(task.get('catchup_window'))}), meta {meta}")
    runs = task.get("runs") or []
    if not runs:
        print("no runs yet")
    for run in runs[: args.runs]:
        print(_run_line(run))


def task_run(args: argparse.Namespace) -> None:
    """Run a task now, outside its schedule."""
    run = call(args, "POST", _path(args.name, "run"))
    print(f"started {args.name}: run {run.get('id')} {run.get('status')}")


def task_pause(args: argparse.Namespace) -> None:
    """Pause a task (its schedule stays as it is)."""
    task = call(args, "POST", _path(args.name, "pause"), {"note": args.note} if args.note else {})
    print(f"paused {task['name']}" + (f" ({task['paused_note']})" if task.get("paused_note") else ""))


def task_resume(args: argparse.Namespace) -> None:
    """Resume a paused task."""
    task = call(args, "POST", _path(args.name, "resume"))
    print(f"resumed {task['name']}: {_when(task)}")


def task_delete(args: argparse.Namespace) -> None:
    """Delete a task and its history."""
    call(args, "DELETE", _path(args.name))
    print(f"deleted {args.name}")


def task_preview(args: argparse.Namespace) -> None:
    """Print what an expression means and its next instants, computed here (no server needed)."""
    try:
        schedule = cron.parse_schedule(args.expression, args.tz)
        instants = cron.preview(schedule, _after(args.after), args.n)
    except cron.ScheduleError as exc:
        raise CommandError(exc.message) from None
    print(schedule.describe())
    for instant in instants:
        local = instant.astimezone(schedule.zone)
        print(f"  {_utc(instant)}  {local:%a %Y-%m-%d %H:%M:%S %Z}")


def _after(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        after = datetime.fromisoformat(text.strip().upper().replace("Z", "+00:00"))
    except ValueError:
        after = None
    if after is None or after.tzinfo is None:
        raise CommandError(f"--after: {text!r} is not an RFC 3339 time with an offset, such as 2030-01-31T09:00:00Z")
    return after


def _when(task: dict[str, Any]) -> str:
    """The schedule and the next run: "at 09:00 every day (UTC); next in 3 hours, 2025-01-01T09:00:00Z"."""
    description = task.get("description") or task.get("interval") or f"once at {task.get('at')}"
    return f"{description}; next {_next(task)}"


def _next(task: dict[str, Any]) -> str:
    """The next run in words and as a time (also in the task's zone when it is not UTC)."""
    if not task.get("next_run"):
        return "none"
    next_run = datetime.fromisoformat(str(task["next_run"]).replace("Z", "+00:00"))
    local = f" ({task['next_run_local']})" if task.get("timezone") not in (None, "UTC") else ""
    return f"{_relative(next_run - datetime.now(UTC))}, {task['next_run']}{local}"


def _run_line(run: dict[str, Any]) -> str:
    duration = f"{run['duration_ms']} ms" if run.get("duration_ms") is not None else "-"
    detail = run.get("error") or run.get("output") or ""
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    if len(detail) > 100:
        detail = detail[:97] + "..."
    when = run.get("scheduled_for") or run.get("started") or "-"
    trigger = f" ({run['trigger']})" if run.get("trigger") else ""
    return f"  {when:<24} {run.get('status', '') + trigger:<20} {duration:>12}  {detail}"


def _relative(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if abs(seconds) < 1:
        return "in less than a second"
    words = _duration_words(abs(seconds))
    return f"in {words}" if seconds > 0 else f"{words} ago (overdue)"


def _duration_words(seconds: Any) -> str:
    """Up to two units, largest first: "3 hours 20 minutes"."""
    if not isinstance(seconds, int | float):
        return str(seconds)
    left, parts = int(seconds), []
    for unit, size in UNITS:
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count} {unit}" + ("s" if count > 1 else ""))
    return " ".join(parts[:2]) or "0 seconds"


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _task_options(parser: argparse.ArgumentParser, adding: bool) -> None:
    if adding:
        parser.add_argument("--name", required=True, help="unique in the app")
    parser.add_argument("--type", choices=TYPES, required=adding, help="what the task does")
    parser.add_argument("--value", required=adding, help="the function name, the message type, or the URL")
    when = parser.add_mutually_exclusive_group(required=adding)
    when.add_argument("--interval", help='cron ("0 9 * * 1#1"), @daily, @every 30m ...')
    when.add_argument("--at", help="once: an RFC 3339 time with an offset, or +10m, +1h30m, +2d")
    parser.add_argument("--meta", help='JSON, e.g. \'{"channel": "news", "data": "hi"}\'')
    parser.add_argument("--tz", help="IANA time zone of the schedule (default UTC)")
    parser.add_argument("--overlap", choices=OVERLAP, help="while the previous run is unfinished (default skip)")
    parser.add_argument("--catchup", choices=CATCHUP, help="instants missed while down (default latest)")
    parser.add_argument("--catchup-window", help="how late a missed instant may still run with latest (6h)")
    parser.add_argument("--keep-runs", type=int, help="runs kept in the history (default 100)")
    parser.add_argument("--keep-days", type=float, help="days a run is kept (default 14)")
    add_connection_options(parser)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `task` commands."""
    task = commands.add_parser("task", help="manage scheduled tasks").add_subparsers(dest="action", required=True)
    sub = task.add_parser("add", help="add a task")
    _task_options(sub, adding=True)
    sub.add_argument("--disabled", action="store_true", help="store it paused")
    sub.set_defaults(handler=task_add)
    sub = task.add_parser("update", help="change a task's fields")
    sub.add_argument("name")
    sub.add_argument("--rename", help="a new name")
    _task_options(sub, adding=False)
    sub.set_defaults(handler=task_update)
    sub = task.add_parser("list", help="list tasks with their next run")
    add_connection_options(sub)
    sub.set_defaults(handler=task_list)
    for name, handler, help_text in (("info", task_info, "show a task and its recent runs"),
                                     ("run", task_run, "run a task now"),
                                     ("pause", task_pause, "pause a task"),
                                     ("resume", task_resume, "resume a paused task"),
                                     ("delete", task_delete, "delete a task")):
        sub = task.add_parser(name, help=help_text)
        sub.add_argument("name")
        if name == "info":
            sub.add_argument("--runs", type=int, default=20, help="how many runs to show")
        if name == "pause":
            sub.add_argument("--note", help="why it is paused")
        add_connection_options(sub)
        sub.set_defaults(handler=handler)
    sub = task.add_parser("preview", help="show an expression's next instants (computed here)")
    sub.add_argument("expression", help='e.g. "0 9 * * 1#1", @daily, "@every 90m"')
    sub.add_argument("--tz", help="IANA time zone (default UTC)")
    sub.add_argument("-n", type=int, default=10, help=f"how many instants (1 to {cron.MAX_PREVIEW})")
    sub.add_argument("--after", help="start from this RFC 3339 time instead of now")
    sub.set_defaults(handler=task_preview)
