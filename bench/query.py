"""The query workload (`--only query`): reads of one large collection and creates, without and with field indexes.

Both targets get the same documents in `msgs` (100,000; 5,000 with --quick): `body` unique
except one `needle-1`, `n` their position, `tags` two strings (each `t<k>` on 2% of them). Then,
driven with wrk and alternating the targets: the selective filter on `body` (one match), `in`
over the `tags` array, the unfiltered page of 25; indexes on `body` and `n`; the selective
filter again and a range of `n` (10%) sorted by `n`; last, creates, taking turns, into three
empty collections `writes0`, `writes1` and `writes3` with that many indexes (`body`; `body`, `n`,
`title`). sblite indexes through `POST /sudo/index`, PocketBase through its collection's
`indexes`; PocketBase's rows are written straight into its table, as the list workload's are.
After each run the harness waits for the target to finish what wrk left in flight.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from common import BenchError, expect, http, proc_cpu
from targets import AUTHED, SBLITE_ROOT, PocketBase, Sblite

Target = Sblite | PocketBase
NEEDLE = "needle-1"
TAG_VALUES = 50  # tags t0..t49 (2% each) and u0..u6
WRITE_BODY = '{"body":"w%d","n":7,"title":"bench","tags":["t1","u1"]}'
# (phase, what the table calls it); indexes are added between the two groups of reads
READS = (("eq_scan", "selective filter `body == needle-1` (one match), no index"),
         ("in_array", "`in` over the array field `tags` (2% match), no index"),
         ("page", "unfiltered page of 25"))
INDEXED_READS = (("eq_index", "the selective filter, `body` indexed"),
                 ("range_sort", "range of `n` (10%) sorted by `n`, `n` indexed"))
CREATES = ((0, ()), (1, ("body",)), (3, ("body", "n", "title")))


def settled(target: Target, result: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """`result`, once the target has finished the requests wrk left in flight (a scan can take seconds):
    they would otherwise run on into the other target's measurement."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = sum(proc_cpu(pid) for pid in target.server.pids())
        time.sleep(0.2)
        if sum(proc_cpu(pid) for pid in target.server.pids()) - before < 0.02:  # under 10% of a core
            break
    return result


def docs(start: int, count: int, total: int) -> list[dict[str, Any]]:
    """The documents of `msgs`: the needle sits in the middle."""
    return [{"body": NEEDLE if i == total // 2 else f"body-{i}", "n": i, "title": "seed",
             "tags": [f"t{i % TAG_VALUES}", f"u{i % 7}"]} for i in range(start, start + count)]


def clauses(phase: str, total: int) -> tuple[list[list[Any]], str]:
    """sblite's clauses and query string of a read phase."""
    return {
        "eq_scan": ([["body", "==", NEEDLE]], ""),
        "eq_index": ([["body", "==", NEEDLE]], ""),
        "in_array": ([["tags", "in", ["t7"]]], ""),
        "range_sort": ([["n", ">=", total - total // 10]], "&sort=n"),
    }[phase]


def pb_filter(phase: str, total: int) -> str:
    """PocketBase's filter and sort of a read phase."""
    return {
        "eq_scan": f"filter=(body='{NEEDLE}')",
        "eq_index": f"filter=(body='{NEEDLE}')",
        "in_array": "filter=(tags:each?='t7')",  # any element of the multi-select equals t7
        "range_sort": f"filter=(n>={total - total // 10})&sort=n",
        "page": "",
    }[phase]


def read_request(target: Target, phase: str, total: int) -> dict[str, Any]:
    """The wrk request of a read phase."""
    if isinstance(target, Sblite):
        if phase == "page":
            return {"url": target.url + "/db/msgs?size=25", "method": "GET", "body": "", "headers": target.headers}
        body, extra = clauses(phase, total)
        return {"url": f"{target.url}/query/msgs?size=25{extra}", "method": "POST", "body": json.dumps(body),
                "headers": target.headers}
    query = quote(pb_filter(phase, total), safe="=&")
    url = f"{target.url}/api/collections/msgs/records?perPage=25" + (f"&{query}" if query else "")
    return {"url": url, "method": "GET", "body": "", "headers": target.headers}


def create_request(target: Target, indexes: int) -> dict[str, Any]:
    """The wrk request of a create phase: into `writes0`, `writes1` or `writes3` (that many indexes)."""
    if isinstance(target, Sblite):
        return {"url": f"{target.url}/db/writes{indexes}", "method": "POST", "body": WRITE_BODY,
                "headers": target.headers}
    return {"url": f"{target.url}/api/collections/writes{indexes}/records", "method": "POST", "body": WRITE_BODY,
            "headers": {**target.headers, "Content-Type": "application/json"}}


def prepare(target: Target, total: int) -> float:
    """Collections and documents; the seconds seeding took."""
    began = time.perf_counter()
    if isinstance(target, Sblite):
        seed_sblite(target, total)
    else:
        seed_pocketbase(target, total)
    return time.perf_counter() - began


def seed_sblite(target: Sblite, total: int, chunk: int = 2000) -> None:
    """Bulk creates of `chunk` documents, four in flight (one create first makes `writes` exist)."""
    def post(start: int) -> None:
        batch = docs(start, min(chunk, total - start), total)
        expect(*http(target.url + "/db/msgs?bulk=1", "POST", batch, target.headers, timeout=120), "bulk create")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, range(0, total, chunk)))


def seed_pocketbase(target: PocketBase, total: int) -> None:
    """`msgs` and `writes` through the collections API, `msgs`' rows straight into its table."""
    tags = [f"t{k}" for k in range(TAG_VALUES)] + [f"u{k}" for k in range(7)]
    fields = [{"name": "body", "type": "text"}, {"name": "n", "type": "number"}, {"name": "title", "type": "text"},
              {"name": "tags", "type": "select", "maxSelect": 2, "values": tags},
              {"name": "created", "type": "autodate", "onCreate": True},
              {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True}]
    for name in ("msgs", *(f"writes{count}" for count, _fields in CREATES)):
        body = {"name": name, "type": "base", "fields": fields,
                "createRule": AUTHED, "listRule": AUTHED, "viewRule": AUTHED}
        expect(*http(target.url + "/api/collections", "POST", body, target.admin), f"create collection {name}")
    stamp = "2026-01-01 00:00:00.000Z"
    rows = [(d["body"], d["n"], d["title"], json.dumps(d["tags"]), stamp, stamp) for d in docs(0, total, total)]
    with sqlite3.connect(target.db, timeout=30) as conn:
        conn.executemany("INSERT INTO msgs (body, n, title, tags, created, updated) VALUES (?, ?, ?, ?, ?, ?)", rows)


def add_indexes(target: Target, collection: str, fields: tuple[str, ...]) -> float:
    """Index `fields` of a collection (PocketBase: its index list becomes exactly these); seconds taken."""
    began = time.perf_counter()
    if isinstance(target, Sblite):
        root = {**target.pk, "Authorization": f"Bearer {SBLITE_ROOT}"}
        for field in fields:
            expect(*http(f"{target.url}/sudo/index?col={collection}&field={quote(field)}", "POST", None, root,
                         timeout=300), f"index {collection}.{field}")
    else:
        body = {"indexes": [f"CREATE INDEX idx_{collection}_{f} ON {collection} ({f})" for f in fields]}
        expect(*http(f"{target.url}/api/collections/{collection}", "PATCH", body, target.admin, timeout=300),
               f"index {collection}")
    return time.perf_counter() - began


def totals(target: Target, phase: str, total: int) -> int:
    """How many documents a read phase matches, as the target answers it (both must agree)."""
    request = read_request(target, phase, total)
    body = json.loads(request["body"]) if request["body"] else None
    status, answer = http(request["url"], request["method"], body, request["headers"], timeout=120)
    answer = expect(status, answer, f"{target.name} {phase}")
    return int(answer["total"] if isinstance(target, Sblite) else answer["totalItems"])


def expected(phase: str, total: int) -> int:
    """What every read phase must match."""
    return {"eq_scan": 1, "eq_index": 1, "in_array": len(range(7, total, TAG_VALUES)), "page": total,
            "range_sort": total // 10}[phase]


# measure(targets, request of a target, what, connections, runs): every run's figures by target name
Measure = Callable[[list[Target], Callable[[Target], dict[str, Any]], str, int, int],
                   dict[str, list[dict[str, Any]]]]


def workload(targets: list[Target], total: int, measure: Measure, log: Callable[[str], None],
             read_connections: int, create_connections: int, runs: int) -> dict[str, Any]:
    """Every phase, each alternating the targets through `measure`; results by phase, then setup figures.

    The create phases take turns, one run each per round in a rotating order, each into its own
    collection, so that neither the order nor a collection's growth favours one of them.
    """
    res: dict[str, Any] = {}
    setup: dict[str, Any] = {"load_before": os.getloadavg()}
    for target in targets:
        setup[f"seed_s_{target.name}"] = seconds = prepare(target, total)
        log(f"query: seeded {total:,} documents into {target.name} in {seconds:.1f}s")

    def reads(phases: tuple[tuple[str, str], ...]) -> None:
        for phase, _label in phases:
            for target in targets:
                found = totals(target, phase, total)
                if found != expected(phase, total):
                    raise BenchError(f"{target.name} {phase}: {found} matches, expected {expected(phase, total)}")
            setup[f"load_{phase}"] = os.getloadavg()
            res[phase] = measure(targets, lambda t, p=phase: read_request(t, p, total), phase, read_connections,
                                 runs)

    reads(READS)
    for target in targets:
        setup[f"index_s_{target.name}"] = seconds = add_indexes(target, "msgs", ("body", "n"))
        log(f"query: indexed body and n of {total:,} documents in {target.name} in {seconds:.1f}s")
    reads(INDEXED_READS)
    for count, fields in CREATES:
        for target in targets:
            if fields:
                add_indexes(target, f"writes{count}", fields)
    for turn in range(runs):
        setup[f"load_creates_{turn + 1}"] = os.getloadavg()
        for count, _fields in CREATES[turn % 3:] + CREATES[:turn % 3]:
            order = targets if turn % 2 == 0 else targets[::-1]
            measured = measure(order, lambda t, n=count: create_request(t, n), f"creates, {count} indexes",
                               create_connections, 1)
            for name, found in measured.items():
                res.setdefault(f"create_{count}", {}).setdefault(name, []).extend(found)
    res["setup"] = setup
    return res


def rows(res: dict[str, Any], names: list[str], stat: Callable[..., dict[str, Any]],
         cell: Callable[..., str]) -> list[tuple[str, str, str, str]]:
    """The workload's table rows: (what, sblite, the other, sblite/other)."""
    out = []
    labels = [*READS, *INDEXED_READS, *((f"create_{n}", f"creates/s, {n} index{'es' if n > 1 else ''} on the "
                                         f"collection ({', '.join(f)})" if f else "creates/s, no index")
                                        for n, f in CREATES)]
    for key, label in labels:
        if key not in res:
            continue
        medians, cells = [], []
        for name in names:
            s = stat(res[key][name], "per_s")
            cells.append(cell(s, "/s", f", p99 {stat(res[key][name], 'p99_ms')['median']:,.0f} ms"))
            medians.append(s["median"])
        out.append((f"query: {label}", cells[0], cells[1], f"{medians[0] / medians[1]:.2f}" if medians[1] else ""))
    return out


def notes(res: dict[str, Any], names: list[str], stat: Callable[..., dict[str, Any]]) -> list[str]:
    """The issue's targets in words: indexed against unindexed, and what an index costs creates."""
    if "eq_index" not in res:
        return []
    lines = []
    for name in names:
        def median(key: str, name: str = name) -> float:
            return float(stat(res[key][name], "per_s")["median"])
        speedup = median("eq_index") / median("eq_scan") if median("eq_scan") else 0.0
        with_one, with_three = (100 * median(f"create_{n}") / median("create_0") for n in (1, 3))
        lines.append(f"{name}: the indexed selective filter at {speedup:,.1f}x the rate of the unindexed one; "
                     f"creates with 1 index at {with_one:.0f}% of the rate with none, with 3 at {with_three:.0f}% "
                     "(medians).")
        if "create_3" in res:
            cpu = [statistics.median(10_000 * r["cpu"]["server"] / r["per_s"] for r in res[f"create_{n}"][name])
                   for n in (0, 1, 3)]
            lines.append(f"{name}: server CPU per create (steadier than the rate on a busy machine) "
                         f"{cpu[0]:,.0f} µs with no index, {cpu[1]:,.0f} with 1, {cpu[2]:,.0f} with 3 (medians).")
    setup = res.get("setup", {})
    if "load_before" in setup:
        lines.append("Load average (1, 5, 15 min) before the query workload: "
                     + ", ".join(f"{v:.2f}" for v in setup["load_before"]) + ".")
    return lines
