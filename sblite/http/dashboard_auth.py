"""The dashboard's session cookie as a root credential: looked up, CSRF-checked, resolved again each time.

A request with an Authorization header never reads the cookie, so Bearer callers (the CLI, the
JS client) are unaffected. A cookie request that changes something (any method but GET, HEAD
and OPTIONS) must carry the session's CSRF token in the X-CSRF-Token header.
"""

from __future__ import annotations

from aiohttp import web

from sblite.dashboard.sessions import Session, Sessions, csrf_ok
from sblite.errors import Forbidden, Unauthorized
from sblite.http.keys import ACCOUNTS
from sblite.model import ROOT_ROLE, Identity

SESSIONS = web.AppKey("dashboard_sessions", Sessions)
COOKIE = "sblite_session"
CSRF_HEADER = "X-CSRF-Token"


def session_of(request: web.Request) -> Session | None:
    """The live dashboard session the request's cookie names, if any."""
    session_id = request.cookies.get(COOKIE)
    sessions = request.app.get(SESSIONS)
    if not session_id or sessions is None:
        return None
    return sessions.get(session_id)


async def cookie_root(request: web.Request) -> Identity | None:
    """The root caller of a dashboard session; None when the request has a Bearer token or no cookie."""
    if request.headers.get("Authorization") or COOKIE not in request.cookies:
        return None
    session = session_of(request)
    if session is None:
        raise Unauthorized("the dashboard session has ended: sign in again")
    if not csrf_ok(session, request.method, request.headers.get(CSRF_HEADER)):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header for this dashboard session")
    return await resolve(request.app, session)


async def resolve(app: web.Application, session: Session) -> Identity:
    """The identity a session's credential still gives, through the same checks as a Bearer token."""
    accounts = app[ACCOUNTS]
    if session.kind == "root":
        return await accounts.identify_root(session.credential, session.pk)
    identity = await accounts.identify(await accounts.app_for_pk(session.pk), session.credential)
    if identity.role < ROOT_ROLE:
        raise Forbidden("only the app's admin (role 100) may use the dashboard")
    return identity
