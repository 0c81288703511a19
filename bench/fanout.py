"""Realtime fan-out: subscribers in receiver processes, one publisher of creates at rising rates.

sblite's subscribers are WebSockets joined to `db-bench`, PocketBase's are SSE streams of
/api/realtime subscribed to `bench`; each create carries its send time (monotonic µs, one clock
for every process of the machine) in `n`, which every delivery is timed by. A rate passes when
every delivery arrived and p99 stayed under the target; the ramp stops at the first that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import re
import time
from typing import Any

import aiohttp

from common import BenchError, CpuMeter, hist_percentile, proc_cpu
from targets import CHAT_CHANNEL, PocketBase, Sblite, pocketbase_members, sblite_members, sblite_sse_members

STAMP = re.compile(rb'"n\\?":(\d+)')
CHAT_STAMP = re.compile(rb'"text\\?":\\?"(\d+)')
LAST_MS = 60_000  # latencies are kept in 1 ms buckets up to a minute
DRAIN_SECONDS = 5.0


def now_us() -> int:
    """The send-time clock."""
    return time.monotonic_ns() // 1000


class Latencies:
    """Deliveries counted and timed in 1 ms buckets by the send times `pattern` finds in what arrives."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.reset()

    def reset(self) -> None:
        """Forget what was counted."""
        self.hist, self.count = [0] * (LAST_MS + 1), 0

    def record(self, data: bytes) -> None:
        """Count and time every send time in `data`."""
        now = now_us()
        for match in self.pattern.finditer(data):
            self.hist[min(LAST_MS, (now - int(match.group(1))) // 1000)] += 1
            self.count += 1

    def buckets(self) -> dict[int, int]:
        """The non-empty buckets: ms -> deliveries."""
        return {ms: n for ms, n in enumerate(self.hist) if n}


def receiver_main(pipe: Any, kind: str, url: str, token: str, count: int) -> None:
    """A receiving process: hold `count` subscribers, count and time what they get, answer the pipe."""
    asyncio.run(_receive(pipe, kind, url, token, count))


async def _receive(pipe: Any, kind: str, url: str, token: str, count: int) -> None:
    latencies = Latencies(STAMP)
    members = {"ws": sblite_members, "sse": sblite_sse_members, "pocketbase": pocketbase_members}[kind]
    try:
        held = await members(url, token, count, latencies.record)
    except Exception as err:  # reported to the parent, which stops the benchmark
        pipe.send({"error": f"{type(err).__name__}: {err}"})
        return
    pipe.send({"ready": len(held)})
    loop = asyncio.get_running_loop()
    while (command := await loop.run_in_executor(None, pipe.recv)) != "close":
        if command == "reset":
            latencies.reset()
        pipe.send({"delivered": latencies.count, "hist": latencies.buckets()})
    pipe.send({"closed": True})


class Receivers:
    """The receiving processes of one target."""

    def __init__(self, target: Sblite | PocketBase, members: int, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.procs, self.pipes = [], []
        for i in range(processes):
            share = members // processes + (1 if i < members % processes else 0)
            parent, child = ctx.Pipe()
            kind = target.transport if isinstance(target, Sblite) else "pocketbase"
            proc = ctx.Process(target=receiver_main, args=(child, kind, target.url, target.token, share),
                               daemon=True)
            proc.start()
            self.procs.append(proc)
            self.pipes.append(parent)
        self.members = sum(self._answer(pipe, 60).get("ready", 0) for pipe in self.pipes)

    def _answer(self, pipe: Any, timeout: float) -> dict[str, Any]:
        if not pipe.poll(timeout):
            raise BenchError(f"a receiver did not answer within {timeout:.0f}s")
        reply: dict[str, Any] = pipe.recv()
        if "error" in reply:
            raise BenchError(f"receiver failed: {reply['error']}")
        return reply

    def ask(self, command: str) -> tuple[int, dict[int, int]]:
        """Deliveries and latency buckets since the last reset, over every process."""
        for pipe in self.pipes:
            pipe.send(command)
        delivered, hist = 0, {}
        for pipe in self.pipes:
            reply = self._answer(pipe, 30)
            delivered += reply["delivered"]
            for ms, n in reply["hist"].items():
                hist[ms] = hist.get(ms, 0) + n
        return delivered, hist

    def cpu(self) -> float:
        """CPU seconds the receiving processes used so far."""
        return sum(proc_cpu(p.pid) for p in self.procs if p.pid)

    def close(self) -> None:
        """Stop every receiving process."""
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            with contextlib.suppress(OSError):
                pipe.send("close")
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(3)


async def publish(target: Sblite | PocketBase, rate: int, seconds: float) -> tuple[int, int]:
    """Creates at `rate`/s for `seconds`, each carrying its send time; (answered 2xx, failed)."""
    request = target.create()
    headers = {k: v for k, v in request["headers"].items()}
    outcome = {"ok": 0, "failed": 0}
    async with aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=50)) as session:
        async def one() -> None:
            body = f'{{"title":"fan","n":{now_us()},"done":false}}'.encode()
            try:
                async with session.post(request["url"], data=body) as resp:
                    await resp.read()
                    outcome["ok" if resp.status < 300 else "failed"] += 1
            except aiohttp.ClientError:
                outcome["failed"] += 1
        started, tasks = time.monotonic(), []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            tasks.append(asyncio.ensure_future(one()))
        await asyncio.gather(*tasks)
    return outcome["ok"], outcome["failed"]


def step(target: Sblite | PocketBase, receivers: Receivers, rate: int, seconds: float,
         target_p99: float) -> dict[str, Any]:
    """One rate: publish, wait for the deliveries, time them."""
    receivers.ask("reset")
    meter, load_start = CpuMeter(target.server), receivers.cpu()
    began = time.monotonic()
    sent, failed = asyncio.run(publish(target, rate, seconds))
    expected = sent * receivers.members
    deadline = time.monotonic() + DRAIN_SECONDS
    while (delivered := receivers.ask("count")[0]) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    wall = time.monotonic() - began
    cpu = meter.stop()
    cpu["load"] = round(cpu["load"] + 100 * (receivers.cpu() - load_start) / wall, 1)
    delivered, hist = receivers.ask("count")
    p99 = hist_percentile(hist, 0.99)
    return {"rate": rate, "sent": sent, "failed": failed, "expected": expected, "delivered": delivered,
            "lost": expected - delivered, "deliveries_per_s": round(delivered / seconds, 1),
            "p50_ms": hist_percentile(hist, 0.5), "p99_ms": p99, "cpu": cpu,
            "passed": failed == 0 and delivered == expected and p99 < target_p99}


def ramp(target: Sblite | PocketBase, members: int, rates: list[int], seconds: float, target_p99: float,
         log: Any) -> dict[str, Any]:
    """Rising rates until one fails; the best deliveries/s that passed."""
    receivers = Receivers(target, members, processes=2)
    steps = []
    try:
        if receivers.members != members:
            raise BenchError(f"{target.name}: {receivers.members} of {members} subscribers connected")
        for rate in rates:
            result = step(target, receivers, rate, seconds, target_p99)
            steps.append(result)
            log(f"fan-out {target.name} {rate} creates/s: " + ", ".join(f"{k} {v}" for k, v in result.items()))
            target.server.check()
            if not result["passed"]:
                break
    finally:
        receivers.close()
    best = max((s for s in steps if s["passed"]), key=lambda s: s["deliveries_per_s"], default=None)
    return {"best_per_s": best["deliveries_per_s"] if best else 0.0, "best_rate": best["rate"] if best else 0,
            "p99_ms": best["p99_ms"] if best else 0.0, "steps": steps}


async def chan_in_window(target: Sblite, seconds: float, window: int = 50, senders: int = 2) -> dict[str, Any]:
    """chan_in messages over WebSocket to `bench_chat` (one create each), `window` in flight.

    A run is complete when its document's db_created event reaches a listener, as in the chat
    tutorial; the figure is the completed runs per second.
    """
    latencies, seen = Latencies(CHAT_STAMP), asyncio.Event()

    def on_created(data: bytes) -> None:
        latencies.record(data)
        seen.set()
    listener = await sblite_members(target.url, target.token, 1, on_created, channel="db-benchchat")
    members = await sblite_members(target.url, target.token, senders, channel=CHAT_CHANNEL)
    meter, sent = CpuMeter(target.server), 0
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        for _ in range(window - (sent - latencies.count)):
            message = {"type": "chan_in", "channel": CHAT_CHANNEL, "data": str(now_us())}
            members[sent % senders].queue(json.dumps(message))
            sent += 1
        for member in members:
            member.flush()
        seen.clear()
        try:
            await asyncio.wait_for(seen.wait(), 30)
        except TimeoutError:
            raise BenchError(f"{target.name}: no chan_in run finished for 30 s ({latencies.count} of {sent})") from None
    wall, done = time.monotonic() - began, latencies.count
    cpu = meter.stop()
    deadline = time.monotonic() + 30
    while latencies.count < sent and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for ws in (*listener, *members):
        await ws.close()
    if latencies.count < sent:
        raise BenchError(f"{target.name}: {sent - latencies.count} of {sent} chan_in runs never finished")
    hist = latencies.buckets()
    return {"per_s": round(done / wall, 1), "p50_ms": hist_percentile(hist, 0.5),
            "p99_ms": hist_percentile(hist, 0.99), "server_us_per_run": round(cpu["server"] * wall * 1e4 / done),
            "cpu": cpu}
