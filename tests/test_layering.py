"""Imports point inward: the pure core never imports the store, the link, the API,
the network or asyncio; only crypto/primitives.py and crypto/tls.py import cryptography;
SQL statements are built in hotline/store only."""

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


#: what builds a SQL statement: ``sa.<name>(...)`` / ``from sqlalchemy import <name>``, and
#: a table's own ``.insert()`` / ``.update()`` / ``.delete()`` / ``.select()``
STATEMENT_BUILDERS = frozenset(
    {
        "select", "insert", "update", "delete", "text", "exists", "func", "and_", "or_",
        "not_", "bindparam", "literal", "literal_column", "union", "union_all", "case",
        "column", "table", "values", "tuple_", "null", "true", "false",
    }
)  # fmt: skip
TABLE_METHODS = frozenset({"insert", "update", "delete", "select"})
SQLALCHEMY_MODULES = frozenset({"sqlalchemy", "sqlalchemy.sql", "sqlalchemy.sql.expression"})


def statement_building(path: Path) -> list[str]:
    """Where ``path`` builds SQL: line and what, for every use of a statement builder of
    sqlalchemy (by any alias), a table's statement method, or a table's columns (``.c``)."""
    tree = ast.parse(path.read_text())
    aliases = {
        a.asname or a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for a in node.names
        if a.name in SQLALCHEMY_MODULES
    }
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in SQLALCHEMY_MODULES:
            found += [
                f"{node.lineno}: from {node.module} import {a.name}"
                for a in node.names
                if a.name in STATEMENT_BUILDERS
            ]
        elif isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name) and base.id in aliases:
                if node.attr in STATEMENT_BUILDERS:
                    found.append(f"{node.lineno}: {base.id}.{node.attr}")
            elif node.attr == "c":
                found.append(f"{node.lineno}: .c (a table's columns)")
            elif (
                node.attr in TABLE_METHODS
                and isinstance(base, ast.Attribute)
                and isinstance(base.value, ast.Name)
                and base.value.id in {"schema", "arbiterdb"}
            ):
                found.append(f"{node.lineno}: {base.value.id}.{base.attr}.{node.attr}")
    return found


def outside_store() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "store" not in p.relative_to(SRC).parts)


@pytest.mark.parametrize("path", outside_store(), ids=lambda p: str(p.relative_to(SRC)))
def test_sql_lives_in_store(path: Path) -> None:
    found = statement_building(path)
    assert not found, f"{path.relative_to(SRC)} builds SQL (move it to a store/ module): {found}"


def test_the_sql_check_sees_statements(tmp_path: Path) -> None:
    """The check above can fail: every way of building a statement it knows is seen."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import sqlalchemy as sql\n"
        "from sqlalchemy import text\n"
        "from hotline.store import schema\n"
        "q = sql.select(schema.messages.c.peer)\n"
        "schema.messages.insert()\n"
        "u = sql.update\n"
    )
    found = statement_building(sample)
    assert sorted(int(f.split(":")[0]) for f in found) == [2, 4, 4, 5, 6]
    clean = tmp_path / "clean.py"
    clean.write_text(
        "import sqlalchemy as sa\n"
        "from sqlalchemy.engine import Connection\n"
        "def f(conn: Connection, tables: tuple[sa.Table, ...]) -> None:\n"
        "    items = []\n"
        "    items.insert(0, conn)\n"
        "    with conn.begin(): pass\n"
    )
    assert statement_building(clean) == []
