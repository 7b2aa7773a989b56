"""Published JSON Schemas are current; the core imports nothing from the edges."""

from __future__ import annotations

import ast
from pathlib import Path

from hotline.deconfliction import schemas

REPO = Path(__file__).resolve().parent.parent.parent
PACKAGE = REPO / "src" / "hotline" / "deconfliction"
FORBIDDEN = (
    "hotline.store",
    "hotline.link",
    "hotline.api",
    "hotline.service",
    "hotline.cli",
    "asyncio",
    "sqlite3",
    "sqlalchemy",
    "httpx",
    "socket",
)


def test_committed_schemas_are_current() -> None:
    """Regenerate with: python -m hotline.deconfliction.schemas docs/schemas"""
    for name, text in schemas.render().items():
        path = REPO / "docs" / "schemas" / name
        assert path.is_file(), f"{path} missing"
        assert path.read_text(encoding="utf-8") == text, f"{name} is stale"


def test_core_imports_point_inward() -> None:
    for module in PACKAGE.glob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{module.name} imports {name}"
