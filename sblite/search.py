"""Search keywords: the words of a query, their typo-tolerant forms and the FTS5 expression.

Keywords split on whitespace, as StaticBackend splits them on spaces, and every word must match
(AND). A word matches as a prefix (`data` finds "database"). A word of four or more letters and
digits also matches whole terms one typo away, as StaticBackend's fuzzy match of distance 1
intends: one character added, removed or replaced, or two neighbours swapped. The work is
bounded: typos past the second character are looked for among the index's terms that start
with the word's first two characters (at most MAX_TERMS_SCANNED of them, in the store); typos
in the first two are tried as exact terms, with a-z, 0-9 and the word's own characters for an
added or replaced one. Every word reaches FTS5 as a quoted string, so its syntax (`"`, `*`,
`NEAR`, `AND`, `-`, `:`, parentheses) is text to match.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sblite.errors import BadRequest

MAX_KEYWORDS_LENGTH = 500
MAX_WORDS = 16
TYPO_MIN_LENGTH = 4
TYPO_PREFIX = 2  # characters a typo-tolerant term must share with the word
MAX_TYPO_TERMS = 16  # typo-tolerant terms OR-ed in per word, the most frequent first
_EARLY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class Word:
    """One word of the keywords: as typed, and folded as the index stores terms (or None)."""

    text: str
    term: str | None  # set when the word may match with a typo

    def term_range(self) -> tuple[str, str] | None:
        """The index terms worth comparing for typos: those that start as this term does."""
        if self.term is None:
            return None
        start = self.term[:TYPO_PREFIX]
        return start, start[:-1] + chr(ord(start[-1]) + 1)

    def early_typos(self) -> list[str]:
        """The terms one typo away whose typo is in the first two characters (outside `term_range`)."""
        term = self.term
        if term is None:
            return []
        alphabet = sorted(set(_EARLY_ALPHABET + term))
        forms = {term[1:], term[0] + term[2:], term[1] + term[0] + term[2:], term[0] + term[2] + term[1] + term[3:]}
        for i in range(TYPO_PREFIX):
            forms.update(term[:i] + ch + term[i + 1:] for ch in alphabet)  # replaced
            forms.update(term[:i] + ch + term[i:] for ch in alphabet)  # added
        return sorted(form for form in forms if one_edit_apart(term, form))


def parse_keywords(keywords: object) -> list[Word]:
    """The words to search for; BadRequest when there is none or too many."""
    if not isinstance(keywords, str) or not keywords.strip():
        raise BadRequest('invalid body: "keywords" must be a non-empty string')
    if len(keywords) > MAX_KEYWORDS_LENGTH:
        raise BadRequest(f'invalid body: "keywords" is limited to {MAX_KEYWORDS_LENGTH} characters')
    if not keywords.isprintable() and any(0xD800 <= ord(ch) <= 0xDFFF for ch in keywords):
        raise BadRequest('invalid body: "keywords" holds a lone surrogate, which is not text')
    words = [word for word in keywords.split() if any(_is_token_char(ch) for ch in word)]
    if not words:
        raise BadRequest('invalid body: "keywords" needs at least one word with a letter or a digit')
    if len(words) > MAX_WORDS:
        raise BadRequest(f'invalid body: "keywords" is limited to {MAX_WORDS} words')
    return [Word(word, _typo_term(word)) for word in words]


def _is_token_char(ch: str) -> bool:
    """Whether FTS5's unicode61 tokenizer keeps `ch` in a term (letters, digits, private use)."""
    category = unicodedata.category(ch)
    return category[0] in "LN" or category == "Co"


def fold(text: str) -> str:
    """`text` as the index folds terms: lower case, without diacritics."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _typo_term(word: str) -> str | None:
    term = fold(word)
    if len(term) < TYPO_MIN_LENGTH or not all(_is_token_char(ch) for ch in term):
        return None
    return term


def one_edit_apart(a: str, b: str) -> bool:
    """Whether `b` is `a` with one letter added, removed, replaced, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    start = 0
    while start < len(a) and a[start] == b[start]:
        start += 1
    if len(a) < len(b):  # one added: the rest lines up one further on
        return a[start:] == b[start + 1:]
    if a[start + 1:] == b[start + 1:]:  # one replaced
        return True
    return (start + 1 < len(a) and a[start] == b[start + 1] and a[start + 1] == b[start]
            and a[start + 2:] == b[start + 2:])


def typo_terms(word: Word, terms: list[tuple[str, int]]) -> list[str]:
    """The index terms (with their document counts) that `word` matches with one typo."""
    if word.term is None:
        return []
    close = [(count, term) for term, count in dict(terms).items()
             if one_edit_apart(word.term, term) and not term.startswith(word.term)]  # the prefix finds those
    close.sort(key=lambda item: (-item[0], item[1]))
    return [term for _count, term in close[:MAX_TYPO_TERMS]]


def quote(text: str) -> str:
    """`text` as an FTS5 string: whatever it holds is text to match, never query syntax."""
    return '"' + text.replace('"', '""').replace("\0", " ") + '"'  # a NUL would end the query early


def match_expression(scope_token: str, words: list[Word], typos: list[list[str]]) -> str:
    """The FTS5 MATCH expression: the collection's token, then every word (prefix or a typo form)."""
    parts = [f"scope : {quote(scope_token)}"]
    for word, alternatives in zip(words, typos, strict=True):
        forms = [quote(word.text) + " *", *(quote(term) for term in alternatives)]
        parts.append(f"body : ({' OR '.join(forms)})")
    return " AND ".join(parts)
