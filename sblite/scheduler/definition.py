"""A task's definition: checking what a caller sends (each problem a 400 that names its field) and showing it.

StaticBackend's shape is accepted as is: `meta` as a JSON string or an object, its headers
under `HTTPHeaders` (a JSON string of an object) as well as `headers`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sblite.channels import is_system_channel, validate_channel
from sblite.cron import Schedule, ScheduleError, parse_at, parse_duration, parse_schedule, parse_zone
from sblite.errors import BadRequest
from sblite.jsonutil import dumps, loads
from sblite.scheduler.policy import (
    CATCHUP_POLICIES, DEFAULT_CATCHUP_WINDOW, MAX_CATCHUP_WINDOW, MIN_CATCHUP_WINDOW, OVERLAP_POLICIES,
)
from sblite.timeutil import format_time

TYPES = ("function", "message", "http")
FORM = "application/x-www-form-urlencoded"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
FIELDS = ("name", "type", "value", "meta", "interval", "at", "timezone", "enabled", "overlap", "catchup",
          "catchup_window", "keep_runs", "keep_days")
# Read-only fields of a task's JSON, and StaticBackend's own: a task read back can be sent again.
IGNORED = frozenset({"id", "last", "base", "paused_note", "last_run", "next_run", "next_run_local", "description",
                     "status", "created", "updated", "runs"})
META_KEYS = frozenset({"data", "channel", "method", "ct", "headers", "HTTPHeaders"})
RESERVED_NAMES = frozenset({"preview"})  # GET /tasks/preview
_NAME = re.compile(r"[A-Za-z0-9_.:-](?:[A-Za-z0-9 _.:-]{0,62}[A-Za-z0-9_.:-])?")
MAX_VALUE = 2048
MAX_TYPE = 64
MAX_KEEP_RUNS = 10_000
MAX_KEEP_DAYS = 3650


@dataclass(frozen=True)
class Limits:
    """Defaults from the config."""

    keep_runs: int = 100
    keep_days: float = 14.0
    meta_bytes: int = 1024 * 1024  # as much as a function run takes in or a fetch() sends


@dataclass(frozen=True)
class Definition:
    """What a task is, checked: everything but its state (runs, next run, pause note)."""

    name: str
    type: str
    value: str
    meta: dict[str, Any]
    interval: str | None
    at: float | None
    timezone: str
    enabled: bool = True
    overlap: str = "skip"
    catchup: str = "latest"
    catchup_window: float = DEFAULT_CATCHUP_WINDOW
    keep_runs: int = 100
    keep_days: float = 14.0

    def schedule(self) -> Schedule | None:
        """The parsed interval (None for a one-off task)."""
        return None if self.interval is None else parse_schedule(self.interval, self.timezone)

    def first_run(self, now: float) -> float | None:
        """The first instant after `now` (a one-off task: its time)."""
        schedule = self.schedule()
        if schedule is None:
            return self.at
        return schedule.next_after(datetime.fromtimestamp(now, UTC)).timestamp()


FunctionExists = Callable[[str], bool]


def parse(body: Any, now: float, exists: FunctionExists, limits: Limits,
          base: Definition | None = None) -> Definition:
    """A definition from a create body, or from `base` changed by an update body; BadRequest names the field."""
    if not isinstance(body, dict):
        raise BadRequest("invalid body: expected a JSON object")
    unknown = sorted(set(body) - set(FIELDS) - IGNORED)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field (fields: {', '.join(FIELDS)})")
    given = {k: v for k, v in body.items() if k in FIELDS}
    if base is None:
        for required in ("name", "type", "value"):
            if required not in given:
                raise BadRequest(f"{required}: required")
        return _check(given, now, exists, limits)
    merged: dict[str, Any] = {name: getattr(base, name) for name in FIELDS}
    if _given(given.get("interval")):
        merged["at"] = None
    if _given(given.get("at")):
        merged["interval"] = None
    merged.update(given)
    kept_at = base.at if "at" not in given and merged["at"] == base.at else None
    if kept_at is not None:
        merged["at"] = None  # stored already as a time: checked below without parsing it again
    definition = _check(merged, now, exists, limits, one_off=kept_at is not None)
    return replace(definition, at=kept_at) if kept_at is not None else definition


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _check(fields: dict[str, Any], now: float, exists: FunctionExists, limits: Limits,
           one_off: bool = False) -> Definition:
    name, kind = _name(fields["name"]), _type(fields["type"])
    value = _value(kind, fields["value"], exists)
    timezone = _timezone(fields.get("timezone"))
    interval, at = _when(fields.get("interval"), fields.get("at"), timezone, now, one_off)
    meta = parse_meta(kind, fields.get("meta"))
    if len(dumps(meta).encode()) > limits.meta_bytes:
        raise BadRequest(f"meta: larger than {limits.meta_bytes} bytes")
    return Definition(
        name=name, type=kind, value=value, meta=meta, interval=interval, at=at,
        timezone=timezone, enabled=_bool("enabled", fields.get("enabled", True)),
        overlap=_choice("overlap", fields.get("overlap"), OVERLAP_POLICIES),
        catchup=_choice("catchup", fields.get("catchup"), CATCHUP_POLICIES),
        catchup_window=_window(fields.get("catchup_window")),
        keep_runs=_whole("keep_runs", fields.get("keep_runs"), limits.keep_runs, MAX_KEEP_RUNS),
        keep_days=_days(fields.get("keep_days"), limits.keep_days))


def _name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BadRequest("name: 1 to 64 characters among letters, digits, space, '_', '-', '.' and ':' "
                         "(no space first or last)")
    if name in RESERVED_NAMES:
        raise BadRequest(f"name: {name!r} is reserved")
    return name


def _type(kind: Any) -> str:
    if kind not in TYPES:
        raise BadRequest(f"type: one of {', '.join(TYPES)}, got {kind!r}")
    return str(kind)


def _value(kind: str, value: Any, exists: FunctionExists) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"value: a non-empty string expected ({_VALUE_MEANS[kind]})")
    if len(value) > MAX_VALUE:
        raise BadRequest(f"value: longer than {MAX_VALUE} characters")
    if kind == "function" and not exists(value):
        raise BadRequest(f"value: no function named {value!r} in this app")
    if kind == "message" and len(value) > MAX_TYPE:
        raise BadRequest(f"value: a message type of at most {MAX_TYPE} characters")
    if kind == "http":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest(f"value: an http:// or https:// URL expected, got {value!r}")
    return value


_VALUE_MEANS = {"function": "the function's name", "message": "the message type", "http": "the URL to call"}


def _timezone(zone: Any) -> str:
    if zone is not None and not isinstance(zone, str):
        raise ScheduleError("timezone", "an IANA zone name such as Europe/Paris expected")
    return parse_zone(zone).key


def _when(interval: Any, at: Any, timezone: str, now: float, one_off: bool) -> tuple[str | None, float | None]:
    has_interval, has_at = _given(interval), _given(at)
    if has_interval and (has_at or one_off):
        raise BadRequest("interval: give either interval (a repeating schedule) or at (a one-off time), not both")
    if has_interval:
        return parse_schedule(interval, timezone).expression, None
    if has_at:
        if not isinstance(at, str):
            raise ScheduleError("at", "an RFC 3339 time or a delay such as +10m expected")
        return None, parse_at(at, datetime.fromtimestamp(now, UTC)).timestamp()
    if one_off:
        return None, None
    raise BadRequest("interval: required: a cron expression (\"0 9 * * 1\"), @daily or @every 30s; "
                     "or give at (a one-off time)")


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"{field}: true or false expected")
    return value


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value is None:
        return choices[0]
    if value not in choices:
        raise BadRequest(f"{field}: one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _window(value: Any) -> float:
    if value is None:
        return DEFAULT_CATCHUP_WINDOW
    seconds = seconds_of("catchup_window", value)
    if not MIN_CATCHUP_WINDOW <= seconds <= MAX_CATCHUP_WINDOW:
        raise BadRequest(f"catchup_window: from {MIN_CATCHUP_WINDOW:g} s to {MAX_CATCHUP_WINDOW / 86400:g} days, "
                         f"got {value!r}")
    return seconds


def seconds_of(field: str, value: Any) -> float:
    """A duration: a number of seconds, or text such as 90s, 10m, 6h, 1h30m, 2d."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise BadRequest(f"{field}: seconds, or a duration such as 90s, 10m, 6h, 1h30m or 2d, expected; got {value!r}")
    return parse_duration(value, field).total_seconds()


def _whole(field: str, value: Any, default: int, most: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise BadRequest(f"{field}: a whole number from 1 to {most} expected, got {value!r}")
    return value


def _days(value: Any, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_KEEP_DAYS:
        raise BadRequest(f"keep_days: a number of days above 0 and at most {MAX_KEEP_DAYS} expected, got {value!r}")
    return float(value)


# --- meta

def parse_meta(kind: str, raw: Any) -> dict[str, Any]:
    """`meta` checked for a task of `kind`, as an object with only the keys that kind uses."""
    meta = _meta_object(raw)
    unknown = sorted(set(meta) - META_KEYS)
    if unknown:
        raise BadRequest(f"meta.{unknown[0]}: unknown key (keys: data, channel, method, ct, headers)")
    data = meta.get("data")
    if kind == "message":
        return {"channel": _channel(meta.get("channel")), "data": "" if data is None else data}
    if kind == "function":
        return {"data": data}
    method = meta.get("method") or "POST"
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise BadRequest(f"meta.method: one of {', '.join(METHODS)}, got {method!r}")
    ct = meta.get("ct") or FORM
    if not isinstance(ct, str) or len(ct) > 200 or any(ord(c) < 32 for c in ct):
        raise BadRequest("meta.ct: a content type such as application/json expected")
    if not is_json(ct):
        form_fields(data)  # checked now: form-encoding needs an object
    return {"method": method.upper(), "ct": ct, "headers": _headers(meta), "data": data}


def _meta_object(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = loads(raw)
        except ValueError:
            raise BadRequest("meta: a JSON object, or a string holding one, expected") from None
    if not isinstance(raw, dict):
        raise BadRequest("meta: a JSON object, or a string holding one, expected")
    return raw


def _channel(channel: Any) -> str:
    if channel is None or channel == "":
        raise BadRequest("meta.channel: required: the channel a message task publishes on")
    try:
        name = validate_channel(channel)
    except BadRequest as exc:
        raise BadRequest(f"meta.channel: {exc.message}") from None
    if is_system_channel(name):
        raise BadRequest(f"meta.channel: {name} is a system channel: only the server publishes there")
    return name


def _headers(meta: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key in ("HTTPHeaders", "headers"):  # both may come: `headers` wins
        raw = meta.get(key)
        if raw is None or raw == "":
            continue
        if isinstance(raw, str):
            try:
                raw = loads(raw)
            except ValueError:
                raise BadRequest(f"meta.{key}: a JSON object of header names to values expected") from None
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise BadRequest(f"meta.{key}: an object of header names to string values expected")
        for name, value in raw.items():
            if not name or any(ord(c) < 33 or c == ":" for c in name) or any(ord(c) < 32 for c in value):
                raise BadRequest(f"meta.{key}: {name!r} is not a valid header")
        headers.update(raw)
    return headers


def is_json(ct: str) -> bool:
    """Whether a content type is JSON (its body is sent verbatim)."""
    return ct.split(";")[0].strip().lower() == "application/json"


def form_fields(data: Any) -> dict[str, str]:
    """`meta.data` as form fields (StaticBackend parses it as a JSON object); BadRequest otherwise."""
    if data is None or data == "":
        return {}
    if isinstance(data, str):
        try:
            data = loads(data)
        except ValueError:
            data = None
    if not isinstance(data, dict):
        raise BadRequest("meta.data: a JSON object (or a string holding one) expected, to form-encode; "
                         "send JSON verbatim with meta.ct application/json")
    return {str(k): v if isinstance(v, str) else dumps(v) for k, v in data.items()}


# --- showing

def iso(moment: float | None) -> str | None:
    """RFC 3339 in UTC with `Z`."""
    return None if moment is None else format_time(datetime.fromtimestamp(moment, UTC))


def local(moment: float | None, zone: str) -> str | None:
    """RFC 3339 in a zone, with its offset."""
    if moment is None:
        return None
    when = datetime.fromtimestamp(moment, ZoneInfo(zone))
    return when.isoformat(timespec="seconds" if when.microsecond == 0 else "milliseconds")


def describe(definition: Definition) -> str:
    """The schedule in words."""
    schedule = definition.schedule()
    if schedule is not None:
        return schedule.describe()
    return f"once, at {local(definition.at, definition.timezone)} ({definition.timezone})"
