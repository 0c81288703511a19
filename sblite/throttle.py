"""Attempt limits for sign-in style requests: refuse a client or an account that keeps failing.

`AttemptLimiter(limit, window_seconds, max_keys=..., clock=time.monotonic)` is a leaky bucket
per key: `limit` attempts per `window_seconds` on average, bursts of up to `limit`.
  check(key) -> int | None  seconds to wait before the next attempt, None when one is allowed
  fail(key)                 count one attempt (a failure, or one reserved before its outcome)
  refund(key)               take one counted attempt back
  succeed(key)              forget the key
A key drained for a whole window is forgotten; at most `max_keys` keys are kept (the least
recently touched goes first), so rotating addresses or emails cannot grow memory without bound.

`AuthThrottle(ThrottleLimits(...), clock=...)` combines limiters for one server:
  ticket = throttle.begin(action, remote, account)   # action: "login", "reset", "register", "realtime"
  if ticket.refused: answer 429 with `Retry-After: ticket.retry_after` and `ticket.message`
  ... check the credentials (hashing happens only after begin() let the attempt through) ...
  throttle.succeeded(ticket)  or  throttle.failed(ticket)
begin() counts the attempt as a failure up front, so parallel attempts cannot all slip past the
check while their passwords hash; succeeded() takes that back. Limits (config keys):
  auth_throttle_address_failures per auth_throttle_address_window_seconds, per client address
    (an IPv6 address counts as its /64 network): login, reset and realtime failures together.
  auth_throttle_account_failures per auth_throttle_account_window_seconds, per account and address.
  auth_throttle_account_total_failures per auth_throttle_account_window_seconds, per account, from
    addresses that have not signed in to that account before (those are exempt, so an attacker
    elsewhere cannot lock a user out of the addresses they use).
  auth_throttle_register_attempts per auth_throttle_address_window_seconds, per client address:
    every registration counts, successful or not.
  auth_throttle_max_keys: keys each table keeps.
`stats` counts outcomes by (action, "succeeded" | "failed" | "refused") for /metrics.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from collections.abc import Callable, Hashable

Clock = Callable[[], float]
ACTIONS = ("login", "reset", "register", "realtime")
OUTCOMES = ("succeeded", "failed", "refused")
KNOWN_ADDRESS_SECONDS = 30 * 24 * 3600


class AttemptLimiter:
    """A leaky bucket per key: `limit` attempts per `window_seconds`, bounded memory."""

    def __init__(self, limit: int, window_seconds: float, *, max_keys: int = 50_000,
                 clock: Clock = time.monotonic) -> None:
        if limit < 1 or window_seconds <= 0 or max_keys < 1:
            raise ValueError("limit, window_seconds and max_keys must be positive")
        self._limit = limit
        self._window = window_seconds
        self._rate = limit / window_seconds  # attempts drained per second
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (level, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: Hashable) -> int | None:
        """Whole seconds to wait before `key` may try again, or None when it may try now."""
        now = self._clock()
        self._expire(now)
        excess = self._level(key, now) + 1 - self._limit
        return None if excess <= 0 else max(1, math.ceil(excess / self._rate))

    def fail(self, key: Hashable) -> None:
        """Count one attempt for `key`."""
        now = self._clock()
        self._expire(now)
        self._store(key, self._level(key, now) + 1, now)

    def refund(self, key: Hashable) -> None:
        """Take back one attempt counted for `key`."""
        now = self._clock()
        level = self._level(key, now) - 1
        if level <= 0:
            self._buckets.pop(key, None)
        else:
            self._store(key, level, now)

    def succeed(self, key: Hashable) -> None:
        """Forget every attempt of `key`."""
        self._buckets.pop(key, None)

    def _level(self, key: Hashable, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return 0.0
        level, at = entry
        return max(0.0, level - (now - at) * self._rate)

    def _store(self, key: Hashable, level: float, now: float) -> None:
        self._buckets[key] = (min(level, self._limit), now)  # so a wait never exceeds one window
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def _expire(self, now: float) -> None:
        """Drop keys untouched for a window: their bucket is empty (oldest first, so this is cheap)."""
        while self._buckets:
            key, (_, at) = next(iter(self._buckets.items()))
            if now - at < self._window:
                return
            del self._buckets[key]


@dataclass(frozen=True)
class ThrottleLimits:
    """The numbers behind an AuthThrottle (see the module docstring for what each one limits)."""

    address_failures: int = 30
    address_window_seconds: int = 300
    account_failures: int = 5
    account_window_seconds: int = 900
    account_total_failures: int = 20
    register_attempts: int = 30
    max_keys: int = 50_000


@dataclass(frozen=True)
class Ticket:
    """One attempt let through (retry_after None) or refused, and what begin() counted for it."""

    action: str
    address: str
    account: Hashable | None
    retry_after: int | None = None
    message: str = ""
    counted: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        """Whether the attempt must be answered 429 without being tried."""
        return self.retry_after is not None


class AuthThrottle:
    """Attempt limits per client address and per account for sign-in, reset, register and realtime auth."""

    def __init__(self, limits: ThrottleLimits = ThrottleLimits(), *, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        keys = limits.max_keys
        self._tables = {
            "address": AttemptLimiter(limits.address_failures, limits.address_window_seconds,
                                      max_keys=keys, clock=clock),
            "account": AttemptLimiter(limits.account_failures, limits.account_window_seconds,
                                      max_keys=keys, clock=clock),
            "account_total": AttemptLimiter(limits.account_total_failures, limits.account_window_seconds,
                                            max_keys=keys, clock=clock),
            "register": AttemptLimiter(limits.register_attempts, limits.address_window_seconds,
                                       max_keys=keys, clock=clock),
        }
        self._known: OrderedDict[tuple[Hashable, str], float] = OrderedDict()
        self.stats: Counter[tuple[str, str]] = Counter()

    def begin(self, action: str, remote: str | None, account: Hashable | None = None) -> Ticket:
        """Refuse the attempt, or let it through and count it as a failure until succeeded()."""
        address = address_key(remote)
        tables = self._tables_for(action, address, account)
        for table, key in tables:
            retry = self._tables[table].check(key)
            if retry is not None:
                self.stats[action, "refused"] += 1
                return Ticket(action, address, account, retry, _refusal(action, table, retry))
        for table, key in tables:
            self._tables[table].fail(key)
        return Ticket(action, address, account, counted=tuple(table for table, _ in tables))

    def succeeded(self, ticket: Ticket) -> None:
        """The attempt was right: take back its failure and remember the address for the account."""
        self.stats[ticket.action, "succeeded"] += 1
        if ticket.action == "register":
            self._remember(ticket)
            return
        for table in ticket.counted:
            key = self._key(table, ticket.address, ticket.account)
            if table == "account":
                self._tables[table].succeed(key)
            else:
                self._tables[table].refund(key)
        self._remember(ticket)

    def failed(self, ticket: Ticket) -> None:
        """The attempt was wrong; begin() counted it already."""
        self.stats[ticket.action, "failed"] += 1

    def tracked_keys(self) -> int:
        """Keys held in all tables (for tests and /metrics)."""
        return sum(len(table) for table in self._tables.values()) + len(self._known)

    def _tables_for(self, action: str, address: str, account: Hashable | None) -> list[tuple[str, Hashable]]:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if action == "register":
            names = ["register"]
        elif account is None:
            names = ["address"]
        else:
            names = ["address", "account"]
            if not self._is_known(account, address):
                names.append("account_total")
        return [(name, self._key(name, address, account)) for name in names]

    @staticmethod
    def _key(table: str, address: str, account: Hashable | None) -> Hashable:
        if table in ("address", "register"):
            return address
        if table == "account":
            return (account, address)
        return account

    def _is_known(self, account: Hashable, address: str) -> bool:
        at = self._known.get((account, address))
        return at is not None and self._clock() - at < KNOWN_ADDRESS_SECONDS

    def _remember(self, ticket: Ticket) -> None:
        if ticket.account is None:
            return
        pair = (ticket.account, ticket.address)
        self._known[pair] = self._clock()
        self._known.move_to_end(pair)
        while len(self._known) > self.limits.max_keys:
            self._known.popitem(last=False)


def address_key(remote: str | None) -> str:
    """The client address a limit applies to: IPv4 as is, IPv6 as its /64 network."""
    if not remote:
        return "unknown"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


_WHAT = {"login": "sign-in", "reset": "password reset", "register": "registration",
         "realtime": "realtime authentication"}


def _refusal(action: str, table: str, retry: int) -> str:
    """The plain-text reason for a 429."""
    who = {"address": "from this address", "account": "for this account from this address",
           "account_total": "for this account", "register": "from this address"}[table]
    noun = "registrations" if action == "register" else f"failed {_WHAT[action]} attempts"
    return f"too many {noun} {who}: try again in {retry} seconds"
