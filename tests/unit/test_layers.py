"""The layers import downward only: collab → rooms → crdt (docs/architecture.md §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    # crdt/ is sans-I/O: no event loop, sockets, web, Socket.IO, Redis, upper layers.
    "crdt": {
        "asyncio",
        "socket",
        "aiohttp",
        "socketio",
        "engineio",
        "redis",
        "rooms",
        "collab",
        "sqlite3",
        "threading",
        "concurrent",
        "bench",
    },
    # rooms/ has asyncio but no web framework, no Socket.IO, nothing above it.
    "rooms": {"aiohttp", "socketio", "engineio", "collab", "bench"},
    # collab/ is the top of the server; it may not reach into the harness.
    "collab": {"bench"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    violations = {
        str(f.relative_to(ROOT)): sorted(imported_modules(f) & FORBIDDEN[package]) for f in files
    }
    violations = {k: v for k, v in violations.items() if v}
    assert violations == {}, f"layering violated: {violations}"


def test_checker_sees_violations(tmp_path):
    """The checker itself must catch an upward import."""
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom rooms.registry import RoomRegistry\nfrom . import x\n")
    assert imported_modules(bad) == {"asyncio", "rooms"}
