"""Middlewares: CORS on client-facing routes, and errors turned into plain text."""

from __future__ import annotations

import logging

from aiohttp import web

from sblite.errors import ApiError
from sblite.http.keys import CONFIG
from sblite.http.responses import error_response
from sblite.store import DatabaseClosed

log = logging.getLogger(__name__)

# Routes for operators (root token) and probes: no CORS, so a browser page cannot call them.
NO_CORS_PREFIXES = (
    "/sudo", "/password/resetcode", "/publish-message", "/fn/add", "/fn/update", "/fn/del", "/fn/info",
    "/fn/runs", "/fn/secrets", "/account/auth", "/account/portal", "/ping", "/healthz", "/metrics",
    "/channels",
)


def is_client_facing(path: str) -> bool:
    """Whether a path gets CORS headers (spec §0.3)."""
    if path == "/fn" or path.startswith("/fn/sudoexec"):
        return False
    return not path.startswith(NO_CORS_PREFIXES)


@web.middleware
async def cors_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Echo the Origin on client-facing routes; answer preflights before any check."""
    if not is_client_facing(request.path):
        return await handler(request)
    if request.method == "OPTIONS" and request.headers.get("Origin"):
        response: web.StreamResponse = web.Response(status=200)
    else:
        response = await handler(request)
    if not response.prepared:  # a stream adds its own before it starts
        add_cors_headers(request, response)
    return response


def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """StaticBackend's CORS headers: the Origin echoed, no credentials."""
    origin = request.headers.get("Origin")
    for vary in ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"):
        response.headers.add("Vary", vary)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = request.headers.get(
            "Access-Control-Request-Method", "").upper()
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "")


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Turn every error into a plain-text response with the right status."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG].max_body_bytes
        return error_response(413, f"request body too large: the limit is {limit} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower())
    except DatabaseClosed:
        return error_response(503, "the server is shutting down")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal server error")
