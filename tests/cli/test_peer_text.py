"""What a peer wrote reaches ``hotline peer add``/``peer rekey`` (its card: the display
name) and ``hotline verify`` (a transcript: station ids, messages, findings, evidence):
it is printed as text, never as Rich markup, and control characters are shown as
escapes (cli/common.py ``plain``).

Before: a peer card named ``[/]`` crashed ``peer add`` (MarkupError) after reading the
card, and ``[bold red]`` in it became styling; ``verify`` printed a finding's station
through markup and messages with their control characters. ``peer add`` and ``rekey``
run for real on an offline station (CliRunner); ``verify`` runs on transcripts whose
verification is replaced by hostile answers (a real transcript cannot carry an
arbitrary station id: the checks refuse it first).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from typer.testing import CliRunner

from hotline.cli import app, common
from hotline.cli.common import shown
from hotline.crypto.card import check_display_name
from hotline.errors import HotlineError, InputError
from hotline.ledger import transcript as tlog
from hotline.service import transcripts
from tests.cli.test_hostile_text import EXAMPLES, HOSTILE, TRICKS
from tests.crypto.helpers import new_identity


def _nameable(value: str) -> bool:
    try:
        check_display_name(value, InputError)
    except InputError:
        return False
    return True


#: display names a card may carry (no control characters: the card refuses them)
NAMES = HOSTILE.filter(_nameable)
NAME_TRICKS = [t for t in TRICKS if _nameable(t)]


def _run(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, env={"COLUMNS": "4000"})


def _ok(result: Any, value: str) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        value,
        repr(result.exception),
    )
    assert result.exit_code == 0, (value, result.output)
    assert shown(value) in result.output, (value, result.output)
    assert "\x1b" not in result.output


@pytest.fixture
def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for c in (common.console, common.err_console):
        monkeypatch.setattr(c, "_width", 4000)  # no wrapping: values stay whole
    data = tmp_path / "alpha"
    r = _run(
        ["init", "--id", "alpha", "--name", "Alpha", "--endpoint", "https://a:1", "-d", str(data)]
    )
    assert r.exit_code == 0, r.output
    return data


def test_peer_add_and_rekey_print_the_cards_display_name_as_text(
    station: Path, tmp_path: Path
) -> None:
    ids = (f"peer-{n}" for n in itertools.count())

    def add_and_rekey(name: str) -> None:
        sid = next(ids)
        card = tmp_path / f"{sid}.card"
        card.write_text(new_identity(sid, name).card().to_text())
        _ok(_run(["peer", "add", str(card), "--yes", "-d", str(station)]), name)
        card.write_text(new_identity(sid, name).card().to_text())  # new keys, same name
        _ok(_run(["peer", "rekey", str(card), "--yes", "-d", str(station)]), name)

    assert "[/]" in NAME_TRICKS
    for trick in NAME_TRICKS:
        add_and_rekey(trick)

    @EXAMPLES
    @given(name=NAMES)
    def hostile(name: str) -> None:
        add_and_rekey(name)

    hostile()


class _FakeVerified:
    """What ``summary`` needs; the real objects come from files."""


def _summary(value: str) -> dict[str, Any]:
    return {
        "station": value, "entries": 3, "envelopes_verified": 2, "checkpoints": 1,
        "cosignatures": 1, "witnesses": 0, "root": "ab" * 32, "unattested": 0,
        "attested_size": 3,
    }  # fmt: skip


@pytest.mark.parametrize("how", ["refused", "findings", "cross-check refused"])
def test_verify_prints_what_a_transcript_says_as_text(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for c in (common.console, common.err_console):
        monkeypatch.setattr(c, "_width", 4000)
    files = [tmp_path / "a.json", tmp_path / "b.json"]
    for f in files:
        f.write_text("{}")
    state: dict[str, str] = {}

    def verify(data: bytes, **_: Any) -> Any:
        if how == "refused":
            raise HotlineError(state["value"], code="bad_entry")
        return _FakeVerified()

    def cross_check(a: Any, b: Any) -> tlog.CrossCheck:
        v = state["value"]
        if how == "cross-check refused":
            raise HotlineError(v, code="card_mismatch")
        finding = tlog.Finding("equivocation", v, v, 1, (v,))
        return tlog.CrossCheck(v, v, (finding,))

    monkeypatch.setattr(transcripts, "verify", verify)
    monkeypatch.setattr(transcripts, "summary", lambda v: _summary(state["value"]))
    monkeypatch.setattr(transcripts, "cross_check", cross_check)

    def check(value: str) -> None:
        state["value"] = value
        r = _run(["verify", *map(str, files)])
        assert r.exception is None or isinstance(r.exception, SystemExit), (value, r.exception)
        assert r.exit_code == 1, (value, r.output)
        assert shown(value).strip() in r.output, (value, r.output)
        if how != "refused":  # the summary names the station of each transcript
            assert f"station {shown(value)}," in r.output
        assert "\x1b" not in r.output
        assert "\r" not in r.output

    for trick in TRICKS:
        check(trick)

    @EXAMPLES
    @given(value=HOSTILE)
    def hostile(value: str) -> None:
        check(value)

    hostile()
