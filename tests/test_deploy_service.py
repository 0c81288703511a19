"""deploy/sblite.service and deploy/litestream.service: systemd-analyze finds nothing to say about them,
their hardening is what the README promises, and sblite works under MemoryDenyWriteExecute."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sblite.cli import build_parser
from tests.support import DEV_PK, DEV_ROOT_TOKEN, free_port

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
MDWE = Path(__file__).resolve().parent / "mdwe.py"
VENV_BIN = Path(sys.executable).parent
INSTALLED = {"sblite": "/usr/local/bin/sblite", "litestream": "/usr/local/bin/litestream"}
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 is fully locked down, 10 is nothing at all


def systemd_analyze() -> str:
    """The systemd-analyze path; fails (never skips) without it, so that CI cannot pass untested."""
    found = shutil.which("systemd-analyze")
    if not found:
        pytest.fail("systemd-analyze is not installed (apt-get install systemd)")
    return found


def unit_settings(text: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value it is given, in order."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def local_copy(name: str, tmp_path: Path) -> Path:
    """The unit with its installed binary's path pointed at this venv's, so that verify can check it."""
    binary = name.removesuffix(".service")
    text = (DEPLOY / name).read_text()
    assert text.count(INSTALLED[binary]) == 1, f"{name} should run {INSTALLED[binary]} once"
    local = VENV_BIN / binary
    assert local.exists(), f"{local} is missing (pip install -e '.[test]')"
    copy = tmp_path / name
    copy.write_text(text.replace(INSTALLED[binary], str(local)))
    return copy


@pytest.mark.parametrize("name", ["sblite.service", "litestream.service"])
def test_systemd_analyze_verify_has_nothing_to_say(tmp_path: Path, name: str) -> None:
    unit = local_copy(name, tmp_path)
    proc = subprocess.run([systemd_analyze(), "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    about_it = [line for line in output.splitlines() if name in line or str(tmp_path) in line]
    assert proc.returncode == 0 and not about_it, output


@pytest.mark.parametrize("name", ["sblite.service", "litestream.service"])
def test_systemd_analyze_security_exposure_is_low(tmp_path: Path, name: str) -> None:
    unit = local_copy(name, tmp_path)
    proc = subprocess.run([systemd_analyze(), "security", "--offline=yes", "--no-pager", str(unit)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, proc.stdout


SBLITE_UNIT = [  # (setting, value it must have): what the README says the unit does
    ("Service.User", "sblite"),
    ("Service.StateDirectory", "sblite"),
    ("Service.WorkingDirectory", "/var/lib/sblite"),
    ("Service.ProtectSystem", "strict"),
    ("Service.ProtectHome", "yes"),
    ("Service.PrivateTmp", "yes"),
    ("Service.NoNewPrivileges", "yes"),
    ("Service.MemoryDenyWriteExecute", "yes"),
    ("Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("Service.Restart", "on-failure"),
    ("Service.KillSignal", "SIGTERM"),
    ("Service.KillMode", "mixed"),
    ("Service.TimeoutStopSec", "30"),
    ("Install.WantedBy", "multi-user.target"),
]


@pytest.mark.parametrize("key, value", SBLITE_UNIT)
def test_sblite_unit_setting(key: str, value: str) -> None:
    assert unit_settings((DEPLOY / "sblite.service").read_text()).get(key) == [value]


def test_sblite_unit_keeps_everything_in_its_state_directory() -> None:
    settings = unit_settings((DEPLOY / "sblite.service").read_text())
    assert "Service.ReadWritePaths" not in settings  # ProtectSystem=strict leaves StateDirectory writable
    argv = shlex.split(settings["Service.ExecStart"][0])
    assert argv[0] == INSTALLED["sblite"]
    args = build_parser().parse_args(argv[1:])  # every flag is one sblite serve knows
    assert (args.command, args.prod, args.host) == ("serve", True, "127.0.0.1")
    assert Path(args.db).parent == Path("/var/lib") / settings["Service.StateDirectory"][0]
    assert Path(args.config).parent == Path("/etc") / settings["Service.ConfigurationDirectory"][0]
    litestream = unit_settings((DEPLOY / "litestream.service").read_text())
    assert litestream["Service.User"] == settings["Service.User"]  # same files, same owner
    assert f"path: {args.db}\n" in (DEPLOY / "litestream.yml").read_text()


def call(url: str, method: str, body: object = None, token: str = DEV_ROOT_TOKEN) -> tuple[int, str]:
    headers = {"SB-PUBLIC-KEY": DEV_PK, "Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def started_without_write_execute(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`sblite serve` under PR_SET_MDWE (what MemoryDenyWriteExecute=yes enforces) once /ping answers."""
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(MDWE), sys.executable, "-m", "sblite", "serve", "--port",
                                 str(port), "--db", str(tmp_path / "sblite.db")], stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(url + "/ping", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"sblite serve did not answer under MDWE:\n{log.read_text()}")


@pytest.mark.slow
def test_functions_run_when_memory_may_not_be_writable_and_executable(tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, str(MDWE), "--probe"], capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, f"writable and executable memory was not refused: {probe.stderr}"
    proc, url = started_without_write_execute(tmp_path)
    try:
        code = "function handle(body) { const doc = create('mdwe', {n: body.n * 2}); return doc.content.n; }"
        status, answer = call(url + "/fn/add", "POST", {"name": "double", "trigger": "web", "code": code})
        assert status == 200, answer
        status, answer = call(url + "/fn/sudoexec/double", "POST", {"n": 21})
        assert (status, json.loads(answer)) == (200, 42), answer
        status, answer = call(url + "/sudo/mdwe", "GET")
        assert status == 200 and json.loads(answer)["total"] == 1, answer
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
