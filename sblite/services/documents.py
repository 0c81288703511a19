"""The document database: permissions, validation, paging and change events."""

from __future__ import annotations

from dataclasses import dataclass, replace
from collections.abc import Awaitable, Callable
from typing import Any

from sblite import filters, ids
from sblite.errors import BadRequest, NotFound, ServerError
from sblite.jsonutil import MAX_DEPTH, dumps, exceeds_depth
from sblite.model import Identity, Message
from sblite.permissions import CollectionRules, Level, collection_rules, validate_collection_name
from sblite.query_plan import QueryPlan, plan_query
from sblite.services.bus import EventBus
from sblite.services.slow_queries import SlowQueryLog, measured
from sblite.store import DocumentStore
from sblite.store.documents import NewDocument, Scope, WithChange, strip_system_keys
from sblite.store.probe import time_only
from sblite.timeutil import now_text

DEFAULT_PAGE_SIZE = 25
NOT_FOUND = "document not found"


@dataclass(frozen=True)
class Paging:
    """Which page of results a caller wants."""

    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    descending: bool = False
    sort: str | None = None


def _scope(identity: Identity, rules: CollectionRules, level: Level) -> Scope:
    if rules.public or identity.is_root or level is Level.EVERYONE:
        return Scope(identity.app_id, rules.name)
    if level is Level.ACCOUNT:
        return Scope(identity.app_id, rules.name, account_id=identity.account_id)
    return Scope(identity.app_id, rules.name, account_id=identity.account_id, owner_id=identity.user_id)


def access_scope(identity: Identity, collection: str, write: bool) -> Scope:
    """The documents of `collection` that `identity` may read (or write): the rules lists follow."""
    rules = collection_rules(collection)
    return _scope(identity, rules, rules.write if write else rules.read)


def _indexable(collection: str, field: str) -> str:
    """The collection's name once it and the field are valid for an index."""
    validate_collection_name(collection)
    if field in filters.SYSTEM_COLUMNS:
        raise BadRequest(f"{field} is indexed already: indexes are for document fields")
    filters.json_path(field)
    return collection


def _require_object(value: Any, what: str = "invalid body: a document must be a JSON object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(what)
    return value


def _storable(doc: dict[str, Any]) -> dict[str, Any]:
    """A document (or patch) that nests within the limit, so that it encodes inside any answer."""
    if exceeds_depth(doc, MAX_DEPTH):
        raise BadRequest(f"invalid document: nested deeper than {MAX_DEPTH} levels")
    return doc


def _offset(page: int, size: int) -> int:
    """Rows skipped before `page`; SQLite takes no offset beyond 64 bits."""
    offset = (page - 1) * size
    if offset > filters.INT64_MAX:
        raise BadRequest(f"page {page} is too large: (page - 1) * size must fit in 64 bits "
                         f"(at most {filters.INT64_MAX})")
    return offset


class DocumentService:
    """CRUD, list, query and count over collections, as one identity."""

    def __init__(self, store: DocumentStore, bus: EventBus, *, max_page_size: int) -> None:
        self._store = store
        self._bus = bus
        self._max_page_size = max_page_size
        self.slow_queries = SlowQueryLog()  # off; the wiring sets the configured one (slow_query_ms)

    async def create(self, identity: Identity, collection: str, body: Any, *, depth: int = 0) -> dict[str, Any]:
        """Create one document stamped with the caller's account and user (`depth`: see `Message.depth`)."""
        rules = collection_rules(collection)
        doc = _require_object(body)
        created = await self._insert(identity, rules, [doc], depth)
        return created[0]

    async def create_many(self, identity: Identity, collection: str, body: Any, *, depth: int = 0) -> int:
        """Create every document of a JSON array atomically; returns how many."""
        rules = collection_rules(collection)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise BadRequest("invalid body: bulk create expects a JSON array of objects")
        created = await self._insert(identity, rules, body, depth) if body else []
        return len(created)

    async def _insert(self, identity: Identity, rules: CollectionRules, docs: list[dict[str, Any]],
                      depth: int) -> list[dict[str, Any]]:
        new = [NewDocument(id=ids.new_id(), account_id=identity.account_id, owner_id=identity.user_id,
                           data=strip_system_keys(_storable(doc))) for doc in docs]
        return await self._change(identity, rules, "db_created", depth, lambda with_change: self._store.insert(
            identity.app_id, rules.name, new, now_text(), with_change))

    async def get(self, identity: Identity, collection: str, doc_id: str) -> dict[str, Any]:
        """One readable document; StaticBackend answers 500 when it is missing or hidden."""
        rules = collection_rules(collection)
        doc = await self._store.get(_scope(identity, rules, rules.read), doc_id)
        if doc is None:
            raise ServerError(NOT_FOUND)
        return doc

    async def get_many(self, identity: Identity, collection: str, body: Any) -> list[dict[str, Any]]:
        """The readable documents among a JSON array of ids."""
        rules = collection_rules(collection)
        if not isinstance(body, list) or not all(isinstance(item, str) for item in body):
            raise BadRequest("invalid body: expected a JSON array of document ids")
        if not body:
            raise BadRequest("ids list can not be empty")
        return await self._store.get_many(_scope(identity, rules, rules.read), body)

    async def list_documents(self, identity: Identity, collection: str, paging: Paging) -> dict[str, Any]:
        """A page of readable documents in insertion order (or reversed, or by `sort`)."""
        return await self.query(identity, collection, [], paging)

    @measured("query")
    async def query(self, identity: Identity, collection: str, raw_clauses: Any, paging: Paging) -> dict[str, Any]:
        """A page of readable documents matching every clause."""
        rules = collection_rules(collection)
        clauses = filters.parse_clauses(raw_clauses)
        scope, plan = await self._plan(_scope(identity, rules, rules.read), clauses, paging.sort)
        size = max(1, min(paging.size, self._max_page_size))
        page = max(1, paging.page)
        result = await self._store.page(scope, plan, paging.descending, size, _offset(page, size))
        return {"page": page, "size": size, "total": result.total, "results": result.results}

    async def _plan(self, scope: Scope, clauses: list[filters.Clause], sort: str | None) -> tuple[Scope, QueryPlan]:
        """The scope (with literals when the plan reads a field index, as a partial index needs) and the plan.

        A read through an index is timed by the slow-query log but its steps are not counted (probe.time_only).
        """
        plan = plan_query(clauses, sort, await self._store.indexes.fields(scope.app_id, scope.collection))
        if plan.index is None:
            return scope, plan
        time_only()
        return replace(scope, literal=True), plan

    @measured("count")
    async def count(self, identity: Identity, collection: str, raw_clauses: Any) -> int:
        """How many readable documents match every clause."""
        rules = collection_rules(collection)
        scope, plan = await self._plan(_scope(identity, rules, rules.read), filters.parse_clauses(raw_clauses), None)
        return await self._store.count(scope, plan)

    async def update(self, identity: Identity, collection: str, doc_id: str, body: Any, *,
                     depth: int = 0) -> dict[str, Any]:
        """Shallow-merge a JSON object into one writable document; returns the whole document."""
        rules = collection_rules(collection)
        patch = _storable(_require_object(body))
        scope = _scope(identity, rules, rules.write)
        updated = await self._change(identity, rules, "db_updated", depth, lambda with_change: self._store.update(
            scope, "id = ?", [doc_id], patch, now_text(), with_change))
        if not updated:
            raise ServerError(NOT_FOUND)
        return updated[0]

    async def update_many(self, identity: Identity, collection: str, body: Any, *, depth: int = 0) -> int:
        """Apply `{"update": {...}, "clauses": [...]}` to every matching writable document."""
        rules = collection_rules(collection)
        body = _require_object(body, 'invalid body: expected {"update": {...}, "clauses": [...]}')
        patch = _storable(_require_object(body.get("update"), 'invalid body: "update" must be a JSON object'))
        clauses = filters.parse_clauses(body.get("clauses", []))
        scope, plan = await self._plan(_scope(identity, rules, rules.write), clauses, None)
        updated = await self._change(identity, rules, "db_updated", depth, lambda with_change: self._store.update(
            scope, plan.where, plan.params, patch, now_text(), with_change, plan.index))
        return len(updated)

    async def increment(self, identity: Identity, collection: str, doc_id: str, body: Any, *,
                        depth: int = 0) -> None:
        """Add `range` (a whole number) to a numeric `field` of one writable document."""
        rules = collection_rules(collection)
        body = _require_object(body, 'invalid body: expected {"field": "name", "range": 1}')
        field, amount = body.get("field"), body.get("range")
        if not isinstance(field, str) or not field or field in ("id", "accountId", "ownerId"):
            raise BadRequest('invalid body: "field" must name a document field')
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise BadRequest('invalid body: "range" must be a whole number')
        if not filters.INT64_MIN <= amount <= filters.INT64_MAX:
            raise BadRequest('invalid body: "range" must fit in 64 bits')
        scope = _scope(identity, rules, rules.write)

        async def write(with_change: WithChange | None) -> list[dict[str, Any]]:
            doc = await self._store.increment(scope, doc_id, field, amount, now_text(), with_change)
            return [] if doc is None else [doc]

        if not await self._change(identity, rules, "db_updated", depth, write):
            raise ServerError(NOT_FOUND)

    async def delete(self, identity: Identity, collection: str, doc_id: str, *, depth: int = 0) -> int:
        """Delete one writable document; returns 1, or 0 if there was nothing to delete."""
        rules = collection_rules(collection)
        scope = _scope(identity, rules, rules.write)
        deleted = await self._change(identity, rules, "db_deleted", depth, lambda with_change: self._store.delete(
            scope, "id = ?", [doc_id], with_change))
        return len(deleted)

    async def delete_many(self, identity: Identity, collection: str, raw_clauses: Any, *,
                          depth: int = 0) -> int:
        """Delete every writable document matching the clauses; returns how many."""
        rules = collection_rules(collection)
        scope, plan = await self._plan(_scope(identity, rules, rules.write), filters.parse_clauses(raw_clauses), None)
        deleted = await self._change(identity, rules, "db_deleted", depth, lambda with_change: self._store.delete(
            scope, plan.where, plan.params, with_change, plan.index))
        return len(deleted)

    async def create_index(self, app_id: str, collection: str, field: str) -> bool:
        """Index a document field of a collection; False when it was indexed already."""
        return await self._store.indexes.create(app_id, _indexable(collection, field), field, now_text())

    async def list_indexes(self, app_id: str, collection: str | None) -> list[dict[str, Any]]:
        """The field indexes of a collection (of every collection when None), oldest first."""
        valid = None if collection is None else validate_collection_name(collection)
        return await self._store.indexes.list(app_id, valid)

    async def drop_index(self, app_id: str, collection: str, field: str) -> None:
        """Drop a field index; NotFound when there is none."""
        if not await self._store.indexes.drop(app_id, _indexable(collection, field), field):
            raise NotFound(f"no index on {field} in {collection}")

    async def collections(self, identity: Identity) -> list[str]:
        """The names of the app's collections that hold documents."""
        return await self._store.collections(identity.app_id)

    async def _change(self, identity: Identity, rules: CollectionRules, kind: str, depth: int,
                      write: Callable[[WithChange | None], Awaitable[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
        """Write a change and announce it; the function runs it triggers commit in its transaction."""
        template = Message(type=kind, channel=rules.channel, app_id=identity.app_id, identity=identity, depth=depth)
        with_change: WithChange | None = None
        if self._bus.wants_rows(template):
            def with_change(tx: Any, docs: list[dict[str, Any]]) -> None:  # may run twice: it touches only tx
                self._bus.store(tx, _messages(template, docs))

        docs = await write(with_change)
        await self._bus.publish_many(_messages(template, docs), stored=True)
        return docs


def _messages(template: Message, docs: list[dict[str, Any]]) -> list[Message]:
    """One change message per document."""
    return [Message(type=template.type, channel=template.channel, data=dumps(doc), app_id=template.app_id,
                    identity=template.identity, depth=template.depth) for doc in docs]
