"""A receiving process of the realtime benchmark: holds a share of the channel's members.

The parent sends commands over a pipe as (name, arguments) tuples and gets one reply dict
per command: setup (connect, auth, join every member), quiet (wait until no frame has
arrived for a while), drain (wait until a phase's messages reached every member), report
(counts, receive spans and latency histograms per phase) and close.
"""

from __future__ import annotations

import asyncio
import os
import resource
import select
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, Awaitable, Callable

import aiohttp

from realtime_wire import CHANNEL, Member, Tally, connect, post_session

POLL_S = 0.01


def worker_main(pipe: Connection, spec: dict[str, Any]) -> None:
    """Process entry point: serve the parent's commands until `close`."""
    try:
        asyncio.run(Worker(pipe, spec).serve())
    finally:
        pipe.close()


class Worker:
    """The members of one process and the commands that drive them."""

    def __init__(self, pipe: Connection, spec: dict[str, Any]) -> None:
        self.pipe = pipe
        self.spec = spec
        self.tally = Tally()
        self.members: list[Member] = []
        self.session: aiohttp.ClientSession | None = None
        self.pump: Pump | None = None
        self.commands: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def serve(self) -> None:
        """Read commands from the pipe and answer each in order."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self.pipe.fileno(), self._on_pipe)
        handlers: dict[str, Callable[..., Awaitable[dict[str, Any]]]] = {
            "setup": self.setup, "quiet": self.quiet, "drain": self.drain, "report": self.report,
            "close": self.close,
        }
        self.session = post_session(self.spec["concurrency"])
        try:
            while True:
                name, args = await self.commands.get()
                try:
                    reply = await handlers[name](**args)
                except Exception as exc:  # reported to the parent, which stops the benchmark
                    reply = {"error": f"{name}: {type(exc).__name__}: {exc}"}
                self.pipe.send(reply)
                if name == "close":
                    return
        finally:
            loop.remove_reader(self.pipe.fileno())
            if self.pump is not None:
                self.pump.stop()
            for member in self.members:
                member.close()
            await self.session.close()

    def _on_pipe(self) -> None:
        """Queue every command waiting in the pipe; a closed pipe means close."""
        try:
            while self.pipe.poll():
                self.commands.put_nowait(self.pipe.recv())
        except (EOFError, OSError):
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())
            self.commands.put_nowait(("close", {}))

    def alive(self) -> int:
        """Members whose connection is still open."""
        return sum(1 for member in self.members if not member.lost and not member.closing)

    async def setup(self, count: int, token: str, timeout: float) -> dict[str, Any]:
        """Connect, authenticate and join `count` members, a bounded number at a time."""
        gate = asyncio.Semaphore(self.spec["concurrency"])
        failures: list[str] = []
        started = time.monotonic()

        async def one() -> None:
            async with gate:
                member: Member | None = None
                try:
                    member = await connect(self.spec["transport"], self.tally, self.spec["host"],
                                           self.spec["port"], self.spec["pk"], self.session, timeout)
                    self.members.append(member)
                    await member.authenticate(token, timeout)
                    await member.join(CHANNEL, timeout)
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    if member is not None:
                        member.close()

        await asyncio.gather(*(one() for _ in range(count)))
        if self.spec["pump"]:
            self.pump = Pump([m for m in self.members if not m.lost and not m.closing])
            await self.pump.start()
        return {"joined": self.alive(), "failed": len(failures), "failures": failures[:5],
                "seconds": time.monotonic() - started}

    async def quiet(self, idle: float, timeout: float) -> dict[str, Any]:
        """Wait until no frame has arrived for `idle` seconds (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        idle_ns = int(idle * 1e9)
        while time.monotonic() < deadline:
            if time.monotonic_ns() - self.tally.last_frame_ns >= idle_ns:
                return {"quiet": True, "frames": self.tally.frames}
            await asyncio.sleep(POLL_S * 5)
        return {"quiet": False, "frames": self.tally.frames}

    async def drain(self, phase: int, sent: int, timeout: float) -> dict[str, Any]:
        """Wait until every live member received the phase's `sent` messages (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.tally.count.get(phase, 0) >= sent * self.alive():
                break
            await asyncio.sleep(POLL_S)
        return {"received": self.tally.count.get(phase, 0), "expected": sent * self.alive()}

    async def report(self, expected_per_member: int) -> dict[str, Any]:
        """Everything counted so far, with members that missed at least one message."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        tally = self.tally
        return {
            "members": len(self.members), "alive": self.alive(), "frames": tally.frames,
            "disconnects": tally.disconnects, "errors": tally.errors,
            "short_members": sum(1 for m in self.members if m.received < expected_per_member),
            "received_total": sum(m.received for m in self.members),
            "phases": {phase: {"count": tally.count[phase], "first_ns": tally.first_ns[phase],
                               "last_ns": tally.last_ns[phase], "hist": tally.hist[phase]}
                       for phase in list(tally.count)},
            "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kib": usage.ru_maxrss,
        }

    async def close(self) -> dict[str, Any]:
        """Stop the pump and close every member connection."""
        if self.pump is not None:
            self.pump.stop()
        for member in self.members:
            member.close()
        await asyncio.sleep(0.05)
        return {"closed": len(self.members)}


class Pump:
    """Reads joined members in a thread of its own with one epoll, bypassing the asyncio loop.

    A delivery is one small read; asyncio's per-read machinery (select, handle, protocol
    callbacks) costs more CPU than the server spends sending it, which would make the load
    generator the bottleneck on a 2-core machine. The loop keeps the transports for writes
    (pongs) and closing, which members hand to it with call_soon_threadsafe.
    """

    def __init__(self, members: list[Member]) -> None:
        self.epoll = select.epoll()
        self.by_fd: dict[int, Member] = {}
        self.members = members
        self.stopping = False
        self.thread = threading.Thread(target=self.run, name="pump", daemon=True)

    async def start(self) -> None:
        """Take the members' reads away from asyncio and start the reading thread."""
        for member in self.members:
            assert member.transport is not None
            member.transport.pause_reading()
            member.pumped = True
            fd = member.transport.get_extra_info("socket").fileno()
            self.by_fd[fd] = member
            self.epoll.register(fd, select.EPOLLIN)
        await asyncio.sleep(0)  # reads asyncio already queued run before the thread starts
        self.thread.start()

    def run(self) -> None:
        """Read whatever is ready and feed it to its member, until stopped."""
        by_fd, poll, readv = self.by_fd, self.epoll.poll, os.readv
        try:
            while not self.stopping:
                for fd, _ in poll(0.2):
                    member = by_fd.get(fd)
                    if member is None:
                        continue
                    try:
                        size = readv(fd, (member.get_buffer(-1),))
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        self.drop(fd, member, exc)
                        continue
                    if size == 0:
                        self.drop(fd, member, None)
                    else:
                        member.buffer_updated(size)
        except Exception as exc:  # reported with the counts; the members stop being read
            self.members[0].tally.error(f"pump failed: {type(exc).__name__}: {exc}")

    def drop(self, fd: int, member: Member, exc: Exception | None) -> None:
        """Stop reading a member whose connection ended."""
        self.epoll.unregister(fd)
        del self.by_fd[fd]
        member.gone(exc)
        member.in_loop(member.close_transport)

    def stop(self) -> None:
        """Stop the thread and hand the members back to asyncio."""
        if self.stopping:
            return
        self.stopping = True
        if self.thread.is_alive():
            self.thread.join(2)
        self.epoll.close()
        for member in self.members:
            member.pumped = False
