"""Memberships: a user's place in an account other than the one it was created in.

A user row keeps its own account and role (the membership it was created with); this table
holds only the others, so the common case (one account per user) reads nothing more.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sblite.model import User
from sblite.store.database import Database

_ACCOUNT_ROLE = "SELECT role FROM memberships WHERE user_id = ? AND account_id = ?"


@dataclass(frozen=True)
class Membership:
    """A user's membership of an account, with the role it has there."""

    id: str
    user_id: str
    account_id: str
    role: int
    created: str


class AlreadyMember(Exception):
    """The user belongs to this account already (its own account or a membership)."""


class AlreadyAdmin(Exception):
    """A user who administers an account (role 50 or more somewhere) asked for one of its own."""


def _membership(row: sqlite3.Row) -> Membership:
    return Membership(id=row["id"], user_id=row["user_id"], account_id=row["account_id"], role=row["role"],
                      created=row["created"])


class MembershipStore:
    """Queries over the memberships table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def role_in(self, user_id: str, account_id: str) -> int | None:
        """The user's role in an account it joined (not its own account), or None."""
        row = await self._db.read(lambda c: c.execute(_ACCOUNT_ROLE, (user_id, account_id)).fetchone())
        return None if row is None else int(row[0])

    async def of_user(self, user_id: str) -> list[Membership]:
        """The memberships of one user, oldest first."""
        rows = await self._db.read(lambda c: c.execute(
            "SELECT * FROM memberships WHERE user_id = ? ORDER BY seq", (user_id,)).fetchall())
        return [_membership(row) for row in rows]

    async def members_of(self, account_id: str) -> list[tuple[User, int]]:
        """The users who joined an account (it is not their own), with their role there, oldest first."""
        def run(conn: sqlite3.Connection) -> list[tuple[User, int]]:
            rows = conn.execute(
                "SELECT u.id, u.app_id, u.account_id, u.email, u.role, u.token, u.created, m.role AS member_role "
                "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.account_id = ? ORDER BY m.seq",
                (account_id,)).fetchall()
            return [(User(id=r["id"], app_id=r["app_id"], account_id=r["account_id"], email=r["email"],
                          role=r["role"], token=r["token"], created=r["created"]), int(r["member_role"]))
                    for r in rows]

        return await self._db.read(run)

    async def join(self, membership: Membership, app_id: str) -> None:
        """Add a user to an account of its app; AlreadyMember if it is its own account or joined already."""
        def run(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT account_id FROM users WHERE id = ?", (membership.user_id,)).fetchone()
            account = conn.execute("SELECT 1 FROM accounts WHERE id = ? AND app_id = ?",
                                   (membership.account_id, app_id)).fetchone()
            if row is None or account is None:
                raise LookupError("no such user or account in this app")
            if row[0] == membership.account_id:
                raise AlreadyMember(membership.account_id)
            _insert(conn, membership, app_id)

        await self._db.write(run)

    async def promote(self, membership: Membership, app_id: str, email: str, admin_role: int) -> None:
        """Create an account with `membership` (its admin) in it, unless the user administers one already."""
        def run(conn: sqlite3.Connection) -> None:
            # Checked in the write's transaction: two promote calls at once make one account, not two.
            own = conn.execute("SELECT role FROM users WHERE id = ?", (membership.user_id,)).fetchone()
            joined = conn.execute("SELECT MAX(role) FROM memberships WHERE user_id = ?",
                                  (membership.user_id,)).fetchone()
            if own is None:
                raise LookupError("no such user")
            if own[0] >= admin_role or (joined[0] is not None and joined[0] >= admin_role):
                raise AlreadyAdmin(membership.user_id)
            conn.execute("INSERT INTO accounts (id, app_id, email, created) VALUES (?, ?, ?, ?)",
                         (membership.account_id, app_id, email, membership.created))
            _insert(conn, membership, app_id)

        await self._db.write(run)

    async def leave(self, user_id: str, account_id: str) -> bool:
        """Remove a user's membership of an account; whether it had one."""
        return await self._db.write(lambda c: c.execute(
            "DELETE FROM memberships WHERE user_id = ? AND account_id = ?", (user_id, account_id)).rowcount == 1)

    async def set_role(self, user_id: str, account_id: str, role: int) -> bool:
        """Change a user's role in an account it joined; whether it had joined it."""
        return await self._db.write(lambda c: c.execute(
            "UPDATE memberships SET role = ? WHERE user_id = ? AND account_id = ?",
            (role, user_id, account_id)).rowcount == 1)


def _insert(conn: sqlite3.Connection, membership: Membership, app_id: str) -> None:
    try:
        conn.execute("INSERT INTO memberships (id, app_id, user_id, account_id, role, created) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (membership.id, app_id, membership.user_id, membership.account_id, membership.role,
                      membership.created))
    except sqlite3.IntegrityError:
        raise AlreadyMember(membership.account_id) from None
