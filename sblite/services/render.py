"""`/extra/htmltox`: a URL rendered to PDF or PNG by headless Chromium, stored as a file.

The URL's host is resolved before Chromium starts and refused if any of its addresses is one
fetch() may not reach (loopback, private, link-local... unless functions_fetch_allow_private);
Chromium is then pinned to the address that was checked, so the name cannot resolve elsewhere
a moment later. What the page itself loads (redirects, images, frames) is Chromium's to follow.
Each render runs in its own temporary profile, in its own process group, killed at the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sblite.errors import ApiError, BadRequest
from sblite.model import Identity
from sblite.services.files import FileService
from sblite.store.files import FileRecord

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAX_URL_LENGTH = 8192
WINDOW = (1280, 800)
FULLPAGE_HEIGHT = 8192  # a "full page" PNG is the page's first 8192 pixels: the CLI cannot measure it
MAX_RUNNING = 2  # Chromium takes hundreds of MB: at most this many at once, the others wait their turn
CHUNK = 1024 * 1024
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class RenderRequest:
    """What to render: a checked http(s) URL, as PDF or PNG."""

    url: str
    to_pdf: bool
    fullpage: bool


def find_chromium(configured: str) -> str | None:
    """The Chromium to run: `configured` if it is an executable file, else the first browser on PATH."""
    if configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def parse_request(body: Any) -> RenderRequest:
    """The render a body `{toPDF, url, fullpage}` asks for; BadRequest when it is malformed."""
    if not isinstance(body, dict):
        raise BadRequest("invalid body: expected a JSON object {toPDF, url, fullpage}")
    url, to_pdf, fullpage = body.get("url"), body.get("toPDF", False), body.get("fullpage", False)
    if not isinstance(url, str) or not url:
        raise BadRequest("url is required: the http:// or https:// address of the page to render")
    if len(url) > MAX_URL_LENGTH:
        raise BadRequest(f"url is limited to {MAX_URL_LENGTH} characters")
    if not isinstance(to_pdf, bool) or not isinstance(fullpage, bool):
        raise BadRequest("toPDF and fullpage must be true or false")
    return RenderRequest(url=url, to_pdf=to_pdf, fullpage=fullpage)


class Renderer:
    """Runs Chromium for renders and stores what it prints through the file service."""

    def __init__(self, chromium: str | None, files: FileService, *, timeout_seconds: float, allow_private: bool,
                 refuse: Callable[[Address], bool]) -> None:
        self.chromium = chromium
        self._files = files
        self._timeout = timeout_seconds
        self._allow_private = allow_private
        self._refuse = refuse
        self._running = asyncio.Semaphore(MAX_RUNNING)

    async def render(self, identity: Identity, request: RenderRequest) -> FileRecord:
        """Render the page and store it as a file of the caller's account."""
        if self.chromium is None:
            raise ApiError("rendering needs headless Chromium: install chromium (or google-chrome) on the "
                           "server's PATH, or set chromium_path to its executable", 501)
        pin = await self._check(request.url)
        loop = asyncio.get_running_loop()
        work = Path(await loop.run_in_executor(None, tempfile.mkdtemp, "", "sblite-render-"))
        try:
            async with self._running:
                output = await self._run(request, work, pin)
            return await self._store(identity, output, request.to_pdf)
        finally:
            await loop.run_in_executor(None, shutil.rmtree, work, True)

    async def _check(self, url: str) -> str | None:
        """Refuse a URL fetch() could not reach; the rule pinning its host to the checked address, if any."""
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise BadRequest("url has an invalid port") from None
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise BadRequest("url must be an http:// or https:// address with a host")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise BadRequest(f"url's host {host} does not resolve: {exc}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if self._allow_private:
            return None
        refused = [a for a in addresses if self._refuse(a)]
        if refused or not addresses:
            raise BadRequest(f"htmltox refuses {host}: it resolves to {refused[0] if refused else 'nothing'}, a "
                             "loopback, private, link-local or other non-public address "
                             "(functions_fetch_allow_private allows them)")
        if _is_literal(host):
            return None
        first = addresses[0]
        return f"MAP {host} {first if first.version == 4 else f'[{first}]'}"

    async def _run(self, request: RenderRequest, work: Path, pin: str | None) -> Path:
        """Run Chromium once; the file it wrote."""
        output = work / ("page.pdf" if request.to_pdf else "page.png")
        width, height = WINDOW[0], FULLPAGE_HEIGHT if request.fullpage else WINDOW[1]
        args = [str(self.chromium), "--headless", "--disable-gpu", f"--user-data-dir={work / 'profile'}",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--hide-scrollbars", "--mute-audio",
                f"--window-size={width},{height}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
        if pin is not None:
            args.append(f"--host-resolver-rules={pin}")
        args += [f"--print-to-pdf={output}", "--no-pdf-header-footer"] if request.to_pdf else [f"--screenshot={output}"]
        args.append(request.url)
        proc = await asyncio.create_subprocess_exec(*args, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
        try:
            code = await asyncio.wait_for(proc.wait(), self._timeout)
        except TimeoutError:
            raise ApiError(f"rendering took longer than {self._timeout:g} s (render_timeout_seconds)", 504) from None
        finally:
            _kill_group(proc.pid)  # its helper processes too, whether it finished or not
            if proc.returncode is None:
                await proc.wait()
        if code != 0 or not await asyncio.get_running_loop().run_in_executor(None, _nonempty, output):
            raise ApiError(f"chromium could not render the page (exit code {code})", 502)
        return output

    async def _store(self, identity: Identity, output: Path, to_pdf: bool) -> FileRecord:
        """Copy Chromium's output into the file service, a chunk at a time off the event loop."""
        loop = asyncio.get_running_loop()
        upload = self._files.upload(identity)
        handle = await loop.run_in_executor(None, open, output, "rb")
        try:
            while chunk := await loop.run_in_executor(None, handle.read, CHUNK):
                await upload.write(chunk)
        except BaseException:
            await upload.abort()
            raise
        finally:
            await loop.run_in_executor(None, handle.close)
        ext, content_type = (".pdf", "application/pdf") if to_pdf else (".png", "image/png")
        return await upload.finish(name=f"page{ext}", filename=None, declared_type=None, public=None, ext=ext,
                                   content_type=content_type)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _nonempty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
