"""What the dashboard's overview reads: an app's counts, a root user's token parts, the apps' keys."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sblite.model import ROOT_ROLE
from sblite.store.database import Database


@dataclass(frozen=True)
class AppCounts:
    """How many of each thing an app has."""

    users: int
    collections: int
    documents: int
    functions: int
    tasks: int


class OverviewStore:
    """Read-only queries over the tables of the apps."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def counts(self, app_id: str) -> AppCounts:
        """Users, collections, documents, functions and tasks of the app."""
        def run(conn: sqlite3.Connection) -> AppCounts:
            def one(sql: str) -> int:
                return int(conn.execute(sql, (app_id,)).fetchone()[0])

            return AppCounts(
                users=one("SELECT COUNT(*) FROM users WHERE app_id = ?"),
                collections=one("SELECT COUNT(DISTINCT collection) FROM document_counts WHERE app_id = ? AND n > 0"),
                documents=one("SELECT COALESCE(SUM(n), 0) FROM document_counts WHERE app_id = ?"),
                functions=one("SELECT COUNT(*) FROM functions WHERE app_id = ?"),
                tasks=one("SELECT COUNT(*) FROM tasks WHERE app_id = ?"),
            )

        return await self._db.read(run)

    async def root_user(self, user_id: str) -> tuple[str, str, str] | None:
        """(user id, account id, per-user token) of a root user; None if it is not one."""
        def run(conn: sqlite3.Connection) -> tuple[str, str, str] | None:
            row = conn.execute("SELECT id, account_id, token FROM users WHERE id = ? AND role >= ?",
                               (user_id, ROOT_ROLE)).fetchone()
            return None if row is None else (row["id"], row["account_id"], row["token"])

        return await self._db.read(run)

    async def public_keys(self) -> list[str]:
        """The public key of every app, oldest first."""
        def run(conn: sqlite3.Connection) -> list[str]:
            return [row["pk"] for row in conn.execute("SELECT pk FROM apps ORDER BY created, pk")]

        return await self._db.read(run)
