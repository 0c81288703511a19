"""Apps, accounts, users and authentication.

Creating or deleting a user publishes `user_created` / `user_deleted` on the `sys-users`
channel (data: the user as the API shows it, never a password hash, token or reset code),
stored with the change in one transaction, so the functions the event triggers run exactly
when the change committed. The message acts as whoever caused it: the new user on
/register and /account/init, the member who added or removed the user otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, TypeVar
from collections.abc import Awaitable, Callable

from sblite import ids, passwords
from sblite.channels import USERS_CHANNEL
from sblite.errors import ApiError, BadRequest, NotFound, ServerError, Unauthorized
from sblite.jsonutil import dumps
from sblite.model import ACCOUNT_ADMIN_ROLE, MEMBER_ROLE, ROOT_ROLE, App, Identity, Message, User
from sblite.services.bus import EventBus
from sblite.services.memberships import Memberships
from sblite.store import AccountStore, Duplicate, UserRecord
from sblite.store.memberships import AlreadyAdmin, AlreadyMember
from sblite.timeutil import now_text
from sblite.tokens import DEV_ROOT_ALIAS, SessionTokens, format_root_token, parse_root_token

DEV_PK = "dev_memory_pk"
DEV_ADMIN_EMAIL = "admin@dev.com"
DEV_ADMIN_PASSWORD = "devpw1234"
MAX_EMAIL_LENGTH = 254
MAX_PASSWORD_LENGTH = 1024
USER_CACHE_SIZE = 10_000
ANONYMOUS_ID = "public_repo_called"
USER_CREATED = "user_created"
USER_DELETED = "user_deleted"
# A login that names an account: one answer for every failure, so it never tells whether the password was right.
WRONG_ACCOUNT_LOGIN = "invalid email, password or account"
T = TypeVar("T")
# Runs a store write with more work for its transaction (see AccountStore's `also`).
StoreWrite = Callable[[Callable[[Any], Any] | None], Awaitable[T]]


@dataclass(frozen=True)
class Credentials:
    """What an app's creator needs: its public key, admin login and root token."""

    app: App
    email: str
    password: str
    root_token: str


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


def anonymous(app: App) -> Identity:
    """The caller of a pub_ collection without a token."""
    return Identity(app_id=app.id, account_id=ANONYMOUS_ID, user_id=ANONYMOUS_ID, email="", role=MEMBER_ROLE)


def identity_of(user: User) -> Identity:
    """The identity a user acts with."""
    return Identity(app_id=user.app_id, account_id=user.account_id, user_id=user.id, email=user.email,
                    role=user.role)


class AccountService:
    """Registers and authenticates users; resolves tokens to identities."""

    def __init__(self, store: AccountStore, tokens: SessionTokens, bus: EventBus, *, dev_mode: bool,
                 reset_code_ttl: int, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._bus = bus
        self._tokens = tokens
        self._dev_mode = dev_mode
        self._reset_code_ttl = reset_code_ttl
        self._clock = clock
        self._apps_by_pk: dict[str, App] = {}
        self._users: OrderedDict[str, User] = OrderedDict()
        self._dummy_hash: str | None = None
        self._members = Memberships(store.memberships)

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
        password_hash = await _hash(password)
        await self._announce(USER_CREATED, admin, identity_of(admin),
                             lambda also: self._store.create_app(app, email, admin, password_hash, also))
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
        password_hash = await _hash(password)
        try:
            await self._announce(USER_CREATED, user, identity_of(user),
                                 lambda also: self._store.create_account_with_user(user, password_hash, also))
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
            await self._verify(await self._dummy(), password)  # same cost either way
            raise Unauthorized(refused)
        if not await self._verify(record.password_hash, password):
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
        user = await self._user(claim.user_id)
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
            found = await self._user(claim.user_id)
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
        self._forget(identity.user_id)

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
        user_id = await self._store.reset_password(app.id, email, code, self._clock(), await _hash(password),
                                                   ids.new_id())
        if user_id is None:
            raise ServerError("invalid code")
        self._forget(user_id)

    # --- account members

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
        password_hash = await _hash(password)
        try:
            await self._announce(USER_CREATED, user, identity,
                                 lambda also: self._store.add_user(user, password_hash, also))
        except Duplicate:
            raise BadRequest("email already in use") from None
        return user.public()

    async def remove_user(self, identity: Identity, user_id: str) -> None:
        """Delete a user of the caller's account whose role is not above the caller's."""
        target = await self._user(user_id)
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
        await self._announce(USER_DELETED, target, identity, lambda also: self._store.delete_user(user_id, also))
        self._forget(user_id)

    async def set_role(self, identity: Identity, email: object, role: object, account_id: object = None) -> None:
        """Change the role of a user of the app (in `account_id`, if one it joined); only a root (role 100) user may."""
        if identity.role < ROOT_ROLE:
            raise Unauthorized("permission level not high enough")
        if isinstance(role, bool) or not isinstance(role, int) or not 0 <= role <= ROOT_ROLE:
            raise BadRequest(f"role must be a whole number from 0 to {ROOT_ROLE}")
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
        self._forget(record.user.id)

    async def associations(self, identity: Identity) -> list[dict[str, Any]]:
        """Every account the caller belongs to, its own first (never a token)."""
        user = await self._user(identity.user_id)
        if user is None:
            raise NotFound("user not found")
        return await self._members.associations(user)

    async def promote(self, identity: Identity) -> str:
        """A new account with the caller as its admin (role 50); a session token acting in it."""
        user = await self._user(identity.user_id)
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
        if not await self._verify(existing.password_hash, password):
            raise BadRequest("email already in use")
        try:
            await self._members.join(existing.user, identity.account_id, MEMBER_ROLE)
        except AlreadyMember:
            raise BadRequest("email already in use: this user is a member of this account already") from None
        return {**existing.user.public(), "accountId": identity.account_id, "role": MEMBER_ROLE}

    async def _token_for_joined(self, root: Identity, account_id: str) -> str:
        """A session token for the first user who joined an account no user was created in."""
        joined = await self._members.members_of(account_id)
        if not joined or joined[0][0].app_id != root.app_id:
            raise NotFound("account not found")
        return self._tokens.issue(joined[0][0].id, joined[0][0].token, account_id)

    # --- the app's users, for root (the dashboard's Users page)

    async def app_users(self, root: Identity, page: int, size: int) -> dict[str, Any]:
        """One page of the app's users (never their tokens or hashes), oldest first."""
        users, total = await self._store.users_of_app(root.app_id, size, (page - 1) * size)
        return {"page": page, "size": size, "total": total, "results": [user.public() for user in users]}

    async def create_app_user(self, root: Identity, email: object, password: object, role: object) -> dict[str, Any]:
        """Register a user with an account of its own, as /register does, then give it `role`."""
        if isinstance(role, bool) or not isinstance(role, int) or not 0 <= role <= ROOT_ROLE:
            raise BadRequest(f"role must be a whole number from 0 to {ROOT_ROLE}")
        app = await self.app_by_id(root.app_id)
        await self.register(app, email, password)
        if role != ACCOUNT_ADMIN_ROLE:
            await self.set_role(root, email, role)
        record = await self._store.user_by_email(root.app_id, normalize_email(email))
        if record is None:
            raise NotFound("user not found")
        return record.user.public()

    async def app_user(self, root: Identity, user_id: str) -> User:
        """A user of root's app, by id."""
        user = await self._user(user_id)
        if user is None or user.app_id != root.app_id:
            raise NotFound("user not found")
        return user

    async def delete_app_user(self, root: Identity, user_id: str) -> None:
        """Delete any user of root's app but root itself."""
        target = await self.app_user(root, user_id)
        if target.id == root.user_id:
            raise BadRequest("you cannot delete the user you are signed in as")
        await self._announce(USER_DELETED, target, root, lambda also: self._store.delete_user(user_id, also))
        self._forget(user_id)

    async def token_for_account(self, root: Identity, account_id: str) -> str:
        """A session token for the first user of an account of root's app."""
        users = await self._store.users_of_account(account_id)
        if not users:
            return await self._token_for_joined(root, account_id)  # an account made by /account/promote
        if users[0].app_id != root.app_id:
            raise NotFound("account not found")
        return self._tokens.issue(users[0].id, users[0].token)

    # --- internals

    async def _announce(self, kind: str, user: User, actor: Identity, write: StoreWrite[T]) -> T:
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

    async def _user(self, user_id: str) -> User | None:
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

    def _forget(self, user_id: str) -> None:
        self._users.pop(user_id, None)

    async def _dev_admin(self, app: App) -> User:
        record = await self._store.user_by_email(app.id, DEV_ADMIN_EMAIL)
        if record is None or record.user.role < ROOT_ROLE:
            raise ApiError("the dev app has no admin user")
        return record.user

    async def _verify(self, stored_hash: str, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, passwords.verify_password, stored_hash, password)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await _hash(ids.new_password())
        return self._dummy_hash


async def _hash(password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, passwords.hash_password, password)
