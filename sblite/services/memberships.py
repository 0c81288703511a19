"""Account associations: the accounts a user belongs to besides its own, and its role in each.

A user is created in one account (its own: /register makes it, /account/users adds a member to
the caller's) and keeps that account and role on its row. It joins another account when a
member of that account adds it by email with its current password (`POST /account/users`:
the password is the user's consent), or gets an account of its own with `POST /account/promote`.
A session acts in one account: the user's own, or the one chosen at login (`accountId`), which
the session token carries. The role a session acts with is the user's role in that account.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from sblite import ids
from sblite.model import User
from sblite.store.memberships import Membership, MembershipStore
from sblite.timeutil import now_text

ROLE_CACHE_SIZE = 10_000


class Memberships:
    """Reads and changes memberships; remembers roles, since a session of a joined account needs one per request."""

    def __init__(self, store: MembershipStore) -> None:
        self._store = store
        self._roles: OrderedDict[tuple[str, str], int] = OrderedDict()
        # Bumped by every change: a read that began before a change must not cache what it read.
        self._generation = 0

    async def role_in(self, user_id: str, account_id: str) -> int | None:
        """The user's role in an account it joined, or None when it is no member of it."""
        key = (user_id, account_id)
        role = self._roles.get(key)
        if role is not None:
            self._roles.move_to_end(key)
            return role
        generation = self._generation
        role = await self._store.role_in(user_id, account_id)
        if role is not None and generation == self._generation:
            self._roles[key] = role
            if len(self._roles) > ROLE_CACHE_SIZE:
                self._roles.popitem(last=False)
        return role

    async def associations(self, user: User) -> list[dict[str, Any]]:
        """Every account the user belongs to, its own first, as the client's AccountUser (no token)."""
        own = {"id": user.id, "userId": user.id, "accountId": user.account_id, "email": user.email,
               "role": user.role, "token": ""}
        return [own, *({"id": m.id, "userId": user.id, "accountId": m.account_id, "email": user.email,
                        "role": m.role, "token": ""} for m in await self._store.of_user(user.id))]

    async def members_of(self, account_id: str) -> list[tuple[User, int]]:
        """The users who joined an account, each with its role there."""
        return await self._store.members_of(account_id)

    async def join(self, user: User, account_id: str, role: int) -> Membership:
        """Add `user` to an account of its app (AlreadyMember if it belongs to it already)."""
        membership = Membership(id=ids.new_id(), user_id=user.id, account_id=account_id, role=role,
                                created=now_text())
        await self._store.join(membership, user.app_id)
        return membership

    async def promote(self, user: User, admin_role: int) -> str:
        """A new account with `user` as its admin; its id (AlreadyAdmin if the user administers one)."""
        membership = Membership(id=ids.new_id(), user_id=user.id, account_id=ids.new_id(), role=admin_role,
                                created=now_text())
        await self._store.promote(membership, user.app_id, user.email, admin_role)
        return membership.account_id

    async def leave(self, user_id: str, account_id: str) -> bool:
        """Remove a user from an account it joined; whether it was a member."""
        left = await self._store.leave(user_id, account_id)
        self._forget(user_id, account_id)
        return left

    async def set_role(self, user_id: str, account_id: str, role: int) -> bool:
        """Change a user's role in an account it joined; whether it was a member."""
        changed = await self._store.set_role(user_id, account_id, role)
        self._forget(user_id, account_id)
        return changed

    def _forget(self, user_id: str, account_id: str) -> None:
        self._generation += 1
        self._roles.pop((user_id, account_id), None)
