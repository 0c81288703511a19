"""Management commands (`sblite function ...`, `sblite secret ...`): HTTP calls to a running server."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sblite.tokens import DEV_ROOT_ALIAS

DEFAULT_URL = "http://127.0.0.1:8099"


class CommandError(Exception):
    """A management command failed; the message is for the user."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """--url, --token and --pk, with environment defaults."""
    parser.add_argument("--url", default=os.environ.get("SBLITE_URL", DEFAULT_URL),
                        help=f"server URL (env SBLITE_URL, default {DEFAULT_URL})")
    parser.add_argument("--token", default=os.environ.get("SBLITE_ROOT_TOKEN", DEV_ROOT_ALIAS),
                        help="root token (env SBLITE_ROOT_TOKEN, default the dev alias)")
    parser.add_argument("--pk", default=os.environ.get("SBLITE_PK"), help="public key of the app (env SBLITE_PK)")


def call(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """One root request; the decoded JSON answer, or CommandError with the server's message."""
    headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    if args.pk:
        headers["SB-PUBLIC-KEY"] = args.pk
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{exc.code}: {exc.read().decode(errors='replace').strip()}") from None
    except urllib.error.URLError as exc:
        raise CommandError(f"cannot reach {args.url}: {exc.reason} (is `sblite serve` running?)") from None


def _source(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


def function_add(args: argparse.Namespace) -> None:
    """Create a function from a source file."""
    created = call(args, "POST", "/fn/add", {"name": args.name, "trigger": args.trigger, "code": _source(args.source)})
    print(f"added {created['name']} (trigger {created['trigger']}, version {created['version']})")


def function_update(args: argparse.Namespace) -> None:
    """Change a function's source and/or trigger."""
    body: dict[str, Any] = {"name": args.name}
    if args.source:
        body["code"] = _source(args.source)
    if args.trigger:
        body["trigger"] = args.trigger
    if len(body) == 1:
        raise CommandError("give --source and/or --trigger")
    updated = call(args, "POST", "/fn/update", body)
    print(f"updated {updated['name']} (trigger {updated['trigger']}, version {updated['version']})")


def function_list(args: argparse.Namespace) -> None:
    """Print every function."""
    functions = call(args, "GET", "/fn")
    if not functions:
        print("no functions")
    for fn in functions:
        print(f"{fn['name']:<24} trigger={fn['trigger']:<16} version={fn['version']:<4} last run {fn['lastRun']}")


def function_info(args: argparse.Namespace) -> None:
    """Print a function and its recent runs with their log lines."""
    fn = call(args, "GET", f"/fn/info/{args.name}")
    print(f"{fn['name']}  trigger={fn['trigger']}  version={fn['version']}  updated {fn['lastUpdated']}")
    runs = fn.get("history") or []
    if not runs:
        print("no runs yet")
    for run in runs[: args.runs]:
        status = "ok" if run["success"] else "FAILED"
        print(f"\n{run['started']}  {status}  {run['durationMs']} ms  trigger={run['trigger']}  v{run['version']}")
        for line in run["output"]:
            print(f"    {line}")


def function_delete(args: argparse.Namespace) -> None:
    """Delete a function."""
    call(args, "DELETE", f"/fn/delete/{args.name}")
    print(f"deleted {args.name}")


def function_run(args: argparse.Namespace) -> None:
    """Run a function as root and print what it returned."""
    try:
        data = json.loads(args.data) if args.data else None
    except json.JSONDecodeError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}") from None
    print(json.dumps(call(args, "POST", f"/fn/sudoexec/{args.name}", data), indent=2))


def secret_set(args: argparse.Namespace) -> None:
    """Set a secret (read from stdin when no value is given, so it stays out of shell history)."""
    value = args.value if args.value is not None else sys.stdin.read().rstrip("\n")
    call(args, "POST", "/fn/secrets", {"name": args.name, "value": value})
    print(f"set {args.name}")


def secret_list(args: argparse.Namespace) -> None:
    """Print secret names with masked values."""
    secrets = call(args, "GET", "/fn/secrets")
    if not secrets:
        print("no secrets")
    for secret in secrets:
        print(f"{secret['name']:<32} {secret['value']}")


def secret_delete(args: argparse.Namespace) -> None:
    """Delete a secret."""
    call(args, "DELETE", f"/fn/secrets/{args.name}")
    print(f"deleted {args.name}")


def publish(args: argparse.Namespace) -> None:
    """Send a message to a channel's members (and to functions) as root."""
    call(args, "POST", "/publish-message", {"channel": args.channel, "type": args.type, "data": args.data or ""})
    print(f"published {args.type} on {args.channel}")


def mail_list(args: argparse.Namespace) -> None:
    """Print one page of the outbox, newest first."""
    query = f"?page={args.page}&size={args.size}" + (f"&status={args.status}" if args.status else "")
    found = call(args, "GET", "/mail/outbox" + query)
    if not found["delivering"]:
        print("no SMTP server is set (smtp_host): mail is kept here, not sent")
    if not found["results"]:
        print("no mail")
    for mail in found["results"]:
        error = f"  ({mail['lastError']})" if mail["lastError"] else ""
        print(f"{mail['id']}  {mail['status']:<6}  {mail['created']}  {mail['to']}  {mail['subject']!r}{error}")
    print(f"page {found['page']}, {found['total']} in all")


def mail_show(args: argparse.Namespace) -> None:
    """Print one mail: its headers, delivery state and bodies."""
    mail = call(args, "GET", f"/mail/outbox/{args.id}")
    for label, key in (("From", "from"), ("Name", "fromName"), ("To", "to"), ("Name", "toName"),
                       ("Reply-To", "replyTo"), ("Subject", "subject"), ("Status", "status"), ("Origin", "origin"),
                       ("Attempts", "attempts"), ("Error", "lastError"), ("Queued", "created"), ("Sent", "sent")):
        if mail.get(key) not in (None, ""):
            print(f"{label + ':':<10} {mail[key]}")
    for label, key in (("text", "textBody"), ("html", "htmlBody")):
        if mail.get(key):
            print(f"\n--- {label} ---\n{mail[key]}")


def mail_replay(args: argparse.Namespace) -> None:
    """Queue a parked (or kept) mail again."""
    mail = call(args, "POST", f"/mail/outbox/{args.id}/replay", {})
    print(f"queued {mail['id']} to {mail['to']} again")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `function`, `secret`, `publish` and `mail` commands."""
    sub = commands.add_parser("publish", help="send a message to a channel as root")
    sub.add_argument("--channel", required=True)
    sub.add_argument("--type", required=True, help="the message type, e.g. event")
    sub.add_argument("--data", help="the message data (a string; JSON by convention)")
    add_connection_options(sub)
    sub.set_defaults(handler=publish)

    function = commands.add_parser("function", help="manage server-side functions").add_subparsers(
        dest="action", required=True)
    for name, handler, help_text in (("add", function_add, "add a function"),
                                     ("update", function_update, "change a function's source or trigger")):
        sub = function.add_parser(name, help=help_text)
        sub.add_argument("--name", required=True)
        sub.add_argument("--trigger", required=name == "add", help='"web", a message type or a channel')
        sub.add_argument("--source", required=name == "add", help="JavaScript file defining handle()")
        add_connection_options(sub)
        sub.set_defaults(handler=handler)
    sub = function.add_parser("list", help="list functions")
    add_connection_options(sub)
    sub.set_defaults(handler=function_list)
    for name, handler, help_text in (("info", function_info, "show a function and its recent runs"),
                                     ("delete", function_delete, "delete a function"),
                                     ("run", function_run, "run a function as root")):
        sub = function.add_parser(name, help=help_text)
        sub.add_argument("name")
        if name == "info":
            sub.add_argument("--runs", type=int, default=10, help="how many runs to show")
        if name == "run":
            sub.add_argument("--data", help="JSON body passed to handle()")
        add_connection_options(sub)
        sub.set_defaults(handler=handler)

    secret = commands.add_parser("secret", help="manage function secrets (env.NAME)").add_subparsers(
        dest="action", required=True)
    sub = secret.add_parser("set", help="set a secret")
    sub.add_argument("name")
    sub.add_argument("value", nargs="?", help="the value (read from stdin when left out)")
    add_connection_options(sub)
    sub.set_defaults(handler=secret_set)
    sub = secret.add_parser("list", help="list secrets (values masked)")
    add_connection_options(sub)
    sub.set_defaults(handler=secret_list)
    sub = secret.add_parser("delete", help="delete a secret")
    sub.add_argument("name")
    add_connection_options(sub)
    sub.set_defaults(handler=secret_delete)

    mail = commands.add_parser("mail", help="read the mail outbox, replay parked mail").add_subparsers(
        dest="action", required=True)
    sub = mail.add_parser("list", help="list the outbox, newest first")
    sub.add_argument("--status", choices=("queued", "sent", "parked", "kept"))
    sub.add_argument("--page", type=int, default=1)
    sub.add_argument("--size", type=int, default=20)
    add_connection_options(sub)
    sub.set_defaults(handler=mail_list)
    for name, handler, help_text in (("show", mail_show, "show one mail with its bodies"),
                                     ("replay", mail_replay, "send a parked mail again")):
        sub = mail.add_parser(name, help=help_text)
        sub.add_argument("id")
        add_connection_options(sub)
        sub.set_defaults(handler=handler)
