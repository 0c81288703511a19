"""Compact JSON encoding the way StaticBackend's Go server writes it."""

from __future__ import annotations

import json
import math
import re
from typing import Any

try:  # several times faster than json on the small objects of a request; json decides every edge case
    import orjson
except ImportError:  # pragma: no cover - an interpreter it has no build for
    orjson = None  # type: ignore[assignment]
else:
    # What json would encode differently (or refuse) goes to json: subclasses, dataclasses, dates.
    _ORJSON_STRICT = (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
                      | orjson.OPT_PASSTHROUGH_DATETIME)

# The deepest nesting of arrays and objects a decoded value may have (a scalar is 0, `[]` is 1).
# Well inside what orjson encodes (254) and decodes (1024), with room for the envelopes the API
# wraps documents in, so whatever is accepted encodes again; MongoDB documents stop at 100 too.
MAX_DEPTH = 100


class TooDeep(ValueError):
    """JSON nested deeper than the limit."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels" if limit is not None
                         else "JSON nested too deeply")


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
    if orjson is not None:
        try:
            text = orjson.dumps(value, option=_ORJSON_STRICT)
        except TypeError:  # big ints, non-string keys, lone surrogates, subclasses: the slow path decides
            pass
        else:
            if b"null" not in text:  # orjson writes NaN and infinities as null: those must fail
                return text.decode()
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except RecursionError:  # only values deeper than any decoded here get this far
        raise TooDeep(None) from None


def exceeds_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest deeper than `limit` levels in `value`."""
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


# Where orjson decodes differently, json decodes: integers beyond 64 bits (orjson makes them
# floats) and surrogate escapes (json's checks below decide which are valid).
_ORJSON_UNSURE = re.compile(r"\d{19}|\\u[dD][89a-fA-F]")
_ORJSON_UNSURE_BYTES = re.compile(rb"\d{19}|\\u[dD][89a-fA-F]")
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


def loads(text: str | bytes, *, max_depth: int | None = MAX_DEPTH) -> Any:
    """Decode JSON; ValueError for NaN, infinities, out-of-range numbers, lone surrogates, nesting past `max_depth`."""
    # max_depth=None is for text this server wrote itself, such as documents stored before the limit.
    try:
        value = _decode(text)
    except RecursionError:  # json's decoder past the interpreter's limit: far deeper than any limit
        raise TooDeep(max_depth) from None
    if max_depth is not None and _may_nest_deeper(text, max_depth) and exceeds_depth(value, max_depth):
        raise TooDeep(max_depth)
    return value


def _may_nest_deeper(text: str | bytes, limit: int) -> bool:
    """Whether there are enough brackets for nesting deeper than `limit`: spares most values a walk."""
    if len(text) <= 2 * limit:  # each level takes an opening and a closing bracket
        return False
    if isinstance(text, str):
        return text.count("[") + text.count("{") > limit
    return text.count(b"[") + text.count(b"{") > limit


def _orjson_sure(text: str | bytes) -> bool:
    """Whether orjson decodes `text` exactly as json does (no huge integers, no surrogate escapes)."""
    if isinstance(text, str):
        return _ORJSON_UNSURE.search(text) is None
    return _ORJSON_UNSURE_BYTES.search(text) is None


def _decode(text: str | bytes) -> Any:
    if orjson is not None and _orjson_sure(text):
        try:
            return orjson.loads(text)
        except ValueError:  # json's own path gives the error (or decodes UTF-16 and UTF-32)
            pass
    return _loads(text)


def _loads(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        decoded = text.decode(json.detect_encoding(text))  # strict: no encoded lone surrogates
        surrogates = _SURROGATE_ESCAPE_BYTES.search(text) is not None
    else:
        if text.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        decoded = text
        surrogates = _SURROGATE_TEXT.search(text) is not None
    value = _decoder.decode(decoded)
    if surrogates:
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
