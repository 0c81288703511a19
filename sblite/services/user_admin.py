"""Root's hand on every user of its app: the dashboard's Users page, `/setrole` and `/sudogettoken`.

StaticBackend's account routes act on the caller's account; these act on the whole app.
"""

from __future__ import annotations

from typing import Any

from sblite.errors import BadRequest, NotFound, Unauthorized
from sblite.model import ACCOUNT_ADMIN_ROLE, ROOT_ROLE, Identity, User
from sblite.services.accounts import AccountService
from sblite.services.memberships import Memberships
from sblite.services.users import UserDirectory, check_role, normalize_email
from sblite.store import AccountStore
from sblite.tokens import SessionTokens


class UserAdmin:
    """Lists, creates, changes and deletes the users of root's app; signs root in as one of its accounts."""

    def __init__(self, store: AccountStore, accounts: AccountService, users: UserDirectory,
                 memberships: Memberships, tokens: SessionTokens) -> None:
        self._store = store
        self._accounts = accounts
        self._users = users
        self._members = memberships
        self._tokens = tokens

    async def app_users(self, root: Identity, page: int, size: int) -> dict[str, Any]:
        """One page of the app's users (never their tokens or hashes), oldest first."""
        users, total = await self._store.users_of_app(root.app_id, size, (page - 1) * size)
        return {"page": page, "size": size, "total": total, "results": [user.public() for user in users]}

    async def create_app_user(self, root: Identity, email: object, password: object, role: object) -> dict[str, Any]:
        """Register a user with an account of its own, as /register does, then give it `role`."""
        role = check_role(role)
        app = await self._accounts.app_by_id(root.app_id)
        await self._accounts.register(app, email, password)
        if role != ACCOUNT_ADMIN_ROLE:
            await self.set_role(root, email, role)
        record = await self._store.user_by_email(root.app_id, normalize_email(email))
        if record is None:
            raise NotFound("user not found")
        return record.user.public()

    async def app_user(self, root: Identity, user_id: str) -> User:
        """A user of root's app, by id."""
        user = await self._users.get(user_id)
        if user is None or user.app_id != root.app_id:
            raise NotFound("user not found")
        return user

    async def change_role(self, root: Identity, user_id: str, role: object) -> User:
        """Give a user of root's app, not root itself, another role; the user changed."""
        user = await self.app_user(root, user_id)
        if user.id == root.user_id:
            raise BadRequest("you cannot change the role of the user you are signed in as")
        await self.set_role(root, user.email, role)
        return await self.app_user(root, user.id)

    async def set_role(self, identity: Identity, email: object, role: object, account_id: object = None) -> None:
        """Change the role of a user of the app (in `account_id`, if one it joined); only a root (role 100) user may."""
        if identity.role < ROOT_ROLE:
            raise Unauthorized("permission level not high enough")
        role = check_role(role)
        if account_id is not None and not isinstance(account_id, str):
            raise BadRequest("accountId must be a string")
        record = await self._store.user_by_email(identity.app_id, normalize_email(email))
        if record is None:
            raise NotFound("user not found")
        if account_id and account_id != record.user.account_id:
            if not await self._members.set_role(record.user.id, account_id, role):
                raise NotFound("the user is no member of this account")
            return
        await self._store.set_role(record.user.id, role)
        self._users.forget(record.user.id)

    async def delete_app_user(self, root: Identity, user_id: str) -> None:
        """Delete any user of root's app but root itself."""
        target = await self.app_user(root, user_id)
        if target.id == root.user_id:
            raise BadRequest("you cannot delete the user you are signed in as")
        await self._users.delete(target, root)

    async def token_for_account(self, root: Identity, account_id: str) -> str:
        """A session token for the first user of an account of root's app."""
        users = await self._store.users_of_account(account_id)
        if not users:
            return await self._token_for_joined(root, account_id)  # an account made by /account/promote
        if users[0].app_id != root.app_id:
            raise NotFound("account not found")
        return self._tokens.issue(users[0].id, users[0].token)

    async def _token_for_joined(self, root: Identity, account_id: str) -> str:
        """A session token for the first user who joined an account no user was created in."""
        joined = await self._members.members_of(account_id)
        if not joined or joined[0][0].app_id != root.app_id:
            raise NotFound("account not found")
        return self._tokens.issue(joined[0][0].id, joined[0][0].token, account_id)
