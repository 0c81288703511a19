"""Channel rules (kept in memory, stored in SQLite) and channel history."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sblite.channels import ChannelRule, match_rule, parse_rule, validate_channel
from sblite.errors import NotFound
from sblite.model import Message
from sblite.services.hub import DB_EVENT_TYPES
from sblite.store import ChannelStore
from sblite.timeutil import now_text

log = logging.getLogger(__name__)
UNRECORDED_TYPES = DB_EVENT_TYPES | {"joined"}


class ChannelService:
    """Answers which rule applies to a channel, and keeps the history of channels that want it."""

    def __init__(self, store: ChannelStore) -> None:
        self._store = store
        self._rules: dict[str, list[ChannelRule]] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self.history_failures = 0

    async def load(self, app_ids: list[str]) -> None:
        """Read every app's rules into memory."""
        for app_id in app_ids:
            self._rules[app_id] = await self._store.rules(app_id)

    def rule_for(self, app_id: str, channel: str) -> ChannelRule:
        """The rule that applies to a channel of an app."""
        return match_rule(self._rules.get(app_id, ()), channel)

    def rules(self, app_id: str) -> list[ChannelRule]:
        """The stored rules of an app."""
        return list(self._rules.get(app_id, ()))

    def stored_rule(self, app_id: str, pattern: str) -> ChannelRule:
        """The rule stored under exactly this name or pattern."""
        for rule in self._rules.get(app_id, ()):
            if rule.pattern == pattern:
                return rule
        raise NotFound(f"no rule for channel {pattern}")

    async def put_rule(self, app_id: str, pattern: str, body: object) -> ChannelRule:
        """Create or replace the rule of a channel name or pattern."""
        rule = parse_rule(pattern, body)
        await self._store.put_rule(app_id, rule, now_text())
        self._rules[app_id] = [r for r in self._rules.get(app_id, ()) if r.pattern != pattern] + [rule]
        return rule

    async def delete_rule(self, app_id: str, pattern: str) -> None:
        """Delete a stored rule."""
        validate_channel(pattern)
        if not await self._store.delete_rule(app_id, pattern):
            raise NotFound(f"no rule for channel {pattern}")
        self._rules[app_id] = [r for r in self._rules.get(app_id, ()) if r.pattern != pattern]

    async def history(self, app_id: str, channel: str) -> list[str]:
        """The frames kept for a channel, oldest first."""
        keep = self.rule_for(app_id, channel).history
        return await self._store.history(app_id, channel, keep) if keep else []

    def record(self, message: Message, framed: Callable[[], str]) -> None:
        """Hub recorder: keep a message (its frame is `framed()`) when its channel's rule asks for history."""
        if message.type in UNRECORDED_TYPES:
            return
        keep = self.rule_for(message.app_id, message.channel).history
        if keep:
            task = asyncio.ensure_future(
                self._store.append_history(message.app_id, message.channel, framed(), keep, now_text()))
            self._pending.add(task)
            task.add_done_callback(self._recorded)

    def _recorded(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.history_failures += 1
            log.error("could not record channel history: %s", task.exception())

    async def flush(self) -> None:
        """Wait for history writes under way (before the database closes)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
