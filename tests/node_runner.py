"""Running the real `@staticbackend/js` client under Node: install it once, run a script against a server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ServerProcess

NODE_DIR = Path(__file__).parent / "node"
# package name → the exact version tests/node/package.json pins
PINNED = {"@staticbackend/js": "1.7.0", "eventsource": "3.0.7"}


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def install_node_packages() -> str:
    """The node binary, once tests/node has exactly the pinned packages (npm ci when missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are required for the real-client tests (install Node.js >= 18)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    if int(re.match(r"v(\d+)", version.strip()).group(1)) < 18:
        pytest.fail(f"Node.js >= 18 is required (global fetch); found {version.strip()}")
    manifests = {name: NODE_DIR / "node_modules" / name / "package.json" for name in PINNED}
    if not all(path.exists() for path in manifests.values()):
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"npm ci failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    for name, path in manifests.items():
        found = json.loads(path.read_text())["version"]
        if found != PINNED[name]:
            pytest.fail(f"tests/node has {name} {found}, expected {PINNED[name]}; run npm ci there")
    return node


def run_script(node: str, script: str, server: ServerProcess, timeout: float,
               env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Run tests/node/<script> with SBLITE_URL (and `env`) set; (exit code, or None on timeout, and its output)."""
    try:
        proc = subprocess.run([node, str(NODE_DIR / script)], cwd=NODE_DIR,
                              env={**os.environ, "SBLITE_URL": server.url, **(env or {})}, capture_output=True,
                              text=True,
                              timeout=timeout)
        return proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        return None, f"(timed out after {timeout}s)\n{_text(exc.stdout)}{_text(exc.stderr)}"


def assert_suite_passed(script: str, code: int | None, output: str, server: ServerProcess) -> None:
    """The script exited 0 and its last count line says nothing failed."""
    context = f"--- {script} output ---\n{output}\n--- server output ---\n{server.output()}"
    assert code == 0, f"{script} exited with {code}\n{context}"
    assert re.search(r"^\d+ passed, 0 failed$", output, re.MULTILINE), context
