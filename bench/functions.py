"""Benchmark: function invocations/s and latency, for a `web` function and a `chan_in` function.

Starts a real `sblite serve` on a free loopback port with a fresh temporary database (the
per-connection realtime rate limit raised), registers one user and adds two functions that
each do exactly one `create`:

* `bench_web` (trigger `web`), called with `POST /fn/exec/bench_web` and the user's token by
  `wrk` (50 connections by default) through bench/sb_wrk.lua; wrk measures req/s and latency.
* `bench_chan` (trigger `chan_in`), fired by chan_in messages sent over WebSocket
  (`/ws?sbpk=...`, auth with the user's token) to the channel `bench`. Each message carries
  its send time; the function copies it into the document it creates, and a second
  WebSocket, joined to `db-fnchan`, receives the document's `db_created` event: the moment
  the invocation has completed. Two drives: `chan_in window` keeps --window invocations in
  flight (the analogue of wrk's 50 clients; its figure is the capacity), and `chan_in rate`
  sends at a fixed --rate for --seconds then waits (bounded) for every completion.

Each phase runs --runs times; the table shows medians, the CPU each process used during the
runs, and (with py-spy, in one extra unmeasured run per drive) where the server's main
process spends its time. Not a test: it prints figures, exits 1 when anything failed
(non-2xx, error frames, failed or missing invocations), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from documents import (REPO_ROOT, BenchError, RunResult, count_docs, ensure_alive, http, memory_kib,
                       register, run_main, run_wrk, stop_server)
from wsclient import WebSocket
from tests.support import DEV_PK, DEV_ROOT_TOKEN, ServerProcess, start_server

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHANNEL = "bench"
WEB_COLLECTION = "fnweb"
CHAN_COLLECTION = "fnchan"
WEB_FUNCTION = "bench_web"
CHAN_FUNCTION = "bench_chan"
RATE_LIMIT_ENV = "SBLITE_REALTIME_MAX_MESSAGES_PER_SECOND"
PROFILE_RATE = 200  # py-spy samples per second
STALL_SECONDS = 10.0  # a drive with no completion for this long is stopped as failed
SETTLE_SECONDS = 120.0  # bound on waiting for a backlog of queued function runs to drain
Log = Callable[[str], None]

WEB_SOURCE = """\
function handle(body, query, headers) {
    var res = create("fnweb", body);
    if (!res.ok) throw new Error("create failed: " + res.content);
    return {id: res.content.id};
}
"""

CHAN_SOURCE = """\
function handle(channel, type, data) {
    var res = create("fnchan", {run: data.run, seq: data.seq, sent: data.sent});
    if (!res.ok) throw new Error("create failed: " + res.content);
}
"""


# --------------------------------------------------------------------------- CPU accounting

def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (the server's function workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        if int(text.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, total, stolen) jiffies of all CPUs together, from /proc/stat.

    Stolen: time a virtual machine's CPUs wanted to run but the hypervisor ran something else.
    """
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total, values[7] if len(values) > 7 else 0


class CpuMeter:
    """CPU used by the server, its workers, this process and finished children over one interval."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def snapshot(self) -> dict[str, Any]:
        """Counters now."""
        workers = {pid: proc_cpu_seconds(pid) for pid in child_pids(self.server_pid)}
        me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"wall": time.monotonic(), "server": proc_cpu_seconds(self.server_pid) or 0.0,
                "workers": {pid: cpu for pid, cpu in workers.items() if cpu is not None},
                "self": me.ru_utime + me.ru_stime, "children": children.ru_utime + children.ru_stime,
                "machine": machine_jiffies()}

    @staticmethod
    def percent(start: dict[str, Any], end: dict[str, Any]) -> dict[str, float]:
        """% of one core per process over the interval; `machine` is % of all cores together."""
        wall = max(end["wall"] - start["wall"], 1e-9)
        workers = sum(cpu - start["workers"].get(pid, 0.0) for pid, cpu in end["workers"].items())
        busy = end["machine"][0] - start["machine"][0]
        total = max(end["machine"][1] - start["machine"][1], 1)
        server = 100 * (end["server"] - start["server"]) / wall
        workers_pct = 100 * workers / wall
        load = 100 * (end["self"] - start["self"] + end["children"] - start["children"]) / wall
        machine_cores_pct = 100 * busy / total * (os.cpu_count() or 1)
        stolen = 100 * (end["machine"][2] - start["machine"][2]) / total * (os.cpu_count() or 1)
        return {"server_main": round(server, 1), "workers": round(workers_pct, 1),
                "worker_count": len(end["workers"]), "load_generator": round(load, 1),
                "other_processes": round(max(0.0, machine_cores_pct - server - workers_pct - load - stolen), 1),
                "stolen": round(stolen, 1), "machine": round(100 * busy / total, 1)}

    @staticmethod
    def per_invocation(cpu: dict[str, float], per_s: float) -> dict[str, float]:
        """CPU microseconds per invocation of the server main process and of the workers together."""
        if per_s <= 0:
            return {"server_main_us": 0.0, "workers_us": 0.0}
        return {"server_main_us": round(cpu["server_main"] / 100 / per_s * 1e6, 1),
                "workers_us": round(cpu["workers"] / 100 / per_s * 1e6, 1)}


# --------------------------------------------------------------------------- setup

def root_call(base: str, method: str, path: str, body: Any = None) -> Any:
    """A root request with the dev root token; the decoded answer, or BenchError."""
    status, text = http(base + path, method, body, DEV_ROOT_TOKEN)
    if status != 200:
        raise BenchError(f"{method} {path} answered {status}: {text!r}")
    return json.loads(text)


def add_functions(base: str) -> None:
    """Add the two benchmark functions (root)."""
    root_call(base, "POST", "/fn/add", {"name": WEB_FUNCTION, "trigger": "web", "code": WEB_SOURCE})
    root_call(base, "POST", "/fn/add", {"name": CHAN_FUNCTION, "trigger": "chan_in", "code": CHAN_SOURCE})


def smoke_web(base: str, token: str) -> None:
    """One web call, so protocol errors surface before any load."""
    status, text = http(f"{base}/fn/exec/{WEB_FUNCTION}", "POST", {"title": "smoke", "n": 0}, token)
    if status != 200 or "id" not in (json.loads(text) or {}):
        raise BenchError(f"POST /fn/exec/{WEB_FUNCTION} answered {status}: {text!r}")


def function_health(base: str) -> dict[str, Any]:
    """Failed runs (up to 100 shown by the server), parked and still-queued jobs."""
    failed = root_call(base, "GET", "/fn/runs?failed=1")
    parked = root_call(base, "GET", "/fn/jobs?status=parked")
    queued = root_call(base, "GET", "/fn/jobs?status=queued")
    first = next((run.get("error") for run in failed if run.get("error")), "")
    return {"failed_runs": len(failed), "parked_jobs": len(parked), "queued_jobs": len(queued),
            "first_failure": first or ""}


# --------------------------------------------------------------------------- web phase (wrk)

@dataclass
class WebRun:
    """One wrk run against the web function, with the CPU picture."""

    result: RunResult
    cpu: dict[str, float]


def web_wrk(base: str, token: str, args: argparse.Namespace, seconds: float) -> RunResult:
    """wrk once for `seconds` against POST /fn/exec/bench_web."""
    return run_wrk(base, token, f"/fn/exec/{WEB_FUNCTION}", "create", args, seconds)


# --------------------------------------------------------------------------- chan_in phase (WebSocket)

@dataclass
class ChanRun:
    """One drive of the chan_in function: what was sent, what completed, how fast."""

    mode: str
    sent: int
    completed: int
    missing: int
    duplicates: int
    stale: int
    error_frames: int
    first_error: str
    send_rate: float
    completions_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    drain_ms: float
    fell_behind: bool = False
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Error frames, plus missing completions in a window drive (there they mean a stall).

        In an open-loop drive faster than the server, completions may still be queued when the
        drain ends: that is "did not keep up", and whether any was lost is checked at the end
        against the documents in fnchan.
        """
        return self.error_frames + (self.missing if self.mode == "window" else 0)


class Tracker:
    """Send times of the current run's messages and their completions (db_created events)."""

    def __init__(self) -> None:
        self.run = ""
        self.sent_us: dict[int, int] = {}
        self.latencies_us: list[int] = []
        self.done: set[int] = set()
        self.duplicates = 0
        self.stale = 0
        self.first_send = 0.0
        self.last_done = 0.0
        self.progress = asyncio.Event()
        self.on_completed: Callable[[], None] | None = None  # a closed-loop drive sends the next message here

    def reset(self, run: str) -> None:
        """Start a new run: events of older runs count as stale from now on."""
        self.run, self.sent_us, self.latencies_us, self.done = run, {}, [], set()
        self.duplicates = self.stale = 0
        self.first_send = self.last_done = 0.0

    @property
    def outstanding(self) -> int:
        """Sent and not completed yet."""
        return len(self.sent_us) - len(self.done)

    def completed(self, doc: dict[str, Any]) -> None:
        """One db_created event of the bench collection."""
        if doc.get("run") != self.run:
            self.stale += 1
            return
        seq = doc.get("seq")
        if seq in self.done:
            self.duplicates += 1
            return
        if seq not in self.sent_us:
            self.stale += 1
            return
        now_us = time.perf_counter_ns() // 1000
        self.done.add(seq)
        self.latencies_us.append(now_us - int(doc.get("sent", now_us)))
        self.last_done = time.monotonic()
        self.progress.set()
        if self.on_completed is not None:
            self.on_completed()


class Socket:
    """One realtime WebSocket of the bench user (a lean client: see wsclient.py)."""

    def __init__(self, tracker: Tracker) -> None:
        self.ws: WebSocket | None = None
        self.tracker = tracker
        self.frames: Counter[str] = Counter()
        self.first_error = ""
        self.closed_early = False
        self._closing = False
        self._waiters: list[tuple[Callable[[dict], bool], asyncio.Future]] = []

    @classmethod
    async def open(cls, base: str, token: str, tracker: Tracker) -> "Socket":
        """Connect, wait for init, authenticate."""
        sock = cls(tracker)
        init = sock.watch(lambda f: f.get("type") == "init")
        sock.ws = await WebSocket.connect(f"{base.replace('http://', 'ws://')}/ws?sbpk={DEV_PK}", sock._received,
                                          sock._lost)
        await sock.wait(init, "init")
        authed = sock.watch(lambda f: f.get("type") in ("token", "error"))
        sock.send({"type": "auth", "data": token})
        await sock.wait(authed, "token")
        if sock.frames["error"]:
            raise BenchError(f"realtime auth failed: {sock.first_error}")
        return sock

    def queue(self, message: dict[str, Any]) -> None:
        """Queue one frame for the next `flush`."""
        self.ws.queue(json.dumps(message, separators=(",", ":")))

    def send(self, message: dict[str, Any]) -> None:
        """Send one frame now."""
        self.queue(message)
        self.ws.flush()

    def watch(self, predicate: Callable[[dict], bool]) -> asyncio.Future:
        """A future for the next frame matching `predicate` (set up before sending what it answers)."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future

    async def wait(self, future: asyncio.Future, what: str, timeout: float = 10) -> dict:
        """The frame a `watch` future gets (BenchError after `timeout` seconds)."""
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise BenchError(f"no {what} frame within {timeout:g}s (frames so far: {dict(self.frames)}, "
                             f"first error: {self.first_error!r})") from None

    def _received(self, text: str) -> None:
        frame = json.loads(text)
        kind = frame.get("type", "")
        self.frames[kind] += 1
        if kind == "db_created" and frame.get("channel") == f"db-{CHAN_COLLECTION}":
            self.tracker.completed(json.loads(frame["data"]))
        elif kind == "error" and not self.first_error:
            self.first_error = str(frame.get("data"))
        if self._waiters:
            for waiter in tuple(self._waiters):
                if not waiter[1].done() and waiter[0](frame):
                    waiter[1].set_result(frame)
                    self._waiters.remove(waiter)

    def _lost(self) -> None:
        if not self._closing:
            self.closed_early = True
            self.tracker.progress.set()

    async def close(self) -> None:
        """Close the socket."""
        self._closing = True
        if self.ws is not None:
            await self.ws.close()


class ChanDriver:
    """Sender sockets, the db-fnchan listener, and the two drives."""

    def __init__(self, senders: list[Socket], listener: Socket, tracker: Tracker) -> None:
        self.senders, self.listener, self.tracker = senders, listener, tracker
        self._next = 0
        self._seq = 0

    @classmethod
    async def open(cls, base: str, token: str, count: int) -> "ChanDriver":
        """Open `count` senders and a listener joined to db-fnchan."""
        tracker = Tracker()
        opened: list[Socket] = []
        try:
            listener = await Socket.open(base, token, tracker)
            opened.append(listener)
            joined = listener.watch(lambda f: f.get("type") == "joined")
            listener.send({"type": "join", "data": f"db-{CHAN_COLLECTION}"})
            await listener.wait(joined, f"joined db-{CHAN_COLLECTION}")
            for _ in range(count):
                opened.append(await Socket.open(base, token, tracker))
        except BaseException:
            for sock in opened:
                await sock.close()
            raise
        return cls(opened[1:], listener, tracker)

    async def close(self) -> None:
        """Close every socket."""
        for sock in (*self.senders, self.listener):
            await sock.close()

    def _error_frames(self) -> tuple[int, str]:
        socks = (*self.senders, self.listener)
        return sum(s.frames["error"] for s in socks), next((s.first_error for s in socks if s.first_error), "")

    def _broken(self) -> str:
        if any(s.closed_early for s in (*self.senders, self.listener)):
            return "a WebSocket was closed by the server"
        return ""

    @property
    def sent_total(self) -> int:
        """chan_in messages sent over all runs."""
        return self._seq

    def _queue_one(self) -> None:
        """Queue the next chan_in message on the next sender (sent by `_flush`)."""
        self._seq += 1
        seq = self._seq
        sent_us = time.perf_counter_ns() // 1000
        tracker = self.tracker
        if not tracker.sent_us:
            tracker.first_send = time.monotonic()
        tracker.sent_us[seq] = sent_us
        data = f'{{"run":"{tracker.run}","seq":{seq},"sent":{sent_us}}}'
        sock = self.senders[self._next]
        self._next = (self._next + 1) % len(self.senders)
        sock.queue({"type": "chan_in", "channel": CHANNEL, "data": data})

    def _flush(self) -> None:
        for sock in self.senders:
            sock.ws.flush()

    async def _keep_window(self, window: int, end: float) -> None:
        """Until `end`, send a message each time one completes, so `window` stay in flight.

        The sending happens in the listener's frame callback: no task wakes per message.
        """
        tracker = self.tracker

        def refill() -> None:
            if time.monotonic() < end:
                while tracker.outstanding < window:
                    self._queue_one()
                self._flush()

        tracker.on_completed = refill
        try:
            refill()
            while time.monotonic() < end and not self._broken():
                await asyncio.sleep(min(0.2, max(0.0, end - time.monotonic())))
                if time.monotonic() - max(tracker.last_done, tracker.first_send) > STALL_SECONDS:
                    break  # stalled: reported as missing completions
        finally:
            tracker.on_completed = None

    async def drive(self, run: str, mode: str, seconds: float, window: int, rate: int, drain: float,
                    backlog: int = 0) -> ChanRun:
        """One run: `window` (closed loop) or `rate` (open loop), then wait for the stragglers.

        An open-loop drive stops sending early ("fell behind") once more than `backlog`
        invocations are outstanding, so a server slower than the rate is not buried.
        """
        tracker = self.tracker
        tracker.reset(run)
        errors_before = self._error_frames()[0]
        started = time.monotonic()
        end = started + seconds
        if mode == "window":
            await self._keep_window(window, end)
        fell_behind = False
        if mode != "window":
            total = max(1, round(rate * seconds))
            while len(tracker.sent_us) < total and not self._broken():
                if backlog and tracker.outstanding > backlog:
                    fell_behind = True
                    break
                due = min(total, int((time.monotonic() - started) * rate) + 1)
                while len(tracker.sent_us) < due:
                    self._queue_one()
                self._flush()
                await asyncio.sleep(0.001)
        sending_ended = time.monotonic()
        drain_deadline = sending_ended + drain
        while tracker.outstanding > 0 and time.monotonic() < drain_deadline and not self._broken():
            tracker.progress.clear()
            try:
                await asyncio.wait_for(tracker.progress.wait(), max(0.01, drain_deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
        sent, completed = len(tracker.sent_us), len(tracker.done)
        latencies = sorted(tracker.latencies_us)
        span = max((tracker.last_done or sending_ended) - tracker.first_send, 1e-9)
        errors, first_error = self._error_frames()
        broken = self._broken()
        return ChanRun(
            mode=mode, sent=sent, completed=completed, missing=sent - completed, duplicates=tracker.duplicates,
            stale=tracker.stale, error_frames=errors - errors_before, first_error=broken or first_error,
            send_rate=round(sent / max(sending_ended - started, 1e-9), 1),
            completions_per_s=round(completed / span, 1),
            p50_ms=round(_percentile(latencies, 0.50) / 1000, 3), p99_ms=round(_percentile(latencies, 0.99) / 1000, 3),
            max_ms=round((latencies[-1] if latencies else 0) / 1000, 3),
            drain_ms=round(max(0.0, (tracker.last_done or sending_ended) - sending_ended) * 1000, 1),
            fell_behind=fell_behind)


async def wait_queue_empty(base: str, timeout: float) -> bool:
    """Wait until the server has no queued function jobs; whether it got there within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not await asyncio.to_thread(root_call, base, "GET", "/fn/jobs?status=queued"):
            return True
        await asyncio.sleep(0.5)
    return False


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


# --------------------------------------------------------------------------- profile (py-spy)

def py_spy() -> str | None:
    """py-spy next to this Python, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def start_profile(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """Sample the server's main process for `seconds`: only the thread holding the GIL, if any."""
    tool = py_spy()
    if tool is None:
        return None
    return subprocess.Popen([tool, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                             "--rate", str(PROFILE_RATE), "--gil", "--format", "raw", "--nolineno", "--nonblocking",
                             "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish_profile(proc: subprocess.Popen | None, out: Path, seconds: float, top: int) -> dict[str, Any]:
    """Where the GIL holder was: own time per function and by area, in % of wall time."""
    if proc is None:
        return {"available": False, "reason": "py-spy not found"}
    try:
        _, err = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"available": False, "reason": "py-spy did not finish"}
    if not out.exists():
        return {"available": False, "reason": f"py-spy failed: {err.strip()[-300:]}"}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    samples = 0
    for line in out.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            if "sblite/" in frame and not frame.startswith(_ALWAYS_ON_STACK):
                inclusive[frame] += n
        areas[_area(frames)] += n
    wall_samples = PROFILE_RATE * seconds
    return {"available": True, "samples": samples, "seconds": seconds,
            "gil_held_pct": round(100 * samples / wall_samples, 1),
            "areas_pct": {k: round(100 * v / wall_samples, 1) for k, v in areas.most_common()},
            "top_own_pct": [[name, round(100 * n / wall_samples, 1)] for name, n in own.most_common(top)],
            "top_sblite_inclusive_pct": [[name, round(100 * n / wall_samples, 1)]
                                         for name, n in inclusive.most_common(top)]}


_AREAS = (  # first match from the innermost frame outwards
    ("sqlite", ("sblite/store/", "sqlite3")),
    ("function pool / worker pipes", ("sblite/functions/pool.py", "sblite/functions/protocol.py")),
    ("function host calls", ("sblite/functions/host.py",)),
    ("function service / dispatch", ("sblite/functions/service.py", "sblite/functions/dispatch.py")),
    ("documents service", ("sblite/services/documents.py", "sblite/permissions.py", "sblite/filters.py")),
    ("realtime hub / sinks", ("sblite/services/hub.py", "sblite/services/realtime.py", "sblite/http/sinks.py",
                              "sblite/services/bus.py", "sblite/http/realtime_routes.py")),
    ("auth / tokens", ("sblite/tokens.py", "sblite/services/accounts.py", "sblite/passwords.py")),
    ("json", ("json/", "sblite/jsonutil.py")),
    ("aiohttp http / websocket", ("aiohttp/", "multidict", "yarl/")),
    ("sblite http layer", ("sblite/http/",)),
    ("asyncio event loop", ("asyncio/", "selectors.py")),
    ("thread pool", ("concurrent/", "threading.py")),
)


_ALWAYS_ON_STACK = ("<module> (sblite/__main__.py)", "main (sblite/cli.py)")


def _area(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, markers in _AREAS:
            if any(m in frame for m in markers):
                return name
    return "other"


# --------------------------------------------------------------------------- orchestration

def median(values: list[float]) -> float:
    """Median, 0 for none."""
    return statistics.median(values) if values else 0.0


def median_cpu(cpus: list[dict[str, float]]) -> dict[str, float]:
    """Per-key median of CPU pictures."""
    return {key: median([c[key] for c in cpus]) for key in cpus[0]} if cpus else {}


async def chan_phases(server: ServerProcess, token: str, args: argparse.Namespace, meter: CpuMeter,
                      log: Log, workdir: Path) -> dict[str, Any]:
    """Warm up, the window drives, one unmeasured profiled window drive, then the open-loop drives."""
    driver = await ChanDriver.open(server.url, token, args.senders)
    out: dict[str, Any] = {"window": [], "rate": [], "profile": None, "sent_total": 0, "queue_emptied": True}
    settle = max(args.drain, SETTLE_SECONDS)
    try:
        if args.warmup > 0:
            log(f"chan_in warmup: window drive for {args.warmup}s")
            warm = await driver.drive("warm", "window", args.warmup, args.window, 0, args.drain)
            if warm.errors:
                raise BenchError(f"chan_in warmup failed: {warm.missing} missing, "
                                 f"{warm.error_frames} error frames, first: {warm.first_error!r}")
        await chan_runs(driver, server, "window", args, meter, log, settle, out)
        if args.profile_seconds > 0:
            log(f"chan_in profile: window drive for {args.profile_seconds + 1:g}s under py-spy")
            path = workdir / "chan.pyspy"
            proc = start_profile(server.proc.pid, args.profile_seconds, path)
            profiled = await driver.drive("profile", "window", args.profile_seconds + 1, args.window, 0, args.drain)
            out["profile"] = finish_profile(proc, path, args.profile_seconds, args.top)
            out["profile"]["completions_per_s"] = profiled.completions_per_s
        await chan_runs(driver, server, "rate", args, meter, log, settle, out)
        out["sent_total"] = driver.sent_total
        out["queue_emptied"] = await wait_queue_empty(server.url, settle)
    finally:
        await driver.close()
    return out


async def chan_runs(driver: ChanDriver, server: ServerProcess, mode: str, args: argparse.Namespace,
                    meter: CpuMeter, log: Log, settle: float, out: dict[str, Any]) -> None:
    """--runs drives of one mode; stops after a run that left invocations behind."""
    for i in range(args.runs):
        ensure_alive(server)
        start = meter.snapshot()
        run = await driver.drive(f"{mode}{i}", mode, args.seconds, args.window, args.rate, args.drain,
                                 args.max_backlog)
        run.cpu = CpuMeter.percent(start, meter.snapshot())
        run.cpu.update(CpuMeter.per_invocation(run.cpu, run.completions_per_s))
        out[mode].append(run)
        log(f"chan_in {mode} run {i + 1}/{args.runs}: sent {run.sent} ({run.send_rate:.0f}/s), "
            f"completed {run.completed} = {run.completions_per_s:.1f}/s, p50 {run.p50_ms:.2f} ms, "
            f"p99 {run.p99_ms:.2f} ms, missing {run.missing}, error frames {run.error_frames}, cpu {run.cpu}")
        if run.first_error:
            log(f"  first error: {run.first_error}")
        if run.fell_behind:
            log(f"  more than {args.max_backlog} invocations were outstanding: sending stopped early "
                "(the server does not keep up with this rate)")
        if run.missing:
            log(f"  {run.missing} invocations had not completed {args.drain:g}s (--drain) after the last send")
        if run.missing or run.fell_behind:
            log(f"  no more {mode} runs; waiting up to {settle:g}s for the server's queue of function runs to empty")
            await wait_queue_empty(server.url, settle)
            break


def benchmark(args: argparse.Namespace, log: Log) -> dict[str, Any]:
    """Start the server, run every phase and return the results as a JSON-ready dict."""
    load_at_start = os.getloadavg()[0]
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": pythonpath, RATE_LIMIT_ENV: str(args.realtime_limit)}
    if args.workers:
        env["SBLITE_FUNCTIONS_WORKERS"] = str(args.workers)
    web_runs: list[WebRun] = []
    with tempfile.TemporaryDirectory(prefix="sblite-bench-fn-") as tmp:
        workdir = Path(tmp)
        server = start_server(workdir, env=env)
        try:
            meter = CpuMeter(server.proc.pid)
            log(f"server pid {server.proc.pid} at {server.url}")
            token = register(server.url)
            add_functions(server.url)
            smoke_web(server.url, token)
            workers = child_pids(server.proc.pid)
            log(f"function workers: {len(workers)}")
            warm_ok = 0
            if args.warmup > 0:
                log(f"web warmup: wrk for {args.warmup}s")
                warm = web_wrk(server.url, token, args, args.warmup)
                warm_ok = warm.requests - warm.non2xx
            for i in range(args.runs):
                ensure_alive(server)
                start = meter.snapshot()
                result = web_wrk(server.url, token, args, args.seconds)
                web = WebRun(result, CpuMeter.percent(start, meter.snapshot()))
                web.cpu.update(CpuMeter.per_invocation(web.cpu, result.rps))
                web_runs.append(web)
                log(f"web run {i + 1}/{args.runs}: {result.rps:.1f} calls/s, p50 {result.p50_ms:.2f} ms, "
                    f"p99 {result.p99_ms:.2f} ms, errors {result.errors}, cpu {web.cpu}")
            web_profile: dict[str, Any] | None = None
            web_profile_ok = 0
            if args.profile_seconds > 0:
                log(f"web profile: wrk for {args.profile_seconds + 1}s under py-spy")
                path = workdir / "web.pyspy"
                proc = start_profile(server.proc.pid, args.profile_seconds, path)
                profiled = web_wrk(server.url, token, args, args.profile_seconds + 1)
                web_profile = finish_profile(proc, path, args.profile_seconds, args.top)
                web_profile["calls_per_s"] = profiled.rps
                web_profile_ok = profiled.requests - profiled.non2xx
            web_docs = count_docs(server.url, token, WEB_COLLECTION)
            chan = asyncio.run(chan_phases(server, token, args, meter, log, workdir))
            ensure_alive(server)
            if not chan["queue_emptied"]:
                log(f"function jobs were still queued {args.drain:g}s after the last chan_in")
            chan_docs = count_docs(server.url, token, CHAN_COLLECTION)
            health = function_health(server.url)
            memory = memory_kib(server.proc.pid)
        except BaseException:
            log("---- server output (tail) ----\n" + "\n".join(server.output().splitlines()[-40:]))
            raise
        finally:
            stop_server(server)
    web_acked = 1 + warm_ok + web_profile_ok + sum(r.result.requests - r.result.non2xx for r in web_runs)
    return summarize(args, load_at_start, web_runs, web_profile, chan, web_docs, web_acked, chan_docs, health,
                     memory)


def summarize(args: argparse.Namespace, load: float, web_runs: list[WebRun], web_profile: dict[str, Any] | None,
              chan: dict[str, Any], web_docs: int, web_acked: int, chan_docs: int, health: dict[str, Any],
              memory: dict[str, int]) -> dict[str, Any]:
    """The JSON report."""
    def chan_phase(runs: list[ChanRun]) -> dict[str, Any]:
        return {"completions_per_s_median": median([r.completions_per_s for r in runs]),
                "p50_ms_median": median([r.p50_ms for r in runs]), "p99_ms_median": median([r.p99_ms for r in runs]),
                "errors": sum(r.errors for r in runs), "cpu_median": median_cpu([r.cpu for r in runs]),
                "runs": [{**asdict(r), "errors": r.errors} for r in runs]}

    web = {"calls_per_s_median": round(median([r.result.rps for r in web_runs]), 1),
           "p50_ms_median": round(median([r.result.p50_ms for r in web_runs]), 3),
           "p99_ms_median": round(median([r.result.p99_ms for r in web_runs]), 3),
           "errors": sum(r.result.errors for r in web_runs), "cpu_median": median_cpu([r.cpu for r in web_runs]),
           "first_error": next((r.result.sample for r in web_runs if r.result.sample), ""),
           "runs": [{**asdict(r.result), "cpu": r.cpu} for r in web_runs]}
    window, rate = chan_phase(chan["window"]), chan_phase(chan["rate"])
    rate_kept_up = bool(chan["rate"]) and all(
        not r.fell_behind and r.missing == 0 and r.completions_per_s >= 0.95 * args.rate for r in chan["rate"])
    lost = max(0, chan["sent_total"] - chan_docs) if chan["queue_emptied"] else 0
    errors = (web["errors"] + window["errors"] + rate["errors"] + health["failed_runs"] + health["parked_jobs"]
              + health["queued_jobs"] + lost)
    return {
        "config": {"threads": args.threads, "connections": args.connections, "seconds": args.seconds,
                   "runs": args.runs, "warmup": args.warmup, "window": args.window, "rate": args.rate,
                   "senders": args.senders, "max_backlog": args.max_backlog, "workers": args.workers or "server default",
                   "cpus": os.cpu_count(), "loadavg_1min_at_start": load, "python": interpreter()},
        "web": web,
        "chan_in_window": window,
        "chan_in_rate": {**rate, "kept_up": rate_kept_up},
        "profile": {"web": web_profile, "chan_in": chan["profile"]},
        "documents": {"fnweb": web_docs, "fnweb_2xx_calls": web_acked, "fnchan": chan_docs,
                      "chan_in_sent": chan["sent_total"], "chan_in_lost": lost},
        "functions": health,
        "server_memory_kib": {"rss": memory.get("VmRSS"), "peak": memory.get("VmHWM")},
        "errors": errors,
        "target_invocations_per_s": args.target,
        "target_met": {"web": web["calls_per_s_median"] >= args.target and not web["errors"],
                       "chan_in": window["completions_per_s_median"] >= args.target and not window["errors"]},
    }


def interpreter() -> str:
    """This Python (which the server runs on too): version, path, and how libpython is linked.

    A build with libpython as a shared library and without PGO (pyenv's default) takes
    ~1.2-1.6x as long for the same Python code as a distribution's profile-optimized
    python3 with libpython linked in: the report says which one its figures come from.
    """
    with open("/proc/self/maps") as maps:
        shared = any("libpython" in line for line in maps)
    return (f"{platform.python_version()} at {sys.executable} "
            f"(libpython {'shared' if shared else 'linked into the executable'})")


def _cpu_text(cpu: dict[str, float]) -> str:
    if not cpu:
        return "-"
    return (f"server main {cpu['server_main']:.0f}% ({cpu['server_main_us']:.0f} us/inv)  "
            f"workers({cpu['worker_count']:.0f}) {cpu['workers']:.0f}% ({cpu['workers_us']:.0f} us/inv)  "
            f"load gen {cpu['load_generator']:.0f}%  other processes {cpu['other_processes']:.0f}%  "
            f"stolen {cpu['stolen']:.0f}%  machine {cpu['machine']:.0f}% of {os.cpu_count()} cores")


def render(report: dict[str, Any]) -> str:
    """The human-readable summary."""
    cfg = report["config"]
    web, window, rate = report["web"], report["chan_in_window"], report["chan_in_rate"]
    lines = [
        f"sblite functions benchmark: {cfg['runs']} x {cfg['seconds']}s per phase (medians), {cfg['cpus']} CPUs, "
        f"function workers: {cfg['workers']}, load average at start {cfg['loadavg_1min_at_start']:.2f}",
        f"python: {cfg['python']}",
        "",
        f"{'phase':<34} {'inv/s':>8}  {'p50 ms':>8} {'p99 ms':>8}  {'errors':>6}  runs inv/s",
        f"{'web  (wrk -c' + str(cfg['connections']) + ', POST /fn/exec)':<34} {web['calls_per_s_median']:>8.1f}  "
        f"{web['p50_ms_median']:>8.2f} {web['p99_ms_median']:>8.2f}  {web['errors']:>6}  "
        + " / ".join(f"{r['rps']:.0f}" for r in web["runs"]),
        f"{'chan_in (' + str(cfg['window']) + ' in flight, WS)':<34} {window['completions_per_s_median']:>8.1f}  "
        f"{window['p50_ms_median']:>8.2f} {window['p99_ms_median']:>8.2f}  {window['errors']:>6}  "
        + " / ".join(f"{r['completions_per_s']:.0f}" for r in window["runs"]),
        f"{'chan_in (open loop ' + str(cfg['rate']) + '/s, WS)':<34} {rate['completions_per_s_median']:>8.1f}  "
        f"{rate['p50_ms_median']:>8.2f} {rate['p99_ms_median']:>8.2f}  {rate['errors']:>6}  "
        + " / ".join(f"{r['completions_per_s']:.0f}" for r in rate["runs"]),
        "",
        "CPU during the runs (median, % of one core):",
        f"  web      {_cpu_text(web['cpu_median'])}",
        f"  chan_in  {_cpu_text(window['cpu_median'])}   (window drive)",
        f"  chan_in  {_cpu_text(rate['cpu_median'])}   (open-loop drive)",
        "  (load gen = wrk for web; this script's lean WebSocket client (wsclient.py) for chan_in)",
    ]
    for name, prof in report["profile"].items():
        if not prof:
            continue
        if not prof.get("available"):
            lines += ["", f"py-spy profile of the server main process ({name}): {prof.get('reason')}"]
            continue
        speed = prof.get("calls_per_s") or prof.get("completions_per_s") or 0
        lines += ["", f"py-spy, server main process, {name} ({prof['seconds']:g}s at {speed:.0f} inv/s): "
                      f"the GIL was held {prof['gil_held_pct']:.0f}% of the time; by the code below "
                      "(% of wall time):",
                  "  by area:    " + ", ".join(f"{k} {v:.0f}%" for k, v in prof["areas_pct"].items() if v >= 1),
                  "  top own time:"]
        lines += [f"    {pct:5.1f}%  {fn}" for fn, pct in prof["top_own_pct"]]
        lines += ["  sblite functions, inclusive time (callees included):"]
        lines += [f"    {pct:5.1f}%  {fn}" for fn, pct in prof["top_sblite_inclusive_pct"]]
    docs, health, mem = report["documents"], report["functions"], report["server_memory_kib"]
    lines += [
        "",
        f"documents: fnweb {docs['fnweb']} (2xx web calls incl. warmup/profile/smoke: {docs['fnweb_2xx_calls']}), "
        f"fnchan {docs['fnchan']} (chan_in messages sent incl. warmup/profile: {docs['chan_in_sent']})",
        f"function runs failed: {health['failed_runs']}, parked jobs: {health['parked_jobs']}, "
        f"still queued: {health['queued_jobs']}",
        f"chan_in open loop at {cfg['rate']}/s kept up: {'yes' if rate['kept_up'] else 'NO'} (per run: sent "
        + (" / ".join(f"{r['sent']}{' (stopped: fell behind)' if r['fell_behind'] else ''}, "
                      f"{r['missing']} not completed within --drain" for r in rate["runs"]) or "-") + ")",
        f"server memory at end: RSS {mem['rss'] / 1024:.1f} MiB, peak {mem['peak'] / 1024:.1f} MiB",
        f"target >= {report['target_invocations_per_s']:g} invocations/s: web "
        + ("MET" if report["target_met"]["web"] else "NOT MET") + ", chan_in "
        + ("MET" if report["target_met"]["chan_in"] else "NOT MET"),
    ]
    if docs["chan_in_lost"]:
        lines.append(f"ERROR: {docs['chan_in_lost']} chan_in messages never produced their document")
    elif docs["fnchan"] > docs["chan_in_sent"]:
        lines.append(f"note: fnchan holds {docs['fnchan'] - docs['chan_in_sent']} more documents than messages "
                     "sent (a message ran its function more than once: at-least-once delivery)")
    if docs["fnweb"] < docs["fnweb_2xx_calls"]:
        lines.append("WARNING: fnweb holds fewer documents than web calls answered 2xx")
    if report["errors"]:
        first = (web["first_error"] or next((r["first_error"] for r in window["runs"] + rate["runs"]
                                             if r["first_error"]), "") or health["first_failure"])
        lines += ["", "!" * 72, f"!!! BENCHMARK HAD {report['errors']} ERRORS: the figures above are not valid",
                  f"!!! first error: {first!r}", "!" * 72]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per phase (default 3)")
    ap.add_argument("--seconds", type=float, default=10, help="duration of one run (default 10)")
    ap.add_argument("--warmup", type=float, default=2, help="warmup seconds per kind, 0 = none (default 2)")
    ap.add_argument("--connections", type=int, default=50, help="wrk connections for the web phase (default 50)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--window", type=int, default=50, help="chan_in invocations kept in flight (default 50)")
    ap.add_argument("--rate", type=int, default=1500, help="chan_in messages/s of the open-loop drive (default 1500)")
    ap.add_argument("--max-backlog", type=int, default=0,
                    help="outstanding invocations at which the open-loop drive stops sending "
                         "(default: 2 seconds' worth of --rate)")
    ap.add_argument("--senders", type=int, default=16,
                    help="WebSocket connections sending chan_in (default 16: one user may hold 20)")
    ap.add_argument("--drain", type=float, default=30, help="seconds to wait for the last completions (default 30)")
    ap.add_argument("--workers", type=int, default=0, help="function workers (default: the server's default)")
    ap.add_argument("--realtime-limit", type=int, default=100000,
                    help=f"{RATE_LIMIT_ENV} for the server (default 100000)")
    ap.add_argument("--profile-seconds", type=float, default=5,
                    help="py-spy the server in one extra unmeasured run per kind, 0 = no (default 5)")
    ap.add_argument("--top", type=int, default=12, help="functions shown per profile (default 12)")
    ap.add_argument("--target", type=float, default=1500, help="invocations/s to compare against (default 1500)")
    ap.add_argument("--json", action="store_true", help="write the JSON report to stdout (the table goes to stderr)")
    args = ap.parse_args(argv)
    if (args.runs < 1 or args.seconds < 1 or args.threads < 1 or args.connections < args.threads
            or args.window < 1 or args.rate < 1 or args.senders < 1 or args.drain <= 0):
        ap.error("need --runs/--seconds/--threads/--window/--rate/--senders >= 1, --connections >= --threads, "
                 "--drain > 0")
    args.max_backlog = args.max_backlog or 2 * args.rate
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 = clean run, 1 = errors during the run, 2 = could not run."""
    return run_main(parse_args(argv), benchmark, render)


if __name__ == "__main__":
    sys.exit(main())
