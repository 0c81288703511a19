"""Compact JSON encoding the way StaticBackend's Go server writes it."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# The C encoder made once: JSONEncoder.encode builds a new one at every call, which costs
# more than encoding the small objects most calls get. No circular check: every value
# encoded here comes from decoded JSON or plain dicts and lists built by this code.
_encode_chunks = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, json.encoder.encode_basestring, None, ":", ",", False, False, False)


def dumps(value: Any) -> str:
    """Encode compactly, escaping <, > and & like Go's encoding/json."""
    return escape_html(dumps_stored(value))


def escape_html(text: str) -> str:
    """JSON text with <, > and & escaped like Go's encoding/json (they occur only inside strings)."""
    if "<" in text or ">" in text or "&" in text:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


def dumps_stored(value: Any) -> str:
    """Encode compactly for storage (no HTML escaping); ValueError for NaN and infinities."""
    return "".join(_encode_chunks(value, 0))


# A \uD800-\uDFFF escape may decode to a lone surrogate, which is not text SQLite can store.
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


# One decoder for every call: json.loads with hooks would build a new one each time.
_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def loads(text: str | bytes) -> Any:
    """Decode JSON; ValueError for NaN, infinities, out-of-range numbers and lone surrogates."""
    if isinstance(text, bytes):
        pattern = _SURROGATE_ESCAPE_BYTES
        decoded = text.decode(json.detect_encoding(text))  # strict: no encoded lone surrogates
    else:
        pattern = _SURROGATE_TEXT
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        decoded = text
    value = _decoder.decode(decoded)
    if pattern.search(text):
        _check_text(value)
    return value


def _check_text(value: Any) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("invalid JSON string: lone surrogate escape") from None
    elif isinstance(value, list):
        for item in value:
            _check_text(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
