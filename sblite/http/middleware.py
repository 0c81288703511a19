"""The error middleware: every error becomes a plain-text answer with the right status."""

from __future__ import annotations

import logging

from aiohttp import web

from sblite.errors import ApiError, TooManyRequests
from sblite.http.keys import CONFIG
from sblite.http.policy import Handler
from sblite.http.responses import error_response
from sblite.store import DatabaseClosed

log = logging.getLogger(__name__)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into a plain-text response with the right status."""
    try:
        return await handler(request)
    except TooManyRequests as exc:
        response = error_response(exc.status, exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
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
