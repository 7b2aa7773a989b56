"""--help never names an option that does not exist (``ack --help`` named ``inbox --full``),
and every example in it runs a real command with options that command has."""

from __future__ import annotations

import functools
import re
import shlex
from typing import Any

import typer
from typer.testing import CliRunner

from hotline.cli import app
from hotline.cli.docs import _paths

OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _root() -> Any:
    return typer.main.get_command(app)


def _walk(path: list[str]) -> Any:
    cmd = _root()
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _options(cmd: Any) -> set[str]:
    names = {"--help"}
    for p in cmd.params:
        if p.param_type_name == "option":
            names |= set(p.opts) | set(p.secondary_opts)
    return names


def _leaves() -> list[list[str]]:
    return [p for p in _paths(_root(), []) if p and not hasattr(_walk(p), "commands")]


@functools.cache
def _help_of(path: tuple[str, ...]) -> str:
    env = {"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}
    return CliRunner().invoke(app, [*path, "--help"], env=env, terminal_width=1000).output


def _help(path: list[str]) -> str:
    return _help_of(tuple(path))


def _command_of(tokens: list[str]) -> tuple[list[str], list[str]] | None:
    """The command path at the start of ``tokens`` and the rest, or None."""
    cmd, path = _root(), []
    for i, tok in enumerate(tokens):
        if hasattr(cmd, "commands") and tok in cmd.commands:
            cmd, path = cmd.commands[tok], [*path, tok]
            continue
        return (path, tokens[i:]) if path and not hasattr(cmd, "commands") else None
    return (path, []) if path and not hasattr(cmd, "commands") else None


def test_help_names_only_options_that_exist() -> None:
    leaves = _leaves()
    everywhere = set().union(*(_options(_walk(p)) for p in leaves))
    by_name: dict[str, set[str]] = {}  # "export" is both "export" and "sites export"
    for p in leaves:
        by_name.setdefault(p[-1], set()).update(_options(_walk(p)))
    problems = []
    for path in leaves:
        out = _help(path)
        for opt in OPTION.findall(out):
            if opt not in everywhere:
                problems.append(f"hotline {' '.join(path)} --help names {opt}: no such option")
        # "<command> --option" in prose names an option of that command
        for word, opt in re.findall(r"(?<![\w-])([a-z][a-z-]*) (--[a-z][a-z0-9-]*)", out):
            if word in by_name and opt not in by_name[word]:
                problems.append(f"hotline {' '.join(path)} --help: '{word} {opt}'")
    assert problems == []


def test_every_example_runs_a_command_with_its_own_options() -> None:
    problems, examples = [], 0
    for path in _leaves():
        for line in _help(path).splitlines():
            for start in [m.end() for m in re.finditer(r"(?<![\w-])hotline ", line)]:
                try:
                    tokens = shlex.split(line[start:].strip("│ ").rstrip(")"))
                except ValueError:
                    continue
                found = _command_of(tokens)
                if found is None:
                    continue
                examples += 1
                cmd_path, rest = found
                own = _options(_walk(cmd_path))
                for tok in rest:
                    name = tok.split("=")[0].rstrip(")")
                    option = name.startswith("-") and not re.fullmatch(r"-[\d.,]+", name)
                    if option and name not in own:
                        problems.append(f"{' '.join(path)}: '{line.strip()}' uses {name}")
    assert examples >= 20
    assert problems == []


def test_the_test_finds_a_wrong_option() -> None:
    """The pattern would have caught ack's 'inbox --full' (before inbox had --full)."""
    assert OPTION.findall("Message id (as shown by inbox --wide ids).") == ["--wide"]
    assert "--wide" not in _options(_walk(["inbox"]))
