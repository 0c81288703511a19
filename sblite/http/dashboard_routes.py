"""The dashboard: its page at `/`, its files under `/_/`, and signing in and out (`/_/session`).

The page calls the root JSON API like any client; the session cookie set here is accepted as
root by the policy middleware (sblite.http.dashboard_auth), with a CSRF token on every change.
"""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from typing import Any

from aiohttp import web

from sblite.config import Config
from sblite.dashboard.sessions import Session, Sessions, csrf_ok
from sblite.errors import ApiError, BadRequest, Forbidden, ServerError, Unauthorized
from sblite.http.dashboard_auth import COOKIE, CSRF_HEADER, SESSIONS, resolve, session_of
from sblite.http.attempts import account_key, limited
from sblite.http.keys import ACCOUNTS, CONFIG, DATABASE
from sblite.http.policy import PROBE, PolicyRoutes
from sblite.http.request import json_body
from sblite.http.responses import error_response, json_response, token_response
from sblite.model import ROOT_ROLE, App, Identity
from sblite.store.overview import OverviewStore

routes = PolicyRoutes()
ASSETS = web.AppKey("dashboard_assets", dict)
ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.(?:js|css|svg)")
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Only our own files, nothing inline, no framing: a page that holds the root token.
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def setup(app: web.Application, config: Config) -> None:
    """Add the dashboard's routes, its session table, and the loading of its files at startup."""
    app[SESSIONS] = Sessions(config.session_ttl_seconds)
    app.on_startup.append(_load_assets)
    routes.register(app)


def read_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of the dashboard package by name, with its content type."""
    found: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("sblite.dashboard").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            found[entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return found


async def _load_assets(app: web.Application) -> None:
    app[ASSETS] = await asyncio.get_running_loop().run_in_executor(None, read_assets)


def _file(request: web.Request, name: str) -> web.Response:
    body, content_type = request.app[ASSETS][name]
    response = web.Response(body=body, content_type=content_type,
                            charset="utf-8" if not content_type.startswith("image/") else None)
    response.headers.update(PAGE_HEADERS)
    return response


@routes.get("/", PROBE)
@routes.get("/_/", PROBE)
async def page(request: web.Request) -> web.Response:
    """The dashboard's single page (it signs in, then calls the root API)."""
    return _file(request, "index.html")


@routes.post("/_/session", PROBE)
async def sign_in(request: web.Request) -> web.Response:
    """Sign in with `{email, password[, pk]}` or `{token[, pk]}`; sets the session cookie."""
    if request.content_type != "application/json":
        return error_response(415, "sign in with a JSON body (Content-Type: application/json)")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("invalid body: expected a JSON object")
    pk = body.get("pk") or None
    if pk is not None and not isinstance(pk, str):
        raise BadRequest("pk must be a string")
    token = body.get("token")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise BadRequest("token must be a non-empty string")
    email = body.get("email")
    app = None if token is not None else await _app_to_sign_in(request, pk)
    # The same attempt limits as /login, keyed the same way (an app's account by email, per address).
    async def attempt() -> Session:
        if app is None:
            return await _root_session(request, str(token).strip(), pk)
        return await _admin_session(request, app, email, body.get("password"))

    session = await limited(request, "login", account_key(app, email), attempt)
    response = token_response(_describe(request, session))
    response.set_cookie(COOKIE, session.id, httponly=True, samesite="Strict", secure=_https(request), path="/",
                        max_age=request.app[CONFIG].session_ttl_seconds)
    return response


@routes.get("/_/session", PROBE)
async def who(request: web.Request) -> web.Response:
    """The signed-in session (its public key, email and CSRF token); 401 when there is none."""
    session = session_of(request)
    if session is None:
        raise Unauthorized("not signed in")
    try:
        await resolve(request.app, session)
    except ApiError:
        request.app[SESSIONS].close(session.id)
        raise Unauthorized("the dashboard session has ended: sign in again") from None
    return token_response(_describe(request, session))


@routes.delete("/_/session", PROBE)
async def sign_out(request: web.Request) -> web.Response:
    """End the session (with its CSRF token) and clear the cookie."""
    session = session_of(request)
    if session is not None:
        if not csrf_ok(session, request.method, request.headers.get(CSRF_HEADER)):
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header for this dashboard session")
        request.app[SESSIONS].close(session.id)
    response = json_response(True)
    response.del_cookie(COOKIE, path="/")
    return response


# After /_/session, so that the session routes match first.
@routes.get("/_/{name}", PROBE)
async def asset(request: web.Request) -> web.Response:
    """One of the dashboard's files: a JavaScript module, the stylesheet or an icon."""
    name = request.match_info["name"]
    if not ASSET_NAME.fullmatch(name) or name not in request.app[ASSETS]:
        return error_response(404, "no such dashboard file")
    return _file(request, name)


async def _root_session(request: web.Request, token: str, pk: str | None) -> Session:
    accounts = request.app[ACCOUNTS]
    try:
        identity = await accounts.identify_root(token, pk)
    except BadRequest as exc:  # a root token that does not check out is a failed sign-in
        raise Unauthorized(exc.message) from None
    app = await accounts.app_by_id(identity.app_id)
    return _open(request, app, "root", token, identity)


async def _admin_session(request: web.Request, app: App, email: object, password: object) -> Session:
    accounts = request.app[ACCOUNTS]
    session_token = await accounts.login(app, email, password)
    identity = await accounts.identify(app, session_token)
    if identity.role < ROOT_ROLE:
        raise Forbidden("only the app's admin (role 100) may use the dashboard")
    return _open(request, app, "user", session_token, identity)


def _open(request: web.Request, app: App, kind: str, credential: str, identity: Identity) -> Session:
    return request.app[SESSIONS].open(pk=app.pk, kind=kind, credential=credential, email=identity.email)


async def _app_to_sign_in(request: web.Request, pk: str | None) -> App:
    """The app of `pk`, or the only app when none is given."""
    accounts = request.app[ACCOUNTS]
    if pk is None:
        keys = await OverviewStore(request.app[DATABASE]).public_keys()
        if len(keys) != 1:
            raise BadRequest(f"this server has {len(keys)} apps: enter the public key of the app to sign in to")
        pk = keys[0]
    try:
        return await accounts.app_for_pk(pk)
    except ServerError:
        raise BadRequest("no app has this public key") from None


def _describe(request: web.Request, session: Session) -> dict[str, Any]:
    return {"pk": session.pk, "email": session.email, "csrf": session.csrf, "via": session.kind,
            "devMode": not request.app[CONFIG].prod}


def _https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a trusted proxy that says so)."""
    return request.secure  # the client middleware set the scheme from a trusted X-Forwarded-Proto
