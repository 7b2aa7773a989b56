"""A real ``hotline witness serve`` process and a real station pair that use it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline import arbiter as arb
from hotline.crypto.keys import load_station
from hotline.ledger.cosignature import CosignatureVerifier
from hotline.ledger.note import parse_note
from hotline.localnet import LocalStation, free_port, make_station, pair
from hotline.settings import CONFIG_FILE_NAME
from hotline.store import arbiterdb
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration


def hotline(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "hotline", *args], capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture
def stations(tmp_path: Path) -> Iterator[tuple[LocalStation, LocalStation, str, Path]]:
    d = tmp_path / "arbiter"
    vkey = hotline("witness", "init", "--dir", str(d), "--name", "hotline-arbiter").strip()
    port = free_port()
    witness = f"http://127.0.0.1:{port} {vkey}"
    a, b = make_station(tmp_path, "alpha"), make_station(tmp_path, "bravo")
    for st in (a, b):
        with (st.data_dir / CONFIG_FILE_NAME).open("a") as f:
            f.write(f'witnesses = ["{witness}"]\n')
        card = tmp_path / f"{st.station_id}.card"
        card.write_text(load_station(st.data_dir).card().to_text())
        hotline("witness", "trust", "--dir", str(d), str(card))
    pair(a, b)
    with (tmp_path / "arbiter.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hotline",
                "witness",
                "serve",
                "--dir",
                str(d),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        a.start()
        b.start()
        yield a, b, vkey, d
    finally:
        for st in (a, b):
            st.kill()
        proc.kill()
        proc.wait()


def test_a_link_test_gets_the_checkpoint_cosigned_by_the_arbiter_too(
    stations: tuple[LocalStation, LocalStation, str, Path],
) -> None:
    a, _b, vkey, d = stations
    key = CosignatureVerifier.from_vkey(vkey)

    def checkpoint() -> Any:
        a.api("POST", "/api/v1/link/bravo/test")
        return a.api("GET", "/api/v1/ledger/checkpoint")

    got = wait_until(
        "alpha's checkpoint cosigned by bravo and the arbiter",
        checkpoint,
        lambda cp: (
            "bravo" in cp["cosigned_by"]
            and any(p.startswith("@hotline-arbiter") for p in cp["cosigned_by"])
        ),
    )
    note = parse_note(got["note"])
    lines = [s for s in note.signatures if s.name == key.name]
    assert len(lines) == 1
    key.verify_line(note.text, lines[0].line())
    # the arbiter keeps the size it cosigned for alpha's log
    with arb.load(d).engine.connect() as conn:
        size = conn.execute(
            sa.select(arbiterdb.state_table.c.size).where(
                arbiterdb.state_table.c.origin == "hotline/alpha/log"
            )
        ).scalar()
    assert size is not None
    assert size >= got["size"]
