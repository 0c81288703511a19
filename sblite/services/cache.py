"""Root's view of the per-app cache (`/sudo/cache`): the values functions read and write with
cacheGet/cacheSet, and durable FIFO queues of strings beside them."""

from __future__ import annotations

from sblite.errors import BadRequest, NotFound
from sblite.store import FunctionStore
from sblite.store.queues import QueueStore

MAX_KEY_LENGTH = 1000
QUEUE = "queue"


def check_key(key: object) -> str:
    """A cache key: a non-empty string of at most MAX_KEY_LENGTH characters."""
    if not isinstance(key, str) or not key:
        raise BadRequest("a cache key is required (key)")
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"cache keys are limited to {MAX_KEY_LENGTH} characters")
    if not key.isprintable() or not _encodable(key):
        raise BadRequest("cache keys must be printable text")
    return key


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate, which a percent-encoded query may carry
        return False
    return True


def is_queue(kind: object) -> bool:
    """Whether `type` names the queue (empty or missing: a plain value)."""
    if kind in (None, ""):
        return False
    if kind != QUEUE:
        raise BadRequest('type must be "queue" or left out')
    return True


class CacheService:
    """Reads and writes cache values and queues of an app."""

    def __init__(self, values: FunctionStore, queues: QueueStore, max_value_bytes: int) -> None:
        self._values = values
        self._queues = queues
        self._max = max_value_bytes

    async def get(self, app_id: str, key: object, kind: object) -> str:
        """The value of `key`, or the oldest queued value ("" when the queue is empty)."""
        key = check_key(key)
        if is_queue(kind):
            value = await self._queues.pop(app_id, key)
            return "" if value is None else value
        value = await self._values.cache_get(app_id, key)
        if value is None:
            raise NotFound(f"cache key {key} has no value")
        return value

    async def put(self, app_id: str, key: object, value: object, kind: object) -> None:
        """Set `key` to `value`, or append `value` to the queue `key`."""
        key = check_key(key)
        queue = is_queue(kind)
        if not isinstance(value, str):
            raise BadRequest("value must be a string")
        if not _encodable(value) or len(value.encode()) > self._max:
            raise BadRequest(f"cache values are text of at most {self._max} bytes")
        if queue:
            await self._queues.push(app_id, key, value)
        else:
            await self._values.cache_set(app_id, key, value)
