"""Runaway functions are stopped, recorded as failed, and never hold up the server.

Each runaway (busy loop, log loop, host-call loop, a long C builtin, unbounded recursion, a
1 GiB allocation) must be stopped within 1.5x its limit and answered 500; its run is recorded
with success false; the next invocation works; and while it runs another user's ordinary HTTP
requests keep being answered well within the limit (the test client shares the server's event loop,
so a loop blocked on JavaScript would show up in these round trips). A worker killed from the
outside does not take the server down and the pool refills.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from dataclasses import dataclass

import pytest

from sblite.app import create_app
from sblite.http.keys import ACCOUNTS, FUNCTIONS
from sblite.tokens import DEV_ROOT_ALIAS
from tests.conftest import Api, make_config
from tests.function_helpers import eventually

TIMEOUT_SECONDS = 1
WORKERS = 2
SLACK = 1.5  # a runaway must be stopped within SLACK x its limit
PROBE_EVERY = 0.02  # seconds between another user's requests while a runaway runs
# The slowest of those requests may take this long: JavaScript holding the loop would hold it for
# the runaway's whole limit (1 s); 100 ms was missed on a loaded shared machine (169 ms seen).
PROBE_MAX = 0.4
OK_SOURCE = "function handle(body) { return {fine: true, echo: body}; }"


@dataclass(frozen=True)
class Runaway:
    name: str
    source: str
    errors: tuple[str, ...]  # the error text names one of these (lower case)


RUNAWAYS = [
    Runaway("busy_loop", "function handle() { while (true) {} }", ("timeout",)),
    Runaway("log_loop", "function handle() { for (;;) { log(1); } }", ("timeout",)),
    Runaway("host_call_loop", "function handle() { for (;;) { cacheGet('k'); } }", ("timeout",)),
    # a C builtin that never polls an interrupt: the memory limit or the deadline stops it
    Runaway("huge_join", "function handle() { return new Array(1e8).join('ab').length; }",
            ("timeout", "out of memory")),
    Runaway("recursion", "function down(n) { return down(n + 1) + 1; }\nfunction handle() { return down(0); }",
            ("maximum call stack size exceeded", "stack overflow")),
    Runaway("gib_allocation", "function handle() { return new ArrayBuffer(1024 * 1024 * 1024).byteLength; }",
            ("out of memory",)),
]


def _pool(api: Api):
    """The app's worker pool. FunctionService has no public accessor for it: `_pool` is private."""
    return api.client.server.app[FUNCTIONS].pool


def _alive(pid: int) -> bool:
    """True while the process runs (a zombie waiting to be reaped counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


async def _app(aiohttp_client, tmp_path, **overrides) -> Api:
    settings = {"functions_timeout_seconds": TIMEOUT_SECONDS, "functions_workers": WORKERS, **overrides}
    return Api(await aiohttp_client(create_app(make_config(tmp_path, **settings))))


async def _add(api: Api, name: str, source: str, trigger: str = "web") -> None:
    status, body = await api.root("POST", "/fn/add", {"name": name, "trigger": trigger, "code": source})
    assert status == 200, body


async def _exec(api: Api, token: str, name: str, body=None) -> tuple[int, object, float]:
    """Call a web function; (status, JSON or error text, wall seconds)."""
    started = time.monotonic()
    status, answer = await api.call("POST", f"/fn/exec/{name}", token, json=body if body is not None else {})
    return status, answer, time.monotonic() - started


async def _last_run(api: Api, name: str) -> dict:
    status, info = await api.root("GET", f"/fn/info/{name}")
    assert status == 200, info
    assert info["history"], f"no run recorded for {name}"
    return info["history"][0]


async def _probe(api: Api, token: str, stop: asyncio.Event) -> list[float]:
    """Another user's ordinary requests every PROBE_EVERY s until `stop`; their round-trip times."""
    times: list[float] = []
    n = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        if n % 2:
            status, body = await api.call("POST", "/db/probes", token, json={"n": n})
            assert status == 201, body
        else:
            status, body = await api.call("GET", "/db/probes?size=5", token)
            assert status == 200, body
        times.append(time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY)
    return times


async def _ok_call(api: Api, token: str) -> None:
    status, answer, _ = await _exec(api, token, "ok", {"x": 1})
    assert status == 200, answer
    assert answer == {"fine": True, "echo": {"x": 1}}


@pytest.fixture
async def runaway_api(aiohttp_client, tmp_path) -> Api:
    api = await _app(aiohttp_client, tmp_path)
    await _add(api, "ok", OK_SOURCE)
    for case in RUNAWAYS:
        await _add(api, case.name, case.source)
    return api


@pytest.mark.parametrize("case", RUNAWAYS, ids=[case.name for case in RUNAWAYS])
async def test_runaway_is_stopped_recorded_and_does_not_block_others(runaway_api, case):
    api = runaway_api
    caller, other = await api.register(), await api.register()
    await _ok_call(api, caller)  # workers are warm before measuring

    # This measures whether JavaScript can block the loop. The test process has gathered the
    # garbage of every earlier test: collect it now and pause the collector meanwhile, so a
    # full collection of the test process cannot pass for a blocked loop.
    gc.collect()
    gc.disable()
    stop = asyncio.Event()
    prober = asyncio.ensure_future(_probe(api, other, stop))
    try:
        status, answer, elapsed = await asyncio.wait_for(_exec(api, caller, case.name), TIMEOUT_SECONDS * 10)
    finally:
        stop.set()
        gc.enable()
    probes = await asyncio.wait_for(prober, 5)
    print(f"\n{case.name}: stopped after {elapsed:.3f} s; {len(probes)} other requests, "
          f"max {max(probes) * 1000:.1f} ms; error: {answer!r}")

    assert status == 500, answer
    assert any(word in str(answer).lower() for word in case.errors), answer
    assert elapsed < SLACK * TIMEOUT_SECONDS, f"{case.name} ran {elapsed:.3f} s (limit {TIMEOUT_SECONDS} s)"
    if "timeout" not in case.errors:  # memory and stack limits do not wait for the deadline
        assert elapsed < TIMEOUT_SECONDS, f"{case.name} took {elapsed:.3f} s"

    assert probes, "no other request completed while the runaway ran"
    assert max(probes) < PROBE_MAX, f"another user's request took {max(probes) * 1000:.1f} ms: {probes}"

    run = await _last_run(api, case.name)
    assert run["success"] is False, run
    assert run["error"] and any(word in run["error"].lower() for word in case.errors), run

    await _ok_call(api, caller)  # the next invocation works
    assert (await _last_run(api, "ok"))["success"] is True


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="scheduling policies are Linux-only")
async def test_workers_yield_the_cpu_to_the_event_loop(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path)
    await _add(api, "ok", OK_SOURCE)
    await _ok_call(api, await api.register())
    pids = _pool(api).pids()
    assert pids
    for pid in pids:  # a woken worker must not preempt the loop that answers its host calls
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH, pid
        assert os.getpriority(os.PRIO_PROCESS, pid) > os.getpriority(os.PRIO_PROCESS, 0), pid


async def test_killed_idle_worker_is_replaced_and_the_server_keeps_answering(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path)
    await _add(api, "ok", OK_SOURCE)
    token = await api.register()
    await _ok_call(api, token)
    pool = _pool(api)
    before = pool.pids()
    assert len(before) == WORKERS and all(_alive(pid) for pid in before), before

    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    results = [await _exec(api, token, "ok", {"x": 1}) for _ in range(3 * WORKERS)]
    failures = [(status, answer) for status, answer, _ in results if status != 200]
    print(f"\nafter SIGKILL of an idle worker: {len(failures)} failed invocation(s): {failures}")
    assert len(failures) <= 1, failures  # at most one that met the worker as it died

    deadline = time.monotonic() + 5
    while True:
        pids = pool.pids()
        if victim not in pids and len(pids) == WORKERS and all(_alive(pid) for pid in pids):
            break
        assert time.monotonic() < deadline, f"pool did not refill: {pids} (killed {victim})"
        await _ok_call(api, token)
        await asyncio.sleep(0.05)

    status, body = await api.call("POST", "/db/after_crash", token, json={"still": "here"})
    assert status == 201, body
    await _ok_call(api, token)


async def test_worker_killed_mid_run_fails_that_run_only(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path, functions_timeout_seconds=5, functions_workers=1)
    await _add(api, "ok", OK_SOURCE)
    await _add(api, "spin", "function handle() { while (true) {} }")
    token = await api.register()
    await _ok_call(api, token)
    pool = _pool(api)
    [victim] = pool.pids()

    running = asyncio.ensure_future(_exec(api, token, "spin"))
    await asyncio.sleep(0.3)
    assert not running.done()
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    status, answer, _ = await asyncio.wait_for(running, 10)
    noticed = time.monotonic() - killed_at
    print(f"\nworker killed mid-run: answered {status} after {noticed:.3f} s: {answer!r}")
    assert status == 500, answer
    assert "died" in str(answer), answer
    assert noticed < 1, f"the death of the worker was noticed after {noticed:.3f} s"
    run = await _last_run(api, "spin")
    assert run["success"] is False, run

    await _ok_call(api, token)
    pids = pool.pids()
    assert len(pids) == 1 and victim not in pids and _alive(pids[0]), pids


async def test_log_lines_are_capped(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path, functions_max_log_lines=20)
    await _add(api, "chatty",
               "function handle() { for (var i = 0; i < 1000; i++) { log('line ' + i); } return 'done'; }")
    token = await api.register()
    status, answer, _ = await _exec(api, token, "chatty")
    assert status == 200, answer
    assert answer == "done"
    run = await _last_run(api, "chatty")
    assert run["success"] is True, run
    kept = [line for line in run["output"] if line.startswith("line ")]
    assert kept == [f"line {i}" for i in range(20)], run["output"]


async def test_host_calls_stop_at_the_limit_and_the_next_run_has_a_fresh_budget(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path, functions_max_host_calls=50)
    await _add(api, "counter", """
function handle() {
  var ok = 0, refused = 0, last = null;
  for (var i = 0; i < 80; i++) {
    var r = inc("hits");
    if (r.ok) ok++; else { refused++; last = r.content; }
  }
  return {ok: ok, refused: refused, last: last};
}""")
    await _add(api, "reader", "function handle() { return cacheGet('hits'); }")
    token = await api.register()

    status, answer, _ = await _exec(api, token, "counter")
    assert status == 200, answer
    assert answer["ok"] == 50 and answer["refused"] == 30, answer
    assert "host call limit" in answer["last"], answer

    status, answer, _ = await _exec(api, token, "reader")
    assert status == 200, answer
    assert answer["ok"] is True and str(answer["content"]) == "50", answer  # refused calls did nothing


async def test_pool_grows_while_every_worker_is_busy_and_no_further(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path, functions_timeout_seconds=5, functions_workers=4)
    await _add(api, "ok", OK_SOURCE)
    await _add(api, "busy", "function handle() { var t = Date.now(); while (Date.now() - t < 300) {} return 1; }")
    token = await api.register()
    for _ in range(5):  # one run at a time never needs more than the first two workers
        await _ok_call(api, token)
    pool = _pool(api)
    assert len(pool.pids()) == 2, pool.pids()

    results = await asyncio.gather(*(_exec(api, token, "busy") for _ in range(8)))
    assert [status for status, _, _ in results] == [200] * 8, results
    pids = pool.pids()
    assert len(pids) == 4 and all(_alive(pid) for pid in pids), pids


async def test_waiting_for_a_worker_does_not_count_against_the_time_limit(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path, functions_timeout_seconds=1, functions_workers=1)
    slow = "function handle() { var t = Date.now(); while (Date.now() - t < 300) {} return 1; }"
    await _add(api, "slow", slow)
    await _add(api, "slow_msg", slow, trigger="slow")
    token = await api.register()

    # One worker, five calls of 0.3 s each: the last waits 1.2 s for the worker, over the 1 s limit.
    results = await asyncio.gather(*(_exec(api, token, "slow") for _ in range(5)))
    assert [(status, answer) for status, answer, _ in results] == [(200, 1)] * 5, results

    published = await asyncio.gather(*(api.root("POST", "/publish-message",
                                                {"channel": "q", "type": "slow", "data": str(n)})
                                       for n in range(5)))
    assert published == [(200, True)] * 5

    async def all_ran() -> list[dict] | None:
        status, info = await api.root("GET", "/fn/info/slow_msg")
        assert status == 200, info
        return info["history"] if len(info["history"]) >= 5 else None

    history = await eventually(all_ran, 15, "five message runs")
    assert [run["success"] for run in history] == [True] * 5, [run["error"] for run in history]
    assert all(run["durationMs"] < 1000 for run in history), [run["durationMs"] for run in history]


async def test_a_call_that_gives_up_waiting_for_a_worker_leaves_it_to_the_next(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path, functions_workers=1)
    slow = "function handle() { var t = Date.now(); while (Date.now() - t < 300) {} return 1; }"
    await _add(api, "slow", slow)
    app = api.client.server.app
    root = await app[ACCOUNTS].identify_root(DEV_ROOT_ALIAS, api.pk)
    functions = app[FUNCTIONS]

    def call() -> asyncio.Task:
        return asyncio.ensure_future(functions.call_web(root, "slow", None, {}, {}))

    running = call()
    await asyncio.sleep(0.1)  # it holds the only worker
    quitter = call()
    await asyncio.sleep(0.05)
    waiting = call()
    await asyncio.sleep(0.05)
    quitter.cancel()  # it waits first in line, then gives up
    assert await asyncio.wait_for(asyncio.gather(running, waiting), 5) == ["1", "1"]
    assert quitter.cancelled()
    assert await asyncio.wait_for(call(), 5) == "1"  # the worker is free again


async def test_a_web_call_that_finds_every_worker_busy_too_long_is_answered_503(aiohttp_client, tmp_path):
    api = await _app(aiohttp_client, tmp_path, functions_timeout_seconds=5, functions_workers=1,
                     functions_web_wait_seconds=1)
    await _add(api, "slow", "function handle() { var t = Date.now(); while (Date.now() - t < 600) {} return 1; }")
    token = await api.register()
    # One worker: the first call runs at once, the second after 0.6 s, the third and fourth would
    # have to wait 1.2 s and 1.8 s, past the 1 s bound.
    results = await asyncio.gather(*(_exec(api, token, "slow") for _ in range(4)))
    assert sorted(status for status, _, _ in results) == [200, 200, 503, 503], results
    refused = [answer for status, answer, _ in results if status == 503]
    assert all("busy" in answer and "did not run" in answer for answer in refused), refused
    assert (await _exec(api, token, "slow"))[:2] == (200, 1)  # the pool is free again
