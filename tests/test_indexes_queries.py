"""Queries with field indexes, through the API and the store: results, totals, sort by field, paging, one scan."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from sblite.filters import parse_clauses
from sblite.query_plan import plan_query
from sblite.store import Database, DocumentStore
from sblite.store.documents import NewDocument, Scope

N = 120


def _doc(i: int) -> dict[str, Any]:
    """Fields of each kind: `n` (ties), `label` a string, `flag` a boolean, `tags` an array, `k` missing in some."""
    doc: dict[str, Any] = {"i": i, "n": i % 10, "label": f"L{i % 7}", "flag": i % 3 == 0, "tags": [f"t{i % 4}"],
                           "meta": {"group": f"g{i % 5}"}}
    if i % 4:
        doc["k"] = i % 6 if i % 8 else str(i % 6)  # numbers, and now and then a string
    return doc


async def _seed(api, col: str = "items") -> None:
    status, _ = await api.root("POST", f"/sudo/{col}?bulk=1", json=[_doc(i) for i in range(N)])
    assert status == 201


async def _all_pages(api, path: str, clauses: Any, size: int = 7) -> tuple[list[int], int]:
    """Every page of a query: the `i` of each document in order, and the total each page reported."""
    seen: list[int] = []
    totals = set()
    page = 1
    while True:
        sep = "&" if "?" in path else "?"
        status, found = await api.root("POST", f"{path}{sep}page={page}&size={size}", json=clauses)
        assert status == 200, found
        totals.add(found["total"])
        seen += [doc["i"] for doc in found["results"]]
        if len(found["results"]) < size:
            break
        page += 1
    assert len(totals) == 1, totals
    return seen, totals.pop()


SHAPES = [
    # (id, clauses, sort query string)
    ("== number", [["n", "==", 3]], ""),
    ("== string", [["label", "==", "L2"]], ""),
    ("== true", [["flag", "==", True]], ""),
    ("== 1 is not true", [["flag", "==", 1]], ""),
    ("< number", [["k", "<", 3]], ""),
    (">= string", [["k", ">=", "2"]], ""),
    ("range and sort", [["n", ">", 6]], "&sort=k&desc=1"),
    ("in scalar", [["label", "in", ["L1", "L3"]]], ""),
    ("in array", [["tags", "in", ["t1"]]], ""),
    ("dotted ==", [["meta.group", "==", "g4"]], "&sort=n"),
    ("two clauses", [["n", "<=", 4], ["label", "==", "L0"]], "&desc=1"),
    ("sort only", [], "&sort=k"),
    ("sort only desc", [], "&sort=k&desc=true"),
    ("sort a dotted field", [], "&sort=meta.group"),
    ("nothing matches", [["n", "==", 42]], ""),
]


@pytest.mark.parametrize("clauses, sort", [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
async def test_each_shape_answers_the_same_with_an_index(api, clauses: list, sort: str) -> None:
    await _seed(api)
    before = await _all_pages(api, "/sudoquery/items?x=1" + sort, clauses)
    for field in ("n", "label", "flag", "k", "tags", "meta.group"):
        assert await api.root("POST", f"/sudo/index?col=items&field={field}") == (200, True)
    after = await _all_pages(api, "/sudoquery/items?x=1" + sort, clauses)
    assert after == before
    assert before[1] == len(before[0]) and len(set(before[0])) == len(before[0])
    status, counted = await api.root("POST", "/db/count/items", json=clauses)
    if status == 200:  # /db/count is for users; root gets 200 too in dev
        assert counted["count"] == before[1]


async def test_sort_by_field_orders_numbers_then_strings_and_missing_first(api) -> None:
    await _seed(api)
    _, page = await api.root("GET", f"/sudo/items?sort=k&size={N}")
    keys = [doc.get("k") for doc in page["results"]]
    missing = [k for k in keys if k is None]
    numbers = [k for k in keys if isinstance(k, int)]
    strings = [k for k in keys if isinstance(k, str)]
    assert keys == missing + numbers + strings  # SQLite's order: NULL, numbers, text
    assert numbers == sorted(numbers) and strings == sorted(strings)
    ties = [doc["i"] for doc in page["results"] if doc.get("k") == 1]
    assert ties == sorted(ties)  # ties in insertion order
    _, down = await api.root("GET", f"/sudo/items?sort=k&desc=1&size={N}")
    assert [doc["i"] for doc in down["results"]] == [doc["i"] for doc in page["results"]][::-1]
    assert (await api.root("POST", "/sudo/index?col=items&field=k"))[0] == 200
    _, indexed = await api.root("GET", f"/sudo/items?sort=k&size={N}")
    assert indexed["results"] == page["results"]


@pytest.mark.parametrize("indexed", [False, True], ids=["no index", "index"])
@pytest.mark.parametrize("sort", ["", "&sort=n"], ids=["insertion order", "by field"])
async def test_paging_holds_still_while_documents_are_inserted(api, indexed: bool, sort: str) -> None:
    await _seed(api)
    if indexed:
        await api.root("POST", "/sudo/index?col=items&field=n")
    inserted = 0

    async def insert() -> None:
        nonlocal inserted
        for round_ in range(30):  # new documents sort after those there at the start: n is 9 or more
            docs = [{**_doc(1000 + round_ * 3 + j), "n": 9 + j} for j in range(3)]
            assert (await api.root("POST", "/sudo/items?bulk=1", json=docs))[0] == 201
            inserted += 3
            await asyncio.sleep(0)

    async def page_through() -> list[int]:
        seen: list[int] = []
        page = 1
        while page < 100:
            _, found = await api.root("POST", f"/sudoquery/items?size=5&page={page}{sort}", json=[["i", ">=", 0]])
            seen += [doc["i"] for doc in found["results"]]
            if not found["results"]:
                break
            page += 1
        return seen

    seen, _ = await asyncio.gather(page_through(), insert())
    assert inserted == 90
    original = [i for i in seen if i < N]
    assert sorted(original) == list(range(N))  # each document there at the start once: no gap, no duplicate


# ---------------------------------------------------------------------------------------------
# the store: a page and its total in one statement
# ---------------------------------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path):
    db = Database(tmp_path / "one.db", read_connections=1)
    await db.open()
    documents = DocumentStore(db)
    await documents.insert("app", "items", [NewDocument(f"d{i}", "acc", "u", _doc(i)) for i in range(N)], "now")
    statements: list[str] = []
    await db.read(lambda conn: conn.set_trace_callback(statements.append))
    yield documents, statements
    await db.read(lambda conn: conn.set_trace_callback(None))
    await db.close()


async def _page(documents: DocumentStore, clauses: list, offset: int, index: str | None = None,
                sort: str | None = None) -> tuple[int, list[int]]:
    plan = plan_query(parse_clauses(clauses), sort, {"n": index} if index else {})
    page = await documents.page(Scope("app", "items", literal=bool(index)), plan, False, 10, offset)
    return page.total, [doc["i"] for doc in page.results]


def _reads(statements: list[str]) -> list[str]:
    return [s for s in statements if "FROM documents" in s or "FROM document_counts" in s]


@pytest.mark.parametrize("with_index", [False, True], ids=["scan", "index"])
async def test_a_filtered_page_and_its_total_come_from_one_pass(store, with_index: bool) -> None:
    """Without an index, one statement; with one that counts, the total from the index's entries first."""
    documents, statements = store
    index = None
    if with_index:
        await documents.indexes.create("app", "items", "n", "now")
        index = (await documents.indexes.fields("app", "items"))["n"]
    reads = 2 if with_index else 1
    statements.clear()
    total, page = await _page(documents, [["n", "==", 3]], 0, index)
    assert (total, page) == (12, [3, 13, 23, 33, 43, 53, 63, 73, 83, 93])
    found = _reads(statements)
    assert len(found) == reads and all(("INDEXED BY" in s) == with_index for s in found)
    if with_index:
        assert found[0].startswith("SELECT COUNT(*) AS total FROM documents INDEXED BY")
    else:
        assert "COUNT(*) AS total FROM hits" in found[0]
    for offset, expected in ((10, (12, [103, 113])), (20, (12, []))):  # past the end: the total still
        statements.clear()
        assert await _page(documents, [["n", "==", 3]], offset, index) == expected
        assert len(_reads(statements)) == reads
    statements.clear()
    assert await _page(documents, [["n", "==", 42]], 0, index) == (0, [])
    assert len(_reads(statements)) == reads


async def test_an_unfiltered_page_reads_no_more_than_the_page(store) -> None:
    documents, statements = store
    statements.clear()
    assert await _page(documents, [], 0) == (N, list(range(10)))
    assert [s.split(" FROM ")[1].split()[0] for s in _reads(statements)] == ["document_counts", "documents"]


@pytest.mark.parametrize("with_index", [False, True], ids=["scan", "index"])
async def test_bulk_updates_and_deletes_find_their_documents_through_the_index(store, with_index: bool) -> None:
    documents, _ = store
    indexed = {}
    if with_index:
        await documents.indexes.create("app", "items", "n", "now")
        indexed = await documents.indexes.fields("app", "items")
    writes: list[str] = []
    await documents._db.write(lambda conn: conn.set_trace_callback(writes.append))
    scope = Scope("app", "items", literal=with_index)
    plan = plan_query(parse_clauses([["n", "==", 3]]), None, indexed)
    updated = await documents.update(scope, plan.where, plan.params, {"s": "y"}, "now", index=plan.index)
    assert [doc["i"] for doc in updated] == list(range(3, N, 10))
    plan = plan_query(parse_clauses([["n", ">", 7]]), None, indexed)
    deleted = await documents.delete(scope, plan.where, plan.params, index=plan.index)
    assert sorted(doc["i"] for doc in deleted) == [i for i in range(N) if i % 10 > 7]
    # (the trace repeats a statement for each trigger it fires)
    reads = set(s for s in writes if s.startswith(("SELECT id, account_id", "DELETE FROM documents")))
    assert len(reads) == 2 and all(("INDEXED BY" in s) == with_index for s in reads), reads
    await documents._db.write(lambda conn: conn.set_trace_callback(None))


async def test_a_dropped_index_is_no_error(store) -> None:
    documents, _ = store
    await documents.indexes.create("app", "items", "n", "now")
    index = (await documents.indexes.fields("app", "items"))["n"]
    await documents.indexes.drop("app", "items", "n")
    assert await _page(documents, [["n", "==", 3]], 0, index) == (12, [3, 13, 23, 33, 43, 53, 63, 73, 83, 93])
    with pytest.raises(sqlite3.OperationalError):  # what the store handles
        await documents._db.read(lambda c: c.execute(f'SELECT 1 FROM documents INDEXED BY "{index}"').fetchall())


TEXTS = ["café", "naïve ☕", "😀", "a\"b", "a\\b", "tab\there", "line\nbreak", "\u2028", "<b>&amp;</b>", "[1]", "{}"]


@pytest.mark.parametrize("with_index", [False, True], ids=["scan", "index"])
async def test_strings_of_every_kind_are_found_as_stored(api, with_index: bool) -> None:
    """== and `in` search a plain string in the stored text first: escapes, non-ASCII and brackets still match."""
    docs = [{"s": text, "other": f"x{text}", "tags": [text, "t"]} for text in TEXTS] + [{text: 1} for text in TEXTS]
    assert (await api.root("POST", "/sudo/texts?bulk=1", json=docs))[0] == 201
    if with_index:
        assert await api.root("POST", "/sudo/index?col=texts&field=s") == (200, True)
    for text in TEXTS:
        for clauses in ([["s", "==", text]], [["s", "in", [text, "zz"]]], [["tags", "in", [text]]]):
            status, found = await api.root("POST", "/sudoquery/texts", json=clauses)
            assert status == 200, found
            assert [d["s"] for d in found["results"]] == [text], (clauses, found)
        status, found = await api.root("POST", "/sudoquery/texts", json=[["other", "==", text]])
        assert (status, found["total"]) == (200, 0)
