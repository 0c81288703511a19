"""Timestamps in the RFC 3339 form StaticBackend's Go server writes."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def format_time(moment: datetime) -> str:
    """RFC 3339 with trailing zero fractions trimmed, 'Z' for UTC (Go's RFC3339Nano)."""
    text = moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "Z"


def now_text() -> str:
    """The current UTC time formatted by `format_time`."""
    return format_time(utc_now())
