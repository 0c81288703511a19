"""Compact JSON encoding the way StaticBackend's Go server writes it."""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Encode compactly, escaping <, > and & like Go's encoding/json."""
    text = _encoder.encode(value)
    if "<" in text or ">" in text or "&" in text:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


def dumps_stored(value: Any) -> str:
    """Encode compactly for storage (no HTML escaping)."""
    return _encoder.encode(value)


def loads(text: str | bytes) -> Any:
    """Decode JSON, rejecting NaN and Infinity which JSON does not have."""
    return json.loads(text, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")
