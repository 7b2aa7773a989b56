"""A message the peer refused is never shown as success in the CLI: ``hotline inbox``
and ``hotline message`` read ``refused: CODE`` (and ``void`` once its sequence number is
declared void), ``hotline message`` says what to do, and ``hotline void`` gives up on a
parked message with clear errors (404 ``not_found``, 400 ``cannot_void``).

Before: the inbox showed only ``refused``, there was no message detail, and voiding took
a raw API call. The real-station test runs the commands in process (typer's CliRunner)
against two running stations, where bravo's tiny ``max_envelope_bytes`` refuses a long
message as ``too_large``; the error paths the stations cannot easily produce run against
a fake operator API.
"""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from hotline.cli import app, common
from hotline.errors import HotlineError
from tests.integration.conftest import FAST_LINE, Net, db, link_of, message, net, send, wait_until

__all__ = ["db", "net"]  # the integration fixtures, used here

MID = "0123abcd-0000-4000-8000-000000000000"


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"})


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    for c in (common.console, common.err_console):
        monkeypatch.setattr(c, "_width", 250)  # no wrapping: ids and codes stay whole


@pytest.mark.integration
def test_a_refused_message_shows_its_code_and_can_be_voided(net: Net, wide: None) -> None:
    a, b = net.pair(FAST_LINE, {**FAST_LINE, "max_envelope_bytes": 8192})
    a.start()
    b.start()
    wait_until("the line to be UP", lambda: link_of(a, "bravo")["state"], lambda s: s == "UP")
    big = send(a, "bravo", "Щ" * 10_000)
    ok = send(a, "bravo", "short")
    mid, short = big["message_id"], big["message_id"][:8]
    wait_until("the refusal", lambda: message(a, mid)["state"], lambda s: s == "refused")
    wait_until("the short one", lambda: message(a, ok["message_id"])["state"],
               lambda s: s == "delivered")  # fmt: skip
    d = str(a.data_dir)

    inbox = _cli("inbox", "-d", d)
    assert inbox.exit_code == 0, inbox.output
    [row] = [line for line in inbox.output.splitlines() if short in line]
    assert "refused: too_large" in row
    assert "void" not in row

    shown = _cli("message", short, "-d", d)
    assert shown.exit_code == 0, shown.output
    assert "refused: too_large" in shown.output
    assert "what to do:" in shown.output
    assert "bravo refused a message (too_large)" in shown.output  # the alarm's advice
    assert f"or give up on it (never sent again; send a corrected message): hotline void {mid}" in (
        shown.output
    )

    voided = _cli("void", short, "-d", d)
    assert voided.exit_code == 0, voided.output
    assert f"voided {mid}" in voided.output
    assert "refused: too_large void" in voided.output
    assert message(a, mid)["void"] is True

    row = next(line for line in _cli("inbox", "-d", d).output.splitlines() if short in line)
    assert "refused: too_large void" in row
    shown = _cli("message", mid, "-d", d)
    assert "refused: too_large void" in shown.output
    assert "send a corrected message" in shown.output
    assert "or give up on it" not in shown.output  # it is void already

    again = _cli("void", mid, "-d", d)  # voided once only: 404 from the API
    assert again.exit_code == 1
    assert "(not_found)" in again.output
    assert "what to do:" in again.output
    delivered = _cli("void", ok["message_id"], "-d", d)  # not refused: nothing to void
    assert delivered.exit_code == 1
    assert "(not_found)" in delivered.output
    unknown = _cli("void", "ffffffff", "-d", d)  # no sent message starts so
    assert unknown.exit_code == 1
    assert "0 sent messages start with 'ffffffff'" in unknown.output
    assert message(a, ok["message_id"])["state"] == "delivered"


def _refused(code: str, void: bool) -> dict[str, Any]:
    return {
        "message_id": MID, "direction": "out", "peer": "bravo", "precedence": "ROUTINE",
        "channel": "working", "sequence": 7, "body": {"text": "long"}, "type": "text",
        "state": "refused", "refused": code, "void": void, "ack_overdue": False,
        "sent_at_us": 1, "first_sent_us": 2, "delivered_at_us": None, "attempts": 1,
        "acknowledged_at_us": None, "acknowledged_by": None,
    }  # fmt: skip


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch, wide: None) -> dict[str, Any]:
    state: dict[str, Any] = {"calls": []}

    def init(self: common.Api, data_dir: Any) -> None:
        self.base = "http://fake"

    def call(self: common.Api, method: str, path: str, **kw: Any) -> Any:
        state["calls"].append((method, path))
        return state["answer"](method, path)

    monkeypatch.setattr(common.Api, "__init__", init)
    monkeypatch.setattr(common.Api, "call", call)
    return state


def test_a_replay_refusal_cannot_be_voided(fake_api: dict[str, Any]) -> None:
    def answer(method: str, path: str) -> Any:
        raise HotlineError(
            "a replay refusal cannot be voided",
            code="cannot_void",
            hint="the peer holds that number: see Restore",
        )

    fake_api["answer"] = answer
    r = _cli("void", MID, "-d", "unused")
    assert r.exit_code == 1
    assert "(cannot_void)" in r.output
    assert "what to do: the peer holds that number" in r.output
    assert fake_api["calls"] == [("POST", f"/api/v1/messages/{MID}/void")]


def test_an_ambiguous_prefix_is_refused_before_anything_is_voided(
    fake_api: dict[str, Any],
) -> None:
    other = "0123abcd-1111-4000-8000-000000000000"
    fake_api["answer"] = lambda m, p: [
        _refused("too_large", False),
        {**_refused("x", False), "message_id": other},
    ]
    r = _cli("void", "0123abcd", "-d", "unused")
    assert r.exit_code == 1
    assert "2 sent messages start with '0123abcd'" in r.output
    assert "(ambiguous_id)" in r.output
    assert [c[0] for c in fake_api["calls"]] == ["GET"]


@pytest.mark.parametrize("code", ["[/]", "[bold red]delivered[/bold red]", "\x1b[2Jok"])
def test_a_hostile_refusal_code_is_printed_as_text(code: str, fake_api: dict[str, Any]) -> None:
    fake_api["answer"] = lambda m, p: (
        [] if p == "/api/v1/alarms" else [_refused(code, True)] if p == "/api/v1/messages"
        else _refused(code, True)
    )  # fmt: skip
    for args in (["inbox"], ["message", MID], ["void", MID]):
        r = _cli(*args, "-d", "unused")
        assert r.exit_code == 0, (args, r.output)
        assert f"refused: {common.shown(code)} void" in r.output, (args, r.output)
        assert "\x1b" not in r.output


def test_the_advice_comes_from_the_alarm_of_that_peer_and_code(fake_api: dict[str, Any]) -> None:
    alarms = [
        {"kind": "peer_refused", "peer": "charlie", "ref": "too_large", "detail": "not this"},
        {"kind": "peer_refused", "peer": "bravo", "ref": "bad_batch", "detail": "nor this"},
        {"kind": "peer_refused", "peer": "bravo", "ref": "too_large", "detail": "[/] shrink"},
    ]
    fake_api["answer"] = lambda m, p: alarms if p == "/api/v1/alarms" else _refused(
        "too_large", False)  # fmt: skip
    r = _cli("message", MID, "-d", "unused")
    assert r.exit_code == 0, r.output
    assert "what to do: [/] shrink" in r.output
    assert "not this" not in r.output
    assert "nor this" not in r.output
    fake_api["answer"] = lambda m, p: [] if p == "/api/v1/alarms" else _refused("too_large", False)
    r = _cli("message", MID, "-d", "unused")
    assert "what to do: fix the cause with the peer's operators" in r.output  # no alarm
    assert f"hotline void {MID}" in r.output
    fake_api["answer"] = lambda m, p: [] if p == "/api/v1/alarms" else _refused("replay", False)
    r = _cli("message", MID, "-d", "unused")
    assert r.exit_code == 0, r.output
    assert "hotline void" not in r.output  # a replay refusal cannot be voided
