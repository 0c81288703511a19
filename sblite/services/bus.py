"""The event bus: every system and custom message passes here on its way to subscribers."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable

from sblite.model import Message

log = logging.getLogger(__name__)

Handler = Callable[[Message], None]


class EventBus:
    """Synchronous fan-out to subscribers; a handler must not block (it queues work instead)."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self.published: Counter[str] = Counter()
        self.handler_errors = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call `handler` for every message from now on; returns a function that unsubscribes."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler) if handler in self._handlers else None

    def publish(self, message: Message) -> None:
        """Deliver `message` to every subscriber; a failing subscriber is logged and counted."""
        self.published[message.type] += 1
        for handler in tuple(self._handlers):
            try:
                handler(message)
            except Exception:
                self.handler_errors += 1
                log.exception("event bus subscriber failed on %s message", message.type)
