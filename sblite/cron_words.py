"""Schedules in words, for the common forms of cron expressions (None for the rest) and `@every`."""

from __future__ import annotations

import re

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
ORDINALS = ("first", "second", "third", "fourth", "fifth")
UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_NUMBERS = re.compile(r"\d+(,\d+)*")
_RANGE = re.compile(r"(\d+)-(\d+)")
_EVERY = re.compile(r"\*/(\d+)")


def describe_every(period: int) -> str:
    """An elapsed-time interval in words: "every 30 seconds", "every 1 hour and 30 minutes"."""
    parts = []
    for unit, size in UNITS:
        count, period = divmod(period, size)
        if count:
            parts.append(f"{count} {unit}" + ("s" if count > 1 else ""))
    if parts == [f"1 {parts[0][2:]}"]:
        return f"every {parts[0][2:]}"
    return "every " + _join(parts)


def describe_cron(fields: tuple[str, ...]) -> str | None:
    """A normalised cron expression (names as numbers) in words, or None when it is not a common form."""
    second = fields[0] if len(fields) == 6 else "0"
    minute, hour, dom, month, dow = fields[-5:]
    when = _time(second, minute, hour)
    days = _days(dom, month, dow)
    if when is None or days is None:
        return None
    if not days:
        return when if when.startswith("every") else f"{when} every day"
    return f"{when} {days}"


def _time(second: str, minute: str, hour: str) -> str | None:
    if _NUMBERS.fullmatch(hour) and minute.isdigit() and second.isdigit():
        clock = f":{int(second):02d}" if int(second) else ""
        return "at " + _join([f"{int(h):02d}:{int(minute):02d}{clock}" for h in hour.split(",")])
    if second == "0" and hour == "*":
        if minute.isdigit():
            return "every hour on the hour" if minute == "0" else f"every hour at minute {int(minute)}"
        return _every(minute, "minute")
    if second == "0" and minute.isdigit() and _EVERY.fullmatch(hour):
        at = "on the hour" if minute == "0" else f"at minute {int(minute)}"
        return f"{_every(hour, 'hour')} {at}"
    if minute == "*" and hour == "*":
        if second.isdigit():
            return f"every minute at second {int(second)}"
        return _every(second, "second")
    return None


def _every(text: str, unit: str) -> str | None:
    if text == "*":
        return f"every {unit}"
    step = _EVERY.fullmatch(text)
    return f"every {step.group(1)} {unit}s" if step else None


def _days(dom: str, month: str, dow: str) -> str | None:
    months = _months(month)
    if months is None:
        return None
    of = "each month" if month == "*" else months
    if dom == "*" and dow == "*":
        return "" if month == "*" else f"in {months}"
    if dom == "*":
        return _weekdays(dow, of, "" if month == "*" else f" in {months}")
    day = _month_days(dom)
    if day is None:
        return None
    if dow != "*":
        either = _weekdays(dow, of, "" if month == "*" else f" in {months}")
        return f"on {day} of {of}, or {either}" if either else None
    if dom.isdigit() and month.isdigit():
        return f"on {months} {int(dom)}"
    return f"on {day} of {of}"


def _months(month: str) -> str | None:
    if month == "*":
        return "each month"
    if _NUMBERS.fullmatch(month):
        return _join([MONTH_NAMES[int(m) - 1] for m in month.split(",")])
    span = _RANGE.fullmatch(month)
    return f"{MONTH_NAMES[int(span.group(1)) - 1]} to {MONTH_NAMES[int(span.group(2)) - 1]}" if span else None


def _month_days(dom: str) -> str | None:
    if dom == "L":
        return "the last day"
    if dom.endswith("W") and dom[:-1].isdigit():
        return f"the weekday nearest day {int(dom[:-1])}"
    if _NUMBERS.fullmatch(dom):
        days = [str(int(d)) for d in dom.split(",")]
        return ("day " if len(days) == 1 else "days ") + _join(days)
    span = _RANGE.fullmatch(dom)
    return f"days {int(span.group(1))} to {int(span.group(2))}" if span else None


def _weekdays(dow: str, of: str, within: str) -> str | None:
    if dow == "1-5":
        return f"on weekdays{within}"
    if _NUMBERS.fullmatch(dow):
        return "on " + _join([DAY_NAMES[int(d) % 7] + "s" for d in dow.split(",")]) + within
    span = _RANGE.fullmatch(dow)
    if span:
        return f"on {DAY_NAMES[int(span.group(1)) % 7]} to {DAY_NAMES[int(span.group(2)) % 7]}{within}"
    nth = re.fullmatch(r"(\d)#(\d)", dow)
    if nth:
        return f"on the {ORDINALS[int(nth.group(2)) - 1]} {DAY_NAMES[int(nth.group(1))]} of {of}"
    last = re.fullmatch(r"L(\d)", dow)
    return f"on the last {DAY_NAMES[int(last.group(1))]} of {of}" if last else None


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
