"""The slow-query log: document lists, queries and counts slower than `slow_query_ms`, logged without values.

A logged line names the collection, the clauses' shapes (`[["body", "==", "?"]]`: fields and
operators, never values), the sort, the milliseconds the reads ran and the SQLite steps they
took (store/probe.py), and the fields an index could serve go to the index advisor.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sblite import filters
from sblite.errors import ApiError
from sblite.model import Identity
from sblite.scheduler.stats import Histogram
from sblite.services.index_advisor import IndexAdvisor
from sblite.store.probe import ReadCost, probe

T = TypeVar("T")
P = ParamSpec("P")
# A DocumentService method reading documents: (self, identity, collection, raw clauses, ...).
Reader = Callable[Concatenate[Any, Identity, str, Any, P], Awaitable[T]]
log = logging.getLogger("sblite.slow_query")
OFF = -1  # slow_query_ms that turns the log off; 0 logs every query
# Seconds: a slow query takes at least slow_query_ms (200 by default); a scan of 100,000
# documents about 0.25 s on a 2-core machine.
SECONDS_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_COLLECTION_LABELS = 100  # collections /metrics names one by one; the others add up under OTHER
OTHER = "(other)"
# Operators whose field an index can serve (an ordered index: equality and ranges).
INDEXABLE = ("==", "<", "<=", ">", ">=")


class SlowQueryLog:
    """Measures reads against a threshold; logs, counts and hands the slow ones to the advisor."""

    def __init__(self, threshold_ms: int = OFF, advisor: IndexAdvisor | None = None) -> None:
        self.threshold_ms = threshold_ms
        self.advisor = advisor
        self.by_collection: Counter[str] = Counter()
        self.seconds = Histogram(SECONDS_BUCKETS)

    @property
    def enabled(self) -> bool:
        """Whether queries are measured at all."""
        return self.threshold_ms >= 0

    async def measure(self, read: Awaitable[T], kind: str, app_id: str, collection: str, raw_clauses: Any,
                      sort: str | None = None, descending: bool = False) -> T:
        """Await `read` (a store call); if its reads ran at least threshold_ms, log it and tell the advisor."""
        if not self.enabled:
            return await read
        with probe() as cost:
            result = await read
        if cost.ms >= self.threshold_ms:
            self._slow(kind, app_id, collection, _clauses(raw_clauses), sort, descending, cost)
        return result

    def _slow(self, kind: str, app_id: str, collection: str, clauses: list[filters.Clause], sort: str | None,
              descending: bool, cost: ReadCost) -> None:
        shape = {"collection": collection, "clauses": [[c.field, c.op, "?"] for c in clauses],
                 "sort": sort, "desc": descending, "ms": round(cost.ms, 1),
                 "steps": cost.steps if cost.count_steps else None, "app": app_id}
        log.warning("slow %s: %s", kind, json.dumps(shape))
        label = collection if collection in self.by_collection or len(self.by_collection) < MAX_COLLECTION_LABELS \
            else OTHER
        self.by_collection[label] += 1
        self.seconds.observe(cost.seconds)
        if self.advisor is not None:
            self.advisor.note(app_id, collection, indexable_fields(clauses, sort), cost.ms)


def _clauses(raw_clauses: Any) -> list[filters.Clause]:
    """The clauses again (they passed once, so this only fails if the caller changed them)."""
    try:
        return filters.parse_clauses(raw_clauses)
    except ApiError:
        return []


def indexable_fields(clauses: list[filters.Clause], sort: str | None) -> list[str]:
    """Document fields of equality, range and sort clauses (system columns have their indexes), once each."""
    fields = [c.field for c in clauses if c.op in INDEXABLE and isinstance(c.value, (str, int, float))
              and not isinstance(c.value, bool)]
    if sort:
        fields.append(sort)
    return [f for f in dict.fromkeys(fields) if f not in filters.SYSTEM_COLUMNS and f not in filters.ORDER_COLUMNS]


def measured(kind: str) -> Callable[[Reader[P, T]], Reader[P, T]]:
    """Decorate a document service method (`self.slow_queries`): its reads go through the slow-query log.

    Its first three arguments are the identity, the collection and the raw clauses; a `paging`
    after them (its `sort` and `descending`) is the order.
    """
    def wrap(method: Reader[P, T]) -> Reader[P, T]:
        @functools.wraps(method)
        async def run(self: Any, identity: Identity, collection: str, raw_clauses: Any, /,
                      *args: P.args, **kwargs: P.kwargs) -> T:
            log_: SlowQueryLog = self.slow_queries
            read = method(self, identity, collection, raw_clauses, *args, **kwargs)
            if not log_.enabled:
                return await read
            paging = args[0] if args else kwargs.get("paging")
            return await log_.measure(read, kind, identity.app_id, collection, raw_clauses,
                                      getattr(paging, "sort", None), bool(getattr(paging, "descending", False)))
        return run
    return wrap
