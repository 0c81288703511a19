"""Schedules (sblite.cron), table-driven from fixed instants: every syntax form, zones, both DST transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from hypothesis import given
from hypothesis import strategies as st

from sblite.cron import ScheduleError, parse_at, parse_schedule, parse_zone, preview
from sblite.errors import BadRequest


def _t(text: str) -> datetime:
    """An instant written with its offset, so each row shows the local time and the UTC one alike."""
    when = datetime.fromisoformat(text)
    assert when.tzinfo is not None, text
    return when


def _next(expression: str, zone: str | None, after: str, count: int) -> list[datetime]:
    return preview(parse_schedule(expression, zone), _t(after), count)


# (expression, zone, after, the next instants)
SYNTAX = [
    ("* * * * *", None, "2025-01-01T00:00:30+00:00", ["2025-01-01T00:01:00+00:00", "2025-01-01T00:02:00+00:00"]),
    ("*/15 * * * *", None, "2025-01-01T00:00:00+00:00", ["2025-01-01T00:15:00+00:00", "2025-01-01T00:30:00+00:00"]),
    ("5,35 * * * *", None, "2025-01-01T00:10:00+00:00", ["2025-01-01T00:35:00+00:00", "2025-01-01T01:05:00+00:00"]),
    ("0-10/5 * * * *", None, "2025-01-01T00:01:00+00:00",
     ["2025-01-01T00:05:00+00:00", "2025-01-01T00:10:00+00:00", "2025-01-01T01:00:00+00:00"]),
    ("10/20 * * * *", None, "2025-01-01T00:00:00+00:00",
     ["2025-01-01T00:10:00+00:00", "2025-01-01T00:30:00+00:00", "2025-01-01T00:50:00+00:00"]),
    ("0 9 * * *", None, "2025-01-01T09:00:00+00:00", ["2025-01-02T09:00:00+00:00"]),  # strictly after
    ("0 9 * * *", None, "2025-01-01T08:59:59.500000+00:00", ["2025-01-01T09:00:00+00:00"]),
    ("30 8 * * 1-5", None, "2025-01-03T09:00:00+00:00", ["2025-01-06T08:30:00+00:00"]),  # Friday to Monday
    ("0 12 * * mon,FRI", None, "2025-01-01T00:00:00+00:00", ["2025-01-03T12:00:00+00:00", "2025-01-06T12:00:00+00:00"]),
    ("0 0 * * 7", None, "2025-01-01T00:00:00+00:00", ["2025-01-05T00:00:00+00:00"]),  # 7 is Sunday too
    ("0 0 1 jan,jul *", None, "2025-01-01T00:00:00+00:00", ["2025-07-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"]),
    ("0 0 1 */6 *", None, "2025-01-01T00:00:00+00:00", ["2025-07-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"]),
    # a leading seconds field
    ("* * * * * *", None, "2025-01-01T00:00:00.250000+00:00",
     ["2025-01-01T00:00:01+00:00", "2025-01-01T00:00:02+00:00"]),
    ("*/20 30 9 * * *", None, "2025-01-01T00:00:00+00:00",
     ["2025-01-01T09:30:00+00:00", "2025-01-01T09:30:20+00:00", "2025-01-01T09:30:40+00:00",
      "2025-01-02T09:30:00+00:00"]),
    ("15 0 0 1 1 *", None, "2025-01-01T00:00:00+00:00", ["2025-01-01T00:00:15+00:00", "2026-01-01T00:00:15+00:00"]),
    # descriptors
    ("@hourly", None, "2025-01-01T00:30:00+00:00", ["2025-01-01T01:00:00+00:00", "2025-01-01T02:00:00+00:00"]),
    ("@daily", None, "2025-01-01T00:00:00+00:00", ["2025-01-02T00:00:00+00:00"]),
    ("@midnight", None, "2025-01-01T12:00:00+00:00", ["2025-01-02T00:00:00+00:00"]),
    ("@weekly", None, "2025-01-01T00:00:00+00:00", ["2025-01-05T00:00:00+00:00", "2025-01-12T00:00:00+00:00"]),
    ("@monthly", None, "2025-01-15T00:00:00+00:00", ["2025-02-01T00:00:00+00:00", "2025-03-01T00:00:00+00:00"]),
    ("@yearly", None, "2025-01-01T00:00:00+00:00", ["2026-01-01T00:00:00+00:00"]),
    ("@annually", None, "2025-06-01T00:00:00+00:00", ["2026-01-01T00:00:00+00:00"]),
    ("@DAILY", "Asia/Tokyo", "2025-01-01T00:00:00+09:00", ["2025-01-02T00:00:00+09:00"]),
    # L: the last day of the month, the last given weekday of the month
    ("0 0 L * *", None, "2024-01-15T00:00:00+00:00",
     ["2024-01-31T00:00:00+00:00", "2024-02-29T00:00:00+00:00", "2024-03-31T00:00:00+00:00"]),
    ("0 0 L 2 *", None, "2027-03-01T00:00:00+00:00", ["2028-02-29T00:00:00+00:00", "2029-02-28T00:00:00+00:00"]),
    ("0 0 1,L * *", None, "2025-01-15T00:00:00+00:00", ["2025-01-31T00:00:00+00:00", "2025-02-01T00:00:00+00:00"]),
    ("0 18 * * 5L", None, "2025-01-01T00:00:00+00:00",
     ["2025-01-31T18:00:00+00:00", "2025-02-28T18:00:00+00:00", "2025-03-28T18:00:00+00:00"]),
    ("0 18 * * L5", None, "2025-01-01T00:00:00+00:00", ["2025-01-31T18:00:00+00:00", "2025-02-28T18:00:00+00:00"]),
    ("0 18 * * friL", None, "2025-01-01T00:00:00+00:00", ["2025-01-31T18:00:00+00:00"]),
    # #: the n-th given weekday of the month
    ("0 9 * * 1#1", None, "2025-01-01T00:00:00+00:00",
     ["2025-01-06T09:00:00+00:00", "2025-02-03T09:00:00+00:00", "2025-03-03T09:00:00+00:00"]),
    ("0 9 * * 1#1", "Europe/Paris", "2025-03-04T00:00:00+01:00",
     ["2025-04-07T09:00:00+02:00", "2025-05-05T09:00:00+02:00"]),  # 09:00 local in summer time too
    ("0 0 * * sun#2", None, "2025-01-01T00:00:00+00:00", ["2025-01-12T00:00:00+00:00", "2025-02-09T00:00:00+00:00"]),
    ("0 0 * * 4#5", None, "2025-01-01T00:00:00+00:00",  # only months with five Thursdays
     ["2025-01-30T00:00:00+00:00", "2025-05-29T00:00:00+00:00", "2025-07-31T00:00:00+00:00"]),
    ("0 0 * * 1#1,5#3", None, "2025-01-01T00:00:00+00:00",
     ["2025-01-06T00:00:00+00:00", "2025-01-17T00:00:00+00:00", "2025-02-03T00:00:00+00:00"]),
    ("0 0 * 2 1#5", None, "2025-01-01T00:00:00+00:00", ["2044-02-29T00:00:00+00:00"]),  # rare but it fires
    # W: the weekday nearest a day
    ("0 0 15W * *", None, "2025-02-01T00:00:00+00:00",
     ["2025-02-14T00:00:00+00:00", "2025-03-14T00:00:00+00:00", "2025-04-15T00:00:00+00:00"]),
    ("0 0 29 2 *", None, "2025-01-01T00:00:00+00:00", ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]),
    # zones
    ("0 9 * * *", "Asia/Tokyo", "2024-12-31T20:00:00+00:00", ["2025-01-01T09:00:00+09:00"]),
    ("0 9 * * *", "Asia/Kolkata", "2025-01-01T00:00:00+00:00", ["2025-01-01T09:00:00+05:30"]),
    ("0 9 * * *", "America/Los_Angeles", "2025-07-01T00:00:00+00:00", ["2025-07-01T09:00:00-07:00"]),
    ("0 0 1 * *", "Pacific/Auckland", "2025-01-15T00:00:00+00:00", ["2025-02-01T00:00:00+13:00"]),
    ("0 9 * * *", "", "2025-01-01T00:00:00+00:00", ["2025-01-01T09:00:00+00:00"]),  # empty zone = UTC
]


@pytest.mark.parametrize("expression, zone, after, expected", SYNTAX)
def test_each_syntax_form_fires_at_the_expected_instants(expression, zone, after, expected):
    assert _next(expression, zone, after, len(expected)) == [_t(e) for e in expected]


# Day-of-month and day-of-week as Vixie cron: when both are restricted, a day matching either fires.
DAY_RULE = [
    ("0 9 1-7 * 1", "2025-01-01T00:00:00+00:00",  # days 1 to 7 OR Mondays: not "the first Monday"
     ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06", "2025-01-07",
      "2025-01-13", "2025-01-20"]),
    ("0 9 13 * 5", "2025-01-01T00:00:00+00:00", ["2025-01-03", "2025-01-10", "2025-01-13", "2025-01-17"]),
    ("0 9 */10 * 1", "2025-01-01T00:00:00+00:00", ["2025-01-01", "2025-01-06", "2025-01-11", "2025-01-13"]),
    ("0 9 31 2 1#1", "2025-01-01T00:00:00+00:00", ["2025-02-03", "2026-02-02"]),  # Feb 31 never: Mondays only
    ("0 9 L * 1", "2025-01-01T00:00:00+00:00", ["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27", "2025-01-31"]),
    ("0 9 * * 1", "2025-01-01T00:00:00+00:00", ["2025-01-06", "2025-01-13"]),  # one field restricted: that one
    ("0 9 ? * 1", "2025-01-01T00:00:00+00:00", ["2025-01-06", "2025-01-13"]),  # ? is *
    ("0 9 1-7 * *", "2025-01-06T12:00:00+00:00", ["2025-01-07", "2025-02-01"]),
]


@pytest.mark.parametrize("expression, after, days", DAY_RULE)
def test_day_of_month_and_day_of_week_either_match(expression, after, days):
    assert _next(expression, None, after, len(days)) == [_t(f"{day}T09:00:00+00:00") for day in days]


# Both DST transitions in three zones (and a half-hour shift, and a zone whose midnight is skipped).
# A wall time skipped by spring-forward runs once, at the first valid instant after it; a wall time
# that occurs twice at fall-back runs once, at its first occurrence.
DST = [
    # Paris, spring: 02:00 -> 03:00 on 2025-03-30
    ("30 2 * * *", "Europe/Paris", "2025-03-29T12:00:00+01:00",
     ["2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00"]),
    ("0 2 * * *", "Europe/Paris", "2025-03-29T12:00:00+01:00", ["2025-03-30T03:00:00+02:00"]),
    ("0,30 2,3 * * *", "Europe/Paris", "2025-03-30T00:00:00+01:00",  # 02:00, 02:30 and 03:00: once, at 03:00
     ["2025-03-30T03:00:00+02:00", "2025-03-30T03:30:00+02:00", "2025-03-31T02:00:00+02:00"]),
    ("*/20 * * * *", "Europe/Paris", "2025-03-30T01:30:00+01:00",
     ["2025-03-30T01:40:00+01:00", "2025-03-30T03:00:00+02:00", "2025-03-30T03:20:00+02:00"]),
    # Paris, autumn: 03:00 -> 02:00 on 2025-10-26
    ("30 2 * * *", "Europe/Paris", "2025-10-25T12:00:00+02:00",
     ["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"]),
    ("*/20 * * * *", "Europe/Paris", "2025-10-26T01:50:00+02:00",
     ["2025-10-26T02:00:00+02:00", "2025-10-26T02:20:00+02:00", "2025-10-26T02:40:00+02:00",
      "2025-10-26T03:00:00+01:00"]),
    ("*/20 * * * *", "Europe/Paris", "2025-10-26T02:10:00+01:00",  # from inside the second pass
     ["2025-10-26T03:00:00+01:00"]),
    ("0 3 * * *", "Europe/Paris", "2025-10-25T12:00:00+02:00", ["2025-10-26T03:00:00+01:00"]),
    # New York, spring: 02:00 -> 03:00 on 2025-03-09
    ("30 2 * * *", "America/New_York", "2025-03-08T12:00:00-05:00",
     ["2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"]),
    ("0 * * * *", "America/New_York", "2025-03-09T01:30:00-05:00",
     ["2025-03-09T03:00:00-04:00", "2025-03-09T04:00:00-04:00"]),
    # New York, autumn: 02:00 -> 01:00 on 2025-11-02
    ("30 1 * * *", "America/New_York", "2025-11-01T12:00:00-04:00",
     ["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"]),
    ("0 * * * *", "America/New_York", "2025-11-02T00:30:00-04:00",
     ["2025-11-02T01:00:00-04:00", "2025-11-02T02:00:00-05:00"]),
    ("* * * * * *", "America/New_York", "2025-11-02T01:00:05-05:00",  # every second: the repeated hour ran
     ["2025-11-02T02:00:00-05:00", "2025-11-02T02:00:01-05:00"]),
    # Sydney, spring: 02:00 -> 03:00 on 2025-10-05; autumn: 03:00 -> 02:00 on 2025-04-06
    ("30 2 * * *", "Australia/Sydney", "2025-10-04T12:00:00+10:00",
     ["2025-10-05T03:00:00+11:00", "2025-10-06T02:30:00+11:00"]),
    ("30 2 * * *", "Australia/Sydney", "2025-04-05T12:00:00+11:00",
     ["2025-04-06T02:30:00+11:00", "2025-04-07T02:30:00+10:00"]),
    # Lord Howe moves its clocks by half an hour: 02:00 -> 02:30, then 02:00 -> 01:30
    ("15 2 * * *", "Australia/Lord_Howe", "2025-10-04T12:00:00+10:30",
     ["2025-10-05T02:30:00+11:00", "2025-10-06T02:15:00+11:00"]),
    ("45 1 * * *", "Australia/Lord_Howe", "2025-04-05T12:00:00+11:00",
     ["2025-04-06T01:45:00+11:00", "2025-04-07T01:45:00+10:30"]),
    # Santiago springs forward at midnight (00:00 -> 01:00 on 2025-09-07): that day starts at 01:00
    ("@daily", "America/Santiago", "2025-09-06T12:00:00-04:00",
     ["2025-09-07T01:00:00-03:00", "2025-09-08T00:00:00-03:00"]),
]


@pytest.mark.parametrize("expression, zone, after, expected", DST)
def test_daylight_saving_transitions(expression, zone, after, expected):
    assert _next(expression, zone, after, len(expected)) == [_t(e) for e in expected]


# @every is elapsed time, anchored to multiples of the period since the Unix epoch.
EVERY = [
    ("@every 30s", "2025-01-01T00:00:10+00:00", ["2025-01-01T00:00:30+00:00", "2025-01-01T00:01:00+00:00"]),
    ("@every 30s", "2025-01-01T00:00:30+00:00", ["2025-01-01T00:01:00+00:00"]),  # strictly after
    ("@every 30s", "2025-01-01T00:00:29.999000+00:00", ["2025-01-01T00:00:30+00:00"]),
    ("@every 5m", "2025-01-01T00:07:00+00:00", ["2025-01-01T00:10:00+00:00", "2025-01-01T00:15:00+00:00"]),
    ("@every 2h", "2025-01-01T01:00:00+00:00", ["2025-01-01T02:00:00+00:00", "2025-01-01T04:00:00+00:00"]),
    ("@every 1h30m", "2025-01-01T00:00:00+00:00", ["2025-01-01T01:30:00+00:00", "2025-01-01T03:00:00+00:00"]),
    ("@every 7m", "2025-01-01T00:00:00+00:00", ["2025-01-01T00:05:00+00:00", "2025-01-01T00:12:00+00:00"]),
    ("@every 1d", "2025-01-01T13:00:00+05:00", ["2025-01-02T00:00:00+00:00"]),
    ("@every 1s", "2025-01-01T00:00:00.500000+00:00", ["2025-01-01T00:00:01+00:00", "2025-01-01T00:00:02+00:00"]),
]


@pytest.mark.parametrize("expression, after, expected", EVERY)
def test_every_is_elapsed_time_anchored_to_the_epoch(expression, after, expected):
    assert _next(expression, None, after, len(expected)) == [_t(e) for e in expected]


def test_every_ignores_the_zone_and_its_clock_changes():
    every_hour = parse_schedule("@every 1h", "Europe/Paris")
    assert preview(every_hour, _t("2025-03-30T00:30:00+00:00"), 2) == [
        _t("2025-03-30T01:00:00+00:00"), _t("2025-03-30T02:00:00+00:00")]  # 03:00 and 04:00 in Paris


def test_every_gives_the_same_instants_whenever_it_is_asked():
    schedule = parse_schedule("@every 7m")
    start = _t("2025-01-01T00:00:00+00:00")
    series = preview(schedule, start, 20)
    for offset in (1, 59, 299, 3601):  # a restart at any moment lands on the same instants
        later = start + timedelta(seconds=offset)
        assert schedule.next_after(later) == next(t for t in series if t > later)
    assert all(int(t.timestamp()) % 420 == 0 for t in series)


def test_instants_come_out_in_utc():
    when = parse_schedule("0 9 * * *", "Europe/Paris").next_after(_t("2025-01-01T00:00:00+00:00"))
    assert when.utcoffset() == timedelta(0) and when == _t("2025-01-01T09:00:00+01:00")


def test_the_expression_is_kept_with_whitespace_normalised():
    assert parse_schedule("  0  9 *\t* 1 ").expression == "0 9 * * 1"
    assert parse_schedule("@Daily").expression == "@daily"
    assert parse_schedule("@every 1h 30m").expression == "@every 1h30m"
    assert parse_schedule("0 9 * * 1", "Europe/Paris").zone.key == "Europe/Paris"
    assert parse_schedule("0 9 * * 1").zone.key == "UTC"


@pytest.mark.parametrize("expression, zone, words", [
    ("0 9 * * 1#1", "Europe/Paris", "at 09:00 on the first Monday of each month (Europe/Paris)"),
    ("@daily", None, "at 00:00 every day (UTC)"),
    ("@hourly", None, "every hour on the hour (UTC)"),
    ("@weekly", None, "at 00:00 on Sundays (UTC)"),
    ("@monthly", None, "at 00:00 on day 1 of each month (UTC)"),
    ("@yearly", None, "at 00:00 on January 1 (UTC)"),
    ("* * * * *", None, "every minute (UTC)"),
    ("*/5 * * * *", None, "every 5 minutes (UTC)"),
    ("15 * * * *", None, "every hour at minute 15 (UTC)"),
    ("0 */2 * * *", None, "every 2 hours on the hour (UTC)"),
    ("* * * * * *", None, "every second (UTC)"),
    ("*/10 * * * * *", None, "every 10 seconds (UTC)"),
    ("30 0 9 * * *", None, "at 09:00:30 every day (UTC)"),
    ("30 2 * * *", "America/New_York", "at 02:30 every day (America/New_York)"),
    ("0 9,17 * * MON-FRI", None, "at 09:00 and 17:00 on weekdays (UTC)"),
    ("0 9 * * 1,3", None, "at 09:00 on Mondays and Wednesdays (UTC)"),
    ("0 9 * * 2-4", None, "at 09:00 on Tuesday to Thursday (UTC)"),
    ("0 0 L * *", None, "at 00:00 on the last day of each month (UTC)"),
    ("0 18 * * 5L", None, "at 18:00 on the last Friday of each month (UTC)"),
    ("0 0 15W * *", None, "at 00:00 on the weekday nearest day 15 of each month (UTC)"),
    ("0 0 1,15 * *", None, "at 00:00 on days 1 and 15 of each month (UTC)"),
    ("0 0 * 7 *", None, "at 00:00 in July (UTC)"),
    ("0 9 1-7 * 1", None, "at 09:00 on days 1 to 7 of each month, or on Mondays (UTC)"),
    ("0 9 * * 1#2", "Asia/Tokyo", "at 09:00 on the second Monday of each month (Asia/Tokyo)"),
    ("*/10 9-17 * * *", None, "*/10 9-17 * * * (UTC)"),  # not a common form: the expression itself
    ("@every 30s", None, "every 30 seconds"),
    ("@every 1h", None, "every hour"),
    ("@every 1h30m", None, "every 1 hour and 30 minutes"),
    ("@every 2d", None, "every 2 days"),
])
def test_describe_in_words(expression, zone, words):
    assert parse_schedule(expression, zone).describe() == words


# (expression, zone, the field named, a part of the message)
INVALID = [
    ("", None, "interval", "empty"),
    ("   ", None, "interval", "empty"),
    (42, None, "interval", "a string expected"),
    ("* * * *", None, "interval", "5 fields expected"),
    ("* * * * * * *", None, "interval", "6 fields expected at most (second minute hour day-of-month month "
                                        "day-of-week), got 7"),
    ("60 * * * *", None, "interval", "minute field: 60 is out of range (0-59)"),
    ("* 24 * * *", None, "interval", "hour field: 24 is out of range"),
    ("* * 0 * *", None, "interval", "day-of-month field: 0 is out of range"),
    ("* * 32 * *", None, "interval", "day-of-month field: 32"),
    ("* * * 13 *", None, "interval", "month field: 13"),
    ("* * * * 8", None, "interval", "day-of-week field: 8"),
    ("60 * * * * *", None, "interval", "second field: 60"),
    ("*/0 * * * *", None, "interval", "minute field: step 0"),
    ("*/90 * * * *", None, "interval", "@every 90m"),
    ("5-2 * * * *", None, "interval", "the range 5-2 runs backwards"),
    ("0 0 * * 1#6", None, "interval", "week 6"),
    ("0 0 * * 1#0", None, "interval", "week 0"),
    ("0 0 * foo *", None, "interval", "month field: unknown name 'foo'"),
    ("1,,2 * * * *", None, "interval", "empty item"),
    ("H * * * *", None, "interval", "minute field"),  # hashed and random values are not cron
    ("R * * * *", None, "interval", "minute field"),
    ("? * * * *", None, "interval", "minute field"),
    ("0 0 L-2 * *", None, "interval", "day-of-month field"),
    ("0 0 1W,15W * *", None, "interval", "stands alone"),
    ("0 0 31 2 *", None, "interval", "never fires"),
    ("0 0 30 2 *", None, "interval", "never fires"),
    ("0 0 31 4,6,9,11 *", None, "interval", "never fires"),
    ("@reboot", None, "interval", "unknown descriptor"),
    ("@daily 5", None, "interval", "unknown descriptor"),
    ("@every", None, "interval", "@every needs a duration"),
    ("@every 0s", None, "interval", "out of range"),
    ("@every 500ms", None, "interval", "@every needs a duration"),
    ("@every 1m1h", None, "interval", "in that order"),
    ("@every -5m", None, "interval", "@every needs a duration"),
    ("@every 367d", None, "interval", "out of range"),
    ("x" * 201, None, "interval", "longer than 200"),
    ("0 9 * * *", "Europe/Pari", "timezone", "unknown time zone 'Europe/Pari'"),
    ("0 9 * * *", "localtime", "timezone", "unknown time zone"),  # this machine's zone is not a zone name
    ("0 9 * * *", "../../etc/passwd", "timezone", "unknown time zone"),
    ("0 9 * * *", "Europe", "timezone", "unknown time zone"),
    ("0 9 * * *", 5, "timezone", "a string expected"),
]


@pytest.mark.parametrize("expression, zone, field, message", INVALID)
def test_an_invalid_schedule_names_the_field(expression, zone, field, message):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expression, zone)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ") and message in caught.value.message
    assert isinstance(caught.value, BadRequest) and caught.value.status == 400


def test_zones():
    assert parse_zone(None).key == "UTC" and parse_zone("").key == "UTC"
    assert parse_zone("America/New_York").key == "America/New_York"
    with pytest.raises(ScheduleError, match=r"^timezone: "):
        parse_zone("Mars/Olympus_Mons")


NOW = "2025-06-01T12:00:00+00:00"


@pytest.mark.parametrize("text, expected", [
    ("+10m", "2025-06-01T12:10:00+00:00"),
    ("+1h30m", "2025-06-01T13:30:00+00:00"),
    ("+45s", "2025-06-01T12:00:45+00:00"),
    ("+2d", "2025-06-03T12:00:00+00:00"),
    ("+1d2h3m4s", "2025-06-02T14:03:04+00:00"),
    (" +10m ", "2025-06-01T12:10:00+00:00"),
    ("2030-01-31T09:00:00Z", "2030-01-31T09:00:00+00:00"),
    ("2030-01-31T10:00:00+01:00", "2030-01-31T09:00:00+00:00"),
    ("2030-01-31T04:00:00-05:00", "2030-01-31T09:00:00+00:00"),
    ("2030-01-31t09:00:00z", "2030-01-31T09:00:00+00:00"),
    ("2030-01-31 09:00:00Z", "2030-01-31T09:00:00+00:00"),
    ("2030-01-31T09:00:00.5Z", "2030-01-31T09:00:00.500000+00:00"),
    ("2025-06-01T11:59:30Z", "2025-06-01T11:59:30+00:00"),  # a few seconds ago: now
])
def test_parse_at(text, expected):
    when = parse_at(text, _t(NOW))
    assert when == _t(expected) and when.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text, message", [
    ("", "give an RFC 3339 time"),
    ("   ", "give an RFC 3339 time"),
    (None, "give an RFC 3339 time"),
    ("tomorrow", "is not an RFC 3339 time"),
    ("+", "+ needs a duration"),
    ("+0s", "out of range"),
    ("+10", "+ needs a duration"),
    ("+10x", "+ needs a duration"),
    ("+1m1h", "in that order"),
    ("+-5m", "+ needs a duration"),
    ("+3661d", "out of range"),
    ("2030-01-31T09:00:00", "has no UTC offset"),
    ("2030-01-31", "is not an RFC 3339 time"),
    ("2030-01-31T09:00Z", "is not an RFC 3339 time"),
    ("2030-02-30T00:00:00Z", "is not a valid time"),
    ("2030-01-31T25:00:00Z", "is not a valid time"),
    ("2020-01-01T00:00:00Z", "in the past"),
])
def test_an_invalid_at_names_the_field(text, message):
    with pytest.raises(ScheduleError) as caught:
        parse_at(text, _t(NOW))
    assert caught.value.field == "at" and caught.value.message.startswith("at: ") and message in caught.value.message


@pytest.mark.parametrize("n", [0, 101, -1, True, "5", 2.0])
def test_preview_takes_1_to_100(n):
    with pytest.raises(ScheduleError, match=r"^n: "):
        preview(parse_schedule("@daily"), _t(NOW), n)


def test_preview_of_100():
    instants = preview(parse_schedule("0 9 * * 1#1", "Europe/Paris"), _t(NOW), 100)
    assert len(instants) == 100 and instants == sorted(set(instants))
    assert all(t.astimezone(parse_zone("Europe/Paris")).hour == 9 for t in instants)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        parse_schedule("@daily").next_after(datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        parse_at("+1m", datetime(2025, 1, 1))


SIMPLE = st.sampled_from(["* * * * *", "*/7 * * * *", "0 9 * * 1-5", "0 0 L * *", "30 4 1,15 * *", "0 12 * * 0#2",
                          "5 */3 * * *", "0 0 1 */2 *", "*/20 * * * * *"])
INSTANTS = st.datetimes(datetime(2001, 1, 1), datetime(2090, 1, 1)).map(lambda d: d.replace(tzinfo=UTC))


@given(SIMPLE, INSTANTS)
def test_in_utc_instants_are_croniters(expression, after):
    """In UTC there is no DST: the next instant is croniter's own."""
    fields = expression.split()
    expected = croniter(expression, after.replace(tzinfo=None, microsecond=0),
                        second_at_beginning=len(fields) == 6).get_next(datetime)
    assert parse_schedule(expression).next_after(after) == expected.replace(tzinfo=UTC)


@given(SIMPLE, st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
                                "America/Santiago", "Asia/Kolkata"]), INSTANTS)
def test_in_any_zone_instants_move_forward(expression, zone, after):
    instants = preview(parse_schedule(expression, zone), after, 5)
    assert after < instants[0] and instants == sorted(set(instants))
    assert all(schedule_instant.utcoffset() == timedelta(0) for schedule_instant in instants)
