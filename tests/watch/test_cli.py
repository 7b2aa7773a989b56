"""The watch's commands in process against a fake operator API: what a peer or another
officer wrote (usernames, notes, peers, channels, summary items) is printed as text,
never markup or terminal control; lines fit 80 columns; times are read with a zone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hotline.cli import app, common
from hotline.cli.common import shown
from hotline.cli.watchcmd import parse_time
from hotline.errors import InputError

MID = "0123abcd-0000-4000-8000-000000000000"
TRICKS = ["[/]", "[bold red]ALARM[/bold red] all clear", "\x1b[2J\x1b[31mcleared",
          "line one\nALARM fake line\r", "abc\u202edcb", ":warning:"]  # fmt: skip
HOSTILE = st.sampled_from(TRICKS) | st.text(max_size=16)
EXAMPLES = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
T = 1_767_225_600_000_000


def _handover(v: str) -> dict[str, Any]:
    item = {"message_id": MID, "peer": v, "text": v}
    return {
        "handover_id": MID, "written_by": v, "written_at_us": T, "note": v,
        "summary": {"unacknowledged": {"count": 1, "items": [item]},
                    "links": [{"peer": v, "state": v}]},
        "entry_idx": 1, "acknowledged_by": v, "acknowledged_at_us": T, "ack_note": v,
    }  # fmt: skip


def _rota(m: str, p: str, v: str) -> Any:
    if p == "/api/v1/rota/now":
        return {"at_us": T, "roles": {"watch_officer": [v]}}
    entry = {"entry_id": v, "username": v, "role": v, "from_us": T, "to_us": T + 1,
             "set_by": v, "set_at_us": T, "entry_idx": 1}  # fmt: skip
    return [entry] if m == "GET" else entry


def _escalations(m: str, p: str, v: str) -> Any:
    return [{"entry_idx": 1, "message_id": MID, "origin": "peer", "peer": v, "channel": v,
             "step": 1, "role": v, "both_sides": True, "status": "raised", "code": None,
             "at_us": T, "precedence": "FLASH", "acknowledged": False}]  # fmt: skip


CASES: dict[str, tuple[list[str], Callable[[str, str, str], Any]]] = {
    "rota show": (["rota", "show"], _rota),
    "rota set": (["rota", "set", "olena", "watch_officer", "--from", "2026-01-01T00:00Z",
                  "--to", "2026-01-01T12:00Z"], _rota),
    "handover write": (["handover", "write", "note"], lambda m, p, v: _handover(v)),
    "handover show": (["handover", "show"], lambda m, p, v: [_handover(v)]),
    "handover show one": (["handover", "show", MID], lambda m, p, v: _handover(v)),
    "handover ack": (["handover", "ack", MID], lambda m, p, v: _handover(v)),
    "escalations": (["escalations"], _escalations),
}  # fmt: skip


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    state: dict[str, Any] = {"calls": []}

    def init(self: common.Api, data_dir: Any) -> None:
        self.base = "http://fake"

    def call(self: common.Api, method: str, path: str, **kw: Any) -> Any:
        state["calls"].append((method, path, kw))
        return state["answer"](method, path, state["value"])

    monkeypatch.setattr(common.Api, "__init__", init)
    monkeypatch.setattr(common.Api, "call", call)
    return state


def _run(args: list[str], width: int) -> Any:
    return CliRunner().invoke(app, [*args, "-d", "unused"], env={"COLUMNS": str(width)})


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_text_is_printed_as_text(
    fake_api: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args, answer = CASES[name]
    fake_api["answer"] = answer

    @EXAMPLES
    @given(HOSTILE)
    def check(value: str) -> None:
        fake_api["value"] = value
        result = _run(args, 4000)
        assert result.exit_code == 0, (value, result.output, result.exception)
        assert shown(value).strip()[:60] in result.output
        assert "\x1b" not in result.output
        assert "\r" not in result.output

    for c in (common.console, common.err_console):
        monkeypatch.setattr(c, "_width", 4000)  # no wrapping: values stay whole
    check()


@pytest.mark.parametrize("name", list(CASES))
def test_output_fits_80_columns(fake_api: dict[str, Any], name: str) -> None:
    args, answer = CASES[name]
    fake_api["answer"], fake_api["value"] = answer, "olena"
    result = _run(args, 80)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_rota_set_sends_our_times(fake_api: dict[str, Any]) -> None:
    fake_api["answer"], fake_api["value"] = _rota, "olena"
    _run(CASES["rota set"][0], 80)
    [(method, path, kw)] = fake_api["calls"]
    assert (method, path) == ("PUT", "/api/v1/rota/olena-1767225600")
    assert kw["json"] == {"username": "olena", "role": "watch_officer", "from_us": T,
                          "to_us": T + 12 * 3600 * 1_000_000}  # fmt: skip


@pytest.mark.parametrize("text", ["yesterday", "2026-01-01T00:00", ""])
def test_a_time_needs_a_zone(text: str) -> None:
    with pytest.raises(InputError) as err:
        parse_time(text)
    assert err.value.code == "bad_time_text"
