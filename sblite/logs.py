"""The server's log lines: text or JSON, and request targets with their secret values blanked."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Query parameters whose values are credentials: `?token=` reads private files, `code` is a magic
# link's or reset's one-time code. Headers (Authorization) and bodies are never logged at all.
SECRET_PARAMETERS = frozenset({"token", "code", "password", "secret", "access_token", "refresh_token"})
BLANK = "***"
# The fields an access line carries (also JSON keys); see sblite.http.access_log.
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "client")


def redact_target(target: str) -> str:
    """The request target (path and query as sent) with the values of secret parameters replaced by ***."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        secret = unquote_plus(name).strip().lower() in SECRET_PARAMETERS
        parts.append(f"{name}={BLANK}" if secret and equals else part)
    return f"{path}?{'&'.join(parts)}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, access fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str) -> None:
    """Send every log line to stderr at `level` (debug|info|warning|error), as text or json."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
