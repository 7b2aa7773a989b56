"""Text that comes from a peer (or from any API answer) is printed as text, never as Rich
markup, emoji codes or terminal control: for every command that prints such text, with
hostile values (hypothesis over all text, and known tricks), the command exits as it
should and the value appears literally, with control characters shown as escapes.

Before: a site named ``[/]`` crashed ``hotline alarms`` (MarkupError), ``[bold red]``
vanished into styling, and escape sequences reached the terminal. The commands run
in process (typer's CliRunner) against a fake operator API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hotline.cli import app, common
from hotline.cli.common import shown
from hotline.errors import HotlineError

MID = "0123abcd-0000-4000-8000-000000000000"
TRICKS = [
    "[/]",
    "[bold red]ALARM[/bold red] all clear",
    "[link=https://evil.example]click[/link]",
    ":warning: :red_circle:",
    "\x1b[2J\x1b[31mcleared",
    "line one\nALARM fake line\r",
    "abc\u202edcb",
    "trailing backslash \\",
    "\\[/]",
    "[",
    "]",
    "[[/]]",
]
HOSTILE = (
    st.sampled_from(TRICKS)
    | st.text(max_size=24)
    | st.builds(lambda a, b: a + b, st.sampled_from(TRICKS), st.text(max_size=8))
)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@dataclass
class Case:
    args: list[str]
    answer: Callable[[str, str, str], Any]  # (method, path, value) -> JSON answer
    shows: Callable[[str], list[str]]  # value -> what must appear literally
    exit_code: int = 0


def _message(v: str) -> dict[str, Any]:
    return {
        "message_id": MID, "direction": "in", "peer": v, "precedence": "FLASH", "channel": v,
        "body": {"text": v}, "type": "text", "state": v, "ack_overdue": True,
        "sent_at_us": 1, "first_sent_us": None, "delivered_at_us": None,
        "acknowledged_at_us": 2, "acknowledged_by": v,
    }  # fmt: skip


def _status(v: str) -> dict[str, Any]:
    return {
        "station": v, "display_name": v, "version": "1", "fingerprint": v,
        "counts": {"entries": 1, "sent": 1, "received": 1, "queued": 0},
        "links": [{"peer": v, "state": v, "rtt_ms": None, "skew_ms": None,
                   "last_test_at_us": None, "last_ok_at_us": None, "failures": 0}],
    }  # fmt: skip


def _alarms(v: str) -> list[dict[str, Any]]:
    return [{"severity": v, "kind": v, "raised_at_us": 1, "detail": v}]


def _record(v: str) -> dict[str, Any]:
    return {
        "id": v, "owner": v, "versions": [], "stale": True, "reconfirm_by": v,
        "current": {"names": {"en": v}, "category": v, "kind": v,
                    "window": {"start": v, "end": v}},
    }  # fmt: skip


def _conflict(v: str, activity: str | None = None) -> dict[str, Any]:
    return {
        "site_id": v, "site_station": v, "activity_id": activity or v, "activity_station": v,
        "distance_m": 1.0, "protected_distance_m": 2.0, "window_start": v, "window_end": v,
        "draft_concern": {"concern_id": v},
    }  # fmt: skip


def _sent(v: str) -> dict[str, Any]:
    return {"sent": [{"peer": v, "message_id": v, "sequence": 1}], "notice": v}


def _refused(v: str) -> dict[str, Any]:
    return {**_message(v), "direction": "out", "state": "refused", "refused": v, "void": True,
            "sequence": 1, "attempts": 1}  # fmt: skip


def _refused_and_alarms(m: str, p: str, v: str) -> Any:
    if p == "/api/v1/alarms":
        return [{"kind": "peer_refused", "peer": v, "ref": v, "detail": v}]
    return {**_refused(v), "void": False}


def _status_and_alarms(m: str, p: str, v: str) -> Any:
    return _alarms(v) if p == "/api/v1/alarms" else _status(v)


def _notify_answer(m: str, p: str, v: str) -> Any:
    return _sent(v) if m == "POST" else {"conflicts": [_conflict(v, "act-x")]}


CASES: dict[str, Case] = {
    "inbox": Case(["inbox"], lambda m, p, v: [_message(v)],
                  lambda v: [v, v[:40]]),
    "inbox refused": Case(["inbox"], lambda m, p, v: [_refused(v)], lambda v: [v]),
    "message": Case(["message", MID], lambda m, p, v: _message(v), lambda v: [v]),
    "message refused": Case(["message", MID], _refused_and_alarms, lambda v: [v]),
    "void": Case(["void", MID], lambda m, p, v: _refused(v), lambda v: [v]),
    "status": Case(["status"], _status_and_alarms, lambda v: [v]),
    "alarms": Case(["alarms"], lambda m, p, v: _alarms(v), lambda v: [v]),
    "send": Case(["send", "bravo", "hello"],
                 lambda m, p, v: {"precedence": v, "message_id": v, "peer": v, "sequence": 1},
                 lambda v: [v]),
    "ack": Case(["ack", MID, "--officer", "Ko"],
                lambda m, p, v: {"message_id": v, "acknowledged_by": v}, lambda v: [v]),
    "link-test": Case(["link-test", "bravo"],
                      lambda m, p, v: {"ok": True, "state": v, "rtt_ms": 1, "skew_ms": 2},
                      lambda v: [v]),
    "link-test failed": Case(["link-test", "bravo"],
                             lambda m, p, v: {"ok": False, "state": v, "error": v},
                             lambda v: [v], exit_code=1),
    "sites list": Case(["sites", "list"], lambda m, p, v: {"sites": [_record(v)]},
                       lambda v: [v, v[:10]]),
    "sites show": Case(["sites", "show", "X"], lambda m, p, v: _record(v), lambda v: []),
    "activity list": Case(["activity", "list"],
                          lambda m, p, v: {"activities": [_record(v)]}, lambda v: [v]),
    "activity notify": Case(
        ["activity", "notify", "--point", "47.5,34.5", "--from", "2026-11-26T06:00Z",
         "--to", "2026-11-26T10:00Z", "--id", "act-x"], _notify_answer, lambda v: [v]),
    "activity cancel": Case(["activity", "cancel", "act-x"], lambda m, p, v: _sent(v),
                            lambda v: [v]),
    "conflicts": Case(["conflicts"], lambda m, p, v: {"conflicts": [_conflict(v)]},
                      lambda v: [v]),
    "concern list": Case(
        ["concern", "list"],
        lambda m, p, v: {"concerns": [{
            "concern_id": v, "raised_by": v, "state": v,
            "raised": {"about": {"site_ids": [v], "activity_ids": [v]}},
            "steps": [{"step": v, "by": v}]}]},
        lambda v: [v]),
    "concern ack": Case(["concern", "ack", "c-1"], lambda m, p, v: _sent(v), lambda v: [v]),
    "peer list": Case(["peer", "list"],
                      lambda m, p, v: [{"station_id": v, "display_name": v, "fingerprint": v}],
                      lambda v: [v]),
    "sites reference": Case(["sites", "reference"],
                            lambda m, p, v: {"imported": [v], "notice": v}, lambda v: []),
    "channel list": Case(["channel", "list"], lambda m, p, v: [_channel(v)], lambda v: [v]),
    "channel show": Case(["channel", "show", "X"], lambda m, p, v: [_channel(v, "X")],
                         lambda v: [v]),
    "channel accept": Case(["channel", "accept", "X"], lambda m, p, v: _answer(v),
                           lambda v: [v]),
    "channel decline": Case(["channel", "decline", "X"], lambda m, p, v: _answer(v),
                            lambda v: [v]),
    "channel propose": Case(["channel", "propose", "X", "-m", "a", "-m", "b", "--level", "w"],
                            lambda m, p, v: _answer(v), lambda v: [v]),
}  # fmt: skip


def _channel(v: str, name: str | None = None) -> dict[str, Any]:
    terms = {
        "name": name or v,
        "level": v,
        "members": [v, "b"],
        "brevity_words": 200,
        "roles": {v: {"read": [v], "send": [v]}},
        "ack_deadlines_s": {"FLASH": 60.0},
    }
    return {
        "name": name or v,
        "state": "proposed",
        "version": 1,
        "proposal_id": v,
        "proposer": v,
        "terms": terms,
        "accepted_by": [v],
        "declined_by": [v],
        "waiting_for": [v],
        "reason": v,
    }


def _answer(v: str) -> dict[str, Any]:
    return {"proposal_id": v, "name": v, "version": 1, "message_ids": {v: v}}  # fmt: skip


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every command's API calls answered by ``state["answer"]`` (or its error)."""
    state: dict[str, Any] = {}

    def init(self: common.Api, data_dir: Any) -> None:
        self.base = "http://fake"

    def call(self: common.Api, method: str, path: str, **kw: Any) -> Any:
        if state.get("error") is not None:
            raise state["error"]
        return state["answer"](method, path, state["value"])

    monkeypatch.setattr(common.Api, "__init__", init)
    monkeypatch.setattr(common.Api, "call", call)
    for c in (common.console, common.err_console):
        monkeypatch.setattr(c, "_width", 4000)  # no wrapping: values stay whole
    return state


def _run(args: list[str]) -> Any:
    return CliRunner().invoke(app, [*args, "-d", "unused"], env={"COLUMNS": "4000"})


def _check(result: Any, case: Case, value: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        value,
        repr(result.exception),
    )
    assert result.exit_code == case.exit_code, (value, result.output)
    for expected in case.shows(value):
        assert shown(expected).strip() in result.output, (value, result.output)
    assert "\x1b" not in result.output
    assert "\r" not in result.output


@pytest.mark.parametrize("name", sorted(CASES))
def test_peer_text_is_printed_as_text(name: str, fake_api: dict[str, Any]) -> None:
    case = CASES[name]
    fake_api["answer"] = case.answer

    for trick in TRICKS:  # the known tricks, each on its own
        fake_api["value"] = trick
        _check(_run(case.args), case, trick)

    @EXAMPLES
    @given(value=HOSTILE)
    def hostile(value: str) -> None:
        fake_api["value"] = value
        _check(_run(case.args), case, value)

    hostile()


@pytest.mark.parametrize("args", [["alarms"], ["inbox"], ["sites", "list"], ["conflicts"]])
def test_errors_from_the_api_are_printed_as_text(args: list[str], fake_api: dict[str, Any]) -> None:
    """An error's message and hint can carry peer text (a site id, a peer's reason)."""

    @EXAMPLES
    @given(message=HOSTILE, hint=HOSTILE)
    def hostile(message: str, hint: str) -> None:
        fake_api["error"] = HotlineError(message, code="peer_said", hint=hint)
        result = _run(args)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert shown(message).strip() in result.output
        if hint:
            assert shown(hint).strip() in result.output
        assert "(peer_said)" in result.output

    hostile()


def test_markup_in_a_value_is_never_styling() -> None:
    """The helper itself: markup stays literal, control characters become escapes."""
    from hotline.cli.common import plain

    t = plain(("ALARM", "bold red"), " [bold red]all clear[/] \x1b[31m :warning:")
    assert t.plain == "ALARM [bold red]all clear[/] \\x1b[31m :warning:"
    assert [str(s.style) for s in t.spans] == ["bold red"]
    assert shown("a\u202eb\nc\td") == "a\\u202eb\\x0ac\\x09d"
