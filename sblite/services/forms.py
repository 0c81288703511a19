"""Public form sinks: `POST /postform/{form}` stores the fields, root lists them (`GET /form`).

A submission is a flat map of field names to strings (a field sent more than once keeps every
value, joined by ", " as StaticBackend does). A filled `_hp_` field is the honeypot a person
never sees: such a submission is refused (400) and an empty one is not stored. Each client
address may submit `per_minute` forms a minute on average, in bursts of as many, so a public
form cannot fill the disk; past that, 429 with the seconds to wait.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from sblite import ids
from sblite.errors import BadRequest, TooManyRequests
from sblite.store.forms import FormStore
from sblite.throttle import AttemptLimiter, address_key
from sblite.timeutil import now_text

HONEYPOT = "_hp_"
NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")
RESERVED = ("id", "sb_form", "sb_created")
MAX_FIELDS = 200
MAX_FIELD_NAME = 200
DEFAULT_LIST_SIZE = 100
MAX_LIST_SIZE = 1000
OUTCOMES = ("stored", "refused", "rejected")  # refused: over the rate limit; rejected: bad input


def check_form_name(name: str) -> str:
    """The form name if it is 1 to 100 letters, digits, `_` or `-`; BadRequest otherwise."""
    if not NAME.fullmatch(name):
        raise BadRequest("invalid form name: use 1 to 100 letters, digits, _ or -")
    return name


def form_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The fields of a submission from its (name, value) pairs; BadRequest for the honeypot or bad names."""
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        if name == HONEYPOT:
            if value:
                raise BadRequest("invalid form field present")
            continue
        if not name or len(name) > MAX_FIELD_NAME:
            raise BadRequest(f"invalid form field name: 1 to {MAX_FIELD_NAME} characters")
        if name in RESERVED:
            raise BadRequest(f"form field {name} is reserved (the server sets id, sb_form and sb_created)")
        fields.setdefault(name, []).append(value)
        if len(fields) > MAX_FIELDS:
            raise BadRequest(f"a form may have at most {MAX_FIELDS} fields")
    if not fields:
        raise BadRequest("the form has no fields")
    return {name: ", ".join(values) for name, values in fields.items()}


class FormService:
    """Stores and lists form submissions, within a per-address rate limit."""

    def __init__(self, store: FormStore, per_minute: int, *, max_keys: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._per_minute = per_minute
        self._limit = AttemptLimiter(per_minute, 60, max_keys=max_keys, clock=clock)
        self.stats: Counter[str] = Counter()

    def admit(self, app_id: str, remote: str | None) -> None:
        """Count one submission from `remote`, or raise TooManyRequests past the limit (before reading it)."""
        key = (app_id, address_key(remote))
        retry = self._limit.check(key)
        if retry is not None:
            self.stats["refused"] += 1
            raise TooManyRequests(f"too many form submissions from your address: at most {self._per_minute} a "
                                  f"minute; try again in {retry} s", retry)
        self._limit.fail(key)

    async def submit(self, app_id: str, name: str, pairs: Iterable[tuple[str, str]]) -> None:
        """Store a submission of the form `name` (admitted first)."""
        try:
            fields = form_fields(pairs)
            check_form_name(name)
        except BadRequest:
            self.stats["rejected"] += 1
            raise
        await self._store.add(app_id, ids.new_id(), name, fields, now_text())
        self.stats["stored"] += 1

    def rejected(self) -> None:
        """Count a submission refused before its fields were read (its body, its size)."""
        self.stats["rejected"] += 1

    async def list(self, app_id: str, name: str | None, page: int, size: int) -> list[dict[str, Any]]:
        """One page of submissions, newest first, each with `id`, `sb_form` and `sb_created`."""
        if name is not None:
            check_form_name(name)
        size = min(size, MAX_LIST_SIZE)
        return await self._store.list(app_id, name, size, (page - 1) * size)
