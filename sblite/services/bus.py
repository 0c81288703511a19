"""The event bus: every system and custom message passes here on its way to subscribers."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Awaitable, Callable, Protocol

from sblite.model import Message

log = logging.getLogger(__name__)

# A handler may return an awaitable: the work it started that must be durable (a queued job).
Handler = Callable[[Message], Awaitable[None] | None]


class Stage(Protocol):
    """A durable subscriber's work for messages that announce a change not yet committed."""

    def store(self, transaction: Any, messages: list[Message]) -> None:
        """Store the work inside the change's own transaction (so both commit or neither)."""

    def committed(self) -> None:
        """Start the stored work: the change has committed."""


# Given a message about to be announced (its data not filled in), the stage of its work or None.
Stager = Callable[[Message], Stage | None]


class EventBus:
    """Synchronous fan-out to subscribers; a handler must not block (it queues work instead)."""

    def __init__(self) -> None:
        self._durable: list[Handler] = []  # store work they must not lose (queued function runs)
        self._live: list[Handler] = []  # deliver at once (realtime members)
        self._stagers: list[Stager] = []  # the durable subscribers' side of staged messages
        self.published: Counter[str] = Counter()
        self.handler_errors = 0

    def subscribe(self, handler: Handler, durable: bool = False) -> Callable[[], None]:
        """Call `handler` for every message from now on; returns a function that unsubscribes.

        A durable handler may return an awaitable that completes once its work is stored.
        """
        handlers = self._durable if durable else self._live
        handlers.append(handler)
        return lambda: handlers.remove(handler) if handler in handlers else None

    def subscribe_staged(self, stager: Stager) -> Callable[[], None]:
        """A durable subscriber's handling of staged messages (see `stage`); returns its unsubscribe."""
        self._stagers.append(stager)
        return lambda: self._stagers.remove(stager) if stager in self._stagers else None

    def stage(self, template: Message) -> list[Stage]:
        """For a change about to be written: the durable work its messages (like `template`) need.

        The writer stores each stage inside the change's transaction, calls `committed` after
        the commit, and then announces the messages with `publish_staged`.
        """
        stages = (stager(template) for stager in tuple(self._stagers))  # a failure fails the change
        return [stage for stage in stages if stage is not None]

    def publish_staged(self, message: Message) -> None:
        """Deliver a message whose durable work was staged with its change (live subscribers only)."""
        self.published[message.type] += 1
        self._call(self._live, message)

    def publish(self, message: Message) -> list[Awaitable[None]]:
        """Deliver `message` to every subscriber; returns what durable subscribers are storing."""
        self.published[message.type] += 1
        pending = self._call(self._durable, message)
        self._call(self._live, message)
        return pending

    async def publish_durably(self, message: Message, on_stored: Callable[[], None] | None = None) -> None:
        """Store first (durable subscribers), then call `on_stored` (an acknowledgement), then deliver."""
        self.published[message.type] += 1
        pending = self._call(self._durable, message)
        if len(pending) == 1:
            await pending[0]
        elif pending:
            await asyncio.gather(*pending)
        if on_stored is not None:
            on_stored()
        self._call(self._live, message)

    def _call(self, handlers: list[Handler], message: Message) -> list[Awaitable[None]]:
        pending: list[Awaitable[None]] = []
        for handler in tuple(handlers):
            try:
                started = handler(message)
            except Exception:
                self.handler_errors += 1
                log.exception("event bus subscriber failed on %s message", message.type)
                continue
            if started is not None:
                pending.append(started)
        return pending
