"""The one-way import rule of DESIGN.md §1, checked on the source."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "pchw": {"torch", "numba", "brian2", "simulators", "models", "experiments", "cli", "matplotlib"},
    "simulators": {"models", "experiments", "cli", "torch"},
    "models": {"simulators", "experiments", "cli", "numba", "brian2"},
    "experiments": {"cli"},
}
# the registry imports backends lazily: torch is loaded only when the torch backend is asked for
ALLOWED = {"simulators/backends/torch_backend.py": {"torch"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package):
    for path in (ROOT / package).rglob("*.py"):
        bad = _imports(path) & FORBIDDEN[package] - ALLOWED.get(str(path.relative_to(ROOT)), set())
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
