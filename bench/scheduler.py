"""The scheduler under load, sblite only (PocketBase's cron has no API to drive).

- lateness: `count` message tasks `@every 1s` for `seconds`; how late each run started;
- idle: 10,000 enabled tasks none of which comes due; the server's CPU while they wait;
- burst: 10,000 one-off tasks due in the same second; how long until all ran, and none lost;
- resume: the same burst with the server killed (-9) as it comes due, then started again on
  its database: time to the first answer, until every task has run, and runs per task.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from common import BenchError, hist_percentile, proc_cpu, start_sblite
from targets import SBLITE_PK, SBLITE_ROOT, Sblite

ROOT = {"SB-PUBLIC-KEY": SBLITE_PK, "Authorization": f"Bearer {SBLITE_ROOT}"}
MESSAGE = {"type": "message", "value": "tick", "meta": {"channel": "bench-sched", "data": "{}"}}


def rfc3339(moment: float) -> str:
    """A Unix time as RFC 3339 UTC."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def seconds_of(text: str) -> float:
    """An RFC 3339 time as a Unix time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def each(url: str, requests: list[tuple[str, str, Any]], connections: int = 20) -> list[Any]:
    """Root requests `(method, path, body)`, `connections` at a time; their JSON answers, in order."""
    gate = asyncio.Semaphore(connections)
    async with aiohttp.ClientSession(headers=ROOT) as session:
        async def one(method: str, path: str, body: Any) -> Any:
            async with gate, session.request(method, url + path, json=body) as resp:
                if resp.status != 200:
                    raise BenchError(f"{method} {path} answered {resp.status}: {await resp.text()}")
                return await resp.json()
        return list(await asyncio.gather(*(one(*r) for r in requests)))


def add_tasks(url: str, bodies: list[dict[str, Any]]) -> None:
    """Create the tasks."""
    asyncio.run(each(url, [("POST", "/tasks", body) for body in bodies]))


def runs_by_task(url: str, names: list[str], limit: int) -> list[list[dict[str, Any]]]:
    """Each task's newest runs."""
    return asyncio.run(each(url, [("GET", f"/tasks/{name}/runs?limit={limit}", None) for name in names]))


def lateness(target: Sblite, count: int, seconds: float) -> dict[str, Any]:
    """`count` tasks every second for `seconds`: run start minus its instant, in ms."""
    names = [f"every-{i}" for i in range(count)]
    add_tasks(target.url, [{**MESSAGE, "name": name, "interval": "@every 1s"} for name in names])
    began = time.time()
    time.sleep(seconds)
    window = (began + 1, began + seconds - 1)  # whole seconds after the last task was created
    hist: dict[int, int] = {}
    expected = count * int(window[1] - window[0])
    found = 0
    for runs in runs_by_task(target.url, names, int(seconds) + 10):
        for run in runs:
            instant = seconds_of(run["scheduled_for"])
            if window[0] <= instant < window[1] and run["started"]:
                found += 1
                late = int((seconds_of(run["started"]) - instant) * 1000)
                hist[late] = hist.get(late, 0) + 1
    return {"tasks": count, "runs": found, "missing": max(0, expected - found),
            "p50_ms": hist_percentile(hist, 0.5), "p99_ms": hist_percentile(hist, 0.99), "max_ms": max(hist, default=0)}


def idle(target: Sblite, count: int, seconds: float) -> dict[str, Any]:
    """The server's CPU (% of a core) while `count` enabled tasks wait for next New Year."""
    add_tasks(target.url, [{**MESSAGE, "name": f"yearly-{i}", "interval": "0 0 1 1 *"} for i in range(count)])
    time.sleep(2)  # the answers and the loop settle
    pid, began = target.server.proc.pid, time.monotonic()
    cpu = proc_cpu(pid)
    time.sleep(seconds)
    return {"tasks": count, "cpu_percent": round(100 * (proc_cpu(pid) - cpu) / (time.monotonic() - began), 2),
            "rss_mib": round(target.server.rss_kib() / 1024, 1)}


def one_offs(url: str, count: int, prefix: str) -> tuple[list[str], float]:
    """`count` message tasks due at one instant far enough ahead to create them all first."""
    names = [f"{prefix}-{i}" for i in range(count)]
    due = time.time() + 3 + count / 400  # creating them takes about count / 1,000 s
    add_tasks(url, [{**MESSAGE, "name": name, "at": rfc3339(due)} for name in names])
    if time.time() > due:
        raise BenchError(f"creating {count} tasks took past their instant")
    return names, due


def completed(url: str) -> int:
    """How many tasks have completed (one-off tasks that ran)."""
    return sum(task["status"] == "completed" for task in asyncio.run(each(url, [("GET", "/tasks", None)]))[0])


def wait_completed(url: str, count: int, timeout: float) -> float:
    """Wait until `count` tasks have completed; when that was seen."""
    deadline = time.time() + timeout
    while (done := completed(url)) < count:
        if time.time() > deadline:
            raise BenchError(f"only {done} of {count} one-off tasks ran within {timeout:.0f} s")
        time.sleep(0.2)
    return time.time()


def burst(target: Sblite, count: int) -> dict[str, Any]:
    """`count` one-off tasks due in the same second: seconds from the instant until all ran."""
    _, due = one_offs(target.url, count, "burst")
    time.sleep(max(0.0, due - time.time()))
    return {"tasks": count, "all_ran_s": round(wait_completed(target.url, count, 300) - due, 2)}


def resume(target: Sblite, workdir: Path, count: int) -> dict[str, Any]:
    """The burst with a kill -9 as it comes due; after a restart, every task runs once."""
    names, due = one_offs(target.url, count, "kill")
    time.sleep(max(0.0, due + 0.2 - time.time()))
    target.server.proc.kill()
    target.server.proc.wait()
    restarted = time.time()
    target.server = start_sblite(workdir, target.env, target.tree)
    target.url = target.server.url
    all_ran = wait_completed(target.url, count, 300) - restarted
    runs = [len([r for r in task_runs if r["status"] == "ok"]) for task_runs in runs_by_task(target.url, names, 5)]
    return {"tasks": count, "first_answer_ms": round(target.server.started_ms), "all_ran_s": round(all_ran, 2),
            "ran_twice": sum(n > 1 for n in runs), "never_ran": runs.count(0)}


def scheduler(workdir: Path, quick: bool, log: Any) -> dict[str, Any]:
    """Each phase on a fresh server."""
    big = 1000 if quick else 10_000
    phases = {"lateness": lambda t, d: lateness(t, 100 if quick else 1000, 5 if quick else 60),
              "idle": lambda t, d: idle(t, big, 3 if quick else 30),
              "burst": lambda t, d: burst(t, big),
              "resume": lambda t, d: resume(t, d, big)}
    result = {}
    for name, phase in phases.items():
        folder = workdir / f"scheduler-{name}-{time.monotonic_ns()}"
        folder.mkdir()
        target = Sblite(folder)
        try:
            result[name] = phase(target, folder)
        finally:
            target.server.stop()
        log(f"scheduler {name}: {result[name]}")
    return result
