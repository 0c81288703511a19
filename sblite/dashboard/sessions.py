"""Dashboard sign-in sessions: a random id in a cookie, the credential and CSRF token kept here.

A session holds what its sign-in proved, as the API already understands it: a root token
(`kind="root"`), or the session token that /login issues for the admin (`kind="user"`). Each
request resolves that credential again, so a changed password or rotated token ends the
session too. Sessions live in memory only: a restart signs everyone out. At most `max_sessions`
are kept (the oldest goes first), each for at most `ttl_seconds`.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Session:
    """One signed-in browser."""

    id: str
    csrf: str
    pk: str
    kind: str  # "root" (a root token) or "user" (the admin's session token)
    credential: str
    email: str
    created: float


class Sessions:
    """The signed-in dashboard sessions of one server."""

    def __init__(self, ttl_seconds: float, *, max_sessions: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, *, pk: str, kind: str, credential: str, email: str) -> Session:
        """A new session with fresh random id and CSRF token."""
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), pk=pk, kind=kind,
                          credential=credential, email=email, created=self._clock())
        self._sessions[session.id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id; None when unknown or expired."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self._clock() - session.created > self._ttl:
            del self._sessions[session_id]
            return None
        return session

    def close(self, session_id: str) -> None:
        """Forget a session (sign out). Safe to call twice."""
        self._sessions.pop(session_id, None)


def csrf_ok(session: Session, method: str, header: str | None) -> bool:
    """Whether a request may go on: safe methods always, others only with the session's CSRF token."""
    if method.upper() in SAFE_METHODS:
        return True
    return header is not None and hmac.compare_digest(header.encode(), session.csrf.encode())
