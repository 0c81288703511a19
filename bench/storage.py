"""File storage throughput: one 100 MB file uploaded and downloaded against a real `sblite serve` on loopback.

    python bench/storage.py [--mb 100] [--timeout 300]

Prints upload MB/s (multipart POST /storage/upload, streamed from disk by the client), download MB/s
(GET of the file's URL, streamed and counted), and the server's peak RSS (VmHWM) before and after.
Each request has a deadline and the server is stopped at the end, whatever happens. Not part of
bench/harness.py: PocketBase has no comparable route in the harness, and one file needs no wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from common import BenchError, expect, http, proc_status, start_sblite
from targets import SBLITE_PK

CHUNK = 1024 * 1024
MB = 1_000_000  # throughput in decimal megabytes per second


def make_file(path: Path, size: int) -> None:
    """`size` random bytes (incompressible, so nothing along the way can shrink them)."""
    with open(path, "wb") as out:
        left = size
        while left:
            step = min(CHUNK, left)
            out.write(os.urandom(step))
            left -= step


async def upload(url: str, token: str, path: Path, timeout: float) -> tuple[float, dict[str, str]]:
    """Seconds to upload `path`, and the answer."""
    headers = {"SB-PUBLIC-KEY": SBLITE_PK, "Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        with open(path, "rb") as handle:
            form = aiohttp.FormData()
            form.add_field("file", handle, filename="bench.bin", content_type="application/octet-stream")
            began = time.perf_counter()
            async with session.post(url + "/storage/upload", data=form, headers=headers) as resp:
                body = await resp.json() if resp.status == 200 else await resp.text()
                elapsed = time.perf_counter() - began
    if resp.status != 200:
        raise BenchError(f"upload answered {resp.status}: {body}")
    return elapsed, body


async def download(file_url: str, token: str, timeout: float) -> tuple[float, int]:
    """Seconds to download the file, and its size."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        began = time.perf_counter()
        async with session.get(file_url, headers={"Authorization": f"Bearer {token}"}) as resp:
            if resp.status != 200:
                raise BenchError(f"download answered {resp.status}: {await resp.text()}")
            size = 0
            async for chunk in resp.content.iter_chunked(CHUNK):
                size += len(chunk)
        return time.perf_counter() - began, size


def peak_mib(pid: int) -> float:
    """The process's VmHWM in MiB."""
    return proc_status(pid).get("VmHWM", 0) / 1024


def main() -> None:
    """Run once and print the three figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=int, default=100, help="file size in MiB (default 100; at most 150)")
    parser.add_argument("--timeout", type=float, default=300, help="deadline of each transfer, in seconds")
    args = parser.parse_args()
    size = args.mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="sblite-bench-storage-") as tmp:
        work = Path(tmp)
        make_file(work / "bench.bin", size)
        server = start_sblite(work)
        try:
            token = expect(*http(server.url + "/register", "POST", {"email": "bench@example.com",
                                                                   "password": "bench-pw-123"},
                                 {"SB-PUBLIC-KEY": SBLITE_PK}), "register")
            before = peak_mib(server.proc.pid)
            up_s, answer = asyncio.run(upload(server.url, token, work / "bench.bin", args.timeout))
            down_s, got = asyncio.run(download(answer["url"], token, args.timeout))
            if got != size:
                raise BenchError(f"downloaded {got} bytes of {size}")
            after = peak_mib(server.proc.pid)
        finally:
            server.stop()
    print(f"file          {args.mb} MiB ({size / MB:.1f} MB)")
    print(f"upload        {size / MB / up_s:8.1f} MB/s  ({up_s:.2f} s)")
    print(f"download      {size / MB / down_s:8.1f} MB/s  ({down_s:.2f} s)")
    print(f"server peak   {after:8.1f} MiB RSS (VmHWM; {before:.1f} MiB before the upload, +{after - before:.1f})")


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        sys.exit(f"bench/storage.py: {exc}")
