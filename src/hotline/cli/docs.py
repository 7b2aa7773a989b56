"""The CLI reference (docs/cli.md), rendered from the commands' own ``--help``.

A test fails when docs/cli.md differs from ``render()``; regenerate with
``python -m hotline.cli.docs > docs/cli.md``.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

HEADER = """# CLI reference

Generated from `--help` by `python -m hotline.cli.docs > docs/cli.md`; a test keeps it
current. Every command takes `--data-dir` (or `HOTLINE_DATA_DIR`) to choose its station.
"""


def _paths(cmd: Any, prefix: list[str]) -> list[list[str]]:
    out = [prefix]
    if isinstance(getattr(cmd, "commands", None), dict):
        for name in sorted(cmd.commands):
            out += _paths(cmd.commands[name], [*prefix, name])
    return out


def render() -> str:
    from hotline.cli import app

    root = typer.main.get_command(app)
    runner = CliRunner()
    parts = [HEADER]
    for path in _paths(root, []):
        result = runner.invoke(
            app, [*path, "--help"], env={"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"},
            terminal_width=100,
        )  # fmt: skip
        title = " ".join(["hotline", *path])
        body = "\n".join(line.rstrip() for line in result.output.splitlines()).strip()
        parts.append(f"## {title}\n\n```text\n{body}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
