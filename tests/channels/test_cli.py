"""``hotline channel``: the terms a proposal sends, and its refusals before any request
(bad --roles, bad --deadline) and of an unknown channel (in process, fake API)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from hotline.cli import app, common


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def init(self: common.Api, data_dir: Any) -> None:
        self.base = "http://fake"

    def call(self: common.Api, method: str, path: str, **kw: Any) -> Any:
        seen.append((method, path, kw))
        if method == "GET":
            return []
        return {"proposal_id": "ab" * 32, "name": "cos", "version": 2,
                "message_ids": {"bravo": "m1"}}  # fmt: skip

    monkeypatch.setattr(common.Api, "__init__", init)
    monkeypatch.setattr(common.Api, "call", call)
    return seen


def run(*args: str) -> Any:
    return CliRunner().invoke(app, [*args, "-d", "unused"], env={"COLUMNS": "200"})


def test_propose_sends_the_terms(calls: list[Any]) -> None:
    r = run("channel", "propose", "cos", "-m", "alpha", "-m", "bravo", "--level",
            "chiefs_of_staff", "--deadline", "flash=120", "--roles",
            "alpha:send:senior_watch_officer", "--roles", "alpha:read:senior_watch_officer,auditor",
            "--brevity-words", "50", "--two-person")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "proposed cos v2 to bravo" in r.output
    [(method, path, kw)] = calls
    assert (method, path) == ("POST", "/api/v1/channels")
    assert kw["json"] == {
        "name": "cos", "level": "chiefs_of_staff", "members": ["alpha", "bravo"],
        "roles": {"alpha": {"send": ["senior_watch_officer"],
                            "read": ["senior_watch_officer", "auditor"]}},
        "ack_deadlines_s": {"FLASH": 120.0}, "brevity_words": 50, "two_person": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [["--roles", "alpha-send"], ["--roles", "alpha:write:auditor"], ["--deadline", "SOON=5"],
     ["--deadline", "FLASH=soon"]],
)  # fmt: skip
def test_bad_options_are_refused_before_any_request(calls: list[Any], bad: list[str]) -> None:
    r = run("channel", "propose", "cos", "-m", "alpha", "-m", "bravo", "--level", "w", *bad)
    assert r.exit_code == 2, r.output
    assert calls == []


def test_show_of_an_unknown_channel(calls: list[Any]) -> None:
    r = run("channel", "show", "nope")
    assert r.exit_code == 1
    assert "unknown_channel" in r.output
    assert "hotline channel list" in r.output


def test_decline_sends_the_reason(calls: list[Any]) -> None:
    r = run("channel", "decline", "cos", "--reason", "not at this level")
    assert r.exit_code == 0, r.output
    assert calls[0][1:] == (
        "/api/v1/channels/cos/decline",
        {"json": {"reason": "not at this level"}},
    )
