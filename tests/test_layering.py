"""Imports point inward: the pure core never imports the store, the link, the API,
the network or asyncio; only crypto/primitives.py and crypto/tls.py import cryptography."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "hotline"
PURE = ["wire", "ledger", "deconfliction", "link/health.py", "link/framing.py", "errors.py"]
FORBIDDEN = (
    "hotline.store", "hotline.link.client", "hotline.link.outbox", "hotline.link.linktest",
    "hotline.api", "hotline.service", "hotline.station", "hotline.cli", "asyncio", "httpx",
    "sqlalchemy", "fastapi", "uvicorn", "socket",
)  # fmt: skip


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def pure_files() -> list[Path]:
    out: list[Path] = []
    for p in PURE:
        path = SRC / p
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_modules_do_not_reach_out(path: Path) -> None:
    bad = {m for m in imports(path) for f in FORBIDDEN if m == f or m.startswith(f + ".")}
    assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_only_the_crypto_recipes_import_cryptography() -> None:
    allowed = {SRC / "crypto" / "primitives.py", SRC / "crypto" / "tls.py"}
    offenders = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
        if p not in allowed and any(m.startswith("cryptography") for m in imports(p))
    ]  # fmt: skip
    assert offenders == []


def test_every_module_says_what_it_owns() -> None:
    missing = [
        str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
        if "migrations" not in p.parts and ast.get_docstring(ast.parse(p.read_text())) is None
    ]  # fmt: skip
    assert missing == []
