"""Debian's real nginx on loopback in front of a real `sblite serve`, with the committed deploy/nginx.conf."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.support import ServerProcess, free_port, start_server

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
        if self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGTERM)
        try:
            self.nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.nginx.kill()
            self.nginx.wait(timeout=10)
        return self.server.stop(signal.SIGTERM)


def start_proxied(tmp_path: Path, env: dict[str, str] | None = None, *, http_1_0: bool = False) -> Proxied:
    """sblite serve (trusting 127.0.0.1) with nginx in front, both answering; stop() ends both."""
    server = start_server(tmp_path, env={"SBLITE_TRUSTED_PROXIES": "127.0.0.1", **(env or {})})
    directory = tmp_path / "nginx"
    directory.mkdir()
    cert, key = self_signed_certificate(directory)
    https, http = free_port(), free_port()
    site = directory / "site.conf"
    site.write_text(rewrite_site(SITE.read_text(), upstream=int(server.url.rsplit(":", 1)[1]), https=https,
                                 http=http, cert=cert, key=key, http_1_0=http_1_0))
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
