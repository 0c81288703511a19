"""Search keywords (sblite/search.py): words, typo distance, quoting; hostile keywords on real FTS5."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings, strategies as st

from sblite import search
from sblite.errors import BadRequest
from sblite.store.migrations import migrate
from sblite.store.search import typo_candidates


@pytest.mark.parametrize("keywords, texts, typo_terms", [
    ("hello", ["hello"], ["hello"]),
    ("  Hello   World ", ["Hello", "World"], ["hello", "world"]),
    ("tab\tand\nnewline", ["tab", "and", "newline"], [None, None, "newline"]),
    ("Café", ["Café"], ["cafe"]),
    ("abc", ["abc"], [None]),  # shorter than four: prefix only
    ("e-mail", ["e-mail"], [None]),  # punctuation inside: a phrase, no typo form
    ('"quoted" ***', ['"quoted"'], [None]),  # a word of punctuation alone is dropped
    ("NEAR AND OR NOT", ["NEAR", "AND", "OR", "NOT"], ["near", None, None, None]),
    ("x2y2", ["x2y2"], ["x2y2"]),
])
def test_words_of_keywords(keywords, texts, typo_terms):
    words = search.parse_keywords(keywords)
    assert [w.text for w in words] == texts
    assert [w.term for w in words] == typo_terms


@pytest.mark.parametrize("keywords, message", [
    (None, "non-empty string"),
    (5, "non-empty string"),
    (["a"], "non-empty string"),
    ("", "non-empty string"),
    ("   \t ", "non-empty string"),
    ("*** --- ()", "at least one word"),
    ("a" * 501, "limited to 500 characters"),
    (" ".join(["w"] * 17), "limited to 16 words"),
    ("ok \ud800", "lone surrogate"),
])
def test_bad_keywords(keywords, message):
    with pytest.raises(BadRequest, match=message):
        search.parse_keywords(keywords)


@pytest.mark.parametrize("a, b, close", [
    ("search", "serch", True),  # one removed
    ("search", "searchx", True),  # one added
    ("search", "seerch", True),  # one replaced
    ("search", "saerch", True),  # neighbours swapped
    ("search", "search", False),  # the same word is no typo
    ("search", "sarech", False),  # two edits
    ("search", "searching", False),
    ("abcd", "abdc", True),
    ("abcd", "bacd", True),
    ("abcd", "dcba", False),
    ("abcd", "abc", True),
    ("abcd", "ab", False),
])
def test_one_edit_apart(a, b, close):
    assert search.one_edit_apart(a, b) is close
    assert search.one_edit_apart(b, a) is close


def _osa_distance(a: str, b: str) -> int:
    """Edits (add, remove, replace, swap two neighbours) from `a` to `b`: the textbook table."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


@given(st.text("abc", max_size=7), st.text("abc", max_size=7))
@settings(max_examples=500, deadline=None)
def test_one_edit_apart_is_distance_one(a, b):
    assert search.one_edit_apart(a, b) is (_osa_distance(a, b) == 1)


def test_typo_terms_keep_the_most_frequent_and_leave_prefixes_to_the_prefix_match():
    word = search.parse_keywords("database")[0]
    terms = [("databse", 1), ("databases", 9), ("datahase", 5), ("dtabase", 3), ("database", 4), ("datum", 7)]
    # "databases" starts with the word (the prefix finds it); "database" itself too; "datum" is far.
    assert search.typo_terms(word, terms) == ["datahase", "dtabase", "databse"]
    assert search.typo_terms(search.parse_keywords("dat")[0], terms) == []


def test_early_typos_are_the_typos_in_the_first_two_characters():
    early = search.parse_keywords("Word")[0].early_typos()
    assert {"ord", "wrd", "owrd", "wrod", "xord", "wxrd", "aword", "waord"} <= set(early)
    assert all(search.one_edit_apart("word", form) for form in early)
    assert "word" not in early and "woxd" not in early  # a typo past the first two: term_range finds it
    assert search.parse_keywords("wor")[0].early_typos() == []


def test_term_range_is_the_terms_that_share_the_first_two_characters():
    assert search.parse_keywords("Search")[0].term_range() == ("se", "sf")
    assert search.parse_keywords("abc")[0].term_range() is None


def test_expression_quotes_every_word():
    words = search.parse_keywords('say "hi" NEAR(x)')
    expression = search.match_expression("c7", words, [[], [], ["near"]])
    assert expression == ('scope : "c7" AND body : ("say" *) AND body : ("""hi""" *) '
                          'AND body : ("NEAR(x)" * OR "near")')


@pytest.fixture(scope="module")
def index() -> sqlite3.Connection:
    """A migrated in-memory database with a few indexed entries of collection token c1."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    texts = ["hello world", "NEAR AND OR NOT", 'quotes " and stars *', "colons : and (parens)", "naïve café"]
    for rowid, text in enumerate(texts, 1):
        conn.execute("INSERT INTO search_index (rowid, scope, body) VALUES (?, 'c1', ?)", (rowid, text))
    return conn


def _run(conn: sqlite3.Connection, keywords: str) -> list[int]:
    try:
        words = search.parse_keywords(keywords)
    except BadRequest:
        return []
    typos = [search.typo_terms(word, typo_candidates(conn, word)) for word in words]
    expression = search.match_expression("c1", words, typos)
    return [row[0] for row in conn.execute(
        "SELECT rowid FROM search_index WHERE search_index MATCH ? ORDER BY rank", (expression,))]


HOSTILE = [
    '"', '""', '"*', "*", "**", "NEAR", "NEAR(", "NEAR(a b, 2)", 'NEAR("a" "b")', "AND", "OR", "NOT", "-", "-hello",
    "hello -world", "body:hello", "scope:c1", ":", "(", ")", "((", "{scope body}: hello", "^hello", "hello*",
    'a"b', 'x" OR "y', 'hello" *', 'hello"', "he\x00llo", "\x00", "'; DROP TABLE documents; --", "c1", "+",
    "a + b", "rowid:1", "\\", "hello AND", "OR hello", "\u200b", "\ufeffhello", "\U0001d559\U0001d556llo",
    "\U0001f600", "\U0010fffd\U0010fffd\U0010fffd\U0010fffd", "a" * 500,
]


@pytest.mark.parametrize("keywords", HOSTILE)
def test_hostile_keywords_never_raise(index, keywords):
    _run(index, keywords)


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_keywords_never_raise(index, keywords):
    _run(index, keywords)


@given(st.lists(st.sampled_from(['"', "*", "NEAR", "AND", "OR", "NOT", "-", ":", "(", ")", "^", "+", "{", "}",
                                 "hello", "wrld", "scope", "body", "c1", "\x00", " "]), max_size=12))
@settings(max_examples=300, deadline=None)
def test_fts5_syntax_soup_never_raises(index, parts):
    _run(index, "".join(parts))


@pytest.mark.parametrize("keywords, rows", [
    ("hel", [1]),
    ("hello wor", [1]),
    ("wrold", [1]),  # swapped neighbours
    ("hellp", [1]),  # one replaced
    ("owrld", [1]),  # the first two swapped
    ("xorld", [1]),  # the first replaced
    ("orld", [1]),  # the first missing
    ("wworld", [1]),  # one added at the start
    ("wold", [1]),  # one missing
    ("wrld", [1]),
    ("wolrd", [1]),
    ("worlds", [1]),
    ("wordl", [1]),
    ("wrdol", []),  # two typos
    ("helo", [1]),
    ("hallo", [1]),
    ("hellow", [1]),
    ("hel wrold", [1]),
    ("hello nothing", []),  # AND: every word must match
    ("NEAR", [2]),  # operators are words
    ("near and", [2]),
    ('"', []),
    ("quotes stars", [3]),
    ("(parens)", [4]),
    ("naive cafe", [5]),  # diacritics folded
    ("scope", []),  # the collection column is never searched
    ("c1", []),
])
def test_what_matches(index, keywords, rows):
    assert _run(index, keywords) == rows
