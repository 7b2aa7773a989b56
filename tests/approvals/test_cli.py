"""The approval queue as the CLI prints it: 80 columns, peer-free but still foreign text
(another officer's message) printed plain, with an id prefix you can type."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from hotline.cli import approvalcmd
from hotline.cli.common import plain


def row(**over: Any) -> dict[str, Any]:
    base = {
        "id": "3f2a9c1e-0000-4000-8000-000000000001", "state": "pending",
        "precedence": "IMMEDIATE", "channel": "chiefs-of-staff-line", "requester": "alice",
        "deadline_us": int((time.time() + 754) * 1e6), "decided_by": None,
        "text": "Hold fire on grid 37U DQ 12345 67890 until the convoy has passed " * 3,
    }  # fmt: skip
    return base | over


def test_a_queue_line_fits_80_columns_and_shows_time_left_or_who_decided() -> None:
    pending = approvalcmd._line(row())
    assert len(pending) <= approvalcmd.WIDTH
    assert pending.startswith("3f2a9c1e  pending   IMMEDIATE chiefs-of~ alice      12m")
    assert pending.endswith("~")
    decided = approvalcmd._line(row(state="approved", decided_by="bob"))
    assert "approved" in decided
    assert " bob " in decided
    overdue = approvalcmd._line(row(deadline_us=int((time.time() - 1) * 1e6)))
    assert "overdue" in overdue


def test_markup_and_control_characters_in_a_request_stay_plain() -> None:
    console = Console(width=80, record=True, color_system=None)
    line = approvalcmd._line(row(text="[bold red]ALARM\x1b[2J", requester="[/]"))
    console.print(plain(line), soft_wrap=True)
    out = console.export_text()
    assert "[bold red]ALARM" in out
    assert "\\x1b[2J" in out
    assert "[/]" in out
