"""The package: `python -m build` makes an sdist and a wheel that carry everything the server needs.

The wheel (built from the sdist, as `python -m build` does) is installed into a fresh virtual
environment outside the repository, with its dependencies from the package index; its
`sblite serve --prod` runs with a working directory in a temp dir, so nothing of the source tree
can be imported, and every real-client suite passes against it with the credentials it printed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

import sblite
from tests.node_runner import assert_suite_passed, install_node_packages, run_script
from tests.support import start_server

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "sblite"
SUITES = sorted(path.name for path in (REPO / "tests" / "node").glob("*_suite.mjs"))
# What a checkout has that a build must not see (caches, local environments, databases).
# The installed commands run without PYTHONPATH (empty counts as unset), so only the new environment's
# site-packages can provide sblite.
CLEAN_ENV = {**os.environ, "PYTHONPATH": ""}
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache",
                                    ".hypothesis", ".ruff_cache", "build", "dist", "*.egg-info", "artifacts",
                                    "*.db", "*.db-wal", "*.db-shm")


def _run(cmd: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{cmd} exited with {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and wheel `python -m build` makes from a copy of the checkout."""
    if importlib.util.find_spec("build") is None:
        pytest.fail("the `build` package is needed: pip install -e '.[test]'")
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _run([sys.executable, "-m", "build", "--outdir", str(root / "dist"), str(source)], timeout=300)
    wheels, sdists = list((root / "dist").glob("*.whl")), list((root / "dist").glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list((root / "dist").iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0], "root": root}


def _package_files() -> set[str]:
    """Every file of the package in the checkout, as `sblite/...`."""
    return {str(path.relative_to(REPO)) for path in PACKAGE.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}


@pytest.mark.slow
def test_sdist_and_wheel_carry_the_whole_package(dist: dict[str, Path]) -> None:
    version = sblite.__version__
    assert dist["wheel"].name == f"sblite-{version}-py3-none-any.whl"
    assert dist["sdist"].name == f"sblite-{version}.tar.gz"
    expected = _package_files()
    assert any(name.startswith("sblite/dashboard/") and name.endswith(".js") for name in expected)
    assert "sblite/store/migrations.py" in expected
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        in_wheel = {name for name in wheel.namelist() if name.startswith("sblite/")}
        metadata = wheel.read(f"sblite-{version}.dist-info/METADATA").decode()
    assert in_wheel == expected
    assert f"\nVersion: {version}\n" in metadata
    prefix = f"sblite-{version}/"
    with tarfile.open(dist["sdist"]) as sdist:
        in_sdist = {member.name.removeprefix(prefix) for member in sdist.getmembers() if member.isfile()}
    assert {name for name in in_sdist if name.startswith("sblite/")} == expected
    assert {"pyproject.toml", "README.md", "config.example.toml"} <= in_sdist
    assert not any(name.startswith("tests/") for name in in_sdist)


@pytest.mark.slow
def test_installed_wheel_serves_prod_and_passes_the_real_client_suites(dist: dict[str, Path]) -> None:
    node = install_node_packages()
    root = dist["root"]
    venv, run_dir = root / "venv", root / "run"
    run_dir.mkdir()
    # No pip inside the new environment: this Python's pip installs into it (seconds faster).
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=60)
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
          str(dist["wheel"])], timeout=300, env=CLEAN_ENV)
    where = _run([str(venv / "bin" / "python"), "-c", "import sblite; print(sblite.__file__)"], timeout=30,
                 cwd=run_dir, env=CLEAN_ENV).stdout.strip()
    assert Path(where).is_relative_to(venv), f"sblite imported from {where}, not the new environment"
    sblite_bin = str(venv / "bin" / "sblite")
    version = _run([sblite_bin, "--version"], timeout=30, cwd=run_dir, env=CLEAN_ENV).stdout.strip()
    assert version == f"sblite {sblite.__version__}"

    server = start_server(run_dir, "--prod", "--db", str(run_dir / "data" / "sblite.db"), program=(sblite_bin,),
                          env={"PYTHONPATH": ""})
    try:
        banner = server.output()
        credentials = {
            "SBLITE_PK": _banner(banner, r"Public key:\t+(\S+)"),
            "SBLITE_ADMIN_EMAIL": _banner(banner, r"Email:\t+(\S+)"),
            "SBLITE_ADMIN_PASSWORD": _banner(banner, r"Password:\t+(\S+)"),
            "SBLITE_ROOT_TOKEN": _banner(banner, r"Real root token:\t+(\S+)"),
        }
        assert "prod mode" in banner
        assert _get(server.url + "/") == (PACKAGE / "dashboard" / "index.html").read_bytes()
        assert _get(server.url + "/_/app.js") == (PACKAGE / "dashboard" / "app.js").read_bytes()
        metrics = _get(server.url + "/metrics", credentials["SBLITE_ROOT_TOKEN"]).decode()
        assert f'sblite_info{{version="{sblite.__version__}"' in metrics
        for suite in SUITES:
            code, output = run_script(node, suite, server, 120, env=credentials)
            assert_suite_passed(suite, code, output, server)
    finally:
        stop_code = server.stop(signal.SIGTERM)
    assert stop_code == 0, server.output()


def _banner(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    assert found, f"no {pattern!r} in the prod banner:\n{text}"
    return found.group(1)


def _get(url: str, token: str | None = None) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return bytes(response.read())
