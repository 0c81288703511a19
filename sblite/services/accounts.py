"""Apps, sessions and a user's own settings: creating apps, register, login, tokens to identities,
email and password changes.

The members of an account are account_members' job, root's admin of the app's users user_admin's;
what they all share (the user cache, `sys-users` announcements, hashing) is in users.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from sblite import ids
from sblite.errors import ApiError, BadRequest, NotFound, ServerError, Unauthorized
from sblite.model import ACCOUNT_ADMIN_ROLE, MEMBER_ROLE, ROOT_ROLE, App, Identity, User
from sblite.services.memberships import Memberships
from sblite.services.users import (USER_CREATED, UserDirectory, check_password, identity_of, normalize_email,
                                   password_hash, password_matches)
from sblite.store import AccountStore, Duplicate
from sblite.timeutil import now_text
from sblite.tokens import DEV_ROOT_ALIAS, SessionTokens, format_root_token, parse_root_token

DEV_PK = "dev_memory_pk"
DEV_ADMIN_EMAIL = "admin@dev.com"
DEV_ADMIN_PASSWORD = "devpw1234"
ANONYMOUS_ID = "public_repo_called"
# A login that names an account: one answer for every failure, so it never tells whether the password was right.
WRONG_ACCOUNT_LOGIN = "invalid email, password or account"


@dataclass(frozen=True)
class Credentials:
    """What an app's creator needs: its public key, admin login and root token."""

    app: App
    email: str
    password: str
    root_token: str


def anonymous(app: App) -> Identity:
    """The caller of a pub_ collection without a token."""
    return Identity(app_id=app.id, account_id=ANONYMOUS_ID, user_id=ANONYMOUS_ID, email="", role=MEMBER_ROLE)


class AccountService:
    """Registers and authenticates users; resolves tokens to identities."""

    def __init__(self, store: AccountStore, users: UserDirectory, memberships: Memberships, tokens: SessionTokens, *,
                 dev_mode: bool, reset_code_ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._users = users
        self._members = memberships
        self._tokens = tokens
        self._dev_mode = dev_mode
        self._reset_code_ttl = reset_code_ttl
        self._clock = clock
        self._apps_by_pk: dict[str, App] = {}
        self._dummy_hash: str | None = None

    # --- apps

    async def create_app(self, owner_email: str, *, pk: str | None = None, password: str | None = None,
                         name: str = "default") -> Credentials:
        """Create an app with its root user; returns the credentials to show once."""
        email = normalize_email(owner_email)
        password = password or ids.new_password()
        now = now_text()
        app = App(id=ids.new_id(), pk=pk or ids.new_public_key(), name=name)
        admin = User(id=ids.new_id(), app_id=app.id, account_id=ids.new_id(), email=email, role=ROOT_ROLE,
                     token=ids.new_id(), created=now)
        hashed = await password_hash(password)
        await self._users.announce(USER_CREATED, admin, identity_of(admin),
                                   lambda also: self._store.create_app(app, email, admin, hashed, also))
        return Credentials(app=app, email=email, password=password,
                           root_token=format_root_token(admin.id, admin.account_id, admin.token))

    async def ensure_dev_app(self) -> Credentials:
        """The dev app with StaticBackend's fixed dev credentials, created if missing."""
        app = await self._store.app_by_pk(DEV_PK)
        if app is None:
            return await self.create_app(DEV_ADMIN_EMAIL, pk=DEV_PK, password=DEV_ADMIN_PASSWORD)
        admin = await self._dev_admin(app)
        return Credentials(app=app, email=admin.email, password=DEV_ADMIN_PASSWORD,
                           root_token=format_root_token(admin.id, admin.account_id, admin.token))

    async def ensure_first_app(self, admin_email: str) -> Credentials | None:
        """In prod mode: create a first app with random credentials unless an app exists."""
        if await self._store.apps():
            return None
        return await self.create_app(admin_email)

    async def account_init_email_taken(self, email: str) -> bool:
        """Whether an app was already created for this owner email."""
        return await self._store.owner_email_taken(email)

    async def app_for_pk(self, pk: str) -> App:
        """The app a public key names (cached); StaticBackend answers 500 for an unknown key."""
        app = self._apps_by_pk.get(pk)
        if app is None:
            app = await self._store.app_by_pk(pk)
            if app is None:
                raise ServerError(f"error finding database '{pk}': no app has this public key")
            self._apps_by_pk[pk] = app
        return app

    async def app_by_id(self, app_id: str) -> App:
        """The app with this id."""
        app = await self._store.app_by_id(app_id)
        if app is None:
            raise NotFound("app not found")
        return app

    # --- sessions

    async def register(self, app: App, email: object, password: object) -> str:
        """Create an account and its first user (role 50); returns a session token."""
        email = normalize_email(email)
        password = check_password(password)
        user = User(id=ids.new_id(), app_id=app.id, account_id=ids.new_id(), email=email,
                    role=ACCOUNT_ADMIN_ROLE, token=ids.new_id(), created=now_text())
        hashed = await password_hash(password)
        try:
            await self._users.announce(USER_CREATED, user, identity_of(user),
                                       lambda also: self._store.create_account_with_user(user, hashed, also))
        except Duplicate:
            raise BadRequest("invalid email: this email is already registered") from None
        return self._tokens.issue(user.id, user.token)

    async def login(self, app: App, email: object, password: object, account_id: object = None) -> str:
        """A session token for valid credentials, acting in `account_id` if given (one the user belongs to)."""
        if account_id is not None and not isinstance(account_id, str):
            raise BadRequest("accountId must be a string")
        refused = WRONG_ACCOUNT_LOGIN if account_id else "invalid email/password"
        if not isinstance(email, str) or not isinstance(password, str):
            raise Unauthorized(refused)
        record = await self._store.user_by_email(app.id, email.strip().lower())
        if record is None:
            await password_matches(await self._dummy(), password)  # same cost either way
            raise Unauthorized(refused)
        if not await password_matches(record.password_hash, password):
            raise Unauthorized(refused)
        user = record.user
        if not account_id or account_id == user.account_id:
            return self._tokens.issue(user.id, user.token)
        if await self._members.role_in(user.id, account_id) is None:
            raise Unauthorized(refused)
        return self._tokens.issue(user.id, user.token, account_id)

    async def identify(self, app: App, token: str) -> Identity:
        """The identity behind a session token of this app; BadRequest if invalid."""
        claim = self._tokens.verify(token)
        user = await self._users.get(claim.user_id)
        if user is None or user.token != claim.user_token:
            raise BadRequest("error validating auth key: invalid authentication token")
        if user.app_id != app.id:
            raise BadRequest("error validating auth key: invalid StaticBackend public token")
        if claim.account_id is None or claim.account_id == user.account_id:
            return identity_of(user)
        role = await self._members.role_in(user.id, claim.account_id)
        if role is None:
            raise BadRequest("error validating auth key: the user is no longer a member of this session's account")
        return Identity(app_id=user.app_id, account_id=claim.account_id, user_id=user.id, email=user.email, role=role)

    async def identify_root(self, token: str, pk: str | None) -> Identity:
        """The root identity behind a root token (or the dev alias in dev mode) for the app of `pk`."""
        if token == DEV_ROOT_ALIAS:
            if not self._dev_mode:
                raise Unauthorized("not in dev mode")
            user = await self._dev_admin(await self.app_for_pk(DEV_PK))
        else:
            claim = parse_root_token(token)
            found = await self._users.get(claim.user_id)
            if found is None or found.account_id != claim.account_id or found.token != claim.user_token:
                raise BadRequest("invalid root token")
            user = found
            if user.role < ROOT_ROLE:
                raise BadRequest("not enough permission")
        if pk and user.app_id != (await self.app_for_pk(pk)).id:
            raise BadRequest("this root token does not belong to the app of this public key")
        return identity_of(user)

    # --- self-service

    async def email_exists(self, app: App, email: object) -> bool:
        """Whether a user of this app has this email."""
        if not isinstance(email, str) or not email.strip():
            return False
        return await self._store.user_by_email(app.id, email.strip().lower()) is not None

    async def session_for_email(self, app: App, email: str) -> str | None:
        """A session token for the user of `app` with this email (a magic-link sign-in); None if there is none."""
        record = await self._store.user_by_email(app.id, email)
        return None if record is None else self._tokens.issue(record.user.id, record.user.token)

    async def me(self, identity: Identity) -> dict[str, Any]:
        """The caller as /me shows it."""
        return {"id": identity.user_id, "userId": identity.user_id, "accountId": identity.account_id,
                "email": identity.email, "role": identity.role}

    async def change_email(self, identity: Identity, email: object) -> None:
        """Change the caller's email."""
        email = normalize_email(email)
        try:
            await self._store.set_email(identity.user_id, email)
        except Duplicate:
            raise BadRequest("email already in use") from None
        self._users.forget(identity.user_id)

    async def reset_code(self, root: Identity, email: object) -> str:
        """Store and return a password-reset code for a user of root's app."""
        record = await self._store.user_by_email(root.app_id, normalize_email(email))
        if record is None:
            raise BadRequest("invalid email")
        code = ids.new_code()
        await self._store.set_reset_code(record.user.id, code, self._clock() + self._reset_code_ttl)
        return code

    async def reset_password(self, app: App, email: object, code: object, password: object) -> None:
        """Set a new password given a valid reset code; older sessions stop working."""
        email = normalize_email(email)
        password = check_password(password)
        if not isinstance(code, str) or not code:
            raise ServerError("invalid code")
        user_id = await self._store.reset_password(app.id, email, code, self._clock(),
                                                   await password_hash(password), ids.new_id())
        if user_id is None:
            raise ServerError("invalid code")
        self._users.forget(user_id)

    # --- internals

    async def _dev_admin(self, app: App) -> User:
        record = await self._store.user_by_email(app.id, DEV_ADMIN_EMAIL)
        if record is None or record.user.role < ROOT_ROLE:
            raise ApiError("the dev app has no admin user")
        return record.user

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await password_hash(ids.new_password())
        return self._dummy_hash

