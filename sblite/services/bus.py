"""The event bus: every system and custom message passes here on its way to subscribers.

One outbox. A publisher awaits `publish(message)` (or `publish_many`): durable subscribers
(the dispatcher's job queue) store their rows first, in a write the bus opens, and the call
returns once those rows are committed; then the durable subscribers start their work, and the
live subscribers (the hub) get the messages right after the publisher's current step (so a
reply it sends on return, like chan_in's `ok`, reaches its client first). A change that is written in a transaction of
its own (a document write) stores the durable rows inside it instead, `store(tx, messages)`
in the write, and after its commit calls `publish_many(messages, stored=True)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Protocol

from sblite.model import Message

log = logging.getLogger(__name__)

# A live subscriber: called with every message once it is durable; it must not block.
Handler = Callable[[Message], None]
# Runs `fn(tx)` in a committed write and returns its result (the store's `Database.write`).
Writer = Callable[[Callable[[Any], Any]], Awaitable[Any]]


class DurableSubscriber(Protocol):
    """A subscriber whose work must not be lost: it stores rows before anyone sees the message."""

    def wants(self, message: Message) -> bool:
        """Whether messages like this one need rows stored (cheap, and no side effects)."""

    def store(self, tx: Any, messages: Sequence[Message]) -> Any:
        """Write the rows for `messages` in transaction `tx`; returns what to start once they are committed.

        It may run more than once (`Database.write`), so it touches only `tx`.
        """

    def committed(self, messages: Sequence[Message], stored: Any) -> None:
        """The rows for `messages` are committed (called once, in the event loop): start the work.

        `stored` is what `store` returned, or None when the rows were stored in a caller's write.
        """


class EventBus:
    """Fan-out to subscribers, durable ones first; a subscriber must not block (it queues work instead)."""

    def __init__(self, write: Writer | None = None) -> None:
        self._write = write  # None: no durable subscriber may join (a bus for tests of live delivery)
        self._durable: list[DurableSubscriber] = []
        self._live: list[Handler] = []
        self.published: Counter[str] = Counter()
        self.handler_errors = 0

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call `handler` for every message from now on; returns a function that unsubscribes."""
        self._live.append(handler)
        return lambda: self._live.remove(handler) if handler in self._live else None

    def subscribe_durable(self, subscriber: DurableSubscriber) -> Callable[[], None]:
        """Store `subscriber`'s rows for every message before it is delivered; returns its unsubscribe."""
        if self._write is None:
            raise RuntimeError("this bus has no database to store durable subscribers' rows in")
        self._durable.append(subscriber)
        return lambda: self._durable.remove(subscriber) if subscriber in self._durable else None

    def wants_rows(self, message: Message) -> bool:
        """Whether some durable subscriber stores rows for messages like this one."""
        return any(subscriber.wants(message) for subscriber in self._durable)

    def store(self, tx: Any, messages: Sequence[Message]) -> list[tuple[DurableSubscriber, Any]]:
        """Inside a write: the durable subscribers' rows for `messages` (they commit or fail with it).

        Returns what each subscriber will start once the write has committed.
        """
        stored = []
        for subscriber in tuple(self._durable):
            wanted = [message for message in messages if subscriber.wants(message)]
            if wanted:
                stored.append((subscriber, subscriber.store(tx, wanted)))
        return stored

    async def publish(self, message: Message) -> None:
        """Deliver `message`; returns once the durable subscribers' rows for it are committed."""
        await self.publish_many([message])

    async def publish_many(self, messages: Sequence[Message], *, stored: bool = False) -> None:
        """Deliver `messages`; unless `stored` (by `store`, in a write that has committed), store their rows first.

        Raises what the write raised: then no subscriber has seen the messages.
        """
        started: dict[int, Any] = {}
        if not stored and self._write is not None and any(self.wants_rows(message) for message in messages):
            results = await self._write(lambda tx: self.store(tx, messages))
            started = {id(subscriber): result for subscriber, result in results}
        kind = messages[0].type if messages else ""
        for subscriber in tuple(self._durable):
            self._call(partial(subscriber.committed, messages, started.get(id(subscriber))), kind)
        if messages:
            asyncio.get_running_loop().call_soon(self._deliver, messages)

    def _deliver(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self.published[message.type] += 1
            for handler in tuple(self._live):
                self._call(partial(handler, message), message.type)

    def _call(self, handler: Callable[[], None], kind: str) -> None:
        try:
            handler()
        except Exception:
            self.handler_errors += 1
            log.exception("event bus subscriber failed on %s message", kind)
