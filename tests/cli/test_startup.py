"""``hotline --help`` (and ``hotline SUBCOMMAND --help``) imports no heavy library: the
command modules import cryptography, SQLAlchemy, the web framework, pydantic, httpx, ...
inside the commands that need them, so the help answers at once (bench/startup.py
measures how fast; this test times nothing, it checks which modules were imported).

Each check runs in a fresh interpreter: the test process has imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: top-level packages a help screen must not import (each costs tens to hundreds of ms)
HEAVY = {
    "alembic", "anyio", "argon2", "cryptography", "fastapi", "h11", "httpcore", "httpx",
    "jinja2", "nats", "psycopg", "pydantic", "pydantic_core", "pydantic_settings", "pyotp",
    "pyproj", "shapely", "sqlalchemy", "starlette", "uvicorn",
}  # fmt: skip
#: modules of packages the help does use, that it must not import all the same
HEAVY_MODULES = {"rich.progress", "hotline.service", "hotline.store", "hotline.crypto"}
#: Typer itself imports pydantic (a TypeAdapter coerces the root group's --help flag)
#: whenever a subcommand is named, so a subcommand's help may show these, and only these
TYPER_OWN = {"pydantic", "pydantic_core"}

PROBE = """
import json, sys
from hotline.cli import app
sys.argv = ["hotline", *json.loads(sys.argv[1])]
try:
    app()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
loaded = sorted(sys.modules)
print(json.dumps({"code": code, "modules": loaded}))
"""


def _modules_after(args: list[str]) -> tuple[object, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"},
    )  # fmt: skip
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    return doc["code"], set(doc["modules"])


def _heavy(modules: set[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    return sorted(
        m for m in modules
        if (m.split(".")[0] in HEAVY and m.split(".")[0] not in allowed)
        or any(m == h or m.startswith(h + ".") for h in HEAVY_MODULES)
    )  # fmt: skip


def test_top_level_help_imports_no_heavy_library() -> None:
    code, modules = _modules_after(["--help"])
    assert code == 0
    assert "hotline.cli.common" in modules  # the probe really loaded the CLI
    assert _heavy(modules) == []


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--help"],
        ["init", "--help"],
        ["send", "--help"],
        ["search", "--help"],
        ["log", "--help"],
        ["export", "--help"],
        ["bundle", "export", "--help"],
        ["sites", "--help"],
        ["officer", "--help"],
        ["witness", "--help"],
    ],
    ids=" ".join,
)
def test_subcommand_help_imports_no_heavy_library(args: list[str]) -> None:
    code, modules = _modules_after(args)
    assert code == 0
    assert "hotline.cli.common" in modules
    assert _heavy(modules, allowed=frozenset(TYPER_OWN)) == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The check can fail: a command that runs (``card`` on no station loads its keys
    and settings) imports cryptography and pydantic, and the probe reports them."""
    code, modules = _modules_after(["card", "--data-dir", "/nonexistent/hotline-data"])
    assert code == 1
    heavy = _heavy(modules, allowed=frozenset(TYPER_OWN))
    assert "cryptography" in heavy
    assert "pydantic_settings" in heavy


def test_public_names_still_import_lazily() -> None:
    """``import hotline`` is light, and its public names are there when asked for."""
    import hotline

    assert hotline.Settings.__module__ == "hotline.settings"
    assert hotline.parse_card.__module__ == "hotline.crypto.card"
    with pytest.raises(AttributeError):
        _ = hotline.no_such_name  # type: ignore[attr-defined]
