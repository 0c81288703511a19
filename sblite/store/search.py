"""The full-text index (FTS5, migration 7): entries per document, bm25-ranked searches, terms.

An entry's rowid is its document's `seq`; triggers on `documents` remove it when the document
goes, and re-index the fields of a collection that has `fields` set on every write.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from sblite import search
from sblite.jsonutil import dumps_stored, loads
from sblite.store.database import Database
from sblite.store.documents import Scope

# Terms read from the index's vocabulary per typo-tolerant word: bounds the work of one search.
MAX_TERMS_SCANNED = 5000
# The body of every document of a collection with `fields` set, as the triggers of migration 7 build it.
_FIELDS_BODY = ("(SELECT COALESCE(group_concat(json_extract(d.data, '$.\"' || f.value || '\"'), ' '), '') "
                "FROM json_each(s.fields) AS f)")


@dataclass(frozen=True)
class IndexInfo:
    """A collection's index: the fields indexed on every write (or None) and how many entries."""

    fields: list[str] | None
    entries: int


def _collection_id(conn: sqlite3.Connection, app_id: str, collection: str) -> int | None:
    row = conn.execute("SELECT id FROM search_collections WHERE app_id = ? AND collection = ?",
                       (app_id, collection)).fetchone()
    return None if row is None else int(row[0])


def _ensure_collection(conn: sqlite3.Connection, app_id: str, collection: str, now: str) -> int:
    conn.execute("INSERT INTO search_collections (app_id, collection, updated) VALUES (?, ?, ?) "
                 "ON CONFLICT DO NOTHING", (app_id, collection, now))
    found = _collection_id(conn, app_id, collection)
    assert found is not None
    return found


def _doc(row: sqlite3.Row) -> dict[str, Any]:
    doc: dict[str, Any] = loads(row["data"], max_depth=None)
    doc["id"] = row["id"]
    doc["accountId"] = row["account_id"]
    doc["ownerId"] = row["owner_id"]
    return doc


class SearchStore:
    """Index entries, searches and per-collection index settings."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def index(self, scope: Scope, doc_id: str, text: str, now: str) -> bool:
        """Set the indexed text of one document in scope; False when there is no such document."""
        where, params = scope.where()

        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute(f"SELECT seq FROM documents WHERE {where} AND id = ?", (*params, doc_id)).fetchone()
            if row is None:
                return False
            token = f"c{_ensure_collection(conn, scope.app_id, scope.collection, now)}"
            conn.execute("INSERT OR REPLACE INTO search_index (rowid, scope, body) VALUES (?, ?, ?)",
                         (row["seq"], token, text))
            return True

        return await self._db.write(run)

    async def indexed(self, app_id: str, collection: str) -> bool:
        """Whether the collection has an index (something was indexed, or fields are set)."""
        return await self._db.read(lambda conn: _collection_id(conn, app_id, collection) is not None)

    async def search(self, scope: Scope, words: list[search.Word], limit: int) -> list[dict[str, Any]] | None:
        """The documents in scope matching every word, best bm25 rank first; None without an index."""
        where, params = scope.where()  # its columns are the documents' alone: search_index has scope and body

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]] | None:
            collection_id = _collection_id(conn, scope.app_id, scope.collection)
            if collection_id is None:
                return None
            typos = [search.typo_terms(word, typo_candidates(conn, word)) for word in words]
            expression = search.match_expression(f"c{collection_id}", words, typos)
            rows = conn.execute(
                "SELECT id, account_id, owner_id, data FROM search_index "
                "JOIN documents ON documents.seq = search_index.rowid "
                f"WHERE search_index MATCH ? AND {where} "
                "ORDER BY bm25(search_index, 0.0, 1.0), documents.seq LIMIT ?", (expression, *params, limit)).fetchall()
            return [_doc(row) for row in rows]

        return await self._db.read(run)

    async def info(self, app_id: str, collection: str) -> IndexInfo | None:
        """A collection's index settings and size; None when it has no index."""
        def run(conn: sqlite3.Connection) -> IndexInfo | None:
            row = conn.execute("SELECT id, fields FROM search_collections WHERE app_id = ? AND collection = ?",
                               (app_id, collection)).fetchone()
            if row is None:
                return None
            entries = conn.execute("SELECT COUNT(*) FROM search_index WHERE search_index MATCH ?",
                                   (f'scope : "c{row["id"]}"',)).fetchone()[0]
            return IndexInfo(None if row["fields"] is None else loads(row["fields"]), int(entries))

        return await self._db.read(run)

    async def set_fields(self, app_id: str, collection: str, fields: list[str], now: str) -> int:
        """Index `fields` of every document written from now on, and of those already stored; how many."""
        def run(conn: sqlite3.Connection) -> int:
            collection_id = _ensure_collection(conn, app_id, collection, now)
            conn.execute("UPDATE search_collections SET fields = ?, updated = ? WHERE id = ?",
                         (dumps_stored(fields), now, collection_id))
            cursor = conn.execute(
                f"INSERT OR REPLACE INTO search_index (rowid, scope, body) SELECT d.seq, 'c' || s.id, {_FIELDS_BODY} "
                "FROM documents AS d JOIN search_collections AS s ON s.id = ? "
                "WHERE d.app_id = ? AND d.collection = ?", (collection_id, app_id, collection))
            return int(cursor.rowcount)

        return await self._db.write(run)

    async def drop(self, app_id: str, collection: str) -> bool:
        """Remove a collection's index: its entries and settings; False when it had none."""
        def run(conn: sqlite3.Connection) -> bool:
            collection_id = _collection_id(conn, app_id, collection)
            if collection_id is None:
                return False
            conn.execute("DELETE FROM search_index WHERE rowid IN (SELECT rowid FROM search_index "
                         "WHERE search_index MATCH ?)", (f'scope : "c{collection_id}"',))
            conn.execute("DELETE FROM search_collections WHERE id = ?", (collection_id,))
            return True

        return await self._db.write(run)


def typo_candidates(conn: sqlite3.Connection, word: search.Word) -> list[tuple[str, int]]:
    """Index terms that may be one typo from `word`, with their document counts (bounded work)."""
    bounds = word.term_range()
    if bounds is None or word.term is None:
        return []
    low, high = len(word.term) - 1, len(word.term) + 1
    rows = conn.execute("SELECT term, doc FROM search_terms WHERE term >= ? AND term < ? AND col = 'body' LIMIT ?",
                        (*bounds, MAX_TERMS_SCANNED)).fetchall()
    rows += conn.execute("SELECT term, doc FROM search_terms WHERE term IN (SELECT value FROM json_each(?)) "
                         "AND col = 'body'", (dumps_stored(word.early_typos()),)).fetchall()
    return [(row[0], int(row[1])) for row in rows if low <= len(row[0]) <= high]
