"""The members of an account, as its users manage them: list, add (new or existing users), remove, and
the accounts a user belongs to (`/account/*`, spec §1.3, with sblite's joined accounts: see memberships)."""

from __future__ import annotations

from typing import Any

from sblite import ids
from sblite.errors import BadRequest, NotFound, Unauthorized
from sblite.model import ACCOUNT_ADMIN_ROLE, MEMBER_ROLE, Identity, User
from sblite.services.memberships import Memberships
from sblite.services.users import (USER_CREATED, UserDirectory, check_password, normalize_email, password_hash,
                                   password_matches)
from sblite.store import AccountStore, Duplicate, UserRecord
from sblite.store.memberships import AlreadyAdmin, AlreadyMember
from sblite.timeutil import now_text
from sblite.tokens import SessionTokens


class AccountMembers:
    """Adds, lists and removes the users of the caller's account; gives a user an account of its own."""

    def __init__(self, store: AccountStore, users: UserDirectory, memberships: Memberships,
                 tokens: SessionTokens) -> None:
        self._store = store
        self._users = users
        self._members = memberships
        self._tokens = tokens

    async def list_users(self, identity: Identity) -> list[dict[str, Any]]:
        """The users of the caller's account, then those who joined it (never their tokens)."""
        own = [user.public() for user in await self._store.users_of_account(identity.account_id)]
        return own + [{**user.public(), "accountId": identity.account_id, "role": role}
                      for user, role in await self._members.members_of(identity.account_id)]

    async def add_user(self, identity: Identity, email: object, password: object) -> dict[str, Any]:
        """Add a member (role 0) to the caller's account: a new user, or an existing one given its password."""
        email = normalize_email(email)
        password = check_password(password)
        existing = await self._store.user_by_email(identity.app_id, email)
        if existing is not None:
            return await self._join(identity, existing, password)
        user = User(id=ids.new_id(), app_id=identity.app_id, account_id=identity.account_id, email=email,
                    role=MEMBER_ROLE, token=ids.new_id(), created=now_text())
        hashed = await password_hash(password)
        try:
            await self._users.announce(USER_CREATED, user, identity,
                                       lambda also: self._store.add_user(user, hashed, also))
        except Duplicate:
            raise BadRequest("email already in use") from None
        return user.public()

    async def remove_user(self, identity: Identity, user_id: str) -> None:
        """Delete a user of the caller's account whose role is not above the caller's."""
        target = await self._users.get(user_id)
        if target is not None and target.account_id != identity.account_id:
            # A user who joined the caller's account leaves it; its own account and data stay.
            role = await self._members.role_in(user_id, identity.account_id)
            if role is None:
                raise NotFound("user not found")
            if role > identity.role:
                raise Unauthorized("permission level not high enough")
            await self._members.leave(user_id, identity.account_id)
            return
        if target is None:
            raise NotFound("user not found")
        if target.role > identity.role:
            raise Unauthorized("permission level not high enough")
        await self._users.delete(target, identity)

    async def associations(self, identity: Identity) -> list[dict[str, Any]]:
        """Every account the caller belongs to, its own first (never a token)."""
        user = await self._users.get(identity.user_id)
        if user is None:
            raise NotFound("user not found")
        return await self._members.associations(user)

    async def promote(self, identity: Identity) -> str:
        """A new account with the caller as its admin (role 50); a session token acting in it."""
        user = await self._users.get(identity.user_id)
        if user is None:
            raise NotFound("user not found")
        try:
            account_id = await self._members.promote(user, ACCOUNT_ADMIN_ROLE)
        except AlreadyAdmin:
            raise BadRequest("you administer an account already (role 50 or more): "
                             "promote gives an account of their own to users who have none") from None
        return self._tokens.issue(user.id, user.token, account_id)

    async def _join(self, identity: Identity, existing: UserRecord, password: str) -> dict[str, Any]:
        """Add an existing user of the app to the caller's account, if `password` is its own (its consent)."""
        if not await password_matches(existing.password_hash, password):
            raise BadRequest("email already in use")
        try:
            await self._members.join(existing.user, identity.account_id, MEMBER_ROLE)
        except AlreadyMember:
            raise BadRequest("email already in use: this user is a member of this account already") from None
        return {**existing.user.public(), "accountId": identity.account_id, "role": MEMBER_ROLE}
