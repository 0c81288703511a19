"""Schedules: cron expressions, descriptors and `@every` intervals in a time zone, and one-off times."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from sblite import cron_fields
from sblite.cron_words import describe_cron, describe_every
from sblite.errors import BadRequest

MAX_PREVIEW = 100
MAX_EXPRESSION_LENGTH = 200
MIN_EVERY = timedelta(seconds=1)
MAX_EVERY = timedelta(days=366)
MAX_AHEAD = timedelta(days=3660)  # a relative `at` reaches ten years ahead at most
AT_GRACE = timedelta(minutes=1)  # an `at` this little in the past means "now" (clocks and latency differ)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)
# A fixed start for the "does it ever fire" check: every cron expression repeats within 400
# years, and croniter looks 50 years ahead, more than the longest gap (Feb 29 on a Monday: 40).
PROBE = datetime(2000, 1, 1)
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
# Zone names that name this machine's setting rather than a zone.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_Test = Callable[[datetime], bool]
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d)?")


class ScheduleError(BadRequest):
    """A schedule, zone or time that cannot be used; the message starts with the field's name."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_ZONES


def parse_zone(name: str | None) -> ZoneInfo:
    """The IANA zone called `name`; UTC when it is None or empty."""
    if not name:
        return ZoneInfo("UTC")
    if not isinstance(name, str) or name not in _zone_names():
        raise ScheduleError("timezone", f"unknown time zone {name!r}: give an IANA name such as Europe/Paris or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError("timezone", f"unknown time zone {name!r}") from None


@dataclass(frozen=True)
class Schedule:
    """A parsed `interval` in a zone: a cron expression (wall-clock time) or `@every` (elapsed time)."""

    expression: str
    zone: ZoneInfo
    # Derived from the expression by parse_schedule; not part of a schedule's identity.
    period: int = field(default=0, compare=False)  # seconds for @every, else 0
    variants: tuple[str, ...] = field(default=(), compare=False, repr=False)  # croniter expressions, OR-ed
    seconds: bool = field(default=False, compare=False, repr=False)  # the variants lead with a seconds field
    fields: tuple[str, ...] = field(default=(), compare=False, repr=False)  # sec?, min, hour, dom, month, dow

    def next_after(self, after: datetime) -> datetime:
        """The first instant strictly after `after` (aware), in UTC."""
        if after.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        if self.period:
            elapsed = (after - EPOCH) // SECOND
            return EPOCH + timedelta(seconds=(elapsed // self.period + 1) * self.period)
        local = after.astimezone(self.zone)
        wall = local.replace(tzinfo=None, microsecond=0, fold=0)
        if local.fold:  # the second pass of a repeated hour: its wall times ran on the first pass
            wall = _fold_end(wall, self.zone) - SECOND
        while True:
            wall = self._next_wall(wall)
            instant = _instant(wall, self.zone)
            if instant > after:
                return instant

    def describe(self) -> str:
        """The schedule in words, e.g. "at 09:00 on the first Monday of each month (Europe/Paris)"."""
        if self.period:
            return describe_every(self.period)
        return f"{describe_cron(self.fields) or self.expression} ({self.zone.key})"

    def _next_wall(self, wall: datetime) -> datetime:
        """The first local wall time after `wall` (naive) that the expression names."""
        found = [when for variant in self.variants if (when := _next_match(variant, wall, self.seconds))]
        if not found:
            raise ScheduleError("interval", f"{self.expression!r} never fires after {wall:%Y-%m-%d}")
        return min(found)


def _next_match(variant: str, wall: datetime, seconds: bool) -> datetime | None:
    try:
        when: datetime = croniter(variant, wall, second_at_beginning=seconds).get_next(datetime)
    except CroniterBadDateError:
        return None
    return when


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    local = wall.replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    return _exists(wall, zone) and _shift(wall, zone) > timedelta(0)


def _shift(wall: datetime, zone: ZoneInfo) -> timedelta:
    """How far the clock jumps around `wall` (an hour, usually)."""
    first, second = wall.replace(tzinfo=zone, fold=0).utcoffset(), wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    return abs(first - second)


def _search(low: datetime, high: datetime, ok: _Test) -> datetime:
    """The first whole second in (low, high] for which `ok` holds, given ok(high) and that it stays true."""
    while high - low > SECOND:
        middle = (low + (high - low) // 2).replace(microsecond=0)
        if ok(middle):
            high = middle
        else:
            low = middle
    return high


def _fold_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first wall time after a repeated stretch that contains `wall`."""
    return _search(wall, wall + _shift(wall, zone), lambda w: not _ambiguous(w, zone))


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall time: its first occurrence, or, in a gap, the first valid instant after it."""
    if not _exists(wall, zone):
        wall = _search(wall, wall + _shift(wall, zone), lambda w: _exists(w, zone))
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def parse_schedule(expression: str, zone: str | None = None) -> Schedule:
    """Parse and check an `interval` in a zone; ScheduleError names what is wrong."""
    if not isinstance(expression, str):
        raise ScheduleError("interval", "a string expected, such as \"0 9 * * 1\", @daily or @every 30m")
    if zone is not None and not isinstance(zone, str):
        raise ScheduleError("timezone", "a string expected, such as Europe/Paris")
    return _parse(" ".join(expression.split()), zone or "")


@lru_cache(maxsize=4096)
def _parse(text: str, zone_name: str) -> Schedule:
    zone = parse_zone(zone_name)
    if not text:
        raise ScheduleError("interval", "empty: give a cron expression (\"0 9 * * 1\"), @daily or @every 30m")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ScheduleError("interval", f"longer than {MAX_EXPRESSION_LENGTH} characters")
    if text.startswith("@"):
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word == "@every":
            length = _duration(rest.replace(" ", ""), "interval", "@every needs")
            if length < MIN_EVERY or length > MAX_EVERY:
                raise ScheduleError("interval", f"@every {rest} is out of range: from 1s to {MAX_EVERY.days}d")
            return Schedule(f"@every {rest.replace(' ', '')}", zone, period=length // SECOND)
        if word not in DESCRIPTORS or rest:
            raise ScheduleError("interval", f"unknown descriptor {text!r}: use one of {', '.join(DESCRIPTORS)} "
                                            "or @every followed by a duration such as 30s or 1h30m")
        return _cron(word, DESCRIPTORS[word].split(), zone)
    return _cron(text, text.split(), zone)


def _cron(text: str, given: list[str], zone: ZoneInfo) -> Schedule:
    try:
        fields = cron_fields.normalise(given)
    except ValueError as exc:
        raise ScheduleError("interval", f"{text!r}: {exc}") from None
    seconds = len(fields) == 6
    *lead, dom, month, dow = fields
    variants: tuple[str, ...] = (" ".join(fields),)
    if cron_fields.restricted(dom) and cron_fields.restricted(dow):
        # Vixie cron: a day matching either field fires, so each is its own expression
        variants = (" ".join([*lead, dom, month, "*"]), " ".join([*lead, "*", month, dow]))
    for variant in variants:
        try:
            croniter(variant, PROBE, second_at_beginning=seconds)
        except (CroniterBadCronError, ValueError) as exc:
            raise ScheduleError("interval", f"{text!r} is not a valid cron expression ({exc})") from None
    if not any(_next_match(variant, PROBE, seconds) for variant in variants):
        raise ScheduleError("interval", f"{text!r} never fires: no date has that day in that month")
    return Schedule(text, zone, variants=variants, seconds=seconds, fields=tuple(fields))


def _duration(text: str, field_name: str, what: str) -> timedelta:
    """A duration such as 45s, 10m, 1h30m or 2d."""
    match = _DURATION.fullmatch(text)
    if not text or not match:
        raise ScheduleError(field_name, f"{what} a duration such as 30s, 5m, 2h, 1h30m or 2d (whole numbers "
                                        f"with d, h, m, s in that order), got {text!r}")
    days, hours, minutes, secs = (int(part or 0) for part in match.groups())
    if max(days, hours, minutes, secs) > 10**6:
        raise ScheduleError(field_name, f"{text!r} is too long")
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=secs)


def parse_duration(text: str, field_name: str) -> timedelta:
    """A positive duration such as 45s, 10m, 1h30m or 2d; ScheduleError names `field_name`."""
    length = _duration(text.strip() if isinstance(text, str) else "", field_name, "give")
    if not length:
        raise ScheduleError(field_name, "a duration longer than 0s expected")
    return length


def parse_at(text: str, now: datetime) -> datetime:
    """A one-off time: RFC 3339 with an offset, or `+10m`-style from `now`; aware, in UTC."""
    if now.tzinfo is None:
        raise ValueError("parse_at needs an aware `now`")
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("at", "give an RFC 3339 time such as 2030-01-31T09:00:00Z, or a delay such as +10m")
    text = text.strip()
    if text.startswith("+"):
        delay = _duration(text[1:], "at", "+ needs")
        if not timedelta(0) < delay <= MAX_AHEAD:
            raise ScheduleError("at", f"{text} is out of range: from +1s to +{MAX_AHEAD.days}d")
        return (now + delay).astimezone(UTC)
    if not _RFC3339.fullmatch(text):
        raise ScheduleError("at", f"{text!r} is not an RFC 3339 time such as 2030-01-31T09:00:00Z "
                                  "or 2030-01-31T10:00:00+01:00, nor a delay such as +10m")
    try:
        when = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScheduleError("at", f"{text!r} is not a valid time ({exc})") from None
    if when.tzinfo is None:
        raise ScheduleError("at", f"{text!r} has no UTC offset: add Z or one such as +01:00")
    if when < now - AT_GRACE:
        raise ScheduleError("at", f"{text} is in the past")
    return when.astimezone(UTC)


def preview(schedule: Schedule, after: datetime, n: int) -> list[datetime]:
    """The next `n` (1 to 100) instants of `schedule` after `after`, in UTC."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PREVIEW:
        raise ScheduleError("n", f"from 1 to {MAX_PREVIEW}, got {n!r}")
    instants = []
    for _ in range(n):
        after = schedule.next_after(after)
        instants.append(after)
    return instants
