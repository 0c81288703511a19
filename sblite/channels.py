"""Channel names and channel rules (who may join, who may publish, how much history is kept)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from collections.abc import Iterable

from sblite.errors import BadRequest

MAX_CHANNEL_LENGTH = 128
MAX_HISTORY = 1000
PUBLISH_MODES = ("members", "server")
DB_CHANNEL_PREFIX = "db-"
# `sys-` channels carry the server's own events (account changes on `sys-users`): only the
# server publishes there, and only root connections may join.
SYSTEM_CHANNEL_PREFIX = "sys-"
USERS_CHANNEL = "sys-users"


@dataclass(frozen=True)
class ChannelRule:
    """Settings for the channels a name or glob pattern (`private-*`) matches."""

    pattern: str
    auth: bool = True  # only authenticated connections may join
    publish: str = "members"  # "server": clients may read, only functions, tasks and root post
    history: int = 0  # how many recent messages to keep and replay on join

    def to_json(self) -> dict[str, Any]:
        """The rule as the API shows it."""
        return {"name": self.pattern, "auth": self.auth, "publish": self.publish, "history": self.history}


DEFAULT_RULE = ChannelRule(pattern="*")


def validate_channel(name: Any) -> str:
    """Return `name` if it is a usable channel name, else raise BadRequest."""
    if not isinstance(name, str) or not name or len(name) > MAX_CHANNEL_LENGTH:
        raise BadRequest(f"invalid channel name: use 1 to {MAX_CHANNEL_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise BadRequest("invalid channel name: control characters are not allowed")
    return name


def is_db_channel(name: str) -> bool:
    """Whether a channel carries a collection's changes (only the server writes there)."""
    return name[:3].lower() == DB_CHANNEL_PREFIX


def is_system_channel(name: str) -> bool:
    """Whether a channel carries the server's own events (only root may read, only the server writes)."""
    return name[:4].lower() == SYSTEM_CHANNEL_PREFIX


def check_publishable(name: Any, db_refusal: str = "you cannot write to database channel") -> str:
    """A channel a client, root or a function may publish to; BadRequest (`db_refusal` for `db-`) otherwise."""
    channel = validate_channel(name)
    if is_db_channel(channel):
        raise BadRequest(db_refusal)
    if is_system_channel(channel):
        raise BadRequest(f"{channel} is a system channel: only the server publishes there")
    return channel


def parse_rule(pattern: str, body: Any) -> ChannelRule:
    """A rule from a PUT body; absent keys take their defaults; raise BadRequest on bad values."""
    validate_channel(pattern)
    if not isinstance(body, dict):
        raise BadRequest('invalid body: expected {"auth": true, "publish": "members", "history": 0}')
    unknown = sorted(set(body) - {"auth", "publish", "history", "name"})
    if unknown:
        raise BadRequest(f"unknown channel setting(s): {', '.join(unknown)}")
    auth = body.get("auth", DEFAULT_RULE.auth)
    publish = body.get("publish", DEFAULT_RULE.publish)
    history = body.get("history", DEFAULT_RULE.history)
    if not isinstance(auth, bool):
        raise BadRequest('"auth" must be true or false')
    if publish not in PUBLISH_MODES:
        raise BadRequest('"publish" must be "members" or "server"')
    if isinstance(history, bool) or not isinstance(history, int) or not 0 <= history <= MAX_HISTORY:
        raise BadRequest(f'"history" must be a whole number from 0 to {MAX_HISTORY}')
    return ChannelRule(pattern=pattern, auth=auth, publish=publish, history=history)


def match_rule(rules: Iterable[ChannelRule], channel: str) -> ChannelRule:
    """The rule for a channel: an exact name first, else the longest matching glob, else the default."""
    best: ChannelRule | None = None
    for rule in rules:
        if rule.pattern == channel:
            return rule
        if fnmatchcase(channel, rule.pattern) and (best is None or len(rule.pattern) > len(best.pattern)):
            best = rule
    return best or DEFAULT_RULE
