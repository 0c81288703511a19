"""Indexes on document fields: one partial expression index per app, collection and field.

An index is `CREATE INDEX ... ON documents(json_extract(data, '<path>'), account_id, seq) WHERE
app_id = '<app>' AND collection = '<collection>'`: only that collection's rows are in it (other
collections' writes do not pay for it). The account after the value lets a query of one account
(the default read permission) count and page without reading documents, and `seq` gives that
account's ties in insertion order. A query can only use it if it spells the same expression and
the same scope literals (`filters.py`). Names and paths reach the SQL only validated and quoted
(`filters.sql_text`); the index's own name is a hash of what it indexes and of its shape. Each
index is recorded in `document_indexes`, read once into a cache that this process (the only
writer) keeps in step.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from sblite.filters import field_expression, json_path, sql_text
from sblite.store.database import Database

_PREFIX = "docfield_"
# Part of every name: a new shape gets new names, and `rebuild_older` replaces the indexes of older ones.
_SHAPE = "2"  # 1: (value, seq); 2: (value, account_id, seq)


def index_name(app_id: str, collection: str, field: str) -> str:
    """The SQLite name of a field index: a hash, so that no name reaches the SQL as written."""
    digest = hashlib.sha256("\x00".join((app_id, collection, field, _SHAPE)).encode()).hexdigest()
    return _PREFIX + digest[:32]


def create_sql(app_id: str, collection: str, field: str) -> str:
    """The statement that creates the index on `field` (validated) of one app's collection."""
    json_path(field)  # raises BadRequest on a bad field name
    return (f'CREATE INDEX IF NOT EXISTS "{index_name(app_id, collection, field)}" ON documents('
            f"{field_expression(field)}, account_id, seq) WHERE app_id = {sql_text(app_id)} "
            f"AND collection = {sql_text(collection)}")


class IndexStore:
    """Field indexes: created and dropped in the writer, listed from a cache."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[tuple[str, str], dict[str, str]] | None = None

    async def _loaded(self) -> dict[tuple[str, str], dict[str, str]]:
        if self._cache is None:
            # Only the records whose index exists: a query names the index it uses.
            rows = await self._db.read(lambda c: c.execute(
                "SELECT d.app_id, d.collection, d.field, d.name FROM document_indexes AS d "
                "JOIN sqlite_master AS m ON m.type = 'index' AND m.name = d.name").fetchall())
            cache: dict[tuple[str, str], dict[str, str]] = {}
            for app_id, collection, field, name in rows:
                cache.setdefault((app_id, collection), {})[field] = name
            if self._cache is None:
                self._cache = cache
        return self._cache

    async def fields(self, app_id: str, collection: str) -> dict[str, str]:
        """The indexed fields of a collection and their index names."""
        return (await self._loaded()).get((app_id, collection), {})

    async def create(self, app_id: str, collection: str, field: str, now: str) -> bool:
        """Create the index (one statement in the writer); False when it was there already."""
        sql = create_sql(app_id, collection, field)
        name = index_name(app_id, collection, field)

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO document_indexes (app_id, collection, field, name, created) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING", (app_id, collection, field, name, now))
            conn.execute(sql)
            return cur.rowcount == 1

        cache = await self._loaded()
        created = await self._db.write(run)
        cache.setdefault((app_id, collection), {})[field] = name
        return created

    async def rebuild_older(self) -> list[tuple[str, str]]:
        """Replace each index of an earlier shape (its name says so) with today's; the (collection, field) of each.

        Each one is built in the writer like a new index, then the old one goes and its record
        takes the new name, in one transaction.
        """
        rows = await self._db.read(lambda c: c.execute(
            "SELECT app_id, collection, field, name FROM document_indexes").fetchall())
        older = [row for row in rows if row[3] != index_name(row[0], row[1], row[2])]
        for app_id, collection, field, old in older:
            def run(conn: sqlite3.Connection, app_id: str = app_id, collection: str = collection,
                    field: str = field, old: str = old) -> None:
                conn.execute(create_sql(app_id, collection, field))
                conn.execute(f'DROP INDEX IF EXISTS "{old}"')
                conn.execute("UPDATE document_indexes SET name = ? WHERE name = ?",
                             (index_name(app_id, collection, field), old))

            await self._db.write(run)
        self._cache = None
        return [(collection, field) for _app, collection, field, _old in older]

    async def drop(self, app_id: str, collection: str, field: str) -> bool:
        """Drop the index; False when there was none."""
        name = index_name(app_id, collection, field)

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM document_indexes WHERE app_id = ? AND collection = ? AND field = ?",
                               (app_id, collection, field))
            conn.execute(f'DROP INDEX IF EXISTS "{name}"')
            return cur.rowcount == 1

        cache = await self._loaded()
        cache.get((app_id, collection), {}).pop(field, None)  # before the drop: no query names it after
        return await self._db.write(run)

    async def list(self, app_id: str, collection: str | None) -> list[dict[str, Any]]:
        """The indexes of one collection (or of every collection), oldest first."""
        sql = "SELECT collection, field, name, created FROM document_indexes WHERE app_id = ?"
        params: list[Any] = [app_id]
        if collection is not None:
            sql += " AND collection = ?"
            params.append(collection)
        rows = await self._db.read(lambda c: c.execute(sql + " ORDER BY created, collection, field",
                                                       params).fetchall())
        return [{"collection": r[0], "field": r[1], "name": r[2], "created": r[3]} for r in rows]
