"""Benchmark: authenticated document creates/s and list requests/s against a real `sblite serve`.

Starts the server on a free loopback port with a fresh temporary database, registers one
user, then drives it with `wrk` (50 connections by default) through bench/sb_wrk.lua.
Each phase is repeated --runs times; the summary reports medians. Not a test: it prints
figures, and exits non-zero only when something failed (missing wrk, server error,
non-2xx responses, socket errors).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.support import DEV_PK, ServerProcess, start_server  # noqa: E402

LUA_SCRIPT = BENCH_DIR / "sb_wrk.lua"
COLLECTION = "bench"
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


class BenchError(RuntimeError):
    """A failure that stops the benchmark (server, registration or wrk problem)."""


@dataclass
class RunResult:
    """One wrk run: throughput, latency percentiles and every kind of error."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    statuses: dict[str, int]
    sample: str
    socket_errors: dict[str, int]

    @property
    def errors(self) -> int:
        """Non-2xx responses plus socket errors."""
        return self.non2xx + sum(self.socket_errors.values())


@dataclass
class Phase:
    """A named request pattern and the runs measured for it."""

    name: str
    mode: str
    path: str
    runs: list[RunResult] = field(default_factory=list)

    def median(self, attr: str) -> float:
        """Median of one numeric RunResult attribute over the runs."""
        return statistics.median(getattr(r, attr) for r in self.runs) if self.runs else 0.0

    def errors(self) -> int:
        """Total errors over the runs."""
        return sum(r.errors for r in self.runs)


def http(url: str, method: str = "GET", body: Any = None, token: str = "") -> tuple[int, str]:
    """Send one JSON request the way the JS client does; return (status, body text)."""
    headers = {"SB-PUBLIC-KEY": DEV_PK, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def register(base: str) -> str:
    """Register a fresh user and return its session token."""
    status, text = http(
        base + "/register", "POST", {"email": "bench@example.com", "password": "bench-pw-1234"}
    )
    if status != 200:
        raise BenchError(f"POST /register answered {status}: {text!r}")
    token = json.loads(text)
    if not isinstance(token, str) or not token:
        raise BenchError(f"POST /register returned no token string: {text!r}")
    return token


def smoke_check(base: str, token: str) -> None:
    """Create one document and list once, so protocol errors surface before any load."""
    status, text = http(f"{base}/db/{COLLECTION}", "POST", {"title": "smoke", "n": 0}, token)
    if status != 201 or "id" not in json.loads(text):
        raise BenchError(f"POST /db/{COLLECTION} answered {status}: {text!r}")
    status, text = http(f"{base}/db/{COLLECTION}?size=25", token=token)
    if status != 200 or "results" not in json.loads(text):
        raise BenchError(f"GET /db/{COLLECTION}?size=25 answered {status}: {text!r}")


def count_docs(base: str, token: str, collection: str = COLLECTION) -> int:
    """The `total` the server reports for a collection (the bench collection by default)."""
    status, text = http(f"{base}/db/{collection}?size=1", token=token)
    if status != 200:
        raise BenchError(f"GET /db/{collection}?size=1 answered {status}: {text!r}")
    return int(json.loads(text)["total"])


def to_ms(value: str) -> float:
    """Convert a wrk duration such as '1.23ms' or '850.00us' to milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not match:
        raise BenchError(f"cannot parse wrk duration {value!r}")
    return float(match.group(1)) * UNIT_MS[match.group(2)]


def parse_wrk(out: str) -> RunResult:
    """Read Requests/sec, the --latency percentiles and the SBBENCH line from wrk output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    line = re.search(r"^SBBENCH (\{.*\})$", out, re.M)
    if not (rps and p50 and p99 and line):
        raise BenchError(f"unexpected wrk output:\n{out}")
    info = json.loads(line.group(1))
    return RunResult(
        rps=float(rps.group(1)),
        p50_ms=to_ms(p50.group(1)),
        p99_ms=to_ms(p99.group(1)),
        requests=info["requests"],
        non2xx=info["non2xx"],
        statuses=info["statuses"],
        sample=info["sample"],
        socket_errors={k: info[k] for k in ("connect", "read", "write", "timeout")},
    )


def run_wrk(base: str, token: str, path: str, mode: str, args: argparse.Namespace, seconds: float) -> RunResult:
    """Run wrk once for `seconds` against `path` (sb_wrk.lua `mode`) and return its parsed result."""
    cmd = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "5s", "--latency", "-s", str(LUA_SCRIPT), base + path,
    ]
    env = {**os.environ, "SB_PK": DEV_PK, "SB_TOKEN": token, "SB_MODE": mode, "SB_PATH": path}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return parse_wrk(proc.stdout)


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process in KiB, from /proc/<pid>/status."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(rest.split()[0])
    return found


def ensure_alive(server: ServerProcess) -> None:
    """Raise with the server's output if the process has exited."""
    if server.proc.poll() is not None:
        raise BenchError(f"sblite serve exited with {server.proc.returncode}:\n{server.output()}")


def stop_server(server: ServerProcess) -> None:
    """SIGTERM the server by pid; SIGKILL it if it does not exit in time."""
    try:
        server.stop(signal.SIGTERM, timeout=15)
    except subprocess.TimeoutExpired:
        server.stop(signal.SIGKILL, timeout=5)


def benchmark(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Start the server, run every phase and return the results as a JSON-ready dict."""
    phases = [
        Phase("create", "create", f"/db/{COLLECTION}"),
        Phase("list p1", "list", f"/db/{COLLECTION}?size=25"),
        Phase("list p10", "list", f"/db/{COLLECTION}?size=25&page=10"),
    ]
    load_at_start = os.getloadavg()[0]
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="sblite-bench-") as tmp:
        server = start_server(Path(tmp), env={"PYTHONPATH": pythonpath})
        try:
            log(f"server pid {server.proc.pid} at {server.url}")
            token = register(server.url)
            smoke_check(server.url, token)
            warmup: RunResult | None = None
            docs_total = 0
            if args.warmup > 0:
                log(f"warmup: creates for {args.warmup}s")
                warmup = run_wrk(server.url, token, phases[0].path, phases[0].mode, args, args.warmup)
            for phase in phases:
                for i in range(args.runs):
                    ensure_alive(server)
                    result = run_wrk(server.url, token, phase.path, phase.mode, args, args.seconds)
                    phase.runs.append(result)
                    log(f"{phase.name} run {i + 1}/{args.runs}: {result.rps:.1f} req/s, "
                        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
                        f"errors {result.errors}")
                if phase.mode == "create":
                    docs_total = count_docs(server.url, token)
            ensure_alive(server)
            memory = memory_kib(server.proc.pid)
        except BaseException:
            log("---- server output (tail) ----\n" + "\n".join(server.output().splitlines()[-40:]))
            raise
        finally:
            stop_server(server)
    create_ok = sum(r.requests - r.non2xx for r in phases[0].runs)
    create_ok += (warmup.requests - warmup.non2xx) if warmup else 0
    all_runs = [r for p in phases for r in p.runs] + ([warmup] if warmup else [])
    return {
        "config": {"threads": args.threads, "connections": args.connections,
                   "seconds": args.seconds, "runs": args.runs, "warmup": args.warmup,
                   "cpus": os.cpu_count(), "loadavg_1min_at_start": load_at_start},
        "phases": {
            p.name: {"path": p.path, "rps_median": round(p.median("rps"), 1),
                     "p50_ms_median": round(p.median("p50_ms"), 3),
                     "p99_ms_median": round(p.median("p99_ms"), 3),
                     "errors": p.errors(), "runs": [asdict(r) for r in p.runs]}
            for p in phases
        },
        "docs_total": docs_total,
        "docs_created_2xx": create_ok + 1,
        "server_memory_kib": {"rss": memory.get("VmRSS"), "peak": memory.get("VmHWM")},
        "errors": sum(r.errors for r in all_runs),
        "first_error": next((r.sample for r in all_runs if r.sample), ""),
        "error_statuses": merge_statuses(all_runs),
        "target_creates_per_s": args.target,
        "target_met": phases[0].median("rps") >= args.target
        and not any(r.errors for r in all_runs),
    }


def merge_statuses(runs: list[RunResult]) -> dict[str, int]:
    """Sum the non-2xx status counts of several runs."""
    total: dict[str, int] = {}
    for run in runs:
        for status, n in run.statuses.items():
            total[status] = total.get(status, 0) + n
    return total


def render(report: dict[str, Any]) -> str:
    """The human-readable summary table."""
    cfg = report["config"]
    lines = [
        f"sblite documents benchmark: wrk -t{cfg['threads']} -c{cfg['connections']}, "
        f"{cfg['runs']} x {cfg['seconds']}s per phase, {cfg['cpus']} CPUs (medians of runs), "
        f"load average at start {cfg['loadavg_1min_at_start']:.2f}",
        "",
        f"{'phase':<10} {'req/s':>9}  {'p50 ms':>8} {'p99 ms':>8}  {'errors':>6}  runs req/s",
    ]
    for name, p in report["phases"].items():
        each = " / ".join(f"{r['rps']:.0f}" for r in p["runs"])
        lines.append(f"{name:<10} {p['rps_median']:>9.1f}  {p['p50_ms_median']:>8.2f} "
                     f"{p['p99_ms_median']:>8.2f}  {p['errors']:>6}  {each}")
    mem = report["server_memory_kib"]
    lines += [
        "",
        f"server memory at end: RSS {mem['rss'] / 1024:.1f} MiB, peak {mem['peak'] / 1024:.1f} MiB",
        f"documents in '{COLLECTION}': {report['docs_total']} "
        f"(2xx creates counted by wrk + smoke doc: {report['docs_created_2xx']})",
        f"target >= {report['target_creates_per_s']} creates/s: "
        + ("MET" if report["target_met"] else "NOT MET")
        + (" (run had errors)" if report["errors"] else ""),
    ]
    if report["docs_total"] < report["docs_created_2xx"]:
        lines.append("WARNING: the server holds fewer documents than it acknowledged with 2xx")
    if report["errors"]:
        lines += [
            "",
            "!" * 72,
            f"!!! BENCHMARK HAD {report['errors']} ERRORS: the figures above are not valid",
            f"!!! non-2xx statuses: {report['error_statuses']}",
            f"!!! first error response: {report['first_error']!r}",
            "!" * 72,
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per phase (default 3)")
    ap.add_argument("--seconds", type=int, default=10, help="duration of one run (default 10)")
    ap.add_argument("--warmup", type=int, default=2, help="create warmup seconds, 0 = none")
    ap.add_argument("--connections", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--target", type=float, default=2000, help="creates/s to compare against")
    ap.add_argument("--json", action="store_true",
                    help="write the JSON report to stdout (the table goes to stderr)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.seconds < 1 or args.connections < args.threads or args.threads < 1:
        ap.error("need --runs >= 1, --seconds >= 1, --threads >= 1, --connections >= --threads")
    return args


def run_main(args: argparse.Namespace, benchmark: Callable[[argparse.Namespace, Callable[[str], None]], dict],
             render: Callable[[dict], str], failures: tuple[type[BaseException], ...] = ()) -> int:
    """A wrk-driven benchmark from start to exit status: 0 = clean, 1 = errors during the run, 2 = could not run.

    The table goes to stdout (stderr with --json, when the JSON report takes stdout); progress to stderr.
    """
    if shutil.which("wrk") is None:
        print("error: `wrk` is not installed; this benchmark needs it as its load generator.\n"
              "Install it, e.g. `sudo apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`.",
              file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        report = benchmark(args, log)
    except (BenchError, RuntimeError, OSError, subprocess.SubprocessError, *failures) as err:
        print(f"\nBENCHMARK FAILED: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted (the server was stopped)", file=sys.stderr)
        return 130
    print(render(report), file=sys.stderr if args.json else sys.stdout, flush=True)
    if args.json:
        print(json.dumps(report, indent=2))
    return 1 if report["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 = clean run, 1 = errors during the run, 2 = could not run."""
    return run_main(parse_args(argv), benchmark, render)


if __name__ == "__main__":
    sys.exit(main())
