"""Debian's real nginx or Caddy on loopback in front of a real `sblite serve`, with the committed deploy/ configs."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support import ServerProcess, free_port, start_server

T = TypeVar("T")
SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_binary() -> str:
    """The nginx binary (Debian puts it in /usr/sbin, often not on a user's PATH); fails when missing."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail("nginx is required for the reverse-proxy tests: apt-get install nginx-light (or nginx)")
    return found


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl; (certificate, key)."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.fail("openssl is required for the reverse-proxy tests: apt-get install openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def rewrite_site(text: str, *, upstream: int, https: int, http: int, cert: Path, key: Path,
                 http_1_0: bool = False) -> str:
    """The committed site with only its ports and paths changed (loopback only: no IPv6 listeners)."""
    changes = [
        ("server 127.0.0.1:8099;", f"server 127.0.0.1:{upstream};"),
        ("listen 80;", f"listen 127.0.0.1:{http};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("/etc/letsencrypt/live/example.com/fullchain.pem", str(cert)),
        ("/etc/letsencrypt/live/example.com/privkey.pem", str(key)),
    ]
    if http_1_0:  # nginx's default when the directive is missing
        changes.append(("proxy_http_version 1.1;", ""))
    for old, new in changes:
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}: update the test"
        text = text.replace(old, new)
    return text


def main_config(directory: Path, site: Path) -> str:
    """A minimal nginx.conf that keeps everything (pid, logs, temporary files) in `directory`."""
    temp = "\n".join(f"    {name}_temp_path {directory / name};" for name in TEMP_PATHS)
    user = "user root;\n" if os.geteuid() == 0 else ""  # else workers run as nobody, locked out of tmp dirs
    return (f"daemon off;\n{user}worker_processes 1;\npid {directory / 'nginx.pid'};\n"
            f"error_log {directory / 'error.log'} info;\nevents {{ worker_connections 512; }}\n"
            f"http {{\n    access_log {directory / 'access.log'};\n{temp}\n    include {site};\n}}\n")


@dataclass
class Proxied:
    """nginx on `url` (HTTPS) in front of `server`; `http_url` is the plain-HTTP redirecting listener."""

    server: ServerProcess
    nginx: subprocess.Popen
    url: str
    http_url: str
    cert: Path
    directory: Path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test certificate."""
        return ssl.create_default_context(cafile=str(self.cert))

    def as_server(self) -> ServerProcess:
        """The sblite process as tests/node_runner sees it, reached through nginx."""
        return replace(self.server, url=self.url)

    def nginx_log(self) -> str:
        """nginx's error log so far."""
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> int:
        """Stop nginx, then sblite; sblite's exit code."""
        _end(self.nginx)
        return self.server.stop(signal.SIGTERM)


def start_proxied(tmp_path: Path, env: dict[str, str] | None = None, *, http_1_0: bool = False) -> Proxied:
    """sblite serve (trusting 127.0.0.1) with nginx in front, both answering; stop() ends both."""
    server = start_server(tmp_path, env={"SBLITE_TRUSTED_PROXIES": "127.0.0.1", "SBLITE_ACCESS_LOG": "true",
                                         **(env or {})})
    directory = tmp_path / "nginx"
    directory.mkdir()
    https, http = free_port(), free_port()
    site = directory / "site.conf"
    try:
        cert, key = self_signed_certificate(directory)
        site.write_text(rewrite_site(SITE.read_text(), upstream=int(server.url.rsplit(":", 1)[1]), https=https,
                                     http=http, cert=cert, key=key, http_1_0=http_1_0))
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    conf = directory / "nginx.conf"
    conf.write_text(main_config(directory, site))
    with open(directory / "stderr.log", "wb") as log:  # nginx keeps its own handle
        proc = subprocess.Popen([nginx_binary(), "-p", str(directory), "-e", str(directory / "error.log"),
                                 "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    proxied = Proxied(server, proc, f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}", cert, directory)
    deadline = time.monotonic() + 15
    while not _listening(https) or not _listening(http):
        if proc.poll() is not None or time.monotonic() > deadline:
            proxied.stop()
            pytest.fail(f"nginx did not start ({proc.poll()}):\n{(directory / 'stderr.log').read_text()}\n"
                        f"{proxied.nginx_log()}")
        time.sleep(0.05)
    return proxied


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


CADDYFILE = SITE.parent / "Caddyfile"


@dataclass
class Caddied:
    """Caddy on `url` (plain HTTP: automatic TLS needs a public name) in front of `server`."""

    server: ServerProcess
    caddy: subprocess.Popen
    url: str
    directory: Path

    def as_server(self) -> ServerProcess:
        """The sblite process as tests/node_runner sees it, reached through Caddy."""
        return replace(self.server, url=self.url)

    def caddy_log(self) -> str:
        """Caddy's output so far."""
        return (self.directory / "caddy.log").read_text(errors="replace")

    def stop(self) -> int:
        """Stop Caddy, then sblite; sblite's exit code."""
        _end(self.caddy)
        return self.server.stop(signal.SIGTERM)


def caddy_binary() -> str:
    """The caddy binary; fails when missing."""
    found = shutil.which("caddy")
    if not found:
        pytest.fail("caddy is required for the reverse-proxy tests: apt-get install caddy")
    return found


def caddy_config(caddy: str, directory: Path, *, upstream: int, port: int) -> str:
    """The committed Caddyfile as Caddy's JSON, with its site on a loopback port (plain HTTP), its
    upstream's port changed and the admin endpoint off (a system Caddy may hold port 2019)."""
    text = CADDYFILE.read_text()
    changes = (("example.com {", f"http://127.0.0.1:{port} {{"),
               ("reverse_proxy 127.0.0.1:8099", f"reverse_proxy 127.0.0.1:{upstream}"))
    for old, new in changes:
        assert text.count(old) == 1, f"deploy/Caddyfile no longer has exactly one {old!r}: update the test"
        text = text.replace(old, new)
    (directory / "Caddyfile").write_text(text)
    adapted = subprocess.run([caddy, "adapt", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"],
                             capture_output=True, text=True, timeout=30, check=True, env=_caddy_env(directory))
    config = json.loads(adapted.stdout)
    config["admin"] = {"disabled": True}
    for server in config["apps"]["http"]["servers"].values():
        server["listen"] = [f"127.0.0.1:{port}"]  # Caddy binds every interface for a bare port
    return json.dumps(config)


def start_caddied(tmp_path: Path, env: dict[str, str] | None = None) -> Caddied:
    """sblite serve (trusting 127.0.0.1) with Caddy in front, both answering; stop() ends both."""
    caddy = caddy_binary()
    server = start_server(tmp_path, env={"SBLITE_TRUSTED_PROXIES": "127.0.0.1", **(env or {})})
    directory = tmp_path / "caddy"
    directory.mkdir()
    port = free_port()
    conf = directory / "caddy.json"
    try:
        conf.write_text(caddy_config(caddy, directory, upstream=int(server.url.rsplit(":", 1)[1]), port=port))
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    with open(directory / "caddy.log", "wb") as log:  # caddy keeps its own handle
        proc = subprocess.Popen([caddy, "run", "--config", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                env=_caddy_env(directory))
    caddied = Caddied(server, proc, f"http://127.0.0.1:{port}", directory)
    deadline = time.monotonic() + 15
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            caddied.stop()
            pytest.fail(f"caddy did not start ({proc.poll()}):\n{caddied.caddy_log()}")
        time.sleep(0.05)
    return caddied


def _caddy_env(directory: Path) -> dict[str, str]:
    """Caddy's data and config directories inside the test's."""
    return {**os.environ, "HOME": str(directory), "XDG_DATA_HOME": str(directory / "data"),
            "XDG_CONFIG_HOME": str(directory / "config")}


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def run_client(work: Coroutine[Any, Any, T]) -> T:
    """Run a test client's coroutine in an event loop of its own, then collect what is left of it.

    asyncio (Python 3.11) may leave a closed loop's TLS client transports to the garbage
    collector, which then warns in whichever test runs next; collected here, their warnings are
    this client's, not sblite's (which runs in its own process) and not another test's.
    """
    try:
        return asyncio.run(work)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
