"""The mail outbox (queued, sent, parked or kept mail) and the magic-link codes."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sblite.jsonutil import dumps_stored, loads
from sblite.store.database import Database

STATUSES = ("queued", "sent", "parked", "kept")


@dataclass(frozen=True)
class OutboxMail:
    """One mail in the outbox."""

    id: str
    app_id: str
    message: dict[str, Any]
    origin: str  # "function:<name>", "sudo" or "magic-link"
    status: str  # queued | sent | parked | kept (no SMTP server configured)
    attempts: int
    next_at: float
    last_error: str | None
    created: str
    sent: str | None = None

    def public(self) -> dict[str, Any]:
        """The mail as the root API shows it."""
        return {"id": self.id, "origin": self.origin, "status": self.status, "attempts": self.attempts,
                "nextAt": self.next_at if self.status == "queued" else None, "lastError": self.last_error,
                "created": self.created, "sent": self.sent, **self.message}


def _mail(row: sqlite3.Row) -> OutboxMail:
    return OutboxMail(id=row["id"], app_id=row["app_id"], message=loads(row["message"]), origin=row["origin"],
                      status=row["status"], attempts=row["attempts"], next_at=row["next_at"],
                      last_error=row["last_error"], created=row["created"], sent=row["sent"])


def hash_code(salt: str, code: str) -> str:
    """What is stored for a magic-link code: its salted SHA-256."""
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


class MailStore:
    """Queries over the outbox and the magic-link codes."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- the outbox

    async def insert(self, mail: OutboxMail) -> None:
        """Store a mail; durable once this returns."""
        await self._db.write(lambda c: c.execute(
            "INSERT INTO mail_outbox (id, app_id, message, origin, status, attempts, next_at, created) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (mail.id, mail.app_id, dumps_stored(mail.message), mail.origin, mail.status, mail.next_at, mail.created)))

    async def due(self, now: float, limit: int, skip: Collection[str] = ()) -> list[OutboxMail]:
        """Queued mail whose time has come, oldest first, leaving out the ids in `skip`."""
        skipped = dumps_stored(list(skip))
        rows = await self._db.read(lambda c: c.execute(
            "SELECT * FROM mail_outbox WHERE status = 'queued' AND next_at <= ? "
            "AND id NOT IN (SELECT value FROM json_each(?)) ORDER BY next_at, seq LIMIT ?",
            (now, skipped, limit)).fetchall())
        return [_mail(row) for row in rows]

    async def next_due(self) -> float | None:
        """When the earliest queued mail is due (None: none is queued)."""
        return await self._db.read(lambda c: c.execute(
            "SELECT MIN(next_at) FROM mail_outbox WHERE status = 'queued'").fetchone()[0])

    async def mark_sent(self, mail_id: str, attempts: int, sent: str, keep: int) -> None:
        """Record a delivered mail; its app keeps its newest `keep` sent mails, older sent ones go."""
        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute(
                "UPDATE mail_outbox SET status = 'sent', attempts = ?, sent = ?, last_error = NULL WHERE id = ? "
                "RETURNING app_id", (attempts, sent, mail_id)).fetchone()
            if row is not None:
                conn.execute(
                    "DELETE FROM mail_outbox WHERE app_id = ? AND status = 'sent' AND seq <= (SELECT seq FROM "
                    "mail_outbox WHERE app_id = ? AND status = 'sent' ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (row[0], row[0], keep))
        await self._db.write(run)

    async def reschedule(self, mail_id: str, attempts: int, next_at: float, error: str, park: bool) -> None:
        """Record a failed attempt: try again at `next_at`, or park the mail."""
        await self._db.write(lambda c: c.execute(
            "UPDATE mail_outbox SET attempts = ?, next_at = ?, last_error = ?, status = ? WHERE id = ?",
            (attempts, next_at, error, "parked" if park else "queued", mail_id)))

    async def requeue(self, app_id: str, mail_id: str, next_at: float, statuses: tuple[str, ...]) -> OutboxMail | None:
        """Queue a mail of one of `statuses` again from its first attempt; None if there is no such mail."""
        def run(conn: sqlite3.Connection) -> OutboxMail | None:
            row = conn.execute(
                "UPDATE mail_outbox SET status = 'queued', attempts = 0, next_at = ? WHERE id = ? AND app_id = ? "
                "AND status IN (SELECT value FROM json_each(?)) RETURNING *",
                (next_at, mail_id, app_id, dumps_stored(list(statuses)))).fetchone()
            return None if row is None else _mail(row)

        return await self._db.write(run)

    async def get(self, app_id: str, mail_id: str) -> OutboxMail | None:
        """One mail of an app."""
        row = await self._db.read(lambda c: c.execute(
            "SELECT * FROM mail_outbox WHERE id = ? AND app_id = ?", (mail_id, app_id)).fetchone())
        return None if row is None else _mail(row)

    async def page(self, app_id: str, status: str | None, limit: int, offset: int) -> tuple[list[OutboxMail], int]:
        """An app's mail, newest first, optionally of one status; and how many there are."""
        where = "app_id = ?" + (" AND status = ?" if status else "")
        params: tuple[Any, ...] = (app_id, status) if status else (app_id,)

        def run(conn: sqlite3.Connection) -> tuple[list[OutboxMail], int]:
            rows = conn.execute(f"SELECT * FROM mail_outbox WHERE {where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                                (*params, limit, offset)).fetchall()
            total = conn.execute(f"SELECT COUNT(*) FROM mail_outbox WHERE {where}", params).fetchone()[0]
            return [_mail(row) for row in rows], int(total)

        return await self._db.read(run)

    # --- magic-link codes

    async def set_code(self, app_id: str, email: str, salt: str, code: str, expires: float, now: float) -> None:
        """Store the one live code of an email (any earlier one stops working)."""
        stored = f"{salt}${hash_code(salt, code)}"
        await self._db.write(lambda c: c.execute(
            "INSERT INTO magic_codes (app_id, email, code_hash, expires, attempts, created) VALUES (?, ?, ?, ?, 0, ?) "
            "ON CONFLICT (app_id, email) DO UPDATE SET code_hash = excluded.code_hash, expires = excluded.expires, "
            "attempts = 0, created = excluded.created", (app_id, email, stored, expires, now)))

    async def use_code(self, app_id: str, email: str, code: str, now: float, max_attempts: int) -> str:
        """Try a code: "ok" (it is used up), "wrong", "expired" or "none" (no live code, or no attempt left).

        A wrong try counts against the code; its `max_attempts`-th wrong try deletes it.
        """
        def run(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT code_hash, expires, attempts FROM magic_codes WHERE app_id = ? AND email = ?",
                               (app_id, email)).fetchone()
            if row is None:
                return "none"
            salt, _, digest = row["code_hash"].partition("$")
            forget = "DELETE FROM magic_codes WHERE app_id = ? AND email = ?"
            if row["expires"] <= now:
                conn.execute(forget, (app_id, email))
                return "expired"
            if row["attempts"] >= max_attempts:
                conn.execute(forget, (app_id, email))
                return "none"
            if hmac.compare_digest(digest, hash_code(salt, code)):
                conn.execute(forget, (app_id, email))
                return "ok"
            if row["attempts"] + 1 >= max_attempts:
                conn.execute(forget, (app_id, email))
            else:
                conn.execute("UPDATE magic_codes SET attempts = attempts + 1 WHERE app_id = ? AND email = ?",
                             (app_id, email))
            return "wrong"

        return await self._db.write(run)
