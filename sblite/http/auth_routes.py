"""Accounts and users: register, login, me, password reset, account members (spec §1.3)."""

from __future__ import annotations

from typing import Any
from collections.abc import Awaitable, Callable

from aiohttp import web

from sblite.errors import BadRequest
from sblite.http.attempts import account_key, limited
from sblite.http.keys import ACCOUNTS, CONFIG, MEMBERS, USER_ADMIN
from sblite.http.policy import OPEN, ROOT, USER, PolicyRoutes, caller
from sblite.http.request import json_body, request_app, request_root
from sblite.http.responses import json_response, token_response

routes = PolicyRoutes()


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest("invalid body: expected a JSON object")
    return value


async def _limited(request: web.Request, action: str, account: tuple[str, str] | None,
                   attempt: Callable[[], Awaitable[Any]]) -> web.Response:
    """Run `attempt` within the attempt limits: its result as JSON (a token's headers), or 429 before it runs."""
    return token_response(await limited(request, action, account, attempt))


@routes.post("/register", OPEN)
async def register(request: web.Request) -> web.Response:
    """Create an account and its first user; answers the session token."""
    app = await request_app(request)
    body = _object(await json_body(request))
    email = body.get("email")
    return await _limited(request, "register", account_key(app, email),
                          lambda: request.app[ACCOUNTS].register(app, email, body.get("password")))


@routes.post("/login", OPEN)
async def login(request: web.Request) -> web.Response:
    """Exchange email and password for a session token."""
    app = await request_app(request)
    body = _object(await json_body(request))
    email = body.get("email")
    return await _limited(request, "login", account_key(app, email),
                          lambda: request.app[ACCOUNTS].login(app, email, body.get("password"), body.get("accountId")))


@routes.get("/me", USER)
async def me(request: web.Request) -> web.Response:
    """The caller's identity, with both `id` and `userId`."""
    return json_response(await request.app[ACCOUNTS].me(caller(request)))


@routes.post("/me/email", USER)
async def change_email(request: web.Request) -> web.Response:
    """Change the caller's email."""
    identity = caller(request)
    body = _object(await json_body(request))
    await request.app[ACCOUNTS].change_email(identity, body.get("email"))
    return json_response(True)


@routes.get("/email", OPEN)
async def email_exists(request: web.Request) -> web.Response:
    """Whether a user has the email `e`; root only when `email_lookup_root_only` is set."""
    app = await request_app(request)
    if request.app[CONFIG].email_lookup_root_only:
        await request_root(request)
    return json_response(await request.app[ACCOUNTS].email_exists(app, request.query.get("e")))


@routes.get("/password/resetcode", ROOT)
async def reset_code(request: web.Request) -> web.Response:
    """Root: a password-reset code for the user with email `e`."""
    root = caller(request)
    return token_response(await request.app[ACCOUNTS].reset_code(root, request.query.get("e")))


@routes.post("/password/reset", OPEN)
async def reset_password(request: web.Request) -> web.Response:
    """Set a new password with a reset code."""
    app = await request_app(request)
    body = _object(await json_body(request))
    email = body.get("email")

    async def attempt() -> bool:
        await request.app[ACCOUNTS].reset_password(app, email, body.get("code"), body.get("password"))
        return True

    return await _limited(request, "reset", account_key(app, email), attempt)


@routes.get("/account/users", USER)
@routes.get("/account/users/", USER)
async def list_users(request: web.Request) -> web.Response:
    """The users of the caller's account."""
    return json_response(await request.app[MEMBERS].list_users(caller(request)))


@routes.post("/account/users", USER)
@routes.post("/account/users/", USER)
async def add_user(request: web.Request) -> web.Response:
    """Add a member to the caller's account."""
    identity = caller(request)
    body = _object(await json_body(request))
    email = body.get("email")
    # Adding an existing user checks its password: limited as logins are, so it cannot be used to guess one.
    return await _limited(request, "login", account_key(await request_app(request), email),
                          lambda: request.app[MEMBERS].add_user(identity, email, body.get("password")))


@routes.get("/account/associations", USER)
async def associations(request: web.Request) -> web.Response:
    """Every account the caller belongs to, its own first."""
    return json_response(await request.app[MEMBERS].associations(caller(request)))


@routes.post("/account/promote", USER)
async def promote(request: web.Request) -> web.Response:
    """Give the caller an account of its own (role 50): a session token acting in it."""
    return token_response(await request.app[MEMBERS].promote(caller(request)))


@routes.delete("/account/users/{user_id}", USER)
async def remove_user(request: web.Request) -> web.Response:
    """Remove a user from the caller's account."""
    identity = caller(request)
    await request.app[MEMBERS].remove_user(identity, request.match_info["user_id"])
    return json_response(True)


@routes.post("/setrole", USER)
async def set_role(request: web.Request) -> web.Response:
    """Root users (role 100) change another user's role."""
    identity = caller(request)
    body = _object(await json_body(request))
    await request.app[USER_ADMIN].set_role(identity, body.get("email"), body.get("role"), body.get("accountId"))
    return json_response(True)


@routes.get("/sudogettoken/{account_id}", ROOT)
async def token_for_account(request: web.Request) -> web.Response:
    """Root: a session token for the first user of an account."""
    root = caller(request)
    return token_response(await request.app[USER_ADMIN].token_for_account(root, request.match_info["account_id"]))
