"""The scheduler's counters: runs by status and how late scheduled runs start."""

from __future__ import annotations

import bisect
from collections import Counter

# Seconds: the loop aims at a few milliseconds; a busy server, much more.
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)


class Histogram:
    """Observations counted in buckets (Prometheus' cumulative `le` buckets when shown)."""

    def __init__(self, bounds: tuple[float, ...] = LATENESS_BUCKETS) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation."""
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it), ending with +Inf."""
        total, rows = 0, []
        for bound, count in zip((*(f"{b:g}" for b in self.bounds), "+Inf"), self._counts, strict=True):
            total += count
            rows.append((bound, total))
        return rows


class SchedulerStats:
    """What /metrics shows of the scheduler."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()  # by final status; missed counts instants
        self.lateness = Histogram()
        self.internal_errors = 0
