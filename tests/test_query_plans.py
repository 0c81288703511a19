"""Queries with and without field indexes: the same documents and totals, and a plan that reads the index.

The SQL is what the store runs (`plan_query`, then `page_statements` and `read_page`) on the
documents of tests/test_filters.py, with an index (`create_sql`) on every field a case names.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sblite.errors import BadRequest
from sblite.jsonutil import dumps_stored
from sblite.filters import SYSTEM_COLUMNS, compile_clauses, json_path, parse_clauses, sql_text
from sblite.query_plan import index_for, plan_query
from sblite.store.documents import Scope, page_statements, read_page, through
from sblite.store.indexes import create_sql, index_name
from sblite.store.migrations import migrate
from tests.test_filters import DOCS, ORDERS, SEMANTICS, canonical, fields, operators, values

SCOPE = Scope("app", "things")
HOSTILE = ["it's", "x') OR 1=1 --", "a'); DROP TABLE documents; --", "'", "''", "?", "a?b.'c'", "*/", "a b"]
CASE_FIELDS = sorted({c[0] for case in SEMANTICS for c in case[1]} | {o[1] for o in ORDERS if o[1]}
                     | set(HOSTILE))


def _index(conn: sqlite3.Connection, field: str) -> str:
    conn.execute(create_sql(SCOPE.app_id, SCOPE.collection, field))
    return index_name(SCOPE.app_id, SCOPE.collection, field)


@functools.cache
def db() -> tuple[sqlite3.Connection, dict[str, str]]:
    """DOCS, plus one in another collection (never selected), with an index on every document field named."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    migrate(conn)
    for seq, (name, doc_id, account, owner, data) in enumerate(DOCS, start=1):
        conn.execute(
            "INSERT INTO documents (seq, app_id, collection, id, account_id, owner_id, created, updated, data)"
            " VALUES (?, 'app', 'things', ?, ?, ?, 'c', ?, ?)",
            (seq, doc_id, account, owner, f"2024-02-{31 - seq:02d}", dumps_stored({"name": name, **data})))
    conn.execute("INSERT INTO documents (app_id, collection, id, account_id, owner_id, created, updated, data) "
                 "VALUES ('app', 'other', 'o1', 'acc1', 'u1', 'c', 'u', '{\"age\": 30, \"name\": \"zed\"}')")
    indexed = {field: _index(conn, field) for field in CASE_FIELDS if field not in SYSTEM_COLUMNS}
    return conn, indexed


def run(clauses: Any, sort: str | None = None, descending: bool = False, indexed: dict[str, str] | None = None,
        limit: int = 100, offset: int = 0, scope: Scope = SCOPE) -> tuple[list[str], int, str]:
    """Names in page order, the total and the query plans, with the indexes in `indexed` (none: no index)."""
    conn, _ = db()
    plan = plan_query(parse_clauses(clauses), sort, indexed or {})
    if plan.index:
        scope = Scope(scope.app_id, scope.collection, scope.account_id, scope.owner_id, literal=True)

    def attempt(index: str | None) -> tuple[list[str], int, str]:
        statements = page_statements(scope, plan, descending, limit, offset, index)
        page = read_page(conn, statements)
        plans = [" / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
                 for sql, params in statements]
        return [doc["name"] for doc in page.results], page.total, " // ".join(plans)

    return through(plan.index, attempt)


@pytest.mark.parametrize("clauses, expected", [c[1:] for c in SEMANTICS], ids=[c[0] for c in SEMANTICS])
def test_every_filter_selects_the_same_with_an_index(clauses: list, expected: set[str]) -> None:
    _, indexed = db()
    plain, plain_total, plain_plan = run(clauses)
    names, total, plan = run(clauses, indexed=indexed)
    assert set(names) == set(plain) == set(expected)
    assert names == plain  # the same order too: insertion order
    assert total == plain_total == len(expected)
    assert "docfield_" not in plain_plan
    if index_for(parse_clauses(clauses), None, indexed):
        assert "INDEX docfield_" in plan, plan


@pytest.mark.parametrize("sort, descending, clauses, expected", [o[1:] for o in ORDERS], ids=[o[0] for o in ORDERS])
def test_every_order_is_the_same_with_an_index(sort: str | None, descending: bool, clauses: list,
                                               expected: list[str]) -> None:
    _, indexed = db()
    assert run(clauses, sort, descending)[0] == expected
    names, _, plan = run(clauses, sort, descending, indexed=indexed)
    assert names == expected
    if (sort in indexed and not clauses) or any(c[0] in indexed for c in clauses):
        assert "INDEX docfield_" in plan, plan


def _uses(plan: str, field: str) -> bool:
    return f"INDEX {index_name(SCOPE.app_id, SCOPE.collection, field)}" in plan


PLANS = [
    # (id, clauses, sort, the field whose index the plan reads, words the plan must have)
    ("== string", [["label", "==", "100"]], None, "label", "(<expr>=?)"),
    ("== number", [["age", "==", 30]], None, "age", "(<expr>=?)"),
    ("== true", [["active", "==", True]], None, "active", "(<expr>=?)"),
    ("<", [["age", "<", 100]], None, "age", "(<expr><?)"),
    ("<=", [["age", "<=", 100]], None, "age", "(<expr><?)"),
    (">", [["score", ">", 1]], None, "score", "(<expr>>? AND <expr><?)"),
    (">=", [["label", ">=", "1"]], None, "label", "(<expr>>?)"),
    ("in", [["tags", "in", ["red"]]], None, "tags", ""),
    ("sort", [], "age", "age", "SCAN documents USING INDEX"),
    ("sort by a dotted field", [], "meta.city", "meta.city", "SCAN documents USING INDEX"),
    ("sort with clauses the index does not serve", [["nick", "!=", None]], "meta.city", None, ""),
    ("== wins over a range", [["age", ">", 1], ["label", "==", "30"]], None, "label", "(<expr>=?)"),
    ("range wins over sort", [["score", ">", 1]], "age", "score", "(<expr>>? AND <expr><?)"),
    ("== null reads no index", [["nick", "==", None]], None, None, ""),
    ("!= reads no index", [["age", "!=", 30]], None, None, ""),
    ("!in reads no index", [["age", "!in", [30]]], None, None, ""),
    ("a system field reads its own index", [["accountId", "==", "acc1"]], None, None, "documents_collection"),
]


@pytest.mark.parametrize("clauses, sort, field, words", [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_the_plan_reads_the_index_that_serves(clauses: list, sort: str | None, field: str | None,
                                               words: str) -> None:
    _, indexed = db()
    plan = run(clauses, sort, indexed=indexed)[2]
    if field is None:
        assert "docfield_" not in plan, plan
    else:
        assert _uses(plan, field), plan
        assert "SCAN documents" not in plan.replace(f"SCAN documents USING INDEX {indexed[field]}", "")
    assert words in plan


def _documents_read(conn: sqlite3.Connection, sql: str, params: list[Any]) -> int:
    """How many of a statement's cursors on the documents table read a column (not only index entries)."""
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'documents'").fetchone()
    program = conn.execute("EXPLAIN " + sql, params).fetchall()
    cursors = {op["p1"] for op in program if op["opcode"] == "OpenRead" and op["p2"] == root}
    return len({op["p1"] for op in program if op["opcode"] == "Column" and op["p1"] in cursors})


INDEX_COUNTS = [
    # (clauses, whether the index counts and orders the matches, whether no entry is ambiguous)
    ([["label", "==", "100"]], True, True),
    ([["label", "==", "[1]"]], True, False),  # an array's JSON text could equal it
    ([["age", "==", 30]], True, True),
    ([["age", "==", 1]], True, False),  # true is 1 in the index
    ([["age", "==", 0.0]], True, False),  # and false is 0
    ([["age", ">", 1]], True, True),
    ([["age", ">", 0.5]], True, False),
    ([["age", ">=", 1]], True, False),
    ([["age", ">=", 1.5]], True, True),
    ([["age", "<", 0]], True, True),
    ([["age", "<=", 0]], True, False),
    ([["age", ">", 20], ["age", "<", 40]], True, False),  # below 40 lets true and false in
    ([["age", ">", 20], ["age", ">", 25]], True, True),
    ([["label", ">=", "1"]], True, False),  # texts above "1" include arrays' and objects'
    ([["label", "<", "5"]], True, False),
    ([["age", ">", 20], ["age", "<=", 50], ["age", "!=", 30]], False, False),
    ([["active", "==", True]], False, False),
    ([["tags", "in", ["red"]]], False, False),
    ([["age", ">", 20], ["label", "==", "30"]], False, False),  # two fields: one index cannot count them
]


@pytest.mark.parametrize("clauses, counts, exact", INDEX_COUNTS, ids=[str(c[0]) for c in INDEX_COUNTS])
def test_the_index_counts_comparisons_and_reads_only_ambiguous_documents(clauses: list, counts: bool,
                                                                         exact: bool) -> None:
    conn, indexed = db()
    plan = plan_query(parse_clauses(clauses), None, indexed)
    assert plan.index_counts is counts
    for scope in (SCOPE, Scope("app", "things", account_id="acc1")):
        literal = Scope(scope.app_id, scope.collection, scope.account_id, literal=True)
        statements = page_statements(literal, plan, False, 100, 0, plan.index)
        assert len(statements) == (2 if counts else 1)  # the total from the index, then the page
        if exact:  # only the page's documents are read (the account is in the index too)
            assert [_documents_read(conn, *statement) for statement in statements] == [0, 1]
        assert run(clauses, indexed=indexed, scope=scope)[:2] == run(clauses, scope=scope)[:2]


def test_a_range_sorted_by_its_field_walks_the_index() -> None:
    _, indexed = db()
    names, total, plan = run([["age", ">", 1]], "age", indexed=indexed, limit=2)
    assert (names, total) == (run([["age", ">", 1]], "age", limit=2)[:2])
    steps = plan.split(" // ")[1].split(" / ")  # the page's statement, after the total's
    walk = next(i for i, step in enumerate(steps) if step.startswith("SEARCH documents USING INDEX docfield_"))
    assert steps[walk + 1] != "USE TEMP B-TREE FOR ORDER BY", plan  # the matches come in order: none sorted


def test_an_account_scope_with_an_index() -> None:
    _, indexed = db()
    scope = Scope("app", "things", account_id="acc1")
    names, total, plan = run([["age", ">=", 30]], indexed=indexed, scope=scope)
    assert names == ["ann", "bob"] and total == 2 and _uses(plan, "age")
    assert run([["age", ">=", 30]], scope=scope)[:2] == (names, total)


def test_the_index_holds_only_its_collection() -> None:
    conn, indexed = db()
    (entries,) = conn.execute(f'SELECT COUNT(*) FROM documents INDEXED BY "{indexed["age"]}" '
                              "WHERE app_id = 'app' AND collection = 'things'").fetchone()
    assert entries == len(DOCS)  # the document of 'other' with an age is not in it
    assert "zed" not in run([["age", "==", 30]], indexed=indexed)[0]


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 50])
def test_pages_and_totals_are_the_same_with_an_index(offset: int) -> None:
    _, indexed = db()
    clauses = [["age", ">=", -100]]
    plain = run(clauses, "age", True, limit=2, offset=offset)
    assert run(clauses, "age", True, indexed=indexed, limit=2, offset=offset)[:2] == plain[:2]
    assert plain[1] == 5  # past the end too


# ---------------------------------------------------------------------------------------------
# properties: the path literal is the only thing a field changes, and both forms select the same
# ---------------------------------------------------------------------------------------------

REFERENCE_PATH = sql_text(json_path("f"))


@settings(max_examples=300, deadline=None)
@given(field=st.one_of(fields, st.sampled_from(HOSTILE)), op=operators, value=values)
def test_an_indexed_field_changes_only_its_path_literal(field: str, op: str, value: Any) -> None:
    try:
        clauses = parse_clauses([[field, op, value]])
    except BadRequest:
        return
    sql, params = compile_clauses(clauses, frozenset([field]))
    ref_field = field if field in SYSTEM_COLUMNS else "f"
    ref_value = canonical(value) if not isinstance(value, list) or field in SYSTEM_COLUMNS else value
    reference, ref_params = compile_clauses(parse_clauses([[ref_field, op, ref_value]]), frozenset([ref_field]))
    if field not in SYSTEM_COLUMNS:
        literal = sql_text(json_path(field))
        assert sql.replace(literal, REFERENCE_PATH) == reference
        assert sql.replace(literal, "").count("?") == len(params)
    else:
        assert sql == reference
    assert len(params) == len(ref_params)


@settings(max_examples=150, deadline=None)
@given(raw=st.lists(st.tuples(st.one_of(fields, st.sampled_from(HOSTILE)), operators, values).map(list),
                    min_size=1, max_size=3),
       sort=st.one_of(st.none(), st.sampled_from(CASE_FIELDS)), descending=st.booleans())
def test_with_or_without_indexes_a_query_selects_the_same(raw: list, sort: str | None, descending: bool) -> None:
    try:
        parse_clauses(raw)
    except BadRequest:
        return
    conn, indexed = db()
    extra = {c[0]: _index(conn, c[0]) for c in raw if c[0] not in SYSTEM_COLUMNS and c[0] not in indexed}
    try:
        with_index = run(raw, sort, descending, indexed={**indexed, **extra})
        assert with_index[:2] == run(raw, sort, descending)[:2]
    finally:
        for name in extra.values():
            conn.execute(f'DROP INDEX "{name}"')
