"""Errors that carry an HTTP status and a plain-text message (StaticBackend style)."""

from __future__ import annotations


class ApiError(Exception):
    """An error reported to the caller as `status` with a plain-text `message`."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    """The request is malformed (400)."""

    status = 400


class Unauthorized(ApiError):
    """Credentials are missing or wrong (401)."""

    status = 401


class Forbidden(ApiError):
    """The caller may not do this (403)."""

    status = 403


class NotFound(ApiError):
    """The thing asked for does not exist (404)."""

    status = 404


class Conflict(ApiError):
    """The request clashes with existing state (409)."""

    status = 409


class TooManyRequests(ApiError):
    """Over a rate limit (429); the caller may try again in `retry_after` whole seconds."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(ApiError):
    """StaticBackend answers some client errors with 500; kept for wire compatibility."""

    status = 500
