"""The job queue's rules, as pure functions of `now`: which jobs run, when a failed one runs again.

The dispatcher asks these and does what they say; nothing here reads a clock or sleeps, so
the rules are tested with plain numbers.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass

from sblite.store.functions import Job

BACKOFF_SECONDS = (1.0, 5.0, 30.0, 120.0)  # before the 2nd, 3rd, 4th, ... attempt


@dataclass(frozen=True)
class Retry:
    """What a failed attempt leads to."""

    attempts: int  # attempts made so far, this one included
    next_at: float  # when the next attempt is due
    park: bool  # no attempt left: the job waits for a replay


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]


def after_failure(attempts: int, now: float, max_attempts: int) -> Retry:
    """A job that had made `attempts` attempts has just failed again at `now`."""
    made = attempts + 1
    return Retry(attempts=made, next_at=now + backoff(made), park=made >= max_attempts)


def room(max_running: int, held: int) -> int:
    """How many jobs to take from SQLite now: none until a quarter of the room is free (or none runs)."""
    free = max(0, max_running - held)
    return free if held == 0 or free >= max(1, max_running // 4) else 0


def is_due(at: float | None, now: float) -> bool:
    """Whether something scheduled for `at` (None: nothing) is due at `now`."""
    return at is not None and at <= now


def earliest(a: float | None, b: float | None) -> float | None:
    """The earlier of two optional times."""
    return b if a is None else a if b is None else min(a, b)


def wait_seconds(retry_at: float | None, now: float) -> float | None:
    """How long the dispatcher may wait for news before a retry is due (None: until woken)."""
    return None if retry_at is None else max(0.0, retry_at - now)


def take(jobs: Sequence[Job], now: float, running: Container[str], limit: int) -> list[Job]:
    """The jobs to start: due, not running already, oldest first, at most `limit`."""
    return [job for job in jobs if job.next_at <= now and job.id not in running][:limit]
