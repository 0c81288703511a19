"""Channel rules and channel history."""

from __future__ import annotations

import sqlite3

from sblite.channels import ChannelRule
from sblite.store.database import Database


def _rule(row: sqlite3.Row) -> ChannelRule:
    return ChannelRule(pattern=row["pattern"], auth=bool(row["auth"]), publish=row["publish"],
                       history=row["history"])


class ChannelStore:
    """Queries over channel_rules and channel_history."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def rules(self, app_id: str) -> list[ChannelRule]:
        """Every stored rule of an app."""
        rows = await self._db.read(lambda c: c.execute(
            "SELECT * FROM channel_rules WHERE app_id = ? ORDER BY pattern", (app_id,)).fetchall())
        return [_rule(row) for row in rows]

    async def put_rule(self, app_id: str, rule: ChannelRule, now: str) -> None:
        """Create or replace a rule."""
        await self._db.write(lambda c: c.execute(
            "INSERT INTO channel_rules (app_id, pattern, auth, publish, history, updated) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (app_id, pattern) DO UPDATE SET auth = excluded.auth, publish = excluded.publish, "
            "history = excluded.history, updated = excluded.updated",
            (app_id, rule.pattern, int(rule.auth), rule.publish, rule.history, now)))

    async def delete_rule(self, app_id: str, pattern: str) -> bool:
        """Delete a rule; whether it existed."""
        return await self._db.write(lambda c: c.execute(
            "DELETE FROM channel_rules WHERE app_id = ? AND pattern = ?", (app_id, pattern)).rowcount == 1)

    async def append_history(self, app_id: str, channel: str, frame: str, keep: int, now: str) -> None:
        """Record one message and drop all but the newest `keep` of the channel."""
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO channel_history (app_id, channel, frame, created) VALUES (?, ?, ?, ?)",
                         (app_id, channel, frame, now))
            conn.execute(
                "DELETE FROM channel_history WHERE app_id = ? AND channel = ? AND seq <= ("
                "SELECT seq FROM channel_history WHERE app_id = ? AND channel = ? ORDER BY seq DESC "
                "LIMIT 1 OFFSET ?)", (app_id, channel, app_id, channel, keep))

        await self._db.write(run)

    async def history(self, app_id: str, channel: str, limit: int) -> list[str]:
        """The newest `limit` recorded frames of a channel, oldest first.

        Read through the writer's queue, so every history write queued before it is included.
        """
        rows = await self._db.write(lambda c: c.execute(
            "SELECT frame FROM (SELECT seq, frame FROM channel_history WHERE app_id = ? AND channel = ? "
            "ORDER BY seq DESC LIMIT ?) ORDER BY seq", (app_id, channel, limit)).fetchall())
        return [row[0] for row in rows]
