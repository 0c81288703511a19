"""Plain data shared by every layer: identities, users, apps and bus messages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROOT_ROLE = 100
ACCOUNT_ADMIN_ROLE = 50
MEMBER_ROLE = 0


@dataclass(frozen=True)
class App:
    """An app (StaticBackend's "database"): the tenant a public key names."""

    id: str
    pk: str
    name: str


@dataclass(frozen=True)
class User:
    """A user row, without its password hash."""

    id: str
    app_id: str
    account_id: str
    email: str
    role: int
    token: str
    created: str

    def public(self) -> dict[str, Any]:
        """The user as the API shows it: never the per-user token."""
        return {
            "id": self.id,
            "accountId": self.account_id,
            "email": self.email,
            "role": self.role,
            "created": self.created,
        }


@dataclass(frozen=True)
class Identity:
    """Who is calling: the user a token resolved to, or the anonymous caller of a pub_ collection."""

    app_id: str
    account_id: str
    user_id: str
    email: str
    role: int

    @property
    def is_root(self) -> bool:
        """Whether this identity bypasses collection permissions."""
        return self.role >= ROOT_ROLE

    def auth_json(self) -> dict[str, Any]:
        """The `auth` object of a realtime message."""
        return {
            "accountId": self.account_id,
            "userId": self.user_id,
            "email": self.email,
            "role": self.role,
        }


@dataclass
class Message:
    """A message on the event bus; `data` is always a string, as on StaticBackend's wire."""

    type: str
    channel: str
    data: str = ""
    sid: str = ""
    app_id: str = ""
    identity: Identity | None = None
    # How deep in a chain of functions triggering functions it was published (0: not by a
    # function), so that a chain can be cut off.
    depth: int = 0
    # Where it came from when that changes which functions it triggers ("chan_in": a client).
    origin: str = ""
