"""The per-user limit on custom messages: every path that publishes one asks here first.

A user (per app) may publish `per_second` messages a second on average, in bursts of up to
`burst`, over all paths together: `chan_in` from realtime clients, `POST /publish-message`
(root) and functions' `publish()`/`send()` (as the identity the run acts as). A message over
the limit is refused with TooManyRequests (429, with the seconds to wait), never dropped
silently: each path answers it its own way (an `error` frame, a 429, `{ok: false}`).
System messages (`db_*`, `joined`, `user_*`, ...) are not counted: the server publishes them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from sblite.errors import TooManyRequests
from sblite.model import Identity
from sblite.throttle import AttemptLimiter

PATHS = ("chan_in", "publish_message", "function")
OUTCOMES = ("allowed", "refused")


class PublishLimiter:
    """A leaky bucket per (app, user) over every path that publishes custom messages; counted by path."""

    def __init__(self, per_second: int, burst: int, *, max_keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_second < 1 or burst < 1:
            raise ValueError("per_second and burst must be at least 1")
        self.per_second = per_second
        self.burst = burst
        # `burst` messages drain in burst / per_second seconds: that many per second on average.
        self._buckets = AttemptLimiter(burst, burst / per_second, max_keys=max_keys, clock=clock)
        self.stats: Counter[tuple[str, str]] = Counter()

    def admit(self, path: str, identity: Identity) -> None:
        """Count one message `identity` publishes by `path`, or raise TooManyRequests when over the limit."""
        if path not in PATHS:
            raise ValueError(f"unknown publish path {path!r}")
        key = (identity.app_id, identity.user_id)
        retry = self._buckets.check(key)
        if retry is not None:
            self.stats[path, "refused"] += 1
            raise TooManyRequests(f"rate limit exceeded: at most {self.per_second} messages per second per user "
                                  f"(bursts of {self.burst}); try again in {retry} s", retry)
        self._buckets.fail(key)
        self.stats[path, "allowed"] += 1

    def tracked_users(self) -> int:
        """Users whose bucket is not empty yet (memory held)."""
        return len(self._buckets)
