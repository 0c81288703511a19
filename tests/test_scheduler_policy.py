"""The scheduler's rules as tables: what is due after a downtime, overlap, retention, how long the loop sleeps."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from sblite.cron import parse_schedule
from sblite.scheduler.policy import Retention, admit, decide, kept, sleep_seconds

HOUR = 3600.0
WINDOW = 6 * HOUR


def every(period: float):
    """An `@every` schedule: instants on multiples of `period` since the epoch."""
    return lambda t: (math.floor(t / period) + 1) * period


def once(t: float) -> None:
    """A one-off task: no instant after its own."""
    return None


def cron(expression: str, zone: str = "UTC"):
    """A real schedule, as the service turns it into next_after."""
    schedule = parse_schedule(expression, zone)
    return lambda t: schedule.next_after(datetime.fromtimestamp(t, UTC)).timestamp()


# (what, next_run, now, schedule, catchup, window) -> (run, missed, next_run, catchup)
DUE = [
    ("on time", 100, 100.002, every(1), "latest", WINDOW, (100,), 0, 101, False),
    ("a little late is on time", 100, 100.9, every(1), "latest", WINDOW, (100,), 0, 101, False),
    ("late past the tolerance is a catch-up", 100, 101.5, every(10), "latest", WINDOW, (100,), 0, 110, True),
    ("3 s down, latest: the last one runs", 100, 103.5, every(1), "latest", WINDOW, (103,), 3, 104, True),
    ("3 s down, all: each runs, oldest first", 100, 103.5, every(1), "all", WINDOW, (100, 101, 102, 103), 0, 104,
     True),
    ("3 s down, skip: only the one on time", 100, 103.5, every(1), "skip", WINDOW, (103,), 3, 104, True),
    ("skip: nothing on time, nothing runs", 100, 105.5, every(2), "skip", WINDOW, (), 3, 106, True),
    ("latest outside the window: missed", 0, 7 * HOUR, every(8 * HOUR), "latest", WINDOW, (), 1, 8 * HOUR, True),
    ("latest inside the window", 0, 5 * HOUR, every(8 * HOUR), "latest", WINDOW, (0,), 0, 8 * HOUR, True),
    ("latest of several", 0, 7 * HOUR + 1, every(HOUR), "latest", WINDOW, (7 * HOUR,), 7, 8 * HOUR, True),
    ("all keeps to the window", 0, 7 * HOUR + 1, every(HOUR), "all", WINDOW, tuple(h * HOUR for h in range(2, 8)),
     2, 8 * HOUR, True),
    ("a short window", 0, 7 * HOUR + 1, every(HOUR), "all", 1.5 * HOUR, (6 * HOUR, 7 * HOUR), 6, 8 * HOUR, True),
    ("one-off due", 50, 50.1, once, "latest", WINDOW, (50,), 0, None, False),
    ("one-off late but in the window", 50, 50 + HOUR, once, "latest", WINDOW, (50,), 0, None, True),
    ("one-off too late", 50, 50 + 7 * HOUR, once, "latest", WINDOW, (), 1, None, True),
    ("one-off, skip, late", 50, 60, once, "skip", WINDOW, (), 1, None, True),
]


@pytest.mark.parametrize(("what", "next_run", "now", "schedule", "catchup", "window", "run", "missed", "upcoming",
                          "is_catchup"), DUE, ids=[row[0] for row in DUE])
def test_what_is_due(what, next_run, now, schedule, catchup, window, run, missed, upcoming, is_catchup) -> None:
    decision = decide(next_run, now, schedule, catchup, window)
    assert decision is not None
    assert (decision.run, decision.missed, decision.next_run, decision.catchup) == (run, missed, upcoming,
                                                                                    is_catchup)
    assert decision.missed_exact


def test_nothing_is_due_before_the_next_run() -> None:
    assert decide(100, 99.999, every(1), "latest", WINDOW) is None


def test_a_missed_stretch_is_reported_by_its_ends() -> None:
    decision = decide(100, 103.5, every(1), "latest", WINDOW)
    assert decision is not None
    assert (decision.first_missed, decision.last_missed) == (100, 102)


def test_a_long_downtime_finds_the_latest_instant_without_listing_every_one() -> None:
    calls = 0
    second = every(1)

    def counted(t: float) -> float | None:
        nonlocal calls
        calls += 1
        return second(t)

    decision = decide(100, 100 + 30 * 86400 + 0.5, counted, "latest", WINDOW)
    assert decision is not None
    assert decision.run == (100 + 30 * 86400,)
    assert decision.next_run == 100 + 30 * 86400 + 1
    assert not decision.missed_exact and decision.missed >= 100
    assert calls < 400


def test_all_runs_at_most_its_limit_oldest_first() -> None:
    decision = decide(0, 1000.5, every(1), "all", WINDOW, all_limit=10)
    assert decision is not None
    assert decision.run == tuple(float(t) for t in range(10))
    assert decision.next_run == 1001
    assert decision.missed >= 91 and not decision.missed_exact


def test_all_after_a_long_downtime_starts_at_the_window() -> None:
    now = 10 * 86400 + 0.5
    decision = decide(0, now, every(60), "all", HOUR, all_limit=100)
    assert decision is not None
    assert decision.run[0] == math.ceil((now - HOUR) / 60) * 60
    assert decision.run[-1] == math.floor(now / 60) * 60
    assert len(decision.run) == 60


@pytest.mark.parametrize(("zone", "down_from", "down_to", "expected", "missed"), [
    # a daily 09:00 in Paris (08:00 UTC), the server down across three of them: the latest one runs
    ("Europe/Paris", "2030-03-04T07:00:00Z", "2030-03-06T09:00:00Z", "2030-03-06T08:00:00Z", 2),
    # the same in New York, where 09:00 is 14:00 UTC in March before DST: two came due
    ("America/New_York", "2030-03-04T15:00:00Z", "2030-03-06T15:00:00Z", "2030-03-06T14:00:00Z", 1),
])
def test_catch_up_with_a_cron_in_a_zone(zone: str, down_from: str, down_to: str, expected: str, missed: int) -> None:
    schedule = cron("0 9 * * *", zone)
    start = datetime.fromisoformat(down_from).timestamp()
    next_run = schedule(start)
    decision = decide(next_run, datetime.fromisoformat(down_to).timestamp(), schedule, "latest", WINDOW)
    assert decision is not None
    assert decision.run == (datetime.fromisoformat(expected).timestamp(),)
    assert decision.missed == missed


# overlap: (policy, running, queued) -> what an instant that comes due does
OVERLAP = [
    ("skip", 0, 0, "start"), ("skip", 1, 0, "skip"), ("skip", 0, 1, "skip"),
    ("queue_one", 0, 0, "start"), ("queue_one", 1, 0, "queue"), ("queue_one", 1, 1, "skip"),
    ("allow", 0, 0, "start"), ("allow", 3, 0, "start"), ("allow", 1, 1, "start"),
]


@pytest.mark.parametrize(("overlap", "running", "queued", "action"), OVERLAP)
def test_overlap(overlap: str, running: int, queued: int, action: str) -> None:
    assert admit(overlap, running, queued) == action


DAY = 86400.0
RETENTION = [
    ("under both limits", [0, 1, 2], 10 * DAY, Retention(runs=5, days=14), [True, True, True]),
    ("the newest N", [0, 1, 2, 3], 10 * DAY, Retention(runs=2, days=14), [False, False, True, True]),
    ("none older than D days", [0, 5 * DAY, 9 * DAY], 10 * DAY, Retention(runs=100, days=2), [False, False, True]),
    ("both", [0, 8 * DAY, 9 * DAY, 9.5 * DAY], 10 * DAY, Retention(runs=2, days=1.5), [False, False, True, True]),
]


@pytest.mark.parametrize(("what", "created", "now", "retention", "expected"), RETENTION,
                         ids=[row[0] for row in RETENTION])
def test_retention(what, created, now, retention, expected) -> None:
    assert kept(created, now, retention) == expected


@pytest.mark.parametrize(("earliest", "now", "expected"), [
    (None, 0, 30), (10, 0, 10), (100, 0, 30), (5, 6, 0),
])
def test_the_loop_sleeps_until_the_earliest_run_at_most_its_longest(earliest, now, expected) -> None:
    assert sleep_seconds(earliest, now, 30) == expected
