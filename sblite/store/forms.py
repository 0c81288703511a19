"""Form submissions (`POST /postform/{form}`)."""

from __future__ import annotations

import sqlite3
from typing import Any

from sblite.jsonutil import dumps_stored, loads
from sblite.store.database import Database


class FormStore:
    """Form submissions: one row each, newest first when listed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, app_id: str, submission_id: str, name: str, fields: dict[str, str], created: str) -> None:
        """Store one submission."""
        await self._db.write(lambda c: c.execute(
            "INSERT INTO forms (id, app_id, name, data, created) VALUES (?, ?, ?, ?, ?)",
            (submission_id, app_id, name, dumps_stored(fields), created)))

    async def list(self, app_id: str, name: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        """One page of an app's submissions (of one form if `name`), newest first, with their system fields."""
        def run(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if name is None:
                return conn.execute("SELECT * FROM forms WHERE app_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
                                    (app_id, limit, offset)).fetchall()
            return conn.execute("SELECT * FROM forms WHERE app_id = ? AND name = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
                                (app_id, name, limit, offset)).fetchall()

        return [{**loads(row["data"]), "id": row["id"], "sb_form": row["name"], "sb_created": row["created"]}
                for row in await self._db.read(run)]
