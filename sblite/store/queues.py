"""The durable FIFO queues of `/sudo/cache` (type "queue")."""

from __future__ import annotations

import sqlite3

from sblite.store.database import Database


class QueueStore:
    """Durable FIFO queues of strings, per app and key."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def push(self, app_id: str, key: str, value: str) -> None:
        """Append a value to the queue `key`."""
        await self._db.write(lambda c: c.execute(
            "INSERT INTO cache_queue (app_id, key, value) VALUES (?, ?, ?)", (app_id, key, value)))

    async def pop(self, app_id: str, key: str) -> str | None:
        """Take the oldest value of the queue `key` (in the writer: two callers never get the same one)."""
        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("DELETE FROM cache_queue WHERE seq = (SELECT seq FROM cache_queue "
                               "WHERE app_id = ? AND key = ? ORDER BY seq LIMIT 1) RETURNING value",
                               (app_id, key)).fetchone()
            return None if row is None else str(row[0])

        return await self._db.write(run)
