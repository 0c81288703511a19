"""Driving Debian's chromium with Playwright against a real `sblite serve`, and axe-core for accessibility."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own browser download is not used
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
BROWSER_DIR = Path(__file__).parent / "browser"
AXE = BROWSER_DIR / "node_modules" / "axe-core" / "axe.min.js"
AXE_VERSION = "4.14.1"  # what tests/browser/package.json pins
ARTIFACTS = Path(__file__).parent / "artifacts" / "dashboard"  # git-ignored
WIDTHS = {"wide": (1280, 800), "narrow": (390, 844)}


def require_chromium() -> str:
    """The chromium path; skips the test when it is absent here (CI installs it, so there it fails)."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def launch_chromium(playwright: Any, home: Path) -> Any:
    """Debian's chromium, headless, with a fresh profile and its own home under `home`."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                                      env={"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                                           "XDG_CACHE_HOME": str(home / "cache")})


def axe_source() -> str:
    """axe.min.js, installed with npm ci in tests/browser when missing."""
    if not AXE.exists():
        npm = shutil.which("npm")
        if not npm:
            pytest.fail("npm is required to install axe-core for the accessibility check")
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"npm ci in tests/browser failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    found = json.loads((AXE.parent / "package.json").read_text())["version"]
    if found != AXE_VERSION:
        pytest.fail(f"tests/browser has axe-core {found}, expected {AXE_VERSION}; run npm ci there")
    return AXE.read_text()


def call(url: str, method: str, path: str, body: Any = None, token: str | None = None,
         pk: str = "dev_memory_pk") -> tuple[int, Any]:
    """One request to the server with StaticBackend's headers; (status, decoded JSON or the error text)."""
    headers = {"SB-PUBLIC-KEY": pk, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as tests/artifacts/dashboard/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Any, source: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=source)
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                          ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
                          " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))")
    return [f"{v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}" for v in found
            if v["impact"] in ("serious", "critical")]
