"""Attempt limits on login, password reset and register: the limiter alone, then over HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from sblite.app import auth_throttle, create_app
from sblite.http.keys import AUTH_THROTTLE
from sblite.throttle import AttemptLimiter, AuthThrottle, ThrottleLimits, address_key
from tests.conftest import Api, make_config
from tests.support import DEV_ROOT_TOKEN


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


# --- over HTTP: a real app on a real socket, the limiter's clock in the test's hands

@pytest.fixture
def start(aiohttp_client, tmp_path):
    """Start an app with some limits overridden; returns (Api, clock)."""
    async def starter(**limits: int) -> tuple[Api, FakeClock]:
        config = make_config(tmp_path, **{f"auth_throttle_{name}": value for name, value in limits.items()})
        app = create_app(config)
        clock = FakeClock()
        app[AUTH_THROTTLE] = auth_throttle(config, clock)
        return Api(await aiohttp_client(app)), clock
    return starter


async def call_from(api: Api, address: str, path: str, body: dict) -> tuple[int, str, dict]:
    """POST from another loopback address (all of 127/8 is loopback): (status, text, headers)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session, \
            session.post(api.client.make_url(path), json=body, headers=api.headers()) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


def login_body(email: str, password: str = "wrong-password") -> dict:
    """A login attempt."""
    return {"email": email, "password": password}


async def reset_body(api: Api, email: str) -> dict:
    """A password reset with a wrong code (the account has a real one pending)."""
    assert (await api.root("GET", f"/password/resetcode?e={email}"))[0] == 200
    return {"email": email, "code": "not-the-code", "password": "new-pw-123"}


async def register_body(api: Api, email: str) -> dict:
    """A registration of an email already taken."""
    return {"email": email, "password": "other-pw-123"}


async def wrong_login(api: Api, email: str) -> dict:
    """A login with a wrong password."""
    return login_body(email)


@pytest.mark.parametrize("path, make_body, limits, allowed, failure, retry_after, words", [
    ("/login", wrong_login, {}, 5, 401, 180, "failed sign-in attempts for this account"),
    ("/login", wrong_login, {"account_failures": 2, "account_window_seconds": 60}, 2, 401, 30, "for this account"),
    ("/password/reset", reset_body, {}, 5, 500, 180, "failed password reset attempts for this account"),
    # the first registration (the victim's, a success) counts too: every registration does
    ("/register", register_body, {"register_attempts": 5}, 4, 400, 60, "too many registrations from this address"),
])
async def test_http_limit_answers_429_with_retry_after(start, path, make_body, limits, allowed, failure,
                                                       retry_after, words) -> None:
    api, _ = await start(**limits)
    await api.register("victim@example.com", "right-pw-123")
    body = await make_body(api, "victim@example.com")
    statuses = [(await api.call("POST", path, json=body))[0] for _ in range(allowed)]
    assert statuses == [failure] * allowed
    resp = await api.client.post(path, json=body, headers=api.headers())
    assert resp.status == 429
    assert resp.headers["Retry-After"] == str(retry_after)
    assert resp.content_type == "text/plain"
    assert words in await resp.text()


async def test_http_brute_force_is_refused_with_the_defaults(start) -> None:
    api, _ = await start()
    await api.register("victim@example.com", "right-pw-123")
    statuses = [(await api.call("POST", "/login", json=login_body("victim@example.com")))[0] for _ in range(60)]
    assert statuses == [401] * 5 + [429] * 55


async def test_http_success_clears_the_account_failures(start) -> None:
    api, _ = await start()
    await api.register("victim@example.com", "right-pw-123")
    for _ in range(3):
        statuses = [(await api.call("POST", "/login", json=login_body("victim@example.com")))[0] for _ in range(4)]
        assert statuses == [401] * 4
        assert (await api.call("POST", "/login", json=login_body("victim@example.com", "right-pw-123")))[0] == 200


async def test_http_window_expiry_with_the_clock(start) -> None:
    api, clock = await start()
    await api.register("victim@example.com", "right-pw-123")
    for _ in range(6):
        status, _ = await api.call("POST", "/login", json=login_body("victim@example.com"))
    assert status == 429
    assert (await api.call("POST", "/login", json=login_body("victim@example.com", "right-pw-123")))[0] == 429
    clock.now += 180  # one attempt drained
    assert (await api.call("POST", "/login", json=login_body("victim@example.com", "right-pw-123")))[0] == 200
    for _ in range(5):
        await api.call("POST", "/login", json=login_body("victim@example.com"))
    assert (await api.call("POST", "/login", json=login_body("victim@example.com")))[0] == 429
    clock.now += 900  # the whole window: all five drained
    statuses = [(await api.call("POST", "/login", json=login_body("victim@example.com")))[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_http_per_account_limit_spans_addresses_but_spares_known_ones(start) -> None:
    api, _ = await start(account_total_failures=6)
    await api.register("victim@example.com", "right-pw-123")  # from 127.0.0.1: a known address now
    await api.register("other@example.com", "other-pw-123")
    for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        for _ in range(2):
            status, _, _ = await call_from(api, address, "/login", login_body("victim@example.com"))
            assert status == 401
    status, text, headers = await call_from(api, "127.0.0.5", "/login", login_body("victim@example.com"))
    assert status == 429 and "for this account:" in text and int(headers["Retry-After"]) > 0
    status, _, _ = await call_from(api, "127.0.0.5", "/login", login_body("other@example.com"))
    assert status == 401  # other accounts are not affected
    assert (await api.call("POST", "/login", json=login_body("victim@example.com", "right-pw-123")))[0] == 200


async def test_http_per_account_and_address_limit_does_not_lock_the_owner_elsewhere(start) -> None:
    api, _ = await start()
    await api.register("victim@example.com", "right-pw-123")
    for _ in range(6):
        status, _, _ = await call_from(api, "127.0.0.9", "/login", login_body("victim@example.com"))
    assert status == 429
    assert (await api.call("POST", "/login", json=login_body("victim@example.com", "right-pw-123")))[0] == 200


async def test_http_per_address_limit_spans_accounts(start) -> None:
    api, _ = await start(address_failures=10)
    statuses = [(await api.call("POST", "/login", json=login_body(f"guess{n}@example.com")))[0] for n in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    resp = await api.client.post("/login", json=login_body("guess99@example.com"), headers=api.headers())
    assert "from this address" in await resp.text() and resp.headers["Retry-After"] == "30"
    status, _, _ = await call_from(api, "127.0.0.2", "/login", login_body("guess1@example.com"))
    assert status == 401  # another address is not affected


async def test_http_memory_is_capped(start) -> None:
    api, _ = await start(max_keys=10)
    for n in range(40):
        await call_from(api, f"127.0.1.{n}", "/login", login_body(f"guess{n}@example.com"))
    assert api.client.app[AUTH_THROTTLE].tracked_keys() <= 4 * 10


async def test_http_attempts_are_counted_in_metrics(start) -> None:
    api, _ = await start()
    await api.register("victim@example.com", "right-pw-123")
    for _ in range(7):
        await api.call("POST", "/login", json=login_body("victim@example.com"))
    resp = await api.client.get("/metrics", headers={"Authorization": f"Bearer {DEV_ROOT_TOKEN}"})
    assert resp.status == 200
    lines = set((await resp.text()).splitlines())
    assert 'sblite_auth_attempts_total{action="login",outcome="failed"} 5' in lines
    assert 'sblite_auth_attempts_total{action="login",outcome="refused"} 2' in lines
    assert 'sblite_auth_attempts_total{action="register",outcome="succeeded"} 1' in lines
