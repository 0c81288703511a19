"""Timestamps in the RFC 3339 form StaticBackend's Go server writes."""

from __future__ import annotations

import time
from datetime import datetime, UTC


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
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return (f"{text}.{micros:06d}".rstrip("0") if micros else text) + "Z"
