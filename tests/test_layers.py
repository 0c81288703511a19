"""DESIGN §2's layers, checked on the source: imports point down only, and each engine stays in its layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sblite"

# Layer of each module, by its dotted name below `sblite` (the first rule that matches wins).
LAYERS = [
    ("app", 4), ("cli", 4), ("__main__", 4), ("manage", 4), ("task_cli", 4), ("index_cli", 4),
    ("http", 3),
    ("services", 2), ("functions", 2), ("scheduler", 2),
    ("store", 1),
    ("dashboard", 0),  # the page's files and the pure session table; served by http.dashboard_routes
    ("", 0),  # every other module is pure
]
# Third-party engines and the only places that may import them.
ENGINES = {
    "aiohttp": ("http", "app", "cli"),
    "sqlite3": ("store",),
    "quickjs": ("functions",),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + ".") or prefix == "":
            return layer
    raise AssertionError(module)


def _imports(path: Path) -> list[str]:
    """Every module an import statement of `path` names (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path).split(".") if path.name == "__init__.py" else _module_name(path).split(".")[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(["sblite", *base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.append(module)
            if module.split(".")[0] == "sblite":  # `from sblite import manage` names a module too
                names += [f"{module}.{alias.name}" for alias in node.names]
    return names


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_the_package_is_where_the_test_looks() -> None:
    assert len(SOURCES) > 20


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_and_engines_stay_in_their_layer(path: Path) -> None:
    module = _module_name(path)
    problems = []
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "sblite" and name != "sblite":
            target = name[len("sblite."):]
            if _layer(target) > _layer(module):
                problems.append(f"imports {name} (layer {_layer(target)}) from layer {_layer(module)}")
        if top in ENGINES and not any(module == p or module.startswith(p + ".") for p in ENGINES[top]):
            problems.append(f"imports {top}, which only {', '.join(ENGINES[top])} may")
    assert problems == []


@pytest.mark.parametrize("module, layer", [
    ("jsonutil", 0), ("store.documents", 1), ("services.hub", 2), ("functions.pool", 2),
    ("http.policy", 3), ("app", 4),
])
def test_layers_are_assigned_as_design_says(module: str, layer: int) -> None:
    assert _layer(module) == layer
