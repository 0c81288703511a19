"""What every service that changes users shares: input checks, the user cache, `sys-users` announcements, hashing.

Creating or deleting a user publishes `user_created` / `user_deleted` on the `sys-users`
channel (data: the user as the API shows it, never a password hash, token or reset code),
stored with the change in one transaction, so the functions the event triggers run exactly
when the change committed. The message acts as whoever caused it: the new user on
/register and /account/init, the member who added or removed the user otherwise.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, TypeVar
from collections.abc import Awaitable, Callable

from sblite import passwords
from sblite.channels import USERS_CHANNEL
from sblite.errors import BadRequest
from sblite.jsonutil import dumps
from sblite.model import ROOT_ROLE, Identity, Message, User
from sblite.services.bus import EventBus
from sblite.store import AccountStore

MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1024
USER_CACHE_SIZE = 10_000
USER_CREATED = "user_created"
USER_DELETED = "user_deleted"
T = TypeVar("T")
# Runs a store write with more work for its transaction (see AccountStore's `also`).
StoreWrite = Callable[[Callable[[Any], Any] | None], Awaitable[T]]


def normalize_email(email: object) -> str:
    """A trimmed, lower-cased email; BadRequest unless it looks like one."""
    if not isinstance(email, str):
        raise BadRequest("invalid email")
    email = email.strip().lower()
    if len(email) < 4 or len(email) > MAX_EMAIL_LENGTH or "@" not in email or "." not in email:
        raise BadRequest("invalid email")
    return email


def check_password(password: object) -> str:
    """The password if acceptable; BadRequest otherwise."""
    if not isinstance(password, str) or not password:
        raise BadRequest("a password is required")
    if len(password) < passwords.MIN_PASSWORD_LENGTH:
        raise BadRequest(f"password must be at least {passwords.MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def check_role(role: object) -> int:
    """The role if it is a whole number from 0 to 100; BadRequest otherwise."""
    if isinstance(role, bool) or not isinstance(role, int) or not 0 <= role <= ROOT_ROLE:
        raise BadRequest(f"role must be a whole number from 0 to {ROOT_ROLE}")
    return role


def identity_of(user: User) -> Identity:
    """The identity a user acts with."""
    return Identity(app_id=user.app_id, account_id=user.account_id, user_id=user.id, email=user.email,
                    role=user.role)


async def password_hash(password: str) -> str:
    """The argon2 hash of a password, computed off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, passwords.hash_password, password)


async def password_matches(stored_hash: str, password: str) -> bool:
    """Whether `password` is the one behind `stored_hash`, checked off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, passwords.verify_password, stored_hash, password)


class UserDirectory:
    """The app users by id (cached, since every request resolves one), and their announced creation and deletion."""

    def __init__(self, store: AccountStore, bus: EventBus) -> None:
        self._store = store
        self._bus = bus
        self._users: OrderedDict[str, User] = OrderedDict()

    async def get(self, user_id: str) -> User | None:
        """The user with this id, or None."""
        user = self._users.get(user_id)
        if user is not None:
            self._users.move_to_end(user_id)
            return user
        record = await self._store.user_by_id(user_id)
        if record is None:
            return None
        self._users[user_id] = record.user
        if len(self._users) > USER_CACHE_SIZE:
            self._users.popitem(last=False)
        return record.user

    def forget(self, user_id: str) -> None:
        """Drop a changed user from the cache, so the next read sees the change."""
        self._users.pop(user_id, None)

    async def announce(self, kind: str, user: User, actor: Identity, write: StoreWrite[T]) -> T:
        """Run a store write that creates or deletes `user`, and publish `kind` for it once committed.

        The bus's durable subscribers store their rows in the write's transaction; a delete that
        found no user (a concurrent one won) publishes nothing.
        """
        message = Message(type=kind, channel=USERS_CHANNEL, data=dumps(user.public()), sid="system",
                          app_id=user.app_id, identity=actor)
        also = (lambda tx: self._bus.store(tx, [message])) if self._bus.wants_rows(message) else None
        result = await write(also)
        if result is not False:
            await self._bus.publish_many([message], stored=True)
        return result

    async def delete(self, target: User, actor: Identity) -> None:
        """Delete a user, announcing `user_deleted` as `actor`."""
        await self.announce(USER_DELETED, target, actor, lambda also: self._store.delete_user(target.id, also))
        self.forget(target.id)
