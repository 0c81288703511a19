"""Helpers shared by tests and benchmarks: free ports and a real `sblite serve` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEV_PK = "dev_memory_pk"
DEV_ADMIN_EMAIL = "admin@dev.com"
DEV_ADMIN_PASSWORD = "devpw1234"
DEV_ROOT_TOKEN = "safe-to-use-in-dev-root-token"


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    """A running `sblite serve` child process."""

    proc: subprocess.Popen
    url: str
    log_path: Path
    extra: dict = field(default_factory=dict)

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send a signal and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def start_server(
    workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 20,
    program: tuple[str, ...] = (),
) -> ServerProcess:
    """Start `sblite serve` on a free loopback port and wait until /ping answers.

    `program` is the sblite command to run (an installed `.../bin/sblite`); by default this
    Python's `-m sblite`.
    """
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    db = workdir / "sblite.db"
    cmd = [*(program or (sys.executable, "-m", "sblite")), "serve", "--host", "127.0.0.1", "--port", str(port)]
    if "--db" not in args:
        cmd += ["--db", str(db)]
    cmd += list(args)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with open(log_path, "wb") as log:  # the child keeps its own handle
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=workdir)
    server = ServerProcess(proc=proc, url=f"http://127.0.0.1:{port}", log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sblite serve exited with {proc.returncode}:\n{server.output()}")
        try:
            with urllib.request.urlopen(server.url + "/ping", timeout=1) as resp:
                if resp.status == 200:
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"sblite serve did not answer within {timeout}s:\n{server.output()}")


def run_cli(capsys: Any, *argv: str) -> str:
    """Run the command line in this process; what it printed, or the error it exited with."""
    from sblite.cli import main  # the wiring layer, imported only by the tests that drive the CLI

    try:
        main(list(argv))
    except SystemExit as exc:
        return capsys.readouterr().out + (str(exc.code) if exc.code not in (None, 0) else "")
    return capsys.readouterr().out
