"""Sign-in attempts under the attempt limits (sblite/throttle.py), shared by every route that checks a secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from sblite.errors import TooManyRequests
from sblite.http.keys import AUTH_THROTTLE
from sblite.model import App
from sblite.services.users import MAX_EMAIL_LENGTH

T = TypeVar("T")


def account_key(app: App | None, email: object) -> tuple[str, str] | None:
    """The key the per-account limits use: the app and the email (bounded in size: it is held in memory)."""
    if app is None or not isinstance(email, str):
        return None
    return app.id, email.strip().lower()[:MAX_EMAIL_LENGTH]


async def limited(request: web.Request, action: str, account: tuple[str, str] | None,
                  attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt` within the attempt limits; 429 with Retry-After, before it runs, past them."""
    throttle = request.app[AUTH_THROTTLE]
    ticket = throttle.begin(action, request.remote, account)
    if ticket.refused:
        raise TooManyRequests(ticket.message, ticket.retry_after or 1)
    try:
        result = await attempt()
    except BaseException:
        throttle.failed(ticket)
        raise
    throttle.succeeded(ticket)
    return result
