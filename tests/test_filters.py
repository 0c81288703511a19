"""Query clauses: what parse_clauses rejects, what the compiled SQL selects, and that it is injection-proof.

Semantics follow spec §2.5's recommendation as adopted by DESIGN.md §9: typed comparisons (numbers
compare as numbers, a value never matches a field of another JSON type), `in` matches a scalar
field or any element of an array field, and `!in` is its negation.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sblite import filters
from sblite.errors import BadRequest
from sblite.filters import OPERATORS, SYSTEM_COLUMNS, compile_clauses, order_by, parse_clauses
from sblite.jsonutil import dumps_stored, loads
from sblite.store.migrations import migrate

# ---------------------------------------------------------------------------------------------
# (a) parse_clauses rejects malformed clauses with a message naming the problem
# ---------------------------------------------------------------------------------------------

TOO_LONG_FIELD = "f" * (filters.MAX_FIELD_LENGTH + 1)

BAD_CLAUSES = [
    # (id, raw filters, words the message must contain)
    ("not a list: object", {"field": "a"}, "must be a JSON array"),
    ("not a list: string", '[["a","==",1]]', "must be a JSON array"),
    ("not a list: null", None, "must be a JSON array"),
    ("clause of 2", [["a", "=="]], "the 1 query clause did not contains the required 3 parameters"),
    ("clause of 4", [["a", "==", 1, 2]], "the 1 query clause did not contains the required 3 parameters"),
    ("second clause of 2", [["a", "==", 1], ["b", "=="]], "the 2 query clause did not contains"),
    ("clause not a list", ["a == 1"], "the 1 query clause did not contains"),
    ("clause is an object", [{"field": "a", "op": "==", "value": 1}], "the 1 query clause did not contains"),
    ("non-string field", [[1, "==", 1]], "the 1 query clause's field must be a string"),
    ("null field", [[None, "==", 1]], "field must be a string"),
    ("non-string op", [["a", 1, 1]], "the 1 query clause's operator must be a string"),
    ("list op", [["a", ["=="], 1]], "operator must be a string"),
    ("unknown op like", [["a", "like", 1]], "operator: like is not supported at the moment"),
    ("unknown op ===", [["a", "===", 1]], "operator: === is not supported"),
    ("unknown op IN (case)", [["a", "IN", [1]]], "operator: IN is not supported"),
    ("second clause bad op", [["a", "==", 1], ["b", "~", 1]], "the 2 query clause's operator: ~"),
    ("empty field", [["", "==", 1]], "invalid field name"),
    ("double quote in field", [['a"b', "==", 1]], "invalid field name"),
    ("backslash in field", [["a\\b", "==", 1]], "invalid field name"),
    ("control char in field", [["a\nb", "==", 1]], "invalid field name"),
    ("empty path part", [["a..b", "==", 1]], "invalid field name"),
    ("leading dot", [[".a", "==", 1]], "invalid field name"),
    ("trailing dot", [["a.", "==", 1]], "invalid field name"),
    ("field too long", [[TOO_LONG_FIELD, "==", 1]], "invalid field name"),
    ("object value", [["a", "==", {"x": 1}]], "value must be a string, a number, a boolean or null"),
    ("list value for ==", [["a", "==", [1, 2]]], "value must be a string, a number, a boolean or null"),
    ("list value for !=", [["a", "!=", [1]]], "value must be a string, a number, a boolean or null"),
    ("list value for <", [["a", "<", [1]]], "value must be a string, a number, a boolean or null"),
    ("null for <", [["a", "<", None]], "must be a string or a number for <"),
    ("bool for <", [["a", "<", True]], "must be a string or a number for <"),
    ("bool for >=", [["a", ">=", False]], "must be a string or a number for >="),
    ("null for > ", [["a", ">", None]], "must be a string or a number for >"),
    ("object inside in", [["a", "in", [1, {"x": 1}]]], "must be a list of strings, numbers, booleans or null"),
    ("list inside nin", [["a", "nin", [[1]]]], "must be a list of strings, numbers, booleans or null"),
    ("object for in", [["a", "in", {"x": 1}]], "must be a list of strings, numbers, booleans or null"),
    ("too many in values", [["a", "in", list(range(filters.MAX_IN_VALUES + 1))]],
     f"has more than {filters.MAX_IN_VALUES} elements"),
    ("too many !in values", [["a", "!in", ["v"] * (filters.MAX_IN_VALUES + 1)]], "has more than"),
]


@pytest.mark.parametrize("raw, message", [c[1:] for c in BAD_CLAUSES], ids=[c[0] for c in BAD_CLAUSES])
def test_parse_clauses_rejects(raw: Any, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_clauses(raw)
    assert info.value.status == 400
    assert message in info.value.message


GOOD_CLAUSES = [
    ([], []),
    ([["a", "=", 1]], [("a", "==", 1)]),
    ([["a", "<>", "x"]], [("a", "!=", "x")]),
    ([["a", "nin", [1]]], [("a", "!in", [1])]),
    ([["a", "in", "x"]], [("a", "in", ["x"])]),  # a scalar is a one-element list
    ([["a", "in", []]], [("a", "in", [])]),
    ([["a.b.c", "<=", 1.5]], [("a.b.c", "<=", 1.5)]),
    ([["it's", "==", None]], [("it's", "==", None)]),
    ([["f" * filters.MAX_FIELD_LENGTH, ">", "x"]], [("f" * filters.MAX_FIELD_LENGTH, ">", "x")]),
    ([["a", "in", list(range(filters.MAX_IN_VALUES))]], [("a", "in", list(range(filters.MAX_IN_VALUES)))]),
]


@pytest.mark.parametrize("raw, expected", GOOD_CLAUSES)
def test_parse_clauses_accepts_and_canonicalises(raw: Any, expected: list[tuple]) -> None:
    assert [(c.field, c.op, c.value) for c in parse_clauses(raw)] == expected


# ---------------------------------------------------------------------------------------------
# (b) semantics, run against the real documents table
# ---------------------------------------------------------------------------------------------

# (name, id, account_id, owner_id, data); the document's name is also stored as data.name.
DOCS: list[tuple[str, str, str, str, dict]] = [
    ("ann", "d3", "acc1", "u1", {"age": 30, "score": 1.5, "label": "30", "active": True,
                                 "tags": ["red", "blue"], "meta": {"city": "Paris", "geo": {"zip": "75001"}},
                                 "nick": None}),
    ("bob", "d1", "acc1", "u2", {"age": 100, "score": -2.5, "label": "100", "active": False,
                                 "tags": ["blue"], "meta": {"city": "Lyon"}}),
    ("cid", "d7", "acc2", "u3", {"age": "100", "label": 100, "active": "true", "tags": [],
                                 "meta": {"city": "paris"}}),
    ("dan", "d2", "acc2", "u3", {"age": -5, "score": 0, "active": None, "tags": ["green", 7], "nick": "d"}),
    ("eve", "d9", "acc1", "u1", {"age": 2.5, "score": 10, "active": True, "tags": "red",
                                 "meta": {"geo": {"zip": 75001}}}),
    ("fay", "d5", "acc2", "u4", {}),
    ("gus", "d4", "acc1", "u2", {"age": None, "active": 1, "tags": [True, None], "meta": "flat"}),
    ("hal", "d8", "acc2", "u4", {"age": 30.0, "active": 0, "tags": ["RED"], "meta": {"city": None}}),
    ("ivy", "d6", "acc1", "u1", {"age": [30], "score": "10", "tags": [["red"]], "meta": {"city": ["Paris"]}}),
    ("jon", "d0", "acc2", "u3", {"age": {"v": 30}, "tags": {"x": "red"}, "it's": "q", "a b": 2}),
]
ALL = frozenset(name for name, *_ in DOCS)
INSERTION_ORDER = [name for name, *_ in DOCS]


def but(*names: str) -> frozenset[str]:
    """Every document except these."""
    return ALL - set(names)


@functools.cache
def db() -> sqlite3.Connection:
    """One in-memory database holding DOCS (read-only for the tests)."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    migrate(conn)
    for seq, (name, doc_id, account, owner, data) in enumerate(DOCS, start=1):
        conn.execute(
            "INSERT INTO documents (seq, app_id, collection, id, account_id, owner_id, created, updated, data)"
            " VALUES (?, 'app', 'things', ?, ?, ?, ?, ?, ?)",
            (seq, doc_id, account, owner, f"2024-01-01T00:00:{seq:02d}Z", f"2024-02-{31 - seq:02d}",
             dumps_stored({"name": name, **data})),  # as documents are stored
        )
    return conn


def select(raw_clauses: Any, sort: str | None = None, descending: bool = False) -> list[str]:
    """Names of the documents the clauses select, in `order_by` order."""
    where, params = compile_clauses(parse_clauses(raw_clauses))
    order, order_params = order_by(sort, descending)
    rows = db().execute(
        f"SELECT json_extract(data, '$.name') FROM documents WHERE {where} {order}", [*params, *order_params]
    )
    return [name for (name,) in rows]


SEMANTICS = [
    # (id, clauses, expected names)
    ("no clauses", [], ALL),
    # == and its alias =
    ("== int matches int and equal float", [["age", "==", 30]], {"ann", "hal"}),
    ("= alias", [["age", "=", 30]], {"ann", "hal"}),
    ("== float", [["age", "==", 2.5]], {"eve"}),
    ("== negative", [["age", "==", -5]], {"dan"}),
    ("== number is not the string", [["age", "==", 100]], {"bob"}),
    ("== string is not the number", [["age", "==", "100"]], {"cid"}),
    ("== string label", [["label", "==", "100"]], {"bob"}),
    ("== number label", [["label", "==", 100]], {"cid"}),
    ("== string absent", [["age", "==", "30"]], set()),
    ("== true is not 1 nor 'true'", [["active", "==", True]], {"ann", "eve"}),
    ("== false is not 0", [["active", "==", False]], {"bob"}),
    ("== 1 is not true", [["active", "==", 1]], {"gus"}),
    ("== 0 is not false", [["active", "==", 0]], {"hal"}),
    ("== 'true' is the string", [["active", "==", "true"]], {"cid"}),
    ("== null matches null and missing", [["nick", "==", None]], but("dan")),
    ("== null on age", [["age", "==", None]], {"gus", "fay"}),
    ("== never matches an array", [["tags", "==", "blue"]], set()),
    # != and its alias <>, documents missing the field included
    ("!= int", [["age", "!=", 30]], but("ann", "hal")),
    ("<> alias", [["age", "<>", 30]], but("ann", "hal")),
    ("!= string", [["age", "!=", "100"]], but("cid")),
    ("!= true", [["active", "!=", True]], but("ann", "eve")),
    ("!= false", [["active", "!=", False]], but("bob")),
    ("!= null: present and not null", [["nick", "!=", None]], {"dan"}),
    ("!= includes missing", [["label", "!=", "30"]], but("ann")),
    # ordering operators: typed, numbers numerically (30 < 100), strings lexicographically
    ("< numeric", [["age", "<", 100]], {"ann", "dan", "eve", "hal"}),
    ("<= numeric", [["age", "<=", 100]], {"ann", "bob", "dan", "eve", "hal"}),
    ("> numeric", [["age", ">", 30]], {"bob"}),
    (">= numeric", [["age", ">=", 30]], {"ann", "bob", "hal"}),
    ("> negative", [["age", ">", -10]], {"ann", "bob", "dan", "eve", "hal"}),
    ("< 0", [["age", "<", 0]], {"dan"}),
    ("<= float", [["score", "<=", 0]], {"bob", "dan"}),
    ("> 1 float", [["score", ">", 1]], {"ann", "eve"}),
    ("< string lexicographic", [["label", "<", "4"]], {"ann", "bob"}),
    ("> string", [["label", ">", "2"]], {"ann"}),
    ("< string never numbers", [["age", "<", "30"]], {"cid"}),
    ("> string '30' vs '100'", [["age", ">", "30"]], set()),
    (">= string", [["score", ">=", "10"]], {"ivy"}),
    ("< number never strings", [["label", "<", 50]], set()),
    (">= number", [["label", ">=", 50]], {"cid"}),
    # in / !in / nin: scalar field, or any element of an array field; a scalar value is [value]
    ("in on scalar and array fields", [["age", "in", [30, 100]]], {"ann", "bob", "hal", "ivy"}),
    ("in with a scalar value", [["age", "in", 30]], {"ann", "hal", "ivy"}),
    ("in typed string", [["age", "in", ["100"]]], {"cid"}),
    ("in array element or scalar string", [["tags", "in", ["red"]]], {"ann", "eve"}),
    ("in two values", [["tags", "in", ["blue", "green"]]], {"ann", "bob", "dan"}),
    ("in number element", [["tags", "in", [7]]], {"dan"}),
    ("in number is not the string", [["tags", "in", ["7"]]], set()),
    ("in true element", [["tags", "in", [True]]], {"gus"}),
    ("in 1 is not true", [["tags", "in", [1]]], set()),
    ("in true on scalar", [["active", "in", [True]]], {"ann", "eve"}),
    ("in 1 on scalar", [["active", "in", [1]]], {"gus"}),
    ("in 0 on scalar", [["active", "in", [0]]], {"hal"}),
    ("in false on scalar", [["active", "in", [False]]], {"bob"}),
    ("in null element", [["tags", "in", [None]], ["tags", "!=", None]], {"gus"}),
    ("in null scalar", [["nick", "in", [None]], ["name", "in", ["ann", "dan"]]], {"ann"}),
    ("in empty list", [["tags", "in", []]], set()),
    ("in never matches inside an object", [["tags", "in", ["red"]], ["name", "==", "jon"]], set()),
    ("in never matches a nested array", [["tags", "in", ['["red"]']]], set()),
    ("!in", [["tags", "!in", ["red"]]], but("ann", "eve")),
    ("nin alias", [["age", "nin", [30]]], but("ann", "hal", "ivy")),
    ("!in two values", [["age", "!in", [30, 100]]], but("ann", "bob", "hal", "ivy")),
    ("!in typed bool", [["active", "!in", [True]]], but("ann", "eve")),
    ("!in empty list", [["tags", "!in", []]], ALL),
    # system fields live in columns, not in data
    ("id ==", [["id", "==", "d3"]], {"ann"}),
    ("id !=", [["id", "!=", "d3"]], but("ann")),
    ("id <", [["id", "<", "d2"]], {"jon", "bob"}),
    ("id in", [["id", "in", ["d1", "d2", "zz"]]], {"bob", "dan"}),
    ("id !in", [["id", "!in", ["d1"]]], but("bob")),
    ("accountId ==", [["accountId", "==", "acc2"]], {"cid", "dan", "fay", "hal", "jon"}),
    ("accountId non-string ==", [["accountId", "==", 1]], set()),
    ("accountId non-string !=", [["accountId", "!=", 1]], ALL),
    ("ownerId ==", [["ownerId", "==", "u1"]], {"ann", "eve", "ivy"}),
    ("ownerId in", [["ownerId", "in", ["u3", "u4"]]], {"cid", "dan", "fay", "hal", "jon"}),
    ("accountId and ownerId", [["accountId", "==", "acc1"], ["ownerId", "==", "u2"]], {"bob", "gus"}),
    # dotted paths reach into nested objects
    ("dotted ==", [["meta.city", "==", "Paris"]], {"ann"}),
    ("dotted two levels string", [["meta.geo.zip", "==", "75001"]], {"ann"}),
    ("dotted two levels number", [["meta.geo.zip", "==", 75001]], {"eve"}),
    ("dotted > number", [["meta.geo.zip", ">", 70000]], {"eve"}),
    ("dotted == null", [["meta.city", "==", None]], {"dan", "eve", "fay", "gus", "hal", "jon"}),
    ("dotted !=", [["meta.city", "!=", "Paris"]], but("ann")),
    ("dotted in", [["meta.city", "in", ["Paris"]]], {"ann", "ivy"}),
    # odd but valid field names are quoted path parts, not SQL
    ("field with a quote", [["it's", "==", "q"]], {"jon"}),
    ("field with a space", [["a b", "==", 2]], {"jon"}),
    ("field that looks like SQL", [["x') OR 1=1 --", "==", 1]], set()),
    ("value that looks like SQL", [["label", "==", "' OR '1'='1"]], set()),
    # a string searched for in the document's text first: found elsewhere in it is no match
    ("== a value of another field", [["label", "==", "red"]], set()),
    ("== a key's name", [["meta.city", "==", "geo"]], set()),
    ("== a string needing escapes", [["label", "==", 'a"b']], set()),
    ("in a key's name", [["tags", "in", ["city", "zip"]]], set()),
    ("in a value of another field", [["label", "in", ["Paris", "Lyon"]]], set()),
    # clauses are AND-ed
    ("and", [["age", ">=", 30], ["active", "==", True]], {"ann"}),
    ("and contradictory", [["age", "==", 30], ["age", "==", 100]], set()),
]


@pytest.mark.parametrize("clauses, expected", [c[1:] for c in SEMANTICS], ids=[c[0] for c in SEMANTICS])
def test_semantics(clauses: list, expected: set[str]) -> None:
    assert set(select(clauses)) == set(expected)


@pytest.mark.parametrize("field", ["active", "label", "score", "nick", "age"])
@pytest.mark.parametrize("value", [True, False, 1, 0, "1", "true", 1.5, 30, "30", "100", 100, -5], ids=repr)
def test_in_one_value_agrees_with_equality_on_non_array_fields(field: str, value: Any) -> None:
    """`[f, in, [v]]` and `[f, ==, v]` select the same documents where f is never an array."""
    not_array = [["name", "!=", "ivy"]]  # ivy is the only document with an array age
    assert set(select([[field, "in", [value]], *not_array])) == set(select([[field, "==", value], *not_array]))


ORDERS = [
    # (id, sort, descending, clauses, expected order)
    ("default is insertion order", None, False, [], INSERTION_ORDER),
    ("default desc", None, True, [], INSERTION_ORDER[::-1]),
    ("created", "created", False, [], INSERTION_ORDER),
    ("created desc", "created", True, [], INSERTION_ORDER[::-1]),
    ("sb_created desc", "sb_created", True, [], INSERTION_ORDER[::-1]),
    ("updated (stored in reverse)", "updated", False, [], INSERTION_ORDER[::-1]),
    ("id", "id", False, [], ["jon", "bob", "dan", "ann", "gus", "fay", "ivy", "cid", "hal", "eve"]),
    ("id desc", "id", True, [], ["eve", "hal", "cid", "ivy", "fay", "gus", "ann", "dan", "bob", "jon"]),
    ("accountId, ties by insertion", "accountId", False, [],
     ["ann", "bob", "eve", "gus", "ivy", "cid", "dan", "fay", "hal", "jon"]),
    ("accountId desc, ties by insertion desc", "accountId", True, [],
     ["jon", "hal", "fay", "dan", "cid", "ivy", "gus", "eve", "bob", "ann"]),
    ("json number field", "score", False, [["score", ">", -100]], ["bob", "dan", "ann", "eve"]),
    ("json number field desc", "score", True, [["score", ">", -100]], ["eve", "ann", "dan", "bob"]),
    ("json numbers sort numerically", "age", False, [["age", ">", -100]], ["dan", "eve", "ann", "hal", "bob"]),
    ("dotted json field", "meta.city", False, [["meta.city", ">", ""]], ["bob", "ann", "cid"]),
    ("dotted json field desc", "meta.city", True, [["meta.city", ">", ""]], ["cid", "ann", "bob"]),
]


@pytest.mark.parametrize("sort, descending, clauses, expected", [o[1:] for o in ORDERS], ids=[o[0] for o in ORDERS])
def test_order_by(sort: str | None, descending: bool, clauses: list, expected: list[str]) -> None:
    assert select(clauses, sort, descending) == expected


@pytest.mark.parametrize("sort", ['a"b', "a..b", "a\\b", "x" * (filters.MAX_FIELD_LENGTH + 1)])
def test_order_by_rejects_bad_field(sort: str) -> None:
    with pytest.raises(BadRequest, match="invalid field name"):
        order_by(sort, False)


# Values a client can really send: json.loads turns 1e400 into inf, big literals into big ints,
# and a "\ud800" escape into a lone surrogate. Each must be a clean 400 or run without error.
WIRE_EDGE_CLAUSES = [
    ("huge integer ==", '[["age", "==", 100000000000000000000000]]'),
    ("huge negative integer <", '[["age", "<", -100000000000000000000000]]'),
    ("huge integer in", '[["age", "in", [100000000000000000000000]]]'),
    ("1e400 ==", '[["age", "==", 1e400]]'),
    ("1e400 in", '[["age", "in", [1e400]]]'),
    ("-1e400 nin", '[["age", "nin", [-1e400]]]'),
    ("lone surrogate value", '[["label", "==", "\\ud800"]]'),
    ("lone surrogate in", '[["label", "in", ["\\ud800"]]]'),
    ("lone surrogate field", '[["\\ud800", "==", 1]]'),
    ("lone surrogate system field value", '[["id", "==", "\\udc00"]]'),
]


@pytest.mark.parametrize("text", [w[1] for w in WIRE_EDGE_CLAUSES], ids=[w[0] for w in WIRE_EDGE_CLAUSES])
def test_wire_reachable_values_never_crash(text: str) -> None:
    try:
        raw = loads(text)
    except ValueError:
        return  # rejected while decoding the body: the request layer answers 400
    try:
        names = select(raw)
    except BadRequest:
        return
    assert isinstance(names, list)


# ---------------------------------------------------------------------------------------------
# (c) properties: nothing from a clause reaches the SQL text, and the SQL always runs
# ---------------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text())
values = st.one_of(scalars, st.lists(scalars, max_size=5))
fields = st.one_of(
    st.text(),
    st.sampled_from([*sorted(SYSTEM_COLUMNS), "age", "meta.city", "tags"]),
    st.lists(st.text(min_size=1), min_size=1, max_size=3).map(".".join),
)
operators = st.sampled_from(sorted(OPERATORS))
CANONICAL = {type(None): None, bool: True, int: 0, float: 0.5, str: "s", list: []}


def canonical(value: Any) -> Any:
    """A fixed value of the same kind: its type, for a string whether it is plain (stored as
    itself between quotes) and starts with a bracket, for a number which side of 0 and 1 it is."""
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, str):
        return ("[" if value[:1] in ("[", "{") else "") + ("s" if dumps_stored(value) == f'"{value}"' else 's"')
    if value is None or isinstance(value, bool):
        return CANONICAL[type(value)]
    return -5 if value < 0 else 0 if value == 0 else 0.5 if value < 1 else 1 if value == 1 else 5


def reference_sql(field: str, op: str, value: Any) -> str:
    """The SQL for the same operator and kind of value with a fixed field name and value."""
    ref_field = field if field in SYSTEM_COLUMNS else "f"
    return compile_clauses(parse_clauses([[ref_field, op, canonical(value)]]))[0]


@settings(max_examples=200, deadline=None)
@given(field=fields, op=operators, value=values)
def test_sql_text_depends_only_on_operator_and_kind_of_value(field: str, op: str, value: Any) -> None:
    try:
        clauses = parse_clauses([[field, op, value]])
    except BadRequest:
        return
    sql, params = compile_clauses(clauses)
    assert sql == reference_sql(field, op, value)
    assert sql.count("?") == len(params)


@settings(max_examples=200, deadline=None)
@given(raw=st.lists(st.tuples(fields, operators, values).map(list), max_size=4))
def test_compiled_sql_always_executes(raw: list) -> None:
    try:
        clauses = parse_clauses(raw)
    except BadRequest:
        return
    sql, params = compile_clauses(clauses)
    assert sql.count("?") == len(params)
    names = [n for (n,) in db().execute(f"SELECT json_extract(data, '$.name') FROM documents WHERE {sql}", params)]
    assert set(names) <= ALL


@settings(max_examples=200, deadline=None)
@given(sort=st.one_of(st.none(), fields), descending=st.booleans())
def test_order_by_text_never_contains_the_sort_name(sort: str | None, descending: bool) -> None:
    try:
        order, params = order_by(sort, descending)
    except BadRequest:
        return
    assert order.count("?") == len(params)
    if sort and sort not in filters.ORDER_COLUMNS and sort not in SYSTEM_COLUMNS:
        assert order == order_by("f", descending)[0]
    rows = db().execute(f"SELECT json_extract(data, '$.name') FROM documents {order}", params).fetchall()
    assert len(rows) == len(DOCS)
