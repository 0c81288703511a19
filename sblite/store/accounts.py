"""Apps, accounts, users and server settings."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sblite.model import App, User
from sblite.store.database import Database
from sblite.store.memberships import MembershipStore

_USER_COLUMNS = "id, app_id, account_id, email, role, token, created, password_hash"
# More work for a write's transaction (the bus storing its subscribers' rows): it commits or fails with it.
Also = Callable[[sqlite3.Connection], Any] | None


class Duplicate(Exception):
    """A unique value (an email, a public key) is already taken."""


@dataclass(frozen=True)
class UserRecord:
    """A user together with its password hash (never leaves the services layer)."""

    user: User
    password_hash: str


def _record(row: sqlite3.Row | None) -> UserRecord | None:
    if row is None:
        return None
    user = User(id=row["id"], app_id=row["app_id"], account_id=row["account_id"], email=row["email"],
                role=row["role"], token=row["token"], created=row["created"])
    return UserRecord(user=user, password_hash=row["password_hash"])


def _app(row: sqlite3.Row | None) -> App | None:
    return None if row is None else App(id=row["id"], pk=row["pk"], name=row["name"])


class AccountStore:
    """Queries over apps, accounts, users and settings."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.memberships = MembershipStore(db)

    # --- settings

    async def setting(self, key: str) -> str | None:
        """A stored server setting, or None."""
        row = await self._db.read(lambda c: c.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone())
        return None if row is None else row[0]

    async def ensure_setting(self, key: str, value: str) -> str:
        """Store `value` under `key` unless a value is there already; return the stored value."""
        def run(conn: sqlite3.Connection) -> str:
            conn.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)", (key, value))
            return str(conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()[0])

        return await self._db.write(run)

    # --- apps

    async def apps(self) -> list[App]:
        """Every app, oldest first."""
        rows = await self._db.read(lambda c: c.execute("SELECT * FROM apps ORDER BY rowid").fetchall())
        return [App(id=row["id"], pk=row["pk"], name=row["name"]) for row in rows]

    async def app_by_pk(self, pk: str) -> App | None:
        """The app with this public key."""
        return _app(await self._db.read(lambda c: c.execute("SELECT * FROM apps WHERE pk = ?", (pk,)).fetchone()))

    async def app_by_id(self, app_id: str) -> App | None:
        """The app with this id."""
        return _app(await self._db.read(
            lambda c: c.execute("SELECT * FROM apps WHERE id = ?", (app_id,)).fetchone()))

    async def owner_email_taken(self, email: str) -> bool:
        """Whether some app was created for this owner email."""
        row = await self._db.read(
            lambda c: c.execute("SELECT 1 FROM apps WHERE owner_email = ?", (email,)).fetchone())
        return row is not None

    async def create_app(self, app: App, owner_email: str, admin: User, password_hash: str, also: Also = None) -> None:
        """Create an app with its first account and its root user, atomically (with `also`)."""
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT INTO apps (id, pk, name, owner_email, created) VALUES (?, ?, ?, ?, ?)",
                             (app.id, app.pk, app.name, owner_email, admin.created))
            except sqlite3.IntegrityError:
                raise Duplicate(f"an app with public key {app.pk} exists already") from None
            _insert_account(conn, admin.account_id, app.id, admin.email, admin.created)
            _insert_user(conn, admin, password_hash, also)

        await self._db.write(run)

    # --- users

    async def create_account_with_user(self, user: User, password_hash: str, also: Also = None) -> None:
        """Create a new account and its first user (with `also`); Duplicate if the email is taken."""
        def run(conn: sqlite3.Connection) -> None:
            _insert_account(conn, user.account_id, user.app_id, user.email, user.created)
            _insert_user(conn, user, password_hash, also)

        await self._db.write(run)

    async def add_user(self, user: User, password_hash: str, also: Also = None) -> None:
        """Add a user to an existing account (with `also`); Duplicate if the email is taken."""
        await self._db.write(lambda conn: _insert_user(conn, user, password_hash, also))

    async def user_by_id(self, user_id: str) -> UserRecord | None:
        """The user with this id."""
        return _record(await self._db.read(lambda c: c.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()))

    async def user_by_email(self, app_id: str, email: str) -> UserRecord | None:
        """The user of this app with this email."""
        return _record(await self._db.read(lambda c: c.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE app_id = ? AND email = ?", (app_id, email)).fetchone()))

    async def users_of_account(self, account_id: str) -> list[User]:
        """The users of one account, oldest first."""
        rows = await self._db.read(lambda c: c.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE account_id = ? ORDER BY seq", (account_id,)).fetchall())
        return [record.user for record in map(_record, rows) if record is not None]

    async def users_of_app(self, app_id: str, limit: int, offset: int) -> tuple[list[User], int]:
        """One page of an app's users, oldest first, and how many it has."""
        def run(conn: sqlite3.Connection) -> tuple[list[User], int]:
            rows = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE app_id = ? ORDER BY seq LIMIT ? OFFSET ?",
                                (app_id, limit, offset)).fetchall()
            total = int(conn.execute("SELECT COUNT(*) FROM users WHERE app_id = ?", (app_id,)).fetchone()[0])
            return [record.user for record in map(_record, rows) if record is not None], total

        return await self._db.read(run)

    async def delete_user(self, user_id: str, also: Also = None) -> bool:
        """Delete a user (and run `also` in the same transaction if it existed); whether it existed."""
        def run(conn: sqlite3.Connection) -> bool:
            deleted = conn.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount == 1
            if deleted and also is not None:
                also(conn)
            return deleted

        return await self._db.write(run)

    async def set_password(self, user_id: str, password_hash: str, new_token: str) -> None:
        """Change a password and rotate the per-user token (revoking older sessions)."""
        await self._db.write(lambda c: c.execute(
            "UPDATE users SET password_hash = ?, token = ?, reset_code = NULL, reset_expires = NULL "
            "WHERE id = ?", (password_hash, new_token, user_id)))

    async def set_email(self, user_id: str, email: str) -> None:
        """Change a user's email; Duplicate if another user of the app has it."""
        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("UPDATE users SET email = ? WHERE id = ?", (email, user_id))
            except sqlite3.IntegrityError:
                raise Duplicate("email already in use") from None

        await self._db.write(run)

    async def set_role(self, user_id: str, role: int) -> None:
        """Change a user's role."""
        await self._db.write(lambda c: c.execute("UPDATE users SET role = ? WHERE id = ?", (role, user_id)))

    async def set_reset_code(self, user_id: str, code: str, expires: float) -> None:
        """Store a password-reset code valid until `expires` (epoch seconds)."""
        await self._db.write(lambda c: c.execute(
            "UPDATE users SET reset_code = ?, reset_expires = ? WHERE id = ?", (code, expires, user_id)))

    async def reset_password(self, app_id: str, email: str, code: str, now: float,
                             password_hash: str, new_token: str) -> str | None:
        """Set a new password if `code` is the user's unexpired reset code; the user id, or None."""
        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT id FROM users WHERE app_id = ? AND email = ? AND reset_code = ? AND reset_expires > ?",
                (app_id, email, code, now)).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE users SET password_hash = ?, token = ?, reset_code = NULL, "
                         "reset_expires = NULL WHERE id = ?", (password_hash, new_token, row[0]))
            return str(row[0])

        return await self._db.write(run)


def _insert_account(conn: sqlite3.Connection, account_id: str, app_id: str, email: str, created: str) -> None:
    conn.execute("INSERT INTO accounts (id, app_id, email, created) VALUES (?, ?, ?, ?)",
                 (account_id, app_id, email, created))


def _insert_user(conn: sqlite3.Connection, user: User, password_hash: str, also: Also = None) -> None:
    try:
        conn.execute(
            "INSERT INTO users (id, app_id, account_id, email, password_hash, token, role, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (user.id, user.app_id, user.account_id, user.email, password_hash, user.token, user.role,
             user.created))
    except sqlite3.IntegrityError:
        raise Duplicate("email already in use") from None
    if also is not None:
        also(conn)
