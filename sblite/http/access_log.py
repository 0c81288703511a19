"""The access log: one line per request, with the client address trusted proxies give and no secrets."""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from sblite.http.client import client_of
from sblite.logs import redact_target

LOGGER = logging.getLogger("sblite.access")


class AccessLogger(AbstractAccessLogger):
    """`GET /db/tasks?token=*** 200 1.9ms 203.0.113.9` at info level, the fields also as record attributes."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        """Write the line of one finished request (SSE and WebSocket ones when they end)."""
        fields = {
            "method": request.method,
            "path": redact_target(request.raw_path),
            "status": response.status,
            "duration_ms": round(time * 1000, 1),
            "client": client_of(request).address or "-",
        }
        self.logger.info("%(method)s %(path)s %(status)s %(duration_ms)sms %(client)s", fields, extra=fields)

    @property
    def enabled(self) -> bool:
        """Whether info lines of this logger are written at all (else aiohttp skips the call)."""
        return self.logger.isEnabledFor(logging.INFO)
