"""How a query reads the documents table: its filter and sort as SQL, and the field index that serves it.

A field index (store/indexes.py) holds `json_extract(data, <path>)`, the account and the insertion
order of one collection's documents. A query reads it when a clause or the sort is on its field.
When every clause is on that field and compares it with a string or a number, the index counts
the matches and gives them in the sort's order: a document is read only where its entry is
ambiguous (`filters.exact_comparison`: a 0 or 1 may be false or true, a text starting with a
bracket an array), and then the page's documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sblite.filters import Clause, compile_clauses, sort_key

# Clauses an index on their field serves, best first: an equality finds a few entries, a range a
# stretch of them; `in` (which must also find arrays) reads the whole index, still without the JSON.
_INDEX_PREFERENCE = (("==",), ("<", "<=", ">", ">="), ("in",))
_COMPARISONS = frozenset(("==", "<", "<=", ">", ">="))


@dataclass(frozen=True)
class QueryPlan:
    """The compiled filter and sort of one query, and the index it reads."""

    where: str
    params: list[Any]
    key: str
    key_params: list[Any]
    index: str | None = None
    # The index counts and orders the matches (see the module's docstring).
    index_counts: bool = False


def plan_query(clauses: list[Clause], sort: str | None, indexed: Mapping[str, str]) -> QueryPlan:
    """The plan of a query with these clauses and sort, given the collection's indexes (field → name)."""
    index = index_for(clauses, sort, indexed)
    literal = frozenset(indexed) if index else frozenset()
    where, params = compile_clauses(clauses, literal)
    key, key_params = sort_key(sort, literal)
    field = next((f for f, name in indexed.items() if name == index), None)
    counts = field is not None and bool(clauses) and all(
        c.field == field and c.op in _COMPARISONS and isinstance(c.value, (str, int, float))
        and not isinstance(c.value, bool) for c in clauses)
    return QueryPlan(where, params, key, key_params, index, counts)


def index_for(clauses: list[Clause], sort: str | None, indexed: Mapping[str, str]) -> str | None:
    """The name of the index (among `indexed`: field → name) a query should read, if one serves it.

    With clauses, the sort's index serves only when it also serves a clause: the total counts
    every match anyway, and reading them in the index's order would not spare sorting them.
    """
    for ops in _INDEX_PREFERENCE:
        for clause in clauses:
            if clause.op in ops and clause.field in indexed and clause.value is not None:
                return indexed[clause.field]
    return indexed.get(sort) if sort and not clauses else None
