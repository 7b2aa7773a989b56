"""Docs that cannot drift: the CLI reference, settings, and examples in --help."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from hotline.cli import app
from hotline.cli.docs import _paths, render
from hotline.settings import Settings
from tests.conftest import ROOT


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == render(), "run: python -m hotline.cli.docs > docs/cli.md"


def test_every_command_has_help_with_an_example() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    leaves = [p for p in _paths(root, []) if p and not hasattr(_walk(root, p), "commands")]
    assert len(leaves) >= 10
    for path in leaves:
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).output
        assert "Example" in out, f"hotline {' '.join(path)} --help has no example"


def _walk(cmd: object, path: list[str]) -> object:
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


def test_every_setting_is_documented() -> None:
    ops = (ROOT / "docs" / "operations.md").read_text()
    for name in Settings.model_fields:
        assert f"`{name}`" in ops, name
        assert f"`HOTLINE_{name.upper()}`" in ops, name
