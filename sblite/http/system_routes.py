"""Probes and app creation: /ping, /healthz and /account/init (spec §1.1)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from sblite import __version__
from sblite.errors import Forbidden, ServerError
from sblite.http import form_routes, task_routes
from sblite.http import slow_query_routes
from sblite.http.connections import CONNECTIONS
from sblite.http.keys import ACCOUNTS, AUTH_THROTTLE, BUS, CHANNELS, CONFIG, DATABASE, DISPATCHER, FUNCTIONS, HUB
from sblite.http.keys import PUBLISH_LIMITER
from sblite.http.policy import OPEN, PROBE, ROOT, PolicyRoutes
from sblite.http.request import form_body
from sblite.http.responses import json_response, token_response
from sblite.services.accounts import Credentials
from sblite.services.users import normalize_email
from sblite.services import publish_limit
from sblite.throttle import ACTIONS, OUTCOMES

routes = PolicyRoutes()
log = logging.getLogger(__name__)
SIGN_UP_NOT_NEEDED = "no need to sign up in dev mode"


@routes.get("/ping", PROBE)
async def ping(request: web.Request) -> web.Response:
    """`true` while the database answers."""
    await request.app[DATABASE].read(lambda conn: conn.execute("SELECT 1").fetchone())
    return json_response(True)


@routes.get("/healthz", PROBE)
async def healthz(request: web.Request) -> web.Response:
    """Liveness and readiness in one: the database answers a query."""
    await request.app[DATABASE].read(lambda conn: conn.execute("SELECT 1").fetchone())
    return json_response({"status": "ok"})


@routes.get("/metrics", ROOT)
async def metrics(request: web.Request) -> web.Response:
    """Root: counters and gauges in Prometheus' text format."""
    hub, bus, attempts = request.app[HUB], request.app[BUS], request.app[AUTH_THROTTLE].stats
    lines = [
        "# HELP sblite_info The server's version and the event loop it runs on.",
        "# TYPE sblite_info gauge",
        f'sblite_info{{version="{__version__}",event_loop="{_event_loop_name()}"}} 1',
        *_connection_lines(request.app),
        "# HELP sblite_realtime_connections Open realtime connections (SSE and WebSocket).",
        "# TYPE sblite_realtime_connections gauge",
        f"sblite_realtime_connections {hub.connection_count}",
        "# HELP sblite_realtime_events_total Realtime events: deliveries, refusals, disconnects.",
        "# TYPE sblite_realtime_events_total counter",
        *(f'sblite_realtime_events_total{{event="{name}"}} {value}' for name, value in sorted(hub.stats.items())),
        "# HELP sblite_bus_messages_total Messages published on the event bus, by type.",
        "# TYPE sblite_bus_messages_total counter",
        *(f'sblite_bus_messages_total{{type="{_label(kind)}"}} {value}'
          for kind, value in sorted(bus.published.items())),
        "# HELP sblite_bus_subscriber_errors_total Bus subscribers that raised.",
        "# TYPE sblite_bus_subscriber_errors_total counter",
        f"sblite_bus_subscriber_errors_total {bus.handler_errors}",
        "# HELP sblite_channel_history_failures_total Channel history writes that failed.",
        "# TYPE sblite_channel_history_failures_total counter",
        f"sblite_channel_history_failures_total {request.app[CHANNELS].history_failures}",
        "# HELP sblite_function_runs_total Message-triggered function runs: queued, succeeded, retried, parked,"
        " dropped.",
        "# TYPE sblite_function_runs_total counter",
        *(f'sblite_function_runs_total{{event="{name}"}} {value}'
          for name, value in sorted(request.app[DISPATCHER].stats.items())),
        "# HELP sblite_function_runs_held Message-triggered runs in memory (the rest wait in the database).",
        "# TYPE sblite_function_runs_held gauge",
        f"sblite_function_runs_held {request.app[DISPATCHER].held}",
        "# HELP sblite_function_workers Live function worker processes.",
        "# TYPE sblite_function_workers gauge",
        f"sblite_function_workers {len(request.app[FUNCTIONS].pool.pids())}",
        "# HELP sblite_function_workers_replaced_total Workers killed (deadline) or lost (crash) and replaced.",
        "# TYPE sblite_function_workers_replaced_total counter",
        f"sblite_function_workers_replaced_total {request.app[FUNCTIONS].pool.replaced}",
        "# HELP sblite_auth_attempts_total Login, password-reset, register and realtime auth attempts by outcome"
        " (refused: 429).",
        "# TYPE sblite_auth_attempts_total counter",
        *(f'sblite_auth_attempts_total{{action="{action}",outcome="{outcome}"}} {attempts[action, outcome]}'
          for action in ACTIONS for outcome in OUTCOMES),
        "# HELP sblite_auth_throttle_keys Addresses and accounts the attempt limits remember.",
        "# TYPE sblite_auth_throttle_keys gauge",
        f"sblite_auth_throttle_keys {request.app[AUTH_THROTTLE].tracked_keys()}",
        *_publish_limit_lines(request.app),
        *task_routes.metric_lines(request.app),
        *form_routes.metric_lines(request.app),
        *slow_query_routes.metric_lines(request.app),
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8")


def _publish_limit_lines(app: web.Application) -> list[str]:
    """Custom messages the per-user publish limit let through or refused, by the path they came by."""
    stats = app[PUBLISH_LIMITER].stats
    return [
        "# HELP sblite_publish_messages_total Custom messages by path (chan_in, publish_message, function) and"
        " outcome (refused: over the per-user publish limit, answered 429, an error frame or {ok: false}).",
        "# TYPE sblite_publish_messages_total counter",
        *(f'sblite_publish_messages_total{{path="{path}",outcome="{outcome}"}} {stats[path, outcome]}'
          for path in publish_limit.PATHS for outcome in publish_limit.OUTCOMES),
    ]


def _event_loop_name() -> str:
    """Which event loop serves: "uvloop" or "asyncio"."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _connection_lines(app: web.Application) -> list[str]:
    """Open client connections, their cap and the ones closed by force; none without the
    listener's guard (an app served by a test client)."""
    guard = app.get(CONNECTIONS)
    if guard is None:
        return []
    return [
        "# HELP sblite_http_connections Open client connections, SSE and WebSocket included.",
        "# TYPE sblite_http_connections gauge",
        f"sblite_http_connections {guard.open}",
        "# HELP sblite_http_connections_max The cap on open client connections (max_connections).",
        "# TYPE sblite_http_connections_max gauge",
        f"sblite_http_connections_max {guard.limits.max_connections}",
        "# HELP sblite_http_connections_dropped_total Connections the server closed: over_limit "
        "(answered 503 at the cap), header_timeout (request headers not finished in time).",
        "# TYPE sblite_http_connections_dropped_total counter",
        *(f'sblite_http_connections_dropped_total{{reason="{reason}"}} {count}'
          for reason, count in sorted(guard.dropped.items())),
    ]


@routes.get("/account/init", OPEN)
@routes.post("/account/init", OPEN)
async def account_init(request: web.Request) -> web.Response:
    """Create a new app; `?ui=1` answers its credentials, otherwise they are printed on the console."""
    config = request.app[CONFIG]
    if config.prod and not config.allow_account_init:
        raise Forbidden("creating apps with /account/init is disabled in prod mode (allow_account_init)")
    raw_email = request.query.get("email")
    if raw_email is None and request.method == "POST":
        raw_email = (await form_body(request)).get("email")
    email = normalize_email(raw_email)
    accounts = request.app[ACCOUNTS]
    if await accounts.account_init_email_taken(email):
        raise ServerError("Please use a different/valid email.")
    credentials = await accounts.create_app(email)
    if request.query.get("ui"):
        return token_response({"pk": credentials.app.pk, "rootToken": credentials.root_token,
                              "pw": credentials.password})
    print(credentials_banner(credentials, dev_alias=not config.prod), flush=True)
    return json_response(SIGN_UP_NOT_NEEDED)


def credentials_banner(credentials: Credentials, *, dev_alias: bool) -> str:
    """The credentials block StaticBackend prints when it creates an app."""
    alias = "Dev root token:\t\tsafe-to-use-in-dev-root-token\n" if dev_alias else ""
    return (
        "\nStart sending requests with the following credentials:\n\n\n"
        f"Public key:\t\t{credentials.app.pk}\n\n\n"
        "Admin user:\n"
        f"\tEmail:\t\t{credentials.email}\n"
        f"\tPassword:\t{credentials.password}\n\n\n"
        f"{alias}"
        f"Real root token:\t{credentials.root_token}\n\n"
    )
