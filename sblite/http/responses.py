"""Responses in StaticBackend's format: compact JSON on success, plain text on error."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sblite.jsonutil import dumps, escape_html


def json_response(value: Any, status: int = 200) -> web.Response:
    """A compact JSON body, as Go's encoding/json writes it."""
    return web.Response(body=dumps(value).encode(), status=status, content_type="application/json")


def token_response(value: Any) -> web.Response:
    """JSON that carries a token or another secret: no cache may keep it."""
    response = json_response(value)
    response.headers["Cache-Control"] = "no-store"
    return response


def json_text_response(text: str, status: int = 200) -> web.Response:
    """A body that is JSON text already (a function's result), HTML-escaped as Go does."""
    return web.Response(body=escape_html(text).encode(), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    """A plain-text error with a trailing newline (the client shows it as the message)."""
    return web.Response(text=message + "\n", status=status, content_type="text/plain", charset="utf-8")
