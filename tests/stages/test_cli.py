"""The CLI of stages: ``inbox`` one line per message at 80 columns (short ids, "…"),
``--full``; ``show`` (the whole message, stages with who/when, thread; records the read
for a received message); ``reply`` (same peer and channel, in_reply_to, the original's
precedence); ``actions``; ``alarms ack``. Peer text is printed as text (``plain``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from rich.cells import cell_len
from typer.testing import CliRunner

from hotline.cli import app, common
from hotline.cli.common import shown
from tests.cli.test_hostile_text import EXAMPLES, HOSTILE, TRICKS, fake_api  # noqa: F401

MID = "0123abcd-0000-4000-8000-000000000000"
RID = "9876fedc-0000-4000-8000-000000000000"
LONG = "Convoy of 12 trucks leaves Zaporizhzhia at 0400Z along the M-18 towards " * 4


def message(v: str = "bravo", text: str = LONG, **kw: Any) -> dict[str, Any]:
    stages = [
        {"stage": "received", "at_us": 1_767_225_600_000_000, "by": v, "claimed_at_us": 1},
        {"stage": "read", "at_us": 1_767_225_660_000_000, "by": v, "ref": v,
         "claimed_at_us": 1_767_225_659_000_000},
        {"stage": "acknowledged", "at_us": 1_767_225_720_000_000, "by": v, "ref": v},
        {"stage": "answered", "at_us": 1_767_225_780_000_000, "by": "us", "ref": RID},
    ]  # fmt: skip
    return {
        "message_id": MID, "direction": "in", "peer": v, "precedence": "IMMEDIATE",
        "channel": "working", "sequence": 7, "type": "text", "body": {"text": text},
        "state": "acknowledged", "operator": None, "sent_at_us": 1_767_225_600_000_000,
        "ack_overdue": False,
        "recipients": [{"peer": v, "stage": "answered", "not_answered": False,
                        "summary": "answered", "stages": stages}],
        "thread": [
            {"message_id": MID, "direction": "in", "type": "text", "body": {"text": text},
             "sent_at_us": 1_767_225_600_000_000},
            {"message_id": RID, "direction": "out", "type": "text", "body": {"text": v},
             "sent_at_us": 1_767_225_780_000_000},
        ],
        **kw,
    }  # fmt: skip


def item(v: str = "bravo") -> dict[str, Any]:
    return {"kind": "acknowledge", "ref": MID, "precedence": "FLASH", "due_at_us": 5,
            "time_left_s": -95.0, "summary": LONG + v, "peer": v, "channel": "working"}  # fmt: skip


def run(args: list[str], columns: int = 80) -> Any:
    return CliRunner().invoke(app, [*args, "-d", "unused"], env={"COLUMNS": str(columns)})


def fits(output: str, width: int = 80) -> None:
    for line in output.splitlines():
        assert cell_len(line) <= width, line


@pytest.fixture
def answers(fake_api: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:  # noqa: F811
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(common.console, "_width", 80)

    def call(self: common.Api, method: str, path: str, **kw: Any) -> Any:
        calls.append((method, path, kw.get("json")))
        v = fake_api.get("value", "bravo")
        if path == "/api/v1/messages" and method == "GET":
            return [message(v), {**message(v), "message_id": RID, "direction": "out"},
                    {**message(v), "message_id": "5" * 8, "type": "read"}]  # fmt: skip
        if path == "/api/v1/messages" and method == "POST":
            return {"message_id": RID, "peer": v, "precedence": kw["json"]["precedence"],
                    "sequence": 9}  # fmt: skip
        if path == "/api/v1/actions":
            return [item(v), {**item(v), "kind": "alarm", "ref": "12", "time_left_s": None}]
        if path.startswith("/api/v1/alarms/"):
            return {"id": 12, "kind": v, "acknowledged_by": v}
        return message(v)

    monkeypatch.setattr(common.Api, "call", call)
    return calls


def test_inbox_fits_80_columns_with_short_ids(answers: list[Any]) -> None:
    r = run(["inbox"])
    assert r.exit_code == 0, r.output
    fits(r.output)
    lines = r.output.splitlines()
    assert len(lines) == 2  # the read notice is a control message: not listed
    assert lines[0].startswith("0123abcd ← bravo")
    assert lines[0].endswith("…")
    assert "answered" in lines[0]
    full = run(["inbox", "--full"])
    fits(full.output)
    assert "".join(full.output.split()).count("".join(LONG.split())) == 2


def test_show_reads_and_prints_stages_and_thread(answers: list[Any]) -> None:
    r = run(["show", "0123abcd"])
    assert r.exit_code == 0, r.output
    fits(r.output)
    assert ("POST", f"/api/v1/messages/{MID}/read", None) in answers
    for words in ("received", "read", "their clock", "acknowledged", "answered", "9876fedc",
                  "thread"):  # fmt: skip
        assert words in r.output
    bad = run(["show", "0123"])
    assert bad.exit_code == 1
    assert "bad_id" in bad.output


def test_show_of_our_own_message_records_no_read(
    answers: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def call(self: common.Api, method: str, path: str, **kw: Any) -> Any:
        calls.append(f"{method} {path}")
        return message(direction="out")

    monkeypatch.setattr(common.Api, "call", call)
    assert run(["show", MID]).exit_code == 0
    assert calls == [f"GET /api/v1/messages/{MID}"]


def test_reply_threads_on_the_same_peer_and_channel(answers: list[Any]) -> None:
    r = run(["reply", "0123abcd", "Route changed"])
    assert r.exit_code == 0, r.output
    [(_m, _p, body)] = [c for c in answers if c[0] == "POST"]
    assert body == {"peer": "bravo", "channel": "working", "precedence": "IMMEDIATE",
                    "text": "Route changed", "in_reply_to": MID, "ack_required": True}  # fmt: skip
    run(["reply", MID, "x", "-p", "flash"])
    assert answers[-1][2]["precedence"] == "FLASH"


def test_actions_and_alarm_ack(answers: list[Any]) -> None:
    r = run(["actions"])
    assert r.exit_code == 0, r.output
    fits(r.output)
    first, second = r.output.splitlines()
    assert first.startswith("FLASH       -1m35 acknowledge 0123abcd")
    assert "alarm" in second
    r = run(["alarms", "ack", "12", "--note", "called the engineer"])
    assert r.exit_code == 0, r.output
    assert answers[-1] == ("POST", "/api/v1/alarms/12/acknowledge",
                           {"note": "called the engineer"})  # fmt: skip


@pytest.mark.parametrize("args", [["inbox"], ["show", MID], ["actions"], ["alarms", "ack", "1"]])
def test_peer_text_is_printed_as_text(
    args: list[str],
    answers: list[Any],
    fake_api: dict[str, Any],  # noqa: F811
) -> None:
    for trick in TRICKS:
        fake_api["value"] = trick
        r = run(args, columns=4000)
        assert r.exit_code == 0, (trick, r.output)
        assert shown(trick).strip() in r.output
        assert "\x1b" not in r.output

    @EXAMPLES
    @given(value=HOSTILE)
    def hostile(value: str) -> None:
        fake_api["value"] = value
        r = run(args, columns=4000)
        assert r.exit_code == 0, (value, r.output)
        assert "\x1b" not in r.output
        assert "\r" not in r.output

    hostile()
