"""The scheduler's rules as pure functions of `now`: what is due, catch-up, overlap and retention.

Times are seconds since the Unix epoch. A schedule is given as `next_after(t)`: its first
instant strictly after `t`, or None when there is none (a one-off task after its time). Nothing
here reads a clock or sleeps, so every rule is tested with plain numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

NextAfter = Callable[[float], float | None]

CATCHUP_POLICIES = ("latest", "all", "skip")
OVERLAP_POLICIES = ("skip", "queue_one", "allow")
DEFAULT_CATCHUP_WINDOW = 6 * 3600.0
MIN_CATCHUP_WINDOW = 10.0
MAX_CATCHUP_WINDOW = 366 * 86400.0
CATCHUP_ALL_LIMIT = 100  # instants one catch-up runs at most with `all`
# An instant this late still counts as on time: the loop wakes a little after it, or the
# server was busy. A later one was missed, and the task's catch-up policy decides.
ON_TIME_SECONDS = 1.0
SCAN_LIMIT = 100  # instants listed one by one when several came due; past that, a search finds the latest
EPSILON = 1e-3  # schedules fire on whole seconds (one-off tasks have no next instant)


@dataclass(frozen=True)
class Decision:
    """What to do with a task whose next instant has come."""

    run: tuple[float, ...]  # instants to run now, oldest first
    missed: int  # instants that came due and will not run
    missed_exact: bool  # False: at least `missed` (too many to count one by one)
    first_missed: float | None
    last_missed: float | None
    next_run: float | None  # the first instant after `now`; None: the schedule has no more
    catchup: bool  # instants were missed or the one to run is late: the runs are a catch-up


def decide(next_run: float, now: float, next_after: NextAfter, catchup: str, window: float,
           all_limit: int = CATCHUP_ALL_LIMIT) -> Decision | None:
    """The instants due at `now` since `next_run`, split by the catch-up policy; None when none is due."""
    if next_run > now:
        return None
    listed, following = _upto(next_after, next_run, now, SCAN_LIMIT)
    exact = following is None or following > now
    latest = listed[-1] if exact else _latest(next_after, listed[-1], now)
    upcoming = following if exact else next_after(latest)
    cutoff = now - (ON_TIME_SECONDS if catchup == "skip" else max(window, ON_TIME_SECONDS))
    if catchup == "all":
        run = _from(next_after, listed, exact, cutoff, now, all_limit)
    else:
        run = [latest] if latest >= cutoff else []
    missed = sorted({*listed, latest} - set(run))  # every one when exact, else those known
    is_catchup = bool(missed) or (bool(run) and now - run[0] > ON_TIME_SECONDS)
    return Decision(run=tuple(run), missed=len(missed), missed_exact=exact,
                    first_missed=missed[0] if missed else None, last_missed=missed[-1] if missed else None,
                    next_run=upcoming, catchup=is_catchup)


def _upto(next_after: NextAfter, first: float, now: float, limit: int) -> tuple[list[float], float | None]:
    """Instants from `first` (one that is due) up to `now`, at most `limit`; and the instant after the last one."""
    listed = [first]
    following = next_after(first)
    while following is not None and following <= now and len(listed) < limit:
        listed.append(following)
        following = next_after(following)
    return listed, following


def _first_from(next_after: NextAfter, start: float) -> float | None:
    """The first instant at or after `start`."""
    return next_after(start - EPSILON)


def _count(next_after: NextAfter, start: float, now: float, cap: int) -> tuple[int, float | None]:
    """How many instants lie in [start, now] (at most `cap` counted), and the last one counted."""
    count, last, instant = 0, None, _first_from(next_after, start)
    while instant is not None and instant <= now and count < cap:
        count, last = count + 1, instant
        instant = next_after(instant)
    return count, last


def _latest(next_after: NextAfter, low: float, now: float) -> float:
    """The last instant in [low, now], `low` being one: found by halving, not by listing them all."""
    # Widen a span back from `now` until it holds an instant, then narrow it until it holds one only.
    span = 1.0
    while True:
        start = max(low, now - span)
        count, last = _count(next_after, start, now, 2)
        if count == 1 and last is not None:
            return last
        if count >= 2:
            break
        if start == low:
            return low
        span *= 2
    near, far = now - span, now - span / 2  # [near, now] holds two or more, [far, now] none or one
    far_count, far_last = _count(next_after, max(far, low), now, 2)
    if far_count == 1 and far_last is not None:
        return far_last
    while far - near > EPSILON:
        middle = (near + far) / 2
        count, last = _count(next_after, middle, now, 2)
        if count == 1 and last is not None:
            return last
        if count >= 2:
            near = middle
        else:
            far = middle
    count, last = _count(next_after, near, now, 2)
    assert last is not None
    return last


def _from(next_after: NextAfter, listed: list[float], exact: bool, cutoff: float, now: float,
          limit: int) -> list[float]:
    """The oldest `limit` instants in [cutoff, now]; `listed` holds the first due ones (all of them if `exact`)."""
    inside = [instant for instant in listed if instant >= cutoff]
    if len(inside) >= limit or exact:
        return inside[:limit]
    first = inside[0] if inside else _first_from(next_after, cutoff)
    if first is None or first > now:
        return []
    return _upto(next_after, first, now, limit)[0]


# --- overlap

def admit(overlap: str, running: int, queued: int) -> str:
    """What an instant that comes due does: "start", "queue" (after the run under way) or "skip"."""
    if overlap == "allow" or running + queued == 0:
        return "start"
    if overlap == "queue_one" and queued == 0:
        return "queue"
    return "skip"


# --- retention

@dataclass(frozen=True)
class Retention:
    """How much history a task keeps: its newest `runs` runs, none older than `days`."""

    runs: int = 100
    days: float = 14.0

    def cutoff(self, now: float) -> float:
        """Runs created before this are dropped."""
        return now - self.days * 86400


def kept(created: list[float], now: float, retention: Retention) -> list[bool]:
    """Which runs (creation times, oldest first) a task keeps."""
    cutoff, start = retention.cutoff(now), max(0, len(created) - retention.runs)
    return [index >= start and when >= cutoff for index, when in enumerate(created)]


# --- the loop

def sleep_seconds(earliest: float | None, now: float, longest: float) -> float:
    """How long the loop may sleep: until the earliest next run, at most `longest` (the clock may jump)."""
    if earliest is None:
        return longest
    return min(max(0.0, earliest - now), longest)
