"""Commands that need a station, run where there is none, say so and what to do (exit 1,
no traceback) and leave the directory as it was. Before: ``hotline run`` printed a
FileNotFoundError traceback and ``hotline token`` created files in a directory that
holds no station (or failed with a traceback when it did not exist)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline.cli import app

COMMANDS = [["run"], ["token"], ["rebuild"], ["backup", "copy.db"], ["card"]]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize("exists", [False, True], ids=["missing-dir", "empty-dir"])
def test_no_station_is_a_clear_error(args: list[str], exists: bool, tmp_path: Path) -> None:
    where = tmp_path / "nothing-here"
    if exists:
        where.mkdir()
    result = CliRunner().invoke(app, [*args, "--data-dir", str(where)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    flat = " ".join(result.output.split())  # the console wraps long lines
    assert "Traceback" not in flat
    assert f"no station in {where} (no_station)" in flat
    assert "hotline init" in flat
    assert where.exists() == exists
    if exists:
        assert list(where.iterdir()) == []
