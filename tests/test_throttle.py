"""Attempt limits on login, password reset and register: the limiter alone, then over HTTP."""

from __future__ import annotations

import pytest

from sblite.throttle import AttemptLimiter, AuthThrottle, ThrottleLimits, address_key


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the limiter alone

@pytest.mark.parametrize("limit, window, failures, wait, expected", [
    (5, 900, 4, 0, None),      # under the limit
    (5, 900, 5, 0, 180),       # at the limit: one attempt drains every window/limit seconds
    (5, 900, 5, 179, 1),
    (5, 900, 5, 180, None),
    (30, 300, 30, 0, 10),
    (30, 300, 30, 300, None),  # a whole window later everything has drained
    (1, 60, 3, 0, 60),         # failures past the limit never make the wait longer than a window
])
def test_limiter_rules(limit: int, window: int, failures: int, wait: int, expected: int | None) -> None:
    clock = FakeClock()
    limiter = AttemptLimiter(limit, window, clock=clock)
    for _ in range(failures):
        limiter.fail("k")
    clock.now += wait
    assert limiter.check("k") == expected


def test_limiter_succeed_forgets_and_refund_takes_one_back() -> None:
    limiter = AttemptLimiter(2, 100, clock=FakeClock())
    limiter.fail("k")
    limiter.fail("k")
    assert limiter.check("k") is not None
    limiter.refund("k")
    assert limiter.check("k") is None
    limiter.fail("k")
    limiter.succeed("k")
    assert limiter.check("k") is None and len(limiter) == 0


def test_limiter_forgets_keys_idle_for_a_window() -> None:
    clock = FakeClock()
    limiter = AttemptLimiter(3, 60, clock=clock)
    for n in range(100):
        limiter.fail(f"k{n}")
    clock.now += 60
    limiter.check("other")
    assert len(limiter) == 0


def test_limiter_memory_is_capped() -> None:
    limiter = AttemptLimiter(3, 60, max_keys=50, clock=FakeClock())
    for n in range(10_000):
        limiter.fail(f"address-{n}")
    assert len(limiter) == 50


@pytest.mark.parametrize("remote, key", [
    ("127.0.0.1", "127.0.0.1"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("::ffff:10.0.0.1", "10.0.0.1"),
    (None, "unknown"),
    ("not an address", "not an address"),
])
def test_address_key(remote: str | None, key: str) -> None:
    assert address_key(remote) == key


def test_throttle_parallel_attempts_are_counted_before_their_outcome() -> None:
    throttle = AuthThrottle(ThrottleLimits(account_failures=3), clock=FakeClock())
    tickets = [throttle.begin("login", "10.0.0.1", "victim") for _ in range(5)]
    assert [t.refused for t in tickets] == [False, False, False, True, True]


def test_throttle_known_address_is_exempt_from_the_account_wide_limit() -> None:
    clock = FakeClock()
    throttle = AuthThrottle(ThrottleLimits(account_total_failures=4), clock=clock)
    throttle.succeeded(throttle.begin("login", "10.0.0.1", "victim"))  # the victim's usual address
    for n in range(10):  # an attacker spread over many addresses
        throttle.begin("login", f"192.0.2.{n}", "victim")
    assert throttle.begin("login", "192.0.2.200", "victim").refused
    assert not throttle.begin("login", "10.0.0.1", "victim").refused
