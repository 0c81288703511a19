"""The index advisor: repeated slow queries on a field without an index make a suggested index.

SUGGEST_AFTER slow queries filtering (==, a range) or sorting on one field of a collection
within SUGGEST_WINDOW_SECONDS make a suggestion, unless the field has an index. Suggestions
live in memory: after a restart the same slow queries make them again within minutes, and a
table would outlive the indexes it was about. With `auto_index` on, a new suggestion is
created at once (in the background, logged), up to AUTO_INDEX_MAX indexes per collection, so
that clients cannot have a collection's every field indexed by querying it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sblite.timeutil import now_text

log = logging.getLogger("sblite.slow_query")
SUGGEST_AFTER = 3
SUGGEST_WINDOW_SECONDS = 600
MAX_TRACKED_FIELDS = 1000  # fields whose recent slow queries are remembered; the least recently slow go first
MAX_SUGGESTIONS = 100
AUTO_INDEX_MAX = 5  # auto_index creates no index on a collection that has this many already
Key = tuple[str, str, str]  # app id, collection, field


class IndexOps(Protocol):
    """The field indexes of a collection (the document service's, as POST /sudo/index uses them)."""

    async def list_indexes(self, app_id: str, collection: str) -> list[dict[str, Any]]:
        """`[{"collection", "field", "name", "created"}]`."""
        ...

    async def create_index(self, app_id: str, collection: str, field: str) -> Any:
        """Create an index on a document field (nothing if there is one)."""
        ...


@dataclass
class Suggestion:
    """An index the advisor suggests."""

    collection: str
    field: str
    slow_queries: int
    last_ms: float
    last_seen: str

    def as_json(self) -> dict[str, Any]:
        """What GET /sudo/index/suggestions answers for it."""
        return {"collection": self.collection, "field": self.field, "slowQueries": self.slow_queries,
                "lastMs": round(self.last_ms, 1), "lastSeen": self.last_seen}


class IndexAdvisor:
    """Counts slow queries per field; suggests (and with auto_index creates) the missing indexes."""

    def __init__(self, indexes: IndexOps | None, *, auto_index: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._indexes = indexes
        self.auto_index = auto_index and indexes is not None
        self._clock = clock
        self._recent: OrderedDict[Key, deque[float]] = OrderedDict()
        self._suggested: dict[Key, Suggestion] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.auto_created: Counter[str] = Counter()  # by outcome: created, failed, skipped

    @property
    def suggested(self) -> int:
        """How many suggestions are held."""
        return len(self._suggested)

    def note(self, app_id: str, collection: str, fields: list[str], ms: float) -> None:
        """One slow query that filtered or sorted on `fields`."""
        now = self._clock()
        for field in fields:
            key = (app_id, collection, field)
            times = self._recent.pop(key, None) or deque()
            self._recent[key] = times  # now the most recently slow
            times.append(now)
            while now - times[0] > SUGGEST_WINDOW_SECONDS:
                times.popleft()
            if len(self._recent) > MAX_TRACKED_FIELDS:
                self._recent.popitem(last=False)
            suggestion = self._suggested.get(key)
            if suggestion is not None:
                suggestion.slow_queries += 1
                suggestion.last_ms, suggestion.last_seen = ms, now_text()
            elif len(times) >= SUGGEST_AFTER and len(self._suggested) < MAX_SUGGESTIONS:
                self._suggest(key, len(times), ms)

    def _suggest(self, key: Key, count: int, ms: float) -> None:
        _app_id, collection, field = key
        self._suggested[key] = Suggestion(collection, field, count, ms, now_text())
        task = asyncio.ensure_future(self._check(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, key: Key) -> None:
        """Drop the suggestion if the field has an index; otherwise log it and, with auto_index, create it."""
        app_id, collection, field = key
        try:
            existing = await self._indexed(app_id, collection)
            if field in existing:
                self._suggested.pop(key, None)
                return
            log.info("index suggested on %s.%s: %d slow queries filtered or sorted on it within %d s "
                     "(sblite index add --col %s --field %s)", collection, field, SUGGEST_AFTER, SUGGEST_WINDOW_SECONDS,
                     collection, field)
            if self.auto_index:
                await self._create(key, len(existing))
        except Exception:  # the advisor never breaks a query: say so and carry on
            log.exception("index advisor: checking %s.%s failed", collection, field)

    async def _create(self, key: Key, existing: int) -> None:
        app_id, collection, field = key
        assert self._indexes is not None  # auto_index needs them
        if existing >= AUTO_INDEX_MAX:
            self.auto_created["skipped"] += 1
            log.warning("auto_index: no index created on %s.%s: the collection has %d indexes already "
                        "(auto_index stops at %d)", collection, field, existing, AUTO_INDEX_MAX)
            return
        started = time.perf_counter()
        try:
            await self._indexes.create_index(app_id, collection, field)
        except Exception:
            self.auto_created["failed"] += 1
            log.exception("auto_index: creating an index on %s.%s failed", collection, field)
            return
        self.auto_created["created"] += 1
        self._suggested.pop(key, None)
        log.warning("auto_index: created an index on %s.%s in %.0f ms after %d slow queries",
                    collection, field, (time.perf_counter() - started) * 1000, SUGGEST_AFTER)

    async def _indexed(self, app_id: str, collection: str) -> set[str]:
        if self._indexes is None:
            return set()
        return {str(index["field"]) for index in await self._indexes.list_indexes(app_id, collection)}

    async def suggestions(self, app_id: str, collection: str | None = None) -> list[dict[str, Any]]:
        """The app's suggestions (of one collection, or all), most slow queries first; indexed fields drop out."""
        mine = [(key, s) for key, s in self._suggested.items()
                if key[0] == app_id and (collection is None or key[1] == collection)]
        indexed: dict[str, set[str]] = {}
        for name in sorted({key[1] for key, _ in mine}):
            indexed[name] = await self._indexed(app_id, name)
        for key, s in mine:
            if s.field in indexed[s.collection]:
                self._suggested.pop(key, None)
        kept = [s for _, s in mine if s.field not in indexed[s.collection]]
        return [s.as_json() for s in sorted(kept, key=lambda s: (-s.slow_queries, s.collection, s.field))]

    async def close(self) -> None:
        """Stop the checks under way (an index being created finishes in the writer)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
