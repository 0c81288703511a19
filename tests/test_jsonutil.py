"""The JSON codec: orjson on the common path, the standard library on every edge case."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sblite.jsonutil import dumps, dumps_stored, loads


def stdlib_dumps(value: Any) -> str:
    """What the encoder wrote before orjson: compact, UTF-8, no NaN."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass
class Point:
    x: int


class Name(str):
    pass


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [True, False, None], "c": "é😀\u2028\x7f\x00\x1f\"\\/"},
    2**64, -(2**63) - 1, 10**30,  # beyond 64 bits
    {1: "x", None: "y", 2.5: "z"},  # keys json turns into strings
    Name("sub"), {"k": Name("v")},  # a str subclass
    [1.5, -0.0, 0.1, 1e300, 123456789.25],
    None, {"nothing": None},
])
def test_encodes_exactly_as_the_standard_library(value: Any) -> None:
    assert dumps_stored(value) == stdlib_dumps(value)


@pytest.mark.parametrize("value", [
    float("nan"), float("inf"), -float("inf"), [1, {"x": float("nan")}], {"y": [None, float("inf")]},
])
def test_nan_and_infinities_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        dumps_stored(value)


@pytest.mark.parametrize("value", [Point(1), {"p": Point(2)}, {1, 2}, b"bytes"])
def test_values_json_cannot_encode_are_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        dumps_stored(value)


def test_dumps_escapes_html_like_go() -> None:
    assert dumps({"h": "<a&b>"}) == '{"h":"\\u003ca\\u0026b\\u003e"}'


@pytest.mark.parametrize("text, expected", [
    ('{"a":[1,2.5,"x"],"b":null}', {"a": [1, 2.5, "x"], "b": None}),
    ("123456789012345678901234567890", 123456789012345678901234567890),  # stays an exact int
    ("18446744073709551616", 2**64),
    ("-9223372036854775809", -(2**63) - 1),
    ('"\\ud83d\\ude00"', "😀"),  # a surrogate pair is one character
    ('{"a":1,"a":2}', {"a": 2}),
    ("-0", 0), ("1E5", 100000.0), ("0.30000000000000004", 0.30000000000000004),
])
@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_decodes_like_the_standard_library(text: str, expected: Any, as_bytes: bool) -> None:
    value = loads(text.encode() if as_bytes else text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", [
    "NaN", "[Infinity]", "-Infinity", "1e400", '"\\ud800"', '["\\udfff"]', "\ufeff{}", "{nope", "",
    "[1,]", '{"a" 1}',
])
def test_refuses_what_it_refused_before(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)


def test_bytes_in_utf16_still_decode() -> None:
    assert loads('{"a":"é"}'.encode("utf-16")) == {"a": "é"}


def test_invalid_utf8_bytes_are_refused() -> None:
    with pytest.raises(ValueError):
        loads(b'{"a":"\xff"}')


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function: hypothesis reads its source to check that it uses `children`.
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text()),
    _containers,
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_round_trips_agree_with_the_standard_library(value: Any) -> None:
    text = dumps_stored(value)
    assert json.loads(text) == value  # the same value, whichever encoder wrote it
    if not _has_float(value):  # orjson writes exponents without padding: 1e-7, json 1e-07
        assert text == stdlib_dumps(value)
    reference = json.loads(stdlib_dumps(value))
    assert loads(text) == reference
    assert loads(text.encode()) == reference


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return any(_has_float(item) for item in value)
    if isinstance(value, dict):
        return any(_has_float(item) for item in value.values())
    return False
