"""``hotline witness init`` and ``trust``: what they write, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hotline import arbiter as arb
from hotline.cli import app
from hotline.crypto.keys import create_station, load_station
from hotline.ledger.cosignature import CosignatureVerifier

runner = CliRunner()


def test_init_prints_the_vkey_and_trust_adds_the_log(tmp_path: Path) -> None:
    d = tmp_path / "arbiter"
    r = runner.invoke(app, ["witness", "init", "--dir", str(d), "--name", "hotline-arbiter"])
    assert r.exit_code == 0, r.output
    key = CosignatureVerifier.from_vkey(r.output.strip())
    assert arb.load(d).cosigner.verifier == key
    create_station(tmp_path / "alpha", "alpha", "Alpha", ["https://127.0.0.1:1"])
    card = tmp_path / "alpha.card"
    card.write_text(load_station(tmp_path / "alpha").card().to_text())
    r = runner.invoke(app, ["witness", "trust", "--dir", str(d), str(card)])
    assert r.exit_code == 0, r.output
    assert list(json.loads((d / arb.CONFIG_FILE).read_text())["logs"]) == ["hotline/alpha/log"]


def test_errors_are_reported_not_raised(tmp_path: Path) -> None:
    d = tmp_path / "arbiter"
    assert runner.invoke(app, ["witness", "init", "--dir", str(d), "--name", "a b"]).exit_code == 1
    assert runner.invoke(app, ["witness", "init", "--dir", str(d), "--name", "w"]).exit_code == 0
    assert runner.invoke(app, ["witness", "init", "--dir", str(d), "--name", "w"]).exit_code == 1
    missing = runner.invoke(app, ["witness", "trust", "--dir", str(d), str(tmp_path / "none")])
    assert missing.exit_code == 1
    (tmp_path / "bad.card").write_text("not a card")
    bad = runner.invoke(app, ["witness", "trust", "--dir", str(d), str(tmp_path / "bad.card")])
    assert bad.exit_code == 1
    serve = runner.invoke(app, ["witness", "serve", "--dir", str(tmp_path / "none")])
    assert serve.exit_code == 1
    (d / arb.SEED_FILE).unlink()
    assert runner.invoke(app, ["witness", "serve", "--dir", str(d)]).exit_code == 1
