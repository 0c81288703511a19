"""Stored files' rows: who uploaded what, how big, under which key (the bytes are on disk)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sblite.store.database import Database

_ORDER = {"uploaded": "seq", "size": "size"}


@dataclass(frozen=True)
class FileRecord:
    """One stored file."""

    id: str
    app_id: str
    account_id: str
    owner_id: str
    key: str
    name: str
    ext: str
    content_type: str
    size: int
    public: bool
    created: str


def _record(row: sqlite3.Row) -> FileRecord:
    return FileRecord(id=row["id"], app_id=row["app_id"], account_id=row["account_id"], owner_id=row["owner_id"],
                      key=row["key"], name=row["name"], ext=row["ext"], content_type=row["content_type"],
                      size=row["size"], public=bool(row["public"]), created=row["created"])


class FileStore:
    """Queries over the files table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, record: FileRecord) -> None:
        """Record a file whose bytes are already in place."""
        await self._db.write(lambda c: c.execute(
            "INSERT INTO files (id, app_id, account_id, owner_id, key, name, ext, content_type, size, public, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.id, record.app_id, record.account_id, record.owner_id, record.key, record.name, record.ext,
             record.content_type, record.size, int(record.public), record.created)))

    async def get(self, file_id: str) -> FileRecord | None:
        """The file with this id."""
        row = await self._db.read(lambda c: c.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone())
        return _record(row) if row is not None else None

    async def delete(self, app_id: str, file_id: str) -> FileRecord | None:
        """Forget a file of this app; the row it had, or None."""
        def run(conn: sqlite3.Connection) -> FileRecord | None:
            row = conn.execute("DELETE FROM files WHERE app_id = ? AND id = ? RETURNING *",
                               (app_id, file_id)).fetchone()
            return _record(row) if row is not None else None

        return await self._db.write(run)

    async def page(self, app_id: str, account_id: str | None, *, sort: str, descending: bool,
                   limit: int, offset: int) -> tuple[int, list[FileRecord]]:
        """(total, one page of) the files of an app, or of one account when `account_id` is given."""
        where, params = "app_id = ?", [app_id]
        if account_id is not None:
            where += " AND account_id = ?"
            params.append(account_id)
        direction = "DESC" if descending else "ASC"
        order = f"{_ORDER[sort]} {direction}, seq {direction}" if sort != "uploaded" else f"seq {direction}"

        def run(conn: sqlite3.Connection) -> tuple[int, list[FileRecord]]:
            total = conn.execute(f"SELECT count(*) FROM files WHERE {where}", params).fetchone()[0]
            rows = conn.execute(f"SELECT * FROM files WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                                [*params, limit, offset]).fetchall()
            return int(total), [_record(row) for row in rows]

        return await self._db.read(run)

    async def usage(self, app_id: str, account_id: str) -> int:
        """Bytes stored by one account."""
        total = await self._db.read(lambda c: c.execute(
            "SELECT coalesce(sum(size), 0) FROM files WHERE app_id = ? AND account_id = ?",
            (app_id, account_id)).fetchone()[0])
        return int(total)

    async def every_file(self) -> list[tuple[str, str]]:
        """(id, ext) of every stored file, of every app."""
        rows = await self._db.read(lambda c: c.execute("SELECT id, ext FROM files ORDER BY seq").fetchall())
        return [(row["id"], row["ext"]) for row in rows]

    async def forget(self, file_ids: list[str]) -> None:
        """Delete these rows (of a backup copy whose files went missing)."""
        await self._db.write(lambda c: c.executemany("DELETE FROM files WHERE id = ?", [(i,) for i in file_ids]))
