"""The slow-query log and the index advisor: wiring, GET /sudo/index/suggestions and /advisor, their /metrics lines."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from sblite.http.keys import CONFIG, DOCUMENTS
from sblite.http.policy import ROOT, PolicyRoutes, caller
from sblite.http.responses import json_response
from sblite.permissions import validate_collection_name
from sblite.services.index_advisor import SUGGEST_AFTER, SUGGEST_WINDOW_SECONDS, IndexAdvisor, IndexOps
from sblite.services.slow_queries import SlowQueryLog

routes = PolicyRoutes()


def setup(app: web.Application) -> None:
    """Register the route; once the document service exists, give it the configured slow-query log.

    The advisor lists and creates field indexes with the document service's own methods, the
    ones POST and GET /sudo/index call.
    """
    routes.register(app)

    async def context(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        documents = app[DOCUMENTS]
        indexes: IndexOps = documents
        advisor = IndexAdvisor(indexes, auto_index=config.auto_index)
        documents.slow_queries = SlowQueryLog(config.slow_query_ms, advisor)
        yield
        await advisor.close()

    app.cleanup_ctx.append(context)


@routes.get("/sudo/index/suggestions", ROOT)
async def suggestions(request: web.Request) -> web.Response:
    """Root: the indexes the advisor suggests (`?col=` for one collection), most slow queries first."""
    col = request.query.get("col")
    if col is not None:
        validate_collection_name(col)
    advisor = request.app[DOCUMENTS].slow_queries.advisor
    found = [] if advisor is None else await advisor.suggestions(caller(request).app_id, col)
    return json_response(found)


@routes.get("/sudo/index/advisor", ROOT)
async def advisor_settings(request: web.Request) -> web.Response:
    """Root: what makes a suggestion here (the dashboard says it when there is none, and when the log is off)."""
    config = request.app[CONFIG]
    return json_response({"slowQueryMs": config.slow_query_ms, "autoIndex": config.auto_index,
                          "suggestAfter": SUGGEST_AFTER, "windowSeconds": SUGGEST_WINDOW_SECONDS})


def metric_lines(app: web.Application) -> list[str]:
    """Slow queries by collection, their durations, the suggestions held and the indexes auto_index made."""
    slow = app[DOCUMENTS].slow_queries
    advisor = slow.advisor
    auto = advisor.auto_created if advisor is not None else {}
    return [
        "# HELP sblite_slow_queries_total Document lists, queries and counts whose reads took at least "
        "slow_query_ms, by collection.",
        "# TYPE sblite_slow_queries_total counter",
        *(f'sblite_slow_queries_total{{collection="{name}"}} {count}'
          for name, count in sorted(slow.by_collection.items())),
        "# HELP sblite_slow_query_seconds How long the reads of slow queries ran.",
        "# TYPE sblite_slow_query_seconds histogram",
        *(f'sblite_slow_query_seconds_bucket{{le="{bound}"}} {count}' for bound, count in slow.seconds.cumulative()),
        f"sblite_slow_query_seconds_sum {slow.seconds.sum:.6f}",
        f"sblite_slow_query_seconds_count {slow.seconds.count}",
        "# HELP sblite_index_suggestions Indexes the advisor suggests (repeated slow queries on a field without one).",
        "# TYPE sblite_index_suggestions gauge",
        f"sblite_index_suggestions {advisor.suggested if advisor is not None else 0}",
        "# HELP sblite_auto_indexes_total Suggested indexes auto_index created, failed to create, or skipped "
        "(the collection had enough).",
        "# TYPE sblite_auto_indexes_total counter",
        *(f'sblite_auto_indexes_total{{outcome="{outcome}"}} {auto.get(outcome, 0)}'
          for outcome in ("created", "failed", "skipped")),
    ]
