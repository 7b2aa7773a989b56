"""The ledger core stays pure: no I/O layers, no asyncio, no direct cryptography."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LEDGER = Path(__file__).resolve().parent.parent.parent / "src" / "hotline" / "ledger"
FORBIDDEN = (
    "hotline.store",
    "hotline.link",
    "hotline.api",
    "hotline.service",
    "asyncio",
    "cryptography",
    "sqlite3",
    "sqlalchemy",
    "socket",
    "httpx",
    "os",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(LEDGER.glob("*.py")), ids=lambda p: p.name)
def test_ledger_module_imports_point_inward(path: Path) -> None:
    bad = {m for m in _imports(path) for f in FORBIDDEN if m == f or m.startswith(f + ".")}
    assert not bad, f"{path.name} imports {bad}"
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path.name} has no docstring"
