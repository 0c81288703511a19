"""The fields of a cron expression: what each may hold, checked (and names made numbers) before croniter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
FIELD_ORDER = "minute hour day-of-month month day-of-week"


@dataclass(frozen=True)
class Field:
    """One field: its name, its range, the names it accepts and the special items it allows."""

    name: str
    low: int
    high: int
    names: dict[str, int] = field(default_factory=dict)
    specials: tuple[re.Pattern[str], ...] = ()


_VALUE = r"(\d+|[a-z]{3})"
_PLAIN = re.compile(rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/(\d+))?")
_NTH = re.compile(rf"{_VALUE}#(\d+)")  # the n-th such weekday of the month
_LAST_WEEKDAY = re.compile(rf"l{_VALUE}|{_VALUE}l")  # the last such weekday of the month (croniter spells it L5)
_LAST_DAY = re.compile(r"l")
_NEAREST_WEEKDAY = re.compile(r"(\d+)w")

SECOND = Field("second", 0, 59)
MINUTE = Field("minute", 0, 59)
HOUR = Field("hour", 0, 23)
DAY = Field("day-of-month", 1, 31, specials=(_LAST_DAY, _NEAREST_WEEKDAY))
MONTH = Field("month", 1, 12, names={name: number for number, name in enumerate(MONTHS, 1)})
WEEKDAY = Field("day-of-week", 0, 7, names={name: number for number, name in enumerate(WEEKDAYS)},
                specials=(_NTH, _LAST_WEEKDAY))


def restricted(text: str) -> bool:
    """Whether a day field limits the days (anything but `*` or `?`)."""
    return text not in ("*", "?")


def normalise(fields: list[str]) -> list[str]:
    """The fields checked, with names as numbers; ValueError says which field is wrong and why."""
    if len(fields) < 5:
        raise ValueError(f"5 fields expected ({FIELD_ORDER}), or 6 with a leading second, got {len(fields)}")
    if len(fields) > 6:
        raise ValueError(f"6 fields expected at most (second {FIELD_ORDER}), got {len(fields)}")
    kinds = (SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY)[6 - len(fields):]
    return [_field(text.lower(), kind) for text, kind in zip(fields, kinds, strict=True)]


def _field(text: str, kind: Field) -> str:
    if text == "?" and kind in (DAY, WEEKDAY):
        return "*"
    if kind is DAY and _NEAREST_WEEKDAY.fullmatch(text):
        return _special(text, kind)  # croniter takes W for a single day only
    return ",".join(_item(item, kind) for item in text.split(","))


def _item(item: str, kind: Field) -> str:
    if not item:
        raise ValueError(f"{kind.name} field: an empty item between commas")
    if kind is DAY and _NEAREST_WEEKDAY.fullmatch(item):
        raise ValueError(f"{kind.name} field: {item.upper()} (the weekday nearest a day) stands alone, not in a list")
    plain = _PLAIN.fullmatch(item)
    if plain:
        first, last, step = plain.groups()
        low = _number(first, kind) if first else kind.low
        high = _number(last, kind) if last else (low if first and not step else kind.high)
        if high < low:
            raise ValueError(f"{kind.name} field: the range {item} runs backwards")
        if step is not None and not 1 <= int(step) <= kind.high - kind.low:
            raise ValueError(f"{kind.name} field: step {step} is not from 1 to {kind.high - kind.low}"
                             + (" (for longer intervals use @every, e.g. @every 90m)" if int(step) else ""))
        return item if not first else f"{low}" + (f"-{high}" if last else "") + (f"/{step}" if step else "")
    return _special(item, kind)


def _special(item: str, kind: Field) -> str:
    for pattern in kind.specials:
        match = pattern.fullmatch(item)
        if match is None:
            continue
        if pattern is _LAST_DAY:
            return "L"
        if pattern is _NEAREST_WEEKDAY:
            return f"{_number(match.group(1), kind)}W"
        if pattern is _NTH:
            nth = int(match.group(2))
            if not 1 <= nth <= 5:
                raise ValueError(f"{kind.name} field: {item} asks for week {nth} of a month (1 to 5)")
            return f"{_number(match.group(1), kind) % 7}#{nth}"
        return f"L{_number(match.group(1) or match.group(2), kind) % 7}"
    allowed = {DAY.name: "numbers, ranges, steps, L or nW", WEEKDAY.name: "numbers or names, ranges, steps, n#k or nL"}
    raise ValueError(f"{kind.name} field: {item!r} is not understood "
                     f"(use {allowed.get(kind.name, 'numbers, ranges such as 1-5, lists and steps such as */15')})")


def _number(text: str, kind: Field) -> int:
    value = kind.names.get(text) if not text.isdigit() else int(text)
    if value is None:
        raise ValueError(f"{kind.name} field: unknown name {text!r}")
    if not kind.low <= value <= kind.high:
        raise ValueError(f"{kind.name} field: {value} is out of range ({kind.low}-{kind.high})")
    return value
