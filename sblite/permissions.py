"""Collection permissions from the `_NNN_` name suffix and the `pub_` prefix (spec §2.6)."""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass

from sblite.errors import BadRequest
from sblite.model import ROOT_ROLE

MAX_COLLECTION_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SUFFIX = re.compile(r"_(\d)(\d)(\d)_$")
_READ_BIT = 4
_WRITE_BIT = 2
DEFAULT_DIGITS = (7, 4, 0)


class Level(enum.Enum):
    """Which documents of a collection a caller reaches."""

    EVERYONE = "everyone"  # any caller of this app
    ACCOUNT = "account"  # documents of the caller's account
    OWNER = "owner"  # documents the caller created


@dataclass(frozen=True)
class CollectionRules:
    """The read and write levels of one collection, and whether it is public."""

    name: str
    read: Level
    write: Level
    public: bool

    @property
    def channel(self) -> str:
        """The realtime channel where this collection's changes are published."""
        return f"db-{self.name}"


def validate_collection_name(name: str) -> str:
    """Return `name` if it is a valid collection name, else raise BadRequest."""
    if not name or len(name) > MAX_COLLECTION_LENGTH or not _NAME.fullmatch(name):
        raise BadRequest(
            "invalid collection name: use 1 to "
            f"{MAX_COLLECTION_LENGTH} characters among A-Z, a-z, 0-9, '_' and '-'"
        )
    return name


def _level(digits: tuple[int, int, int], bit: int) -> Level:
    _owner, account, everyone = digits
    if everyone & bit:
        return Level.EVERYONE
    if account & bit:
        return Level.ACCOUNT
    return Level.OWNER


@functools.lru_cache(maxsize=4096)  # a pure function of the name, asked on every document call
def collection_rules(name: str) -> CollectionRules:
    """The rules for a (validated) collection name; the owner digit is never consulted."""
    validate_collection_name(name)
    match = _SUFFIX.search(name)
    digits = (int(match[1]), int(match[2]), int(match[3])) if match else DEFAULT_DIGITS
    return CollectionRules(
        name=name,
        read=_level(digits, _READ_BIT),
        write=_level(digits, _WRITE_BIT),
        public=name.startswith("pub_"),
    )


def may_read(rules: CollectionRules, *, role: int, account_id: str, user_id: str,
             doc_account_id: str, doc_owner_id: str) -> bool:
    """Whether a caller may read one document (used to filter realtime events)."""
    return _allowed(rules.read, rules.public, role, account_id, user_id, doc_account_id, doc_owner_id)


def _allowed(level: Level, public: bool, role: int, account_id: str, user_id: str,
             doc_account_id: str, doc_owner_id: str) -> bool:
    if public or role >= ROOT_ROLE or level is Level.EVERYONE:
        return True
    if level is Level.ACCOUNT:
        return doc_account_id == account_id
    return doc_account_id == account_id and doc_owner_id == user_id
