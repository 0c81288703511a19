"""Documents: one table, JSON data, system fields in columns.

Every method takes a `Scope`: the app, the collection and, when the caller's permission is
narrower than "everyone", the account (and owner) the rows must belong to.
"""

from __future__ import annotations

import math
import re
import sqlite3
from dataclasses import dataclass
from typing import Any, TypeVar
from collections.abc import Callable, Hashable

from sblite.errors import BadRequest
from sblite.filters import INT64_MAX, INT64_MIN, NO_FILTER, order_sql, sql_text
from sblite.jsonutil import dumps_stored, loads
from sblite.query_plan import QueryPlan
from sblite.store.database import Database
from sblite.store.indexes import IndexStore

T = TypeVar("T")
_COLUMNS = "id, account_id, owner_id, data"
_INDEX_NAME = re.compile(r"docfield_[0-9a-f]{32}")
# Work that must commit or fail together with a change (the function runs it triggers): called
# inside the change's transaction with the documents it changed, only when there are some.
WithChange = Callable[[sqlite3.Connection, list[dict[str, Any]]], None]
# Keys the server owns: stripped from stored data, added back from columns on output.
SYSTEM_KEYS = ("id", "accountId", "ownerId")


@dataclass(frozen=True)
class Scope:
    """The rows one caller reaches in one collection."""

    app_id: str
    collection: str
    account_id: str | None = None
    owner_id: str | None = None
    # App and collection as literals: a field index is a partial index WHERE app_id = '...' AND
    # collection = '...', which SQLite uses only for a query that says so with the same literals.
    literal: bool = False

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions selecting this scope's rows."""
        if self.literal:
            sql, params = f"app_id = {sql_text(self.app_id)} AND collection = {sql_text(self.collection)}", []
        else:
            sql, params = "app_id = ? AND collection = ?", [self.app_id, self.collection]
        if self.account_id is not None:
            sql += " AND account_id = ?"
            params.append(self.account_id)
        if self.owner_id is not None:
            sql += " AND owner_id = ?"
            params.append(self.owner_id)
        return sql, params


@dataclass(frozen=True)
class NewDocument:
    """A document about to be inserted."""

    id: str
    account_id: str
    owner_id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a list or query."""

    total: int
    results: list[dict[str, Any]]


def _stored(text: str) -> dict[str, Any]:
    """A document's stored data; no depth limit, so documents written before it stay readable."""
    data: dict[str, Any] = loads(text, max_depth=None)
    return data


def _doc(row: sqlite3.Row) -> dict[str, Any]:
    doc = _stored(row["data"])
    doc["id"] = row["id"]
    doc["accountId"] = row["account_id"]
    doc["ownerId"] = row["owner_id"]
    return doc


def strip_system_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` without the keys the server owns."""
    return {k: v for k, v in data.items() if k not in SYSTEM_KEYS}


def _changed(conn: sqlite3.Connection, docs: list[dict[str, Any]],
             with_change: WithChange | None) -> list[dict[str, Any]]:
    if with_change is not None and docs:
        with_change(conn, docs)
    return docs


def _source(index: str | None) -> str:
    """The table, with the index the caller chose (only names the index store made)."""
    if index is None:
        return "documents"
    if not _INDEX_NAME.fullmatch(index):
        raise ValueError(f"not a field index name: {index!r}")
    return f'documents INDEXED BY "{index}"'


def _read_shape(scope: Scope, plan: QueryPlan) -> Hashable:
    """What tells a quick read of a collection from a long one, apart from the page's size and
    offset (store/quick_reads.py): the scope, the filter and sort without their values, the index."""
    return (scope.app_id, scope.collection, scope.account_id is None, scope.owner_id is None,
            plan.where, plan.key, plan.index)


def through(index: str | None, run: Callable[[str | None], T]) -> T:
    """`run(index)`, or `run(None)` when SQLite cannot read that index: dropped meanwhile, or a WHERE it
    need not read at all (a clause on a system field with a non-string value is a constant 0)."""
    try:
        return run(index)
    except sqlite3.OperationalError as exc:
        if index is None or not any(words in str(exc) for words in ("no such index", "no query solution")):
            raise
        return run(None)


def _total_sql(scope: Scope, filter_sql: str, filter_params: list[Any],
               index: str | None = None) -> tuple[str, list[Any]]:
    where, params = scope.where()
    if filter_sql == NO_FILTER:  # counts kept by triggers: no scan of the collection
        return f"SELECT COALESCE(SUM(n), 0) AS total FROM document_counts WHERE {where}", params
    return (f"SELECT COUNT(*) AS total FROM {_source(index)} WHERE {where} AND {filter_sql}",
            [*params, *filter_params])


def page_sql(scope: Scope, filter_sql: str, filter_params: list[Any], key: str, key_params: list[Any],
             descending: bool, limit: int, offset: int, index: str | None = None) -> tuple[str, list[Any]]:
    """One statement for a page and its total: one pass over the matches (through `index` if given).

    The matches' seq and sort key are kept aside once (`hits`), counted, and the page's `limit`
    taken from them; only those documents are read again, by seq. One row with a NULL id when the
    page is past the end, so that the total still comes back.
    """
    where, params = scope.where()
    hits = f"SELECT seq, {key} AS k FROM {_source(index)} WHERE {where} AND {filter_sql}"
    page = f"SELECT seq AS hit, k FROM hits {order_sql(key, descending, 'k')} LIMIT ? OFFSET ?"
    return (f"WITH hits AS MATERIALIZED ({hits}) SELECT {_COLUMNS}, total FROM (SELECT COUNT(*) AS total FROM hits) "
            f"LEFT JOIN ({page}) LEFT JOIN documents ON documents.seq = hit {order_sql(key, descending, 'k', 'hit')}",
            [*key_params, *params, *filter_params, limit, offset])  # the key comes first in the text


def rows_sql(scope: Scope, filter_sql: str, filter_params: list[Any], key: str, key_params: list[Any],
             descending: bool, limit: int, offset: int, index: str | None = None) -> tuple[str, list[Any]]:
    """A page without its total (read through `index` if given): stops after `offset + limit` rows in order."""
    where, params = scope.where()
    return (f"SELECT {_COLUMNS} FROM {_source(index)} WHERE {where} AND {filter_sql} "
            f"{order_sql(key, descending)} LIMIT ? OFFSET ?",
            [*params, *filter_params, *key_params, limit, offset])


def index_page_sql(scope: Scope, filter_sql: str, filter_params: list[Any], key: str, key_params: list[Any],
                   descending: bool, limit: int, offset: int, index: str | None = None) -> tuple[str, list[Any]]:
    """A page without its total, its seqs taken from `index` in order: only the page's documents are read."""
    where, params = scope.where()
    hits = (f"SELECT seq AS hit FROM {_source(index)} WHERE {where} AND {filter_sql} "
            f"{order_sql(key, descending)} LIMIT ? OFFSET ?")
    return (f"SELECT {_COLUMNS} FROM ({hits}) JOIN documents ON documents.seq = hit {order_sql(key, descending)}",
            [*params, *filter_params, *key_params, limit, offset, *key_params])


def page_statements(scope: Scope, plan: QueryPlan, descending: bool, limit: int, offset: int,
                    index: str | None) -> list[tuple[str, list[Any]]]:
    """The statements that read a page and its total (through `index`, if given; None: no index).

    Two when the total costs no pass over the documents (the counts the triggers keep for no
    filter; the index's entries when it counts, `QueryPlan.index_counts`): the total, then the
    page. One otherwise: the page, each row carrying the total, and past the end one row with a
    NULL id that does. (One statement joining a cheap total to the page took 80 µs more than two.)
    """
    args = (scope, plan.where, plan.params, plan.key, plan.key_params, descending, limit, offset, index)
    if plan.where == NO_FILTER:
        return [_total_sql(scope, NO_FILTER, []), rows_sql(*args)]
    if plan.index_counts and index is not None:
        return [_total_sql(scope, plan.where, plan.params, index), index_page_sql(*args)]
    return [page_sql(*args)]


def read_page(conn: sqlite3.Connection, statements: list[tuple[str, list[Any]]]) -> Page:
    """Run `page_statements`; two in one read transaction, so that the total and the page see the same documents."""
    if len(statements) == 1:
        rows = conn.execute(*statements[0]).fetchall()
        return Page(total=int(rows[0]["total"]), results=[_doc(row) for row in rows if row["id"] is not None])
    counted, page = statements
    conn.execute("BEGIN")
    try:
        total = int(conn.execute(*counted).fetchone()["total"])
        rows = conn.execute(*page).fetchall()
    finally:
        conn.execute("COMMIT")
    return Page(total=total, results=[_doc(row) for row in rows])


def _sum(field: str, current: Any, amount: int) -> int | float:
    """`current + amount` when it stays a finite number, a whole one within 64 bits."""
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise BadRequest(f'field "{field}" is not a number')
    try:
        total = current + amount
    except OverflowError:  # a float plus a whole number too big for a float
        total = math.inf
    if not (math.isfinite(total) if isinstance(total, float) else INT64_MIN <= total <= INT64_MAX):
        raise BadRequest(f'field "{field}" would leave the range of numbers: whole numbers must fit in 64 bits, '
                         'others must be finite')
    return total


class DocumentStore:
    """Queries over the documents table."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.indexes = IndexStore(db)

    async def insert(self, app_id: str, collection: str, docs: list[NewDocument], now: str,
                     with_change: WithChange | None = None) -> list[dict[str, Any]]:
        """Insert documents in one transaction; return them as the API shows them."""
        rows = [(app_id, collection, d.id, d.account_id, d.owner_id, now, now, dumps_stored(d.data))
                for d in docs]
        created = [{**d.data, "id": d.id, "accountId": d.account_id, "ownerId": d.owner_id} for d in docs]

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.executemany(
                "INSERT INTO documents (app_id, collection, id, account_id, owner_id, created, updated, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return _changed(conn, created, with_change)

        return await self._db.write(run)

    async def get(self, scope: Scope, doc_id: str) -> dict[str, Any] | None:
        """One document in scope, or None."""
        where, params = scope.where()
        row = await self._db.read(lambda c: c.execute(
            f"SELECT {_COLUMNS} FROM documents WHERE {where} AND id = ?", (*params, doc_id)).fetchone())
        return None if row is None else _doc(row)

    async def get_many(self, scope: Scope, ids: list[str]) -> list[dict[str, Any]]:
        """The documents in scope among `ids`, in insertion order."""
        where, params = scope.where()
        rows = await self._db.read(lambda c: c.execute(
            f"SELECT {_COLUMNS} FROM documents WHERE {where} AND id IN (SELECT value FROM json_each(?)) "
            "ORDER BY seq", (*params, dumps_stored(ids))).fetchall())
        return [_doc(row) for row in rows]

    async def page(self, scope: Scope, plan: QueryPlan, descending: bool, limit: int, offset: int) -> Page:
        """A page of documents in scope matching the plan's filter, in the order of its sort key."""
        return await self._db.read(lambda conn: through(plan.index, lambda index: read_page(
            conn, page_statements(scope, plan, descending, limit, offset, index))),
            shape=("page", _read_shape(scope, plan), limit.bit_length(), offset.bit_length()))

    async def count(self, scope: Scope, plan: QueryPlan) -> int:
        """How many documents in scope match the plan's filter."""
        def run(conn: sqlite3.Connection, index: str | None) -> int:
            sql, params = _total_sql(scope, plan.where, plan.params, index)
            return int(conn.execute(sql, params).fetchone()[0])

        return await self._db.read(lambda conn: through(plan.index, lambda index: run(conn, index)),
                                   shape=("count", _read_shape(scope, plan)))

    async def update(self, scope: Scope, filter_sql: str, filter_params: list[Any],
                     patch: dict[str, Any], now: str, with_change: WithChange | None = None,
                     index: str | None = None) -> list[dict[str, Any]]:
        """Shallow-merge `patch` into every matching document in scope (found through `index`); return them updated."""
        where, params = scope.where()
        patch = strip_system_keys(patch)

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = through(index, lambda name: conn.execute(
                f"SELECT {_COLUMNS} FROM {_source(name)} WHERE {where} AND {filter_sql} ORDER BY seq",
                (*params, *filter_params)).fetchall())
            updated = []
            for row in rows:
                data = {**_stored(row["data"]), **patch}
                conn.execute("UPDATE documents SET data = ?, updated = ? WHERE id = ?",
                             (dumps_stored(data), now, row["id"]))
                updated.append({**data, "id": row["id"], "accountId": row["account_id"],
                                "ownerId": row["owner_id"]})
            return _changed(conn, updated, with_change)

        return await self._db.write(run)

    async def increment(self, scope: Scope, doc_id: str, field: str, amount: int, now: str,
                        with_change: WithChange | None = None) -> dict[str, Any] | None:
        """Add `amount` to a top-level numeric field (missing counts as 0); the updated doc or None."""
        where, params = scope.where()

        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM documents WHERE {where} AND id = ?",
                               (*params, doc_id)).fetchone()
            if row is None:
                return None
            data = _stored(row["data"])
            data[field] = _sum(field, data.get(field, 0), amount)
            conn.execute("UPDATE documents SET data = ?, updated = ? WHERE id = ?",
                         (dumps_stored(data), now, doc_id))
            doc = {**data, "id": row["id"], "accountId": row["account_id"], "ownerId": row["owner_id"]}
            return _changed(conn, [doc], with_change)[0]

        return await self._db.write(run)

    async def delete(self, scope: Scope, filter_sql: str, filter_params: list[Any],
                     with_change: WithChange | None = None, index: str | None = None) -> list[dict[str, Any]]:
        """Delete every matching document in scope (found through `index`); return the deleted documents."""
        where, params = scope.where()

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = through(index, lambda name: conn.execute(
                f"DELETE FROM {_source(name)} WHERE {where} AND {filter_sql} RETURNING {_COLUMNS}",
                (*params, *filter_params)).fetchall())
            return _changed(conn, [_doc(row) for row in rows], with_change)

        return await self._db.write(run)

    async def collections(self, app_id: str) -> list[str]:
        """Names of the collections that hold documents in this app."""
        rows = await self._db.read(lambda c: c.execute(
            "SELECT DISTINCT collection FROM documents WHERE app_id = ? ORDER BY collection",
            (app_id,)).fetchall())
        return [row[0] for row in rows]
