"""Query clauses (`[field, op, value]`, AND-ed) checked and compiled to parameterised SQL.

Comparisons are typed: numbers compare as numbers and strings as strings; a value of one
type never matches a field of another. Values are always bound parameters. Field paths are
bound parameters too, except for fields with an index (`literal` below): an expression index only
matches a query that spells the same expression, so those paths are written as SQL string
literals, from a validated path with its quotes doubled. Either way a clause only chooses among
fixed shapes: the path literal is one token where the parameterised form has a `?`, and the
value's kind (its type, whether it is a plain string, which side of 0 and 1 a number is) picks
the shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sblite.errors import BadRequest
from sblite.jsonutil import dumps_stored

# Operator spellings accepted on the wire → canonical operator.
OPERATORS = {
    "==": "==", "=": "==",
    "!=": "!=", "<>": "!=",
    "<": "<", "<=": "<=", ">": ">", ">=": ">=",
    "in": "in", "!in": "!in", "nin": "!in",
}
# Document fields kept in columns rather than in the JSON data.
SYSTEM_COLUMNS = {"id": "id", "accountId": "account_id", "ownerId": "owner_id"}
# Names `sort` accepts for the insertion order.
ORDER_COLUMNS = {"created": "seq", "sb_created": "seq", "id": "id", "updated": "updated"}
MAX_FIELD_LENGTH = 200
MAX_IN_VALUES = 1000
NO_FILTER = "1"  # what an empty clause list compiles to
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Up to this many plain strings in an `in` list get a text pre-filter (one `instr` each).
MAX_PREFILTER_VALUES = 8
# One element `f` of a field (the field itself when it is a scalar, each element when it is an
# array; never the members of an object) equals one list value `v`: same JSON kind, same value.
_IN_MATCH = (
    "typeof(f.key) != 'text' AND f.type NOT IN ('object', 'array') "
    "AND (f.type = v.type OR (f.type IN ('integer', 'real') AND v.type IN ('integer', 'real'))) "
    "AND f.atom IS v.atom"
)

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Clause:
    """One checked filter clause."""

    field: str
    op: str
    value: Any


def parse_clauses(raw: Any) -> list[Clause]:
    """Check decoded JSON clauses; raise BadRequest naming the first bad clause."""
    if not isinstance(raw, list):
        raise BadRequest("the query filters must be a JSON array of [field, operator, value] clauses")
    return [_parse_clause(position, item) for position, item in enumerate(raw, start=1)]


def _parse_clause(position: int, item: Any) -> Clause:
    if not isinstance(item, list) or len(item) != 3:
        raise BadRequest(
            f"the {position} query clause did not contains the required 3 parameters "
            "(field, operator, value)"
        )
    field, op, value = item
    if not isinstance(field, str):
        raise BadRequest(f"the {position} query clause's field must be a string")
    if not isinstance(op, str):
        raise BadRequest(f"the {position} query clause's operator must be a string")
    if op not in OPERATORS:
        raise BadRequest(f"the {position} query clause's operator: {op} is not supported at the moment")
    json_path(field)
    op = OPERATORS[op]
    return Clause(field=field, op=op, value=_check_value(position, op, value))


def _check_value(position: int, op: str, value: Any) -> Any:
    where = f"the {position} query clause's value"
    if op in ("in", "!in"):
        values = value if isinstance(value, list) else [value]
        if len(values) > MAX_IN_VALUES:
            raise BadRequest(f"{where} has more than {MAX_IN_VALUES} elements")
        if not all(_is_scalar(v) for v in values):
            raise BadRequest(f"{where} must be a list of strings, numbers, booleans or null")
        _check_range(where, values)
        return values
    if not _is_scalar(value):
        raise BadRequest(f"{where} must be a string, a number, a boolean or null")
    _check_range(where, [value])
    if op in ("<", "<=", ">", ">=") and (value is None or isinstance(value, bool)):
        raise BadRequest(f"{where} must be a string or a number for {op}")
    return value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _check_range(where: str, values: list[Any]) -> None:
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            raise BadRequest(f"{where} is out of range: numbers must be finite")
        if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            raise BadRequest(f"{where} is out of range: whole numbers must fit in 64 bits")


def json_path(field: str) -> str:
    """The SQLite JSON path of a field; dots reach into nested objects."""
    parts = field.split(".")
    if (
        not field
        or len(field) > MAX_FIELD_LENGTH
        or any(not part or '"' in part or "\\" in part for part in parts)
        or any(ord(ch) < 32 for ch in field)
    ):
        raise BadRequest(f"invalid field name: {field!r}")
    return "$" + "".join(f'."{part}"' for part in parts)


def sql_text(value: str) -> str:
    """`value` as an SQL string literal (quotes doubled); callers pass only validated names."""
    if "\x00" in value:  # SQLite would end the statement's text there
        raise BadRequest("invalid name: it contains a NUL character")
    return "'" + value.replace("'", "''") + "'"


def field_expression(field: str) -> str:
    """The SQL expression an index on a document field is built on (and queries must repeat)."""
    return f"json_extract(data, {sql_text(json_path(field))})"


def plain_string(value: str) -> bool:
    """Whether `value` is written in a stored document's JSON text as itself between quotes.

    Documents are only ever stored as `jsonutil.dumps_stored` writes them, which escapes nothing
    but quotes, backslashes and control characters.
    """
    return dumps_stored(value) == f'"{value}"'


def exact_comparison(op: str, value: Any) -> bool:
    """Whether `json_extract(data, path) <op> value`, bounded to the value's kind, matches only that JSON type.

    json_extract gives a JSON string as text, an array or object as its JSON text (starting with
    `[` or `{`), true and false as 1 and 0, a number as a number; SQLite orders every number
    before every text. So an equality with a string that does not start with a bracket, an
    equality with a number other than 0 and 1, and a numeric range that leaves out 0 and 1 need no
    type check. Other comparisons check the type only where a value is ambiguous: a 0 or 1, a text
    starting with a bracket.
    """
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return op == "==" and not value.startswith(("[", "{"))
    if op == "==":
        return value not in (0, 1)
    bounds: dict[str, bool] = {">": value >= 1, ">=": value > 1, "<": value <= 0, "<=": value < 0}
    return bounds.get(op, False)


def compile_clauses(clauses: list[Clause], literal: frozenset[str] = frozenset()) -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND, `1` when empty) and their parameters.

    Fields in `literal` (those with an index) get their path as a literal, and terms an index on
    the field can serve in front of the typed check, which stays as it is.
    """
    sql: list[str] = []
    params: list[Any] = []
    for clause in clauses:
        fragment, values = _compile_clause(clause, clause.field in literal)
        sql.append(f"({fragment})")
        params.extend(values)
    return (" AND ".join(sql) if sql else NO_FILTER), params


def _compile_clause(clause: Clause, literal: bool) -> tuple[str, list[Any]]:
    column = SYSTEM_COLUMNS.get(clause.field)
    if column is not None:
        return _compile_column(column, clause)
    path = json_path(clause.field)
    # `a` is the path in the SQL text: a `?` bound to `path`, or the path as a literal.
    a, bound = (sql_text(path), []) if literal else ("?", [path])
    op, value = clause.op, clause.value
    if op in ("in", "!in"):
        negate = "NOT " if op == "!in" else ""
        fragment = f"{negate}EXISTS (SELECT 1 FROM json_each(data, {a}) AS f, json_each(?) AS v WHERE {_IN_MATCH})"
        if literal and op == "in":  # candidates: a scalar among the values, a JSON null, any array
            return (f"(json_extract(data, {a}) IN (SELECT value FROM json_each(?)) "
                    f"OR (? AND json_extract(data, {a}) IS NULL) "
                    f"OR (json_extract(data, {a}) >= '[' AND json_extract(data, {a}) < '\\')) AND {fragment}",
                    [dumps_stored(value), int(None in value), dumps_stored(value)])
        if op == "in" and 0 < len(value) <= MAX_PREFILTER_VALUES and all(
                isinstance(v, str) and plain_string(v) for v in value):
            return _prefiltered(value, fragment, [*bound, dumps_stored(value)])
        return fragment, [*bound, dumps_stored(value)]
    if value is None:
        return (f"json_type(data, {a}) IS NULL OR json_type(data, {a}) = 'null'", bound * 2) if op == "==" \
            else (f"json_type(data, {a}) IS NOT NULL AND json_type(data, {a}) != 'null'", bound * 2)
    if isinstance(value, bool):
        wanted = "true" if value else "false"
        if op != "==":
            return f"json_type(data, {a}) IS NOT ?", [*bound, wanted]
        if literal:  # an index holds true and false as 1 and 0
            return f"json_extract(data, {a}) = ? AND json_type(data, {a}) = ?", [int(value), wanted]
        return f"json_type(data, {a}) = ?", [*bound, wanted]
    types = "('integer', 'real')" if isinstance(value, (int, float)) else "('text')"
    if op == "!=":
        return (
            f"NOT (IFNULL(json_type(data, {a}), '') IN {types} AND json_extract(data, {a}) = ?)",
            [*bound, *bound, value],
        )
    fragment, params = _typed_comparison(a, bound, op, value, types)
    if op == "==" and not literal and isinstance(value, str) and plain_string(value):
        return _prefiltered([value], fragment, params)
    return fragment, params


def _typed_comparison(a: str, bound: list[Any], op: str, value: str | int | float,
                      types: str) -> tuple[str, list[Any]]:
    """`field <op> value` for a string or a number: the comparison, bounded to the value's kind, then
    the type check only where the field's value is ambiguous (see `exact_comparison`).

    The comparison comes first: it rejects most documents. The rest is written on the field's value,
    so that with an index SQLite decides it from the index's entry and reads a document only for
    an ambiguous one.
    """
    field = f"json_extract(data, {a})"
    fragment, params = f"{field} {'=' if op == '==' else op} ?", [*bound, value]
    if isinstance(value, str) and op in ("<", "<="):  # numbers sort before every text
        fragment, params = f"{fragment} AND {field} >= ''", [*params, *bound]
    elif not isinstance(value, str) and op in (">", ">="):  # and every text after them
        fragment, params = f"{fragment} AND {field} < ''", [*params, *bound]
    if exact_comparison(op, value):
        return fragment, params
    ambiguous = f"substr({field}, 1, 1) IN ('[', '{{')" if isinstance(value, str) else f"{field} IN (0, 1)"
    return f"{fragment} AND (NOT {ambiguous} OR json_type(data, {a}) IN {types})", [*params, *bound, *bound]


def _prefiltered(values: list[str], fragment: str, params: list[Any]) -> tuple[str, list[Any]]:
    """`fragment` behind a search of the document's text for one of the quoted `values`.

    A field equal to a plain string has that string, quoted, in the document's JSON text; looking
    for it there costs a fraction of decoding the JSON, so most documents are rejected unread.
    """
    search = " OR ".join(["instr(data, ?) > 0"] * len(values))
    return f"({search}) AND {fragment}", [*(f'"{v}"' for v in values), *params]


def _compile_column(column: str, clause: Clause) -> tuple[str, list[Any]]:
    op, value = clause.op, clause.value
    if op in ("in", "!in"):
        negate = "NOT " if op == "!in" else ""
        return f"{column} {negate}IN (SELECT value FROM json_each(?) WHERE type = 'text')", [dumps_stored(value)]
    if not isinstance(value, str):
        # System fields are strings: a non-string matches nothing, and != matches everything.
        return ("1", []) if op == "!=" else ("0", [])
    sql_op = "=" if op == "==" else op
    return f"{column} {sql_op} ?", [value]


def order_by(sort: str | None, descending: bool, literal: frozenset[str] = frozenset()) -> tuple[str, list[Any]]:
    """An ORDER BY clause for a `sort` name (a system column or a document field), ties in insertion order."""
    key, params = sort_key(sort, literal)
    return order_sql(key, descending), params


def order_sql(key: str, descending: bool, key_alias: str | None = None, seq: str = "seq") -> str:
    """ORDER BY the sort key (or the column it was selected as), then insertion order."""
    direction = "DESC" if descending else "ASC"
    if key == "seq":
        return f"ORDER BY {seq} {direction}"
    return f"ORDER BY {key_alias or key} {direction}, {seq} {direction}"


def sort_key(sort: str | None, literal: frozenset[str] = frozenset()) -> tuple[str, list[Any]]:
    """The SQL expression a `sort` name orders by: a column, or a document field's value.

    A field in `literal` (one with an index) is written as the index's expression, so the index
    gives the order. Documents without the field sort as SQL NULL: first ascending, last descending.
    """
    if not sort or sort in ORDER_COLUMNS:
        return ORDER_COLUMNS.get(sort or "created", "seq"), []
    if sort in SYSTEM_COLUMNS:
        return SYSTEM_COLUMNS[sort], []
    if sort in literal:
        return field_expression(sort), []
    return "json_extract(data, ?)", [json_path(sort)]
