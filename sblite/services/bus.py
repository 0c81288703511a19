"""The event bus: every system and custom message passes here on its way to subscribers."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Awaitable, Callable

from sblite.model import Message

log = logging.getLogger(__name__)

# A handler may return an awaitable: the work it started that must be durable (a queued job).
Handler = Callable[[Message], Awaitable[None] | None]


class EventBus:
    """Synchronous fan-out to subscribers; a handler must not block (it queues work instead)."""

    def __init__(self) -> None:
        self._durable: list[Handler] = []  # store work they must not lose (queued function runs)
        self._live: list[Handler] = []  # deliver at once (realtime members)
        self.published: Counter[str] = Counter()
        self.handler_errors = 0

    def subscribe(self, handler: Handler, durable: bool = False) -> Callable[[], None]:
        """Call `handler` for every message from now on; returns a function that unsubscribes.

        A durable handler may return an awaitable that completes once its work is stored.
        """
        handlers = self._durable if durable else self._live
        handlers.append(handler)
        return lambda: handlers.remove(handler) if handler in handlers else None

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
        if pending:
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
