"""Timestamps in the RFC 3339 form StaticBackend's Go server writes."""

from __future__ import annotations

import time
from datetime import datetime, UTC

_second_text: tuple[int, str] = (0, "")  # the last whole second formatted, shared by every caller


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 with trailing zero fractions trimmed, 'Z' for UTC (Go's RFC3339Nano)."""
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "Z"


def now_text() -> str:
    """The current UTC time formatted as `format_time` does (without building a datetime)."""
    global _second_text
    micros = time.time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    cached = _second_text
    if cached[0] != second:
        cached = _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    if not fraction:
        return cached[1] + "Z"
    return f"{cached[1]}.{fraction:06d}".rstrip("0") + "Z"
