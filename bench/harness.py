"""sblite side by side with PocketBase (or with sblite from another tree): the same workloads at both.

Workloads (`--only`): start-up and RSS of fresh servers, authenticated creates, a web function
doing one write, a chan_in-triggered function doing one write, a filtered page of 25 from a
seeded collection, realtime fan-out at rising rates, creates straight to SQLite (the limit),
and the scheduler (sblite only). Runs alternate between the two targets; each figure is the
median of --runs runs. The Markdown table goes to stdout, everything measured to a JSON file.

    python bench/harness.py                        # about 15 minutes
    python bench/harness.py --quick                # everything once, briefly (CI)
    python bench/harness.py --against ../before    # sblite against an older checkout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from collections.abc import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import query
from common import BenchError, CpuMeter, pocketbase_binary, summary, wrk
from fanout import chan_in_window, ramp
from scheduler import scheduler
from targets import CREATE_BODY, PocketBase, Sblite

Target = Sblite | PocketBase
Factory = Callable[[Path], Target]  # a fresh target in a folder
WORKLOADS = ("fresh", "create", "function", "chan_in", "list", "query", "fanout", "sqlite", "scheduler")


def log(text: str) -> None:
    """Progress on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def drive(target: Target, request: dict[str, Any], seconds: float, connections: int) -> dict[str, Any]:
    """One wrk run with the CPU picture: server, load generator (this process and wrk), machine."""
    meter = CpuMeter(target.server)
    result = wrk(request["url"], seconds, connections, request["method"], request["body"], request["headers"])
    result["cpu"] = meter.stop()
    target.server.check()
    if result["errors"]:
        raise BenchError(f"{target.name}: {result['errors']} failed requests, first: {result['sample']}")
    return result


def alternate(targets: list[Target], runs: int, measure: Callable[[Target], dict[str, Any]],
              what: str) -> dict[str, list[dict[str, Any]]]:
    """`runs` rounds, each measuring every target once; the order flips every round."""
    results: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    for run in range(runs):
        for target in targets if run % 2 == 0 else targets[::-1]:
            result = measure(target)
            results[target.name].append(result)
            log(f"{what} {target.name} run {run + 1}: " + ", ".join(
                f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()
                if k not in ("sample", "requests", "steps")))
    return results


def load_workload(targets: list[Target], name: str, args: argparse.Namespace, connections: int) -> dict[str, Any]:
    """Warm each target up, then alternate wrk runs."""
    if args.warmup:
        for target in targets:
            drive(target, getattr(target, name)(), args.warmup, connections)
    return alternate(targets, args.runs, lambda t: drive(t, getattr(t, name)(), args.seconds, connections), name)


def fresh(make: Factory, workdir: Path, index: int, count: int) -> dict[str, Any]:
    """A fresh server: ms to its first answer; RSS set up and idle, then with `count` realtime clients."""
    folder = workdir / f"fresh-{index}"
    folder.mkdir()
    target = make(folder)

    async def hold() -> dict[str, Any]:
        await asyncio.sleep(0.5)
        before = target.server.rss_kib()
        held = await target.hold_realtime(count)
        await asyncio.sleep(1)
        during = target.server.rss_kib()
        target.server.check()
        await target.release_realtime(held)
        return {"ms": round(target.server.started_ms, 1), "rss_idle_mib": round(before / 1024, 1),
                "rss_held_mib": round(during / 1024, 1), "kib_per_connection": round((during - before) / count, 1)}
    try:
        return asyncio.run(hold())
    finally:
        target.server.stop()


def sqlite_limit(path: Path, seconds: float, per_commit: int) -> dict[str, Any]:
    """Creates/s written straight to SQLite, `per_commit` to a transaction, from this process."""
    if path.exists():
        path.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE documents (seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL UNIQUE,"
                 " owner_id TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, data TEXT NOT NULL)")
    done, started, cpu_started = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        conn.execute("BEGIN")
        for _ in range(per_commit):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ")
            doc = json.loads(CREATE_BODY % done)
            conn.execute("INSERT INTO documents (collection, id, owner_id, created, updated, data)"
                         " VALUES (?,?,?,?,?,?)",
                         ("bench", os.urandom(12).hex(), "owner", stamp, stamp, json.dumps(doc)))
            done += 1
        conn.execute("COMMIT")
    wall = time.perf_counter() - started
    conn.close()
    return {"per_s": round(done / wall, 1), "cpu": {"load": round(100 * (time.process_time() - cpu_started) / wall, 1)}}


def factories(args: argparse.Namespace) -> list[SimpleNamespace]:
    """sblite and what it is compared with (PocketBase, or sblite from another source tree), by name."""
    def sblite(folder: Path) -> Target:
        return Sblite(folder, transport=args.transport)

    def before(folder: Path) -> Target:
        return Sblite(folder, tree=Path(args.against).resolve(), name="before", transport=args.transport)
    other = SimpleNamespace(name="before", make=before) if args.against else SimpleNamespace(
        name="pocketbase", make=PocketBase)
    return [SimpleNamespace(name="sblite", make=sblite), other]


def sitting(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The chosen workloads, alternating sblite and what it is compared with."""
    report: dict[str, Any] = {"machine": machine(), "args": vars(args), "results": {}}
    res, only = report["results"], set(args.only.split(","))
    kinds: list[Any] = factories(args)
    report["names"] = [kind.name for kind in kinds]
    if "fresh" in only:
        log(f"fresh starts, {args.realtime} idle realtime connections")
        counter = iter(range(1000))
        res["fresh"] = alternate(kinds, args.runs, lambda k: fresh(k.make, workdir, next(counter), args.realtime),
                                 "fresh")
    targets: list[Target] = []
    try:
        for kind in kinds:
            (workdir / kind.name).mkdir()
            targets.append(kind.make(workdir / kind.name))
        served(targets, args, only, res)
    finally:
        for target in targets:
            target.server.stop()
    if "scheduler" in only:
        res["scheduler"] = [scheduler(workdir, args.quick, log) for _ in range(args.runs)]
    for per_commit in (1, args.connections) if "sqlite" in only else ():
        res[f"sqlite_{per_commit}"] = {"sqlite": [sqlite_limit(workdir / "limit.db", args.seconds, per_commit)
                                                  for _ in range(args.runs)]}
        log(f"sqlite, {per_commit} per commit: {res[f'sqlite_{per_commit}']['sqlite']}")
    return report


def served(targets: list[Target], args: argparse.Namespace, only: set[str], res: dict[str, Any]) -> None:
    """The workloads driven at running servers."""
    for name in ("create", "function"):
        if name in only:
            res[name] = load_workload(targets, name, args, args.connections)
    if "chan_in" in only:
        sblites = [t for t in targets if isinstance(t, Sblite)]
        res["chan_in"] = alternate(sblites, args.runs, lambda t: asyncio.run(chan_in_window(t, args.seconds)),
                                   "chan_in")
    if "list" in only:
        for target in targets:
            began = time.perf_counter()
            target.seed(args.documents)
            log(f"seeded {args.documents:,} into {target.name} in {time.perf_counter() - began:.1f}s")
        res["list"] = load_workload(targets, "list", args, args.list_connections)
        try:
            for target in targets:
                query.add_indexes(target, "items", ("field",))
        except BenchError as err:  # an older sblite (--against) without field indexes
            log(f"list with an index skipped: {err}")
        else:
            res["list_indexed"] = alternate(targets, args.runs, lambda t: drive(
                t, t.list(), args.seconds, args.list_connections), "list, indexed")
    if "query" in only:
        res["query"] = query_workload(targets, args)
    if "fanout" in only:
        rates = [2, 10] if args.quick else [1, 2, 5, 10, 25, 50, 100, 200]
        seconds = min(args.seconds, 5)
        res["fanout"] = alternate(targets, args.runs, lambda t: ramp(t, args.realtime, rates, seconds, 250, log),
                                  "fan-out")


def query_workload(targets: list[Target], args: argparse.Namespace) -> dict[str, Any]:
    """bench/query.py: a short warm-up per phase, then alternating runs (1 s each with --quick)."""
    seconds = 1 if args.quick else args.seconds

    def measure(ts: list[Target], request_of: Callable[[Target], dict[str, Any]], what: str,
                connections: int, runs: int) -> dict[str, list[dict[str, Any]]]:
        for target in ts if args.warmup else ():
            query.settled(target, drive(target, request_of(target), min(args.warmup, 2), connections))
        return alternate(ts, runs, lambda t: query.settled(t, drive(t, request_of(t), seconds, connections)),
                         f"query {what}")
    return query.workload(targets, args.query_documents, measure, log, args.list_connections, args.connections,
                          args.runs)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    version = os.popen(f"{pocketbase_binary()} --version").read().strip()
    return {"cpus": os.cpu_count(), "cpu": model, "memory_mib": proc_meminfo_mib(), "python": sys.version.split()[0],
            "pocketbase": version, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def proc_meminfo_mib() -> int:
    """Total memory of the machine."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1]) // 1024
    return 0


# --------------------------------------------------------------------------- the table

def stat(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Median and spread of one key over runs."""
    return summary([float(r[key]) for r in runs])


def cell(s: dict[str, Any], unit: str, extra: str = "") -> str:
    """`median unit (min-max)`, then `extra`."""
    fmt = (lambda v: f"{v:,.0f}") if s["median"] >= 100 else (lambda v: f"{v:,.1f}")
    spread = f" ({fmt(s['min'])}-{fmt(s['max'])})" if len(s["runs"]) > 1 else ""
    return f"{fmt(s['median'])}{unit}{spread}{extra}"


def rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(workload, sblite, PocketBase, sblite/PocketBase) rows."""
    res, args = report["results"], report["args"]
    out = []

    def pair(label: str, key: str, field: str, unit: str, p99: bool = False) -> None:
        if key not in res:
            return
        cells, medians = [], []
        for name in report["names"]:
            if name not in res[key]:  # a workload PocketBase has no counterpart of
                cells.append("")
                medians.append(0.0)
                continue
            s = stat(res[key][name], field)
            extra = f", p99 {stat(res[key][name], 'p99_ms')['median']:,.0f} ms" if p99 else ""
            cells.append(cell(s, unit, extra))
            medians.append(s["median"])
        out.append((label, cells[0], cells[1], f"{medians[0] / medians[1]:.2f}" if medians[1] else ""))

    conns = args["connections"]
    pair(f"authenticated create, {conns} connections", "create", "per_s", "/s", p99=True)
    lists = args["list_connections"]
    pair(f"page of 25 filtered on one field from {args['documents']:,} documents, {lists} connections",
         "list", "per_s", "/s", p99=True)
    pair("the same, with an index on the field", "list_indexed", "per_s", "/s", p99=True)
    out += query.rows(res.get("query", {}), report["names"], stat, cell)
    pair(f"function doing one write over HTTP, {conns} connections", "function", "per_s", "/s", p99=True)
    pair("function doing one write per chan_in message over WebSocket, 50 in flight", "chan_in", "per_s", "/s",
         p99=True)
    if "fanout" in res:
        cells = [fanout_cell(res["fanout"][name], args["realtime"]) for name in report["names"]]
        best = [stat(res["fanout"][name], "best_per_s")["median"] for name in report["names"]]
        out.append((f"realtime fan-out to {args['realtime']:,} subscribers: most deliveries/s with p99 < 250 ms, "
                    "none lost", *cells, f"{best[0] / best[1]:.2f}" if best[1] else "—"))
    pair("start-up to the first answered request", "fresh", "ms", " ms")
    pair("RSS idle, set up (sblite: with its function workers)", "fresh", "rss_idle_mib", " MiB")
    pair(f"RSS with {args['realtime']:,} idle realtime connections", "fresh", "rss_held_mib", " MiB")
    pair("memory per idle realtime connection", "fresh", "kib_per_connection", " KiB")
    out += scheduler_rows(res.get("scheduler", []))
    for per_commit in (1, conns):
        key = f"sqlite_{per_commit}"
        if key in res:
            label = f"limit: creates straight to SQLite from one Python process, {per_commit} per commit"
            out.append((label, cell(stat(res[key]["sqlite"], "per_s"), "/s"), "", ""))
    return out


def scheduler_rows(runs: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The scheduler's rows, sblite only."""
    if not runs:
        return []
    def med(phase: str, key: str) -> float:
        return float(stat([r[phase] for r in runs], key)["median"])
    late, idle, burst = (runs[0][k] for k in ("lateness", "idle", "burst"))
    missing = sum(r["lateness"]["missing"] for r in runs)
    lost = sum(r["resume"]["never_ran"] + r["resume"]["ran_twice"] for r in runs)
    return [
        (f"scheduler: {late['tasks']:,} tasks every second, how late runs start",
         f"p50 {med('lateness', 'p50_ms'):,.0f} ms, p99 {med('lateness', 'p99_ms'):,.0f} ms, {missing} missing",
         "", ""),
        (f"scheduler CPU with {idle['tasks']:,} enabled tasks, none due",
         f"{med('idle', 'cpu_percent'):.2f}% of a core, RSS {med('idle', 'rss_mib'):,.0f} MiB", "", ""),
        (f"{burst['tasks']:,} one-off tasks due in the same second",
         f"all ran within {med('burst', 'all_ran_s'):.1f} s", "", ""),
        ("the same, kill -9 as they come due, then a restart",
         f"first answer after {med('resume', 'first_answer_ms'):,.0f} ms, all ran within "
         f"{med('resume', 'all_ran_s'):.1f} s; {lost} ran twice or never", "", ""),
    ]


def span(cpus: list[dict[str, float]], key: str) -> str:
    """`min-max` of one CPU figure, whole percent."""
    values = [c[key] for c in cpus]
    return f"{min(values):.0f}-{max(values):.0f}"


def fanout_cell(runs: list[dict[str, Any]], members: int) -> str:
    """The best passing rate; when none passed, how the lowest rate fared."""
    best = stat(runs, "best_per_s")
    if best["median"]:
        return cell(best, "/s", f", p99 {stat(runs, 'p99_ms')['median']:,.0f} ms")
    first = [r["steps"][0] for r in runs]
    lost = sum(step["lost"] for step in first)
    return (f"none passed: at {first[0]['rate'] * members:,}/s p99 {stat(first, 'p99_ms')['median']:,.0f} ms"
            + (f", {lost:,} lost" if lost else ""))


def render(report: dict[str, Any]) -> str:
    """The Markdown table and the CPU notes."""
    other = "PocketBase" if report["names"][1] == "pocketbase" else "before"
    lines = [f"| workload | sblite | {other} | sblite/{other} |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows(report)]
    res = report["results"]
    loads = [r["cpu"] for key in ("create", "list", "list_indexed", "function", "chan_in") if key in res
             for runs in res[key].values() for r in runs]
    if loads:
        lines.append("")
        top = span(loads, "load").split("-")[1]
        lines.append(f"Load generator (wrk and this script) at most {top}% of one core "
                     f"while the server used {span(loads, 'server')}%; machine busy {span(loads, 'machine')}% "
                     f"of its {report['machine']['cpus']} CPUs, other processes taking "
                     f"{span(loads, 'other')}% of a core.")
    fan = [s["cpu"] for runs in res.get("fanout", {}).values() for r in runs for s in r["steps"]]
    if fan:
        top = span(fan, "load").split("-")[1]
        lines.append(f"Fan-out: the receiving processes and the publisher used at most {top}% "
                     f"of one core, the server {span(fan, 'server')}%.")
    lines += query.notes(res.get("query", {}), report["names"], stat)
    m, a = report["machine"], report["args"]
    lines.append(f"Medians of {a['runs']} alternating runs (min-max), {a['seconds']} s each; {m['cpus']} x {m['cpu']}, "
                 f"{m['memory_mib']:,} MiB, Python {m['python']}, {m['pocketbase']}, {m['when']}.")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options; --quick shrinks everything for CI."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run of 2 s each, small data (under 90 s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--list-connections", type=int, default=10)
    parser.add_argument("--documents", type=int, default=100_000, help="seeded for the list workload")
    parser.add_argument("--query-documents", type=int, default=100_000, help="seeded for the query workload")
    parser.add_argument("--realtime", type=int, default=1000, help="idle realtime connections")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated, of {','.join(WORKLOADS)}")
    parser.add_argument("--transport", choices=("ws", "sse"), default="ws", help="sblite's realtime members")
    parser.add_argument("--against", metavar="TREE",
                        help="compare with sblite run from another source tree (a checkout of an older commit)"
                             " instead of PocketBase")
    parser.add_argument("--json", default=os.path.join(tempfile.gettempdir(), "sblite-bench.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.warmup, args.documents, args.realtime = 1, 2, 0, 5000, 200
        args.query_documents = 5000
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the sitting; exit 1 on a failed request or server, 2 when it cannot start."""
    args = parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="sblite-bench-") as tmp:
            report = sitting(args, Path(tmp))
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(render(report))
    log(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
