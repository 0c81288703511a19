"""Benchmark: realtime fan-out to one channel of 1,000 members, over SSE and over WebSocket.

For each transport it starts a real `sblite serve` with a fresh temporary database, registers
one user, and spreads the members over --workers receiving processes (raw asyncio clients,
bench/realtime_wire.py); every member authenticates and joins the channel `bench`. It then
measures the server's RSS per idle connection and drives one sender connection (not a
member) through a ramp of chan_in rates. Each chan_in carries its monotonic send time; the
receivers file every chan_out they get by phase: deliveries/s, latency percentiles, missing
deliveries and disconnects. Not a test: it prints figures and whether the targets are met;
it exits 1 when deliveries went missing or members were disconnected, 2 when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp

from documents import REPO_ROOT, BenchError, ensure_alive, memory_kib, register, stop_server
from realtime_members import worker_main
from realtime_wire import BUCKET_NS, CHANNEL, Member, Tally, WsMember, bench_data, connect, post_session
from tests.support import DEV_PK, ServerProcess, start_server

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
Log = Callable[[str], None]


@dataclass
class PhaseResult:
    """One rate step of one run: what was sent, what arrived, how fast, and the CPU it took."""

    run: int
    rate: int
    sent: int
    expected: int
    delivered: int
    missing: int
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    sender_lag_ms: float
    sender_errors: int
    server_us_per_delivery: float
    disturbed: bool
    cpu_pct: dict[str, float] = field(default_factory=dict)


class WorkerHandle:
    """A receiving process and the pipe that drives it."""

    def __init__(self, index: int, spec: dict[str, Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, spec), name=f"sblite-bench-receiver-{index}",
                                daemon=True)
        self.proc.start()
        child.close()

    async def request(self, name: str, timeout: float, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and wait (at most `timeout` seconds) for its reply."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        self.pipe.send((name, args or {}))
        fd = self.pipe.fileno()
        loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout)
        except asyncio.TimeoutError:
            raise BenchError(f"receiver {self.proc.pid} did not answer {name} within {timeout:.0f}s") from None
        finally:
            loop.remove_reader(fd)
        try:
            reply: dict[str, Any] = self.pipe.recv()
        except EOFError:
            raise BenchError(f"receiver {self.proc.pid} exited with {self.proc.exitcode} during {name}") from None
        if "error" in reply:
            raise BenchError(f"receiver {self.proc.pid} failed: {reply['error']}")
        return reply

    def stop(self) -> None:
        """End the process: it should have exited after close; terminate, then kill, if not."""
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(3)
        self.pipe.close()


class Sender:
    """The connection that sends chan_in: a WebSocket frame, or a POST /sse/msg per message."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self.posts: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []

    def send(self, data: str) -> None:
        """Send one chan_in to the bench channel without waiting."""
        message = {"type": "chan_in", "channel": CHANNEL, "data": data}
        if isinstance(self.member, WsMember):
            self.member.send_now(message)
            return
        task = asyncio.ensure_future(self._post(message))
        self.posts.add(task)
        task.add_done_callback(self.posts.discard)

    async def _post(self, message: dict[str, Any]) -> None:
        """POST one message; a failure is counted, not raised."""
        try:
            await self.member.send(message)
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")

    async def settle(self, timeout: float) -> None:
        """Wait for POSTs still in flight."""
        if self.posts:
            await asyncio.wait(set(self.posts), timeout=timeout)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_seconds() -> tuple[float, float]:
    """CPU seconds the machine spent busy (user, system, irq; not idle, iowait or steal) and stolen."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def cpu_snapshot(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds per role (server, receivers, sender), of the whole machine, and stolen by the host."""
    snapshot = {role: sum(cpu_seconds(pid) for pid in group) for role, group in pids.items()}
    snapshot["machine"], snapshot["steal"] = machine_seconds()
    return snapshot


def percentile_ms(hist: dict[int, int], q: float) -> float:
    """The upper edge, in ms, of the histogram bucket holding quantile q."""
    total = sum(hist.values())
    if not total:
        return 0.0
    rank, seen = q * total, 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return (bucket + 1) * BUCKET_NS / 1e6
    return (max(hist) + 1) * BUCKET_NS / 1e6


def merge_phase(reports: list[dict[str, Any]], phase: int) -> tuple[int, int, int, dict[int, int]]:
    """Delivered count, first and last receive time, and merged latency histogram of a phase."""
    parts = [r["phases"][phase] for r in reports if phase in r["phases"]]
    hist: dict[int, int] = {}
    for part in parts:
        for bucket, n in part["hist"].items():
            hist[bucket] = hist.get(bucket, 0) + n
    if not parts:
        return 0, 0, 0, hist
    return (sum(p["count"] for p in parts), min(p["first_ns"] for p in parts),
            max(p["last_ns"] for p in parts), hist)


def deliveries_per_s(delivered: int, sent: int, first_ns: int, last_ns: int) -> float:
    """Deliveries per second over the receive span, which covers sent - 1 message intervals."""
    span = (last_ns - first_ns) / 1e9
    if delivered == 0 or sent < 2 or span <= 0:
        return 0.0
    return delivered * (sent - 1) / sent / span


async def send_phase(sender: Sender, phase: int, rate: int, seconds: float) -> tuple[int, float]:
    """Send rate × seconds chan_in at even intervals; (sent, worst lag behind schedule in ms)."""
    count = max(1, round(rate * seconds))
    interval_ns = 1e9 / rate
    start = time.monotonic_ns()
    worst = 0
    for k in range(count):
        due = start + int(k * interval_ns)
        delay = due - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        now = time.monotonic_ns()
        worst = max(worst, now - due)
        sender.send(bench_data(phase, now))
    return count, worst / 1e6


async def open_sender(transport: str, url_port: int, token: str, session: aiohttp.ClientSession) -> Sender:
    """Connect and authenticate the sender (it does not join the channel)."""
    member = await connect(transport, Tally(), HOST, url_port, DEV_PK, session, timeout=10)
    await member.authenticate(token, timeout=10)
    await member.call({"type": "echo", "data": "warm"}, "echo", timeout=10)
    return Sender(member)


async def gather_all(workers: list[WorkerHandle], name: str, timeout: float,
                     per_worker: Callable[[int], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Send the same command (or per-worker arguments) to every receiver; their replies."""
    tasks = [asyncio.ensure_future(w.request(name, timeout, per_worker(i) if per_worker else None))
             for i, w in enumerate(workers)]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def setup_frames_expected(joined: int) -> int:
    """Frames the members get while joining: init, token, ok each, and the k-th joiner sees n - k + 1 joins."""
    return 3 * joined + joined * (joined + 1) // 2


def shares(total: int, parts: int) -> list[int]:
    """Split `total` members as evenly as possible over `parts` processes."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def drive(server: ServerProcess, token: str, transport: str, args: argparse.Namespace,
                log: Log) -> dict[str, Any]:
    """Connect the members, measure idle memory, run the rate ramp; the transport's results."""
    port = int(server.url.rsplit(":", 1)[1])
    spec = {"transport": transport, "host": HOST, "port": port, "pk": DEV_PK, "concurrency": args.concurrency,
            "pump": not args.asyncio_reads}
    workers: list[WorkerHandle] = []
    session = post_session(16)
    sender: Sender | None = None
    try:
        sender = await open_sender(transport, port, token, session)
        workers = [WorkerHandle(i, spec) for i in range(args.workers)]
        result = await connect_members(server, sender, workers, token, transport, args, log)
        joined = result["joined"]
        pids = {"server": [server.proc.pid], "receivers": [w.proc.pid for w in workers], "sender": [os.getpid()]}
        phases = await run_ramp(sender, workers, pids, joined, transport, args, log)
        sent_total = sum(r.sent for r in phases)
        reports = await gather_all(workers, "report", 30, lambda i: {"expected_per_member": sent_total})
        fill_latencies(phases, reports)
        memory = memory_kib(server.proc.pid)
        ensure_alive(server)
        result["memory_kib"].update(end=memory["VmRSS"], peak=memory["VmHWM"])
        result.update({
            "alive_at_end": sum(r["alive"] for r in reports),
            "client_disconnects": sum(r["disconnects"] for r in reports),
            "slow_consumers_logged": server.output().count("fell behind"),
            "members_short": sum(r["short_members"] for r in reports),
            "receiver_errors": [e for r in reports for e in r["errors"]][:10],
            "receiver_max_rss_kib": [r["max_rss_kib"] for r in reports],
            "sender_errors": sender.errors[:5] + sender.member.frame_errors[:5],
            "phases": [asdict(r) for r in phases],
        })
        return result
    finally:
        await shutdown(workers, sender, session)


async def connect_members(server: ServerProcess, sender: Sender, workers: list[WorkerHandle], token: str,
                          transport: str, args: argparse.Namespace, log: Log) -> dict[str, Any]:
    """Join every member, wait for the join broadcasts to settle, and measure memory per idle member."""
    await asyncio.sleep(1.0)
    rss_before = memory_kib(server.proc.pid)["VmRSS"]
    log(f"[{transport}] server RSS before members: {rss_before / 1024:.1f} MiB; "
        f"connecting {args.members} members over {args.workers} receiver processes")
    started = time.monotonic()
    counts = shares(args.members, args.workers)
    setup = await gather_all(workers, "setup", args.setup_timeout,
                             lambda i: {"count": counts[i], "token": token, "timeout": 30.0})
    joined = sum(s["joined"] for s in setup)
    failures = [f for s in setup for f in s["failures"]]
    if joined == 0:
        raise BenchError(f"no member could join: {failures[:3]}")
    quiet = await gather_all(workers, "quiet", 120, lambda i: {"idle": 1.0, "timeout": 110.0})
    if not all(q["quiet"] for q in quiet):
        raise BenchError("the join broadcasts did not settle within 110 s; nothing would be measured cleanly")
    setup_s = time.monotonic() - started
    setup_frames = sum(q["frames"] for q in quiet)
    presence = int(await sender.member.call({"type": "presence", "data": CHANNEL}, "presence", timeout=10))
    ensure_alive(server)
    await asyncio.sleep(1.0)
    rss_idle = memory_kib(server.proc.pid)["VmRSS"]
    per_member = (rss_idle - rss_before) / joined
    log(f"[{transport}] {joined} joined ({sum(s['failed'] for s in setup)} failed), presence {presence}, "
        f"setup {setup_s:.1f}s, setup frames {setup_frames}/{setup_frames_expected(joined)}, "
        f"server RSS {rss_idle / 1024:.1f} MiB = {per_member:.1f} KiB/member")
    return {
        "members": args.members, "joined": joined, "presence": presence, "setup_failures": failures[:5],
        "setup_seconds": round(setup_s, 1), "setup_frames": setup_frames,
        "setup_frames_expected": setup_frames_expected(joined),
        "memory_kib": {"before": rss_before, "idle_members": rss_idle, "per_idle_connection": round(per_member, 2)},
    }


async def run_ramp(sender: Sender, workers: list[WorkerHandle], pids: dict[str, list[int]], joined: int,
                   transport: str, args: argparse.Namespace, log: Log) -> list[PhaseResult]:
    """Every run × rate step, repeating a step that other load on the machine disturbed (bounded)."""
    results: list[PhaseResult] = []
    budget = {"retries": args.max_retries, "wait_s": args.quiet_wait}
    for run in range(args.runs):
        for rate in args.rates:
            for attempt in range(3):
                await wait_for_quiet_machine(pids, budget, args.max_other_cpu, transport, log)
                result = await run_step(sender, workers, pids, joined, len(results), run + 1, rate, args)
                results.append(result)
                log(f"[{transport}] run {result.run} rate {rate}/s: sent {result.sent}, delivered "
                    f"{result.delivered}/{result.expected}, cpu % {result.cpu_pct}"
                    + (" DISTURBED" if result.disturbed else ""))
                await asyncio.sleep(args.pause)
                if not result.disturbed or attempt == 2 or budget["retries"] <= 0:
                    break
                budget["retries"] -= 1
    return results


async def wait_for_quiet_machine(pids: dict[str, list[int]], budget: dict[str, float], limit: float,
                                 transport: str, log: Log) -> None:
    """Before a step, wait (out of a bounded budget) while other processes keep the CPUs busy."""
    while budget["wait_s"] > 0:
        before, started = cpu_snapshot(pids), time.monotonic()
        await asyncio.sleep(1.0)
        after, elapsed = cpu_snapshot(pids), time.monotonic() - started
        ours = sum(after[role] - before[role] for role in ("server", "receivers", "sender"))
        other = 100 * (after["machine"] - before["machine"] - ours + after["steal"] - before["steal"]) / elapsed
        if other <= limit:
            return
        budget["wait_s"] -= elapsed
        log(f"[{transport}] other load on the machine: {other:.0f}% of a core; waiting")


async def run_step(sender: Sender, workers: list[WorkerHandle], pids: dict[str, list[int]], joined: int,
                   phase: int, run: int, rate: int, args: argparse.Namespace) -> PhaseResult:
    """One step: send at `rate`, wait for delivery, record CPU; latencies are filled in later."""
    errors_before = len(sender.errors)
    cpu0, t0 = cpu_snapshot(pids), time.monotonic()
    sent, lag_ms = await send_phase(sender, phase, rate, args.seconds)
    await sender.settle(args.drain)
    drained = await gather_all(workers, "drain", args.drain + 10,
                               lambda i: {"phase": phase, "sent": sent, "timeout": args.drain})
    cpu1, t1 = cpu_snapshot(pids), time.monotonic()
    delivered = sum(d["received"] for d in drained)
    cpu = {role: round(100 * (cpu1[role] - cpu0[role]) / (t1 - t0), 1) for role in cpu0}
    cpu["other"] = round(cpu["machine"] - cpu["server"] - cpu["receivers"] - cpu["sender"], 1)
    return PhaseResult(
        run=run, rate=rate, sent=sent, expected=sent * joined, delivered=delivered,
        missing=max(0, sent * joined - delivered), deliveries_per_s=0.0, p50_ms=0.0, p99_ms=0.0, max_ms=0.0,
        sender_lag_ms=round(lag_ms, 2), sender_errors=len(sender.errors) - errors_before,
        server_us_per_delivery=round(1e6 * (cpu1["server"] - cpu0["server"]) / max(delivered, 1), 2),
        disturbed=cpu["other"] + cpu["steal"] > args.max_other_cpu, cpu_pct=cpu)


def fill_latencies(results: list[PhaseResult], reports: list[dict[str, Any]]) -> None:
    """Put deliveries/s and latency percentiles from the receivers' reports into the results."""
    for phase, result in enumerate(results):
        delivered, first_ns, last_ns, hist = merge_phase(reports, phase)
        result.delivered = max(result.delivered, delivered)
        result.missing = max(0, result.expected - result.delivered)
        result.deliveries_per_s = round(deliveries_per_s(delivered, result.sent, first_ns, last_ns), 1)
        result.p50_ms = round(percentile_ms(hist, 0.50), 1)
        result.p99_ms = round(percentile_ms(hist, 0.99), 1)
        result.max_ms = round(percentile_ms(hist, 1.0), 1)


async def shutdown(workers: list[WorkerHandle], sender: Sender | None, session: aiohttp.ClientSession) -> None:
    """Close the receivers (kill them if they do not exit), the sender and its HTTP session."""
    for worker in workers:
        if worker.proc.is_alive():
            try:
                await worker.request("close", 10)
            except (BenchError, OSError):
                pass
    for worker in workers:
        worker.stop()
    if sender is not None:
        await sender.settle(5)
        sender.member.close()
    await session.close()


def run_transport(transport: str, args: argparse.Namespace, log: Log) -> dict[str, Any]:
    """Start a fresh server, benchmark one transport on it, and always stop it."""
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": pythonpath,
           "SBLITE_REALTIME_MAX_CONNECTIONS_PER_USER": str(args.members + 10),
           "SBLITE_REALTIME_MAX_MESSAGES_PER_SECOND": "100000"}
    with tempfile.TemporaryDirectory(prefix="sblite-bench-rt-") as tmp:
        server = start_server(Path(tmp), env=env)
        try:
            log(f"[{transport}] server pid {server.proc.pid} at {server.url}")
            token = register(server.url)
            return asyncio.run(drive(server, token, transport, args, log))
        except BaseException:
            log("---- server output (tail) ----\n" + "\n".join(server.output().splitlines()[-30:]))
            raise
        finally:
            stop_server(server)


def summarize(result: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Medians per rate over the undisturbed runs (all runs if every one was disturbed); the targets."""
    rows = [summarize_rate(result, rate) for rate in args.rates]
    sustained = [r for r in rows if r["missing"] == 0 and r["sender_errors"] == 0
                 and r["p99_ms"] < args.target_p99_ms and r["deliveries_per_s"] >= 0.95 * r["offered_per_s"]]
    best = max(sustained, key=lambda r: r["offered_per_s"], default=None)
    at_target = next((r for r in rows if r["offered_per_s"] >= args.target_deliveries), None)
    held = (result["joined"] == args.members and result["presence"] == args.members
            and result["alive_at_end"] == args.members and result["client_disconnects"] == 0)
    return {
        "rows": rows,
        "best_sustained": best and {k: best[k] for k in ("rate", "offered_per_s", "deliveries_per_s", "p99_ms")},
        "targets": {
            "members_held": held,
            "deliveries_per_s": bool(best and best["offered_per_s"] >= args.target_deliveries),
            "p99_at_target_rate": bool(at_target and at_target["p99_ms"] < args.target_p99_ms
                                       and at_target["missing"] == 0),
            "kib_per_idle_connection": result["memory_kib"]["per_idle_connection"] < args.target_kib,
        },
        "p99_at_target_rate_ms": at_target["p99_ms"] if at_target else None,
    }


def summarize_rate(result: dict[str, Any], rate: int) -> dict[str, Any]:
    """Medians of one rate's runs; missing deliveries and errors are summed over every attempt."""
    attempts = [p for p in result["phases"] if p["rate"] == rate]
    runs = [p for p in attempts if not p["disturbed"]] or attempts
    return {
        "rate": rate, "offered_per_s": rate * result["joined"], "runs": len(runs),
        "disturbed": sum(p["disturbed"] for p in attempts), "all_disturbed": all(p["disturbed"] for p in runs),
        "deliveries_per_s": round(statistics.median(p["deliveries_per_s"] for p in runs), 1),
        "p50_ms": round(statistics.median(p["p50_ms"] for p in runs), 1),
        "p99_ms": round(statistics.median(p["p99_ms"] for p in runs), 1),
        "max_ms": max(p["max_ms"] for p in runs), "missing": sum(p["missing"] for p in attempts),
        "sender_errors": sum(p["sender_errors"] for p in attempts),
        "server_us_per_delivery": round(statistics.median(p["server_us_per_delivery"] for p in runs), 2),
        "cpu_pct": {role: round(statistics.median(p["cpu_pct"][role] for p in runs), 1) for role in runs[0]["cpu_pct"]},
    }


def render(report: dict[str, Any]) -> str:
    """The human-readable tables, one per transport."""
    cfg = report["config"]
    lines = [f"sblite realtime benchmark: 1 channel, {cfg['members']} members, {cfg['workers']} receiver "
             f"processes, rates {cfg['rates']} msg/s x {cfg['seconds']}s, medians of {cfg['runs']} runs, "
             f"{cfg['cpus']} CPUs, load average at start {cfg['loadavg_1min_at_start']:.2f}"]
    for transport, res in report["transports"].items():
        summ, mem = res["summary"], res["memory_kib"]
        tg = summ["targets"]
        lines += [
            "", f"== {transport.upper()} ==",
            f"members joined {res['joined']}/{res['members']}, presence {res['presence']}, alive at end "
            f"{res['alive_at_end']}, setup {res['setup_seconds']}s (frames {res['setup_frames']}/"
            f"{res['setup_frames_expected']}), disconnects {res['client_disconnects']} "
            f"(server logged {res['slow_consumers_logged']} slow consumers)",
            f"server RSS: {mem['before'] / 1024:.1f} MiB before, {mem['idle_members'] / 1024:.1f} MiB with "
            f"{res['joined']} idle members = {mem['per_idle_connection']:.1f} KiB per idle connection; "
            f"peak {mem['peak'] / 1024:.1f} MiB",
            "",
            f"{'msg/s':>6} {'offered/s':>10} {'deliv/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
            f"{'missing':>8} {'srv us/d':>8} {'runs':>5}  CPU % of one core: server recv sender other steal",
        ]
        for r in summ["rows"]:
            cpu = r["cpu_pct"]
            lines.append(f"{r['rate']:>6} {r['offered_per_s']:>10} {r['deliveries_per_s']:>10.0f} "
                         f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['missing']:>8} "
                         f"{r['server_us_per_delivery']:>8.1f} {_runs(r):>5}  "
                         f"{cpu['server']:>6.0f} {cpu['receivers']:>4.0f} {cpu['sender']:>6.0f} {cpu['other']:>5.0f} "
                         f"{cpu['steal']:>5.0f}")
        p99, best = summ["p99_at_target_rate_ms"], summ["best_sustained"]
        lines += [
            "(runs: runs in the medians; +N: disturbed attempts (other load on the machine) repeated and left out; "
            "N!: every attempt disturbed, medians of all)",
            "",
            f"target {cfg['members']} members held: {_met(tg['members_held'])}",
            f"target >= {cfg['target_deliveries']} deliveries/s (complete, p99 < {cfg['target_p99_ms']} ms): "
            f"{_met(tg['deliveries_per_s'])} (" + ("no step sustained" if best is None else
                f"highest step sustained: {best['rate']} msg/s = {best['offered_per_s']} offered, "
                f"{best['deliveries_per_s']:.0f} measured, p99 {best['p99_ms']} ms") + ")",
            f"target p99 < {cfg['target_p99_ms']} ms at {cfg['target_deliveries']} deliveries/s: "
            f"{_met(tg['p99_at_target_rate'])} ({'no step at that rate' if p99 is None else f'p99 {p99} ms'})",
            f"target < {cfg['target_kib']} KiB per idle connection: {_met(tg['kib_per_idle_connection'])} "
            f"({mem['per_idle_connection']:.1f} KiB)",
        ]
        problems = res["receiver_errors"] + res["sender_errors"] + res["setup_failures"]
        if problems:
            lines += ["problems seen (first few):"] + [f"  {p}" for p in problems[:8]]
    return "\n".join(lines)


def _met(flag: bool) -> str:
    return "MET" if flag else "NOT MET"


def _runs(row: dict[str, Any]) -> str:
    """Runs in the medians, +disturbed attempts, ! when all were disturbed."""
    if row["all_disturbed"]:
        return f"{row['runs']}!"
    return f"{row['runs']}" + (f"+{row['disturbed']}" if row["disturbed"] else "")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transports", default="sse,ws", help="comma-separated: sse, ws (default both)")
    ap.add_argument("--members", type=int, default=1000, help="channel members (default 1000)")
    ap.add_argument("--rates", default="10,25,50,75,100", help="chan_in messages/s per step (default 10,25,50,75,100)")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per rate step (default 3)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions of the ramp (default 3)")
    ap.add_argument("--workers", type=int, default=2, help="receiving processes (default 2)")
    ap.add_argument("--concurrency", type=int, default=25, help="member setups in flight per receiver")
    ap.add_argument("--asyncio-reads", action="store_true",
                    help="receivers read through asyncio instead of one epoll thread (slower, for comparison)")
    ap.add_argument("--drain", type=float, default=10.0, help="seconds to wait for a step's deliveries")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between steps")
    ap.add_argument("--setup-timeout", type=float, default=180.0, help="seconds allowed to connect all members")
    ap.add_argument("--max-other-cpu", type=float, default=25.0,
                    help="a step during which other processes and the hypervisor took more than this %% of a "
                         "core is disturbed: repeated, and left out of the medians (default 25)")
    ap.add_argument("--max-retries", type=int, default=8,
                    help="disturbed steps repeated at most, per transport (each step at most twice; default 8)")
    ap.add_argument("--quiet-wait", type=float, default=60.0,
                    help="seconds per transport to wait, before steps, for other load to pass (default 60)")
    ap.add_argument("--target-deliveries", type=int, default=50_000, help="deliveries/s target")
    ap.add_argument("--target-p99-ms", type=float, default=250.0, help="p99 latency target in ms")
    ap.add_argument("--target-kib", type=float, default=60.0, help="server KiB per idle connection target")
    ap.add_argument("--json", action="store_true", help="write the JSON report to stdout (the table goes to stderr)")
    args = ap.parse_args(argv)
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    try:
        args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        ap.error("--rates must be whole numbers, e.g. 10,25,50")
    if not args.transports or set(args.transports) - {"sse", "ws"}:
        ap.error("--transports takes sse and/or ws")
    if (args.members < 1 or args.workers < 1 or args.runs < 1 or not args.rates or min(args.rates) < 1
            or args.seconds <= 0 or args.concurrency < 1):
        ap.error("need --members, --workers, --runs, --concurrency >= 1, rates >= 1 and --seconds > 0")
    if max(args.rates) * args.seconds * len(args.rates) * args.runs > 20_000:
        ap.error("too many messages: keep rates x seconds x steps x runs under 20,000")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 = clean, 1 = missing deliveries or disconnects, 2 = could not run."""
    args = parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report: dict[str, Any] = {
        "config": {"members": args.members, "workers": args.workers, "rates": args.rates, "seconds": args.seconds,
                   "runs": args.runs, "cpus": os.cpu_count(), "loadavg_1min_at_start": os.getloadavg()[0],
                   "target_deliveries": args.target_deliveries, "target_p99_ms": args.target_p99_ms,
                   "target_kib": args.target_kib},
        "transports": {},
    }
    try:
        for transport in args.transports:
            result = run_transport(transport, args, log)
            result["summary"] = summarize(result, args)
            report["transports"][transport] = result
    except (BenchError, RuntimeError, OSError, aiohttp.ClientError, asyncio.TimeoutError) as err:
        print(f"\nBENCHMARK FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    print(render(report), file=sys.stderr if args.json else sys.stdout, flush=True)
    if args.json:
        print(json.dumps(report, indent=2))
    bad = any(r["client_disconnects"] or any(row["missing"] for row in r["summary"]["rows"])
              for r in report["transports"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
