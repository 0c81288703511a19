"""Collection permissions from the `_NNN_` suffix and the `pub_` prefix (spec §2.6)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sblite.errors import BadRequest
from sblite.model import ACCOUNT_ADMIN_ROLE, MEMBER_ROLE, ROOT_ROLE
from sblite.permissions import Level, collection_rules, may_read, validate_collection_name

EVERYONE, ACCOUNT, OWNER = Level.EVERYONE, Level.ACCOUNT, Level.OWNER

RULES = [
    # (collection, read, write, public)
    ("tasks", ACCOUNT, OWNER, False),  # default 740
    ("x_700_", OWNER, OWNER, False),
    ("x_760_", ACCOUNT, ACCOUNT, False),
    ("x_744_", EVERYONE, OWNER, False),
    ("msgs_774_", EVERYONE, ACCOUNT, False),
    ("x_766_", EVERYONE, EVERYONE, False),
    ("x_777_", EVERYONE, EVERYONE, False),
    ("x_000_", OWNER, OWNER, False),
    ("x_077_", EVERYONE, EVERYONE, False),  # the owner digit is never consulted
    ("x_720_", OWNER, ACCOUNT, False),
    ("x_702_", OWNER, EVERYONE, False),
    ("x_711_", OWNER, OWNER, False),  # bit 1 is ignored
    ("x_555_", EVERYONE, OWNER, False),  # 5 = read + execute
    ("x_999_", OWNER, OWNER, False),  # 9 & 4 == 0 and 9 & 2 == 0
    ("_700_", OWNER, OWNER, False),
    ("pub_x", ACCOUNT, OWNER, True),
    ("pub_x_700_", OWNER, OWNER, True),
    ("pub_", ACCOUNT, OWNER, True),
    ("PUB_x", ACCOUNT, OWNER, False),  # the prefix is case-sensitive
    ("pubx", ACCOUNT, OWNER, False),
    ("x_pub_", ACCOUNT, OWNER, False),
    # a suffix that is not exactly `_ddd_` at the very end leaves the default 740
    ("a_700_b", ACCOUNT, OWNER, False),
    ("a_740_b", ACCOUNT, OWNER, False),
    ("x_7400_", ACCOUNT, OWNER, False),
    ("x_70_", ACCOUNT, OWNER, False),
    ("x_700", ACCOUNT, OWNER, False),
    ("x700_", ACCOUNT, OWNER, False),
    ("x_700__", ACCOUNT, OWNER, False),
    ("x_7_0_0_", ACCOUNT, OWNER, False),
    ("x-700-", ACCOUNT, OWNER, False),
]


@pytest.mark.parametrize("name, read, write, public", RULES)
def test_collection_rules(name: str, read: Level, write: Level, public: bool) -> None:
    rules = collection_rules(name)
    assert (rules.name, rules.read, rules.write, rules.public) == (name, read, write, public)
    assert rules.channel == f"db-{name}"


def test_collection_rules_validates_the_name() -> None:
    with pytest.raises(BadRequest, match="invalid collection name"):
        collection_rules("x_700_; DROP TABLE documents")


NAMES = [
    # (name, valid)
    ("a", True),
    ("tasks", True),
    ("a-b_C9", True),
    ("x_760_", True),
    ("_", True),
    ("-", True),
    ("123", True),
    ("x" * 64, True),
    ("", False),
    ("x" * 65, False),
    ("a b", False),
    (" tasks", False),
    ("tasks\n", False),
    ("a\tb", False),
    ("a.b", False),
    ("a/b", False),
    ("a\\b", False),
    ("../etc", False),
    ("é", False),
    ("naïve", False),
    ("ｔａｓｋｓ", False),  # fullwidth letters
    ("x_٧٤٠_", False),  # Arabic-Indic digits
    ("日本", False),
    ("a;DROP TABLE documents", False),
    ("a'b", False),
    ('a"b', False),
    ("a`b", False),
    ("a--b;", False),
    ("a%20b", False),
    ("a\x00b", False),
    ("a?b", False),
    ("a*", False),
]


@pytest.mark.parametrize("name, valid", NAMES)
def test_validate_collection_name(name: str, valid: bool) -> None:
    if valid:
        assert validate_collection_name(name) == name
    else:
        with pytest.raises(BadRequest, match="invalid collection name") as info:
            validate_collection_name(name)
        assert info.value.status == 400


# The document in every may_read case belongs to account acc1 and was created by user u1.
CALLERS = {
    "owner": dict(role=MEMBER_ROLE, account_id="acc1", user_id="u1"),
    "teammate": dict(role=MEMBER_ROLE, account_id="acc1", user_id="u2"),
    "account admin": dict(role=ACCOUNT_ADMIN_ROLE, account_id="acc1", user_id="u3"),
    "stranger": dict(role=MEMBER_ROLE, account_id="acc2", user_id="u9"),
    "same user id, other account": dict(role=MEMBER_ROLE, account_id="acc2", user_id="u1"),
    "other account admin": dict(role=ACCOUNT_ADMIN_ROLE, account_id="acc2", user_id="u8"),
    "root of another account": dict(role=ROOT_ROLE, account_id="acc9", user_id="u0"),
}
# collection → the callers (keys of CALLERS) that may read the document
READERS = {
    "tasks": {"owner", "teammate", "account admin", "root of another account"},
    "x_760_": {"owner", "teammate", "account admin", "root of another account"},
    "x_700_": {"owner", "root of another account"},
    "x_720_": {"owner", "root of another account"},
    "x_744_": set(CALLERS),
    "msgs_774_": set(CALLERS),
    "pub_x": set(CALLERS),
    "pub_x_700_": set(CALLERS),
}


@pytest.mark.parametrize("caller", sorted(CALLERS))
@pytest.mark.parametrize("collection", sorted(READERS))
def test_may_read(collection: str, caller: str) -> None:
    allowed = may_read(collection_rules(collection), **CALLERS[caller], doc_account_id="acc1", doc_owner_id="u1")
    assert allowed is (caller in READERS[collection])


VALID_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@settings(max_examples=200, deadline=None)
@given(name=st.one_of(st.text(), st.text(alphabet="abcXYZ019_-", max_size=70)))
def test_any_accepted_name_is_ascii_word_characters(name: str) -> None:
    try:
        validate_collection_name(name)
    except BadRequest:
        assert not VALID_NAME.fullmatch(name)
    else:
        assert VALID_NAME.fullmatch(name)
        assert collection_rules(name).name == name
