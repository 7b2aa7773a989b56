"""The station side, in process: a station's rounds against the arbiter app (ASGI)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from hotline import arbiter as arb
from hotline.clock import FakeClock
from hotline.errors import SignatureError
from hotline.ledger.cosignature import Cosigner
from hotline.ledger.note import parse_note
from hotline.ledger.transcript import TranscriptError
from hotline.service import transcripts
from hotline.service.arbitration import Arbitration, witness_name
from hotline.service.witnessing import latest_cosigned, origin_of
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import arbiterdb, schema
from tests.service.conftest import ledger_actions, make_identity

COSIGNER = Cosigner("hotline-arbiter", b"A" * 32)
URL = "http://arbiter"


def run(tmp_path: Path, scenario: Callable[[Station, arb.Arbiter], Awaitable[None]]) -> None:
    (tmp_path / "alpha").mkdir()
    s = Settings(data_dir=tmp_path / "alpha", database_url=f"sqlite:///{tmp_path / 'a.db'}")
    station = Station(s, make_identity("alpha"), FakeClock())
    engine = arbiterdb.open_store(f"sqlite:///{tmp_path / 'w.db'}")
    logs = {origin_of("alpha"): station.witnessing.log_signer.verifier}
    arbiter = arb.Arbiter(COSIGNER, logs, engine, lambda: 1_700_000_000.0)

    async def main() -> None:
        station.writer.start()
        try:
            await scenario(station, arbiter)
        finally:
            station.close()

    asyncio.run(main())


def arbitration(station: Station, arbiter: arb.Arbiter, vkey: str | None = None) -> Arbitration:
    transport = httpx.ASGITransport(app=arb.create_app(arbiter))
    witness = f"{URL} {vkey or COSIGNER.verifier.vkey}"
    return Arbitration(station.line, station.witnessing, witness, 60, 5, transport=transport)


async def add_peer(station: Station, name: str) -> None:
    """Something for the ledger: a peer added (one operator action)."""
    _card, unit = station.line.peer_add_unit(make_identity(name).card().to_text(), "test")
    await station.writer.submit(unit)


def arbiter_sizes(station: Station, name: str) -> list[int]:
    co = schema.cosignatures
    with station.read_engine.connect() as conn:
        rows = conn.execute(sa.select(co.c.size).where(co.c.peer == name).order_by(co.c.size))
        return [int(x) for x in rows.scalars()]


def test_rounds_cosign_the_newest_checkpoint_with_proofs(tmp_path: Path) -> None:
    async def scenario(station: Station, arbiter: arb.Arbiter) -> None:
        a = arbitration(station, arbiter)
        name = witness_name(COSIGNER.verifier)
        await add_peer(station, "bravo")
        assert (await a.round())["cosigned"] is True
        [first] = arbiter_sizes(station, name)
        await add_peer(station, "charlie")
        await station.witnessing.offer("bravo")  # a link test signs a newer checkpoint
        got = await a.round()
        assert got["cosigned"] is True  # the arbiter checked the proof from `first`
        assert arbiter_sizes(station, name) == [first, got["checkpoint_size"]]
        assert (await a.round())["cosigned"] is True  # nothing new: nothing sent
        with station.read_engine.connect() as conn:
            cp = latest_cosigned(conn)
        assert cp is not None
        assert cp["cosigned_by"] == [name]
        [sig] = parse_note(cp["note"]).signatures[1:]
        COSIGNER.verifier.verify_line(parse_note(cp["note"]).text, sig.line())
        await a.aclose()

    run(tmp_path, scenario)


def witness_actions(station: Station) -> list[dict[str, Any]]:
    return ledger_actions(station, "witness_add")


def test_the_witness_key_goes_on_record_once_and_transcripts_carry_its_cosignatures(
    tmp_path: Path,
) -> None:
    """Before: arbiter cosignatures were left out of exports (no key to check them by).
    Now the first cosignature puts the witness's vkey on the ledger (witness_add), the
    export carries the cosignatures and verify checks them against that key."""

    async def scenario(station: Station, arbiter: arb.Arbiter) -> None:
        a = arbitration(station, arbiter)
        await add_peer(station, "bravo")
        assert (await a.round())["cosigned"] is True
        await add_peer(station, "charlie")
        await station.witnessing.offer("bravo")
        assert (await a.round())["cosigned"] is True
        [action] = witness_actions(station)
        assert action["vkey"] == COSIGNER.verifier.vkey
        assert action["witness"] == witness_name(COSIGNER.verifier)
        assert action["url"] == URL + "/add-checkpoint"
        await a.aclose()
        with station.read_engine.connect() as conn:
            text = transcripts.export(conn, station.line.card, station.witnessing.log_signer)
        v = transcripts.verify(text)
        assert list(v.witnesses) == [COSIGNER.verifier.vkey]
        assert [cs.name for _, cs in v.report.cosignatures] == [COSIGNER.name] * 2
        # the same cosignatures with the witness_add entry's key swapped for another:
        # the roots break (the record is signed); with the listed key swapped, refused
        doc = json.loads(text)
        other = Cosigner("hotline-arbiter", b"C" * 32).verifier.vkey
        doc["cosignatures"] = [c | {"cosigner": other} for c in doc["cosignatures"]]
        with pytest.raises(TranscriptError):
            transcripts.verify(json.dumps(doc))

    run(tmp_path, scenario)


def test_a_409_is_answered_with_the_size_it_names(tmp_path: Path) -> None:
    async def scenario(station: Station, arbiter: arb.Arbiter) -> None:
        a = arbitration(station, arbiter)
        name = witness_name(COSIGNER.verifier)
        await add_peer(station, "bravo")
        assert (await a.round())["cosigned"] is True
        # the station forgets what the arbiter cosigned (say, a restored backup)
        co = schema.cosignatures
        with station.write_engine.begin() as conn:
            conn.execute(co.delete().where(co.c.peer == name))
        await add_peer(station, "charlie")
        await station.witnessing.offer("bravo")
        got = await a.round()
        assert got["cosigned"] is True
        assert arbiter_sizes(station, name) == [got["checkpoint_size"]]
        await a.aclose()

    run(tmp_path, scenario)


def test_a_cosignature_by_another_key_is_not_stored(tmp_path: Path) -> None:
    async def scenario(station: Station, arbiter: arb.Arbiter) -> None:
        other = Cosigner("hotline-arbiter", b"B" * 32).verifier
        a = arbitration(station, arbiter, other.vkey)
        await add_peer(station, "bravo")
        with pytest.raises(SignatureError):
            await a.round()
        assert arbiter_sizes(station, witness_name(other)) == []
        await a.aclose()

    run(tmp_path, scenario)


def test_a_refusal_is_reported_and_nothing_stored(tmp_path: Path) -> None:
    async def scenario(station: Station, arbiter: arb.Arbiter) -> None:
        stranger = arb.Arbiter(COSIGNER, {}, arbiter.engine, arbiter.clock)  # alpha unknown
        a = arbitration(station, stranger)
        await add_peer(station, "bravo")
        got = await a.round()
        assert got["cosigned"] is False
        assert got["status"] == 404
        assert arbiter_sizes(station, witness_name(COSIGNER.verifier)) == []
        await a.aclose()

    run(tmp_path, scenario)


@pytest.mark.parametrize(
    "item",
    [
        "ftp://x hotline-arbiter+00000000+AQ",
        "http://127.0.0.1:8480",
        "http://127.0.0.1:8480 not-a-vkey",
        f"http://127.0.0.1:8480 {COSIGNER.verifier.vkey.replace('+', '+0', 1)}",
    ],
)
def test_the_setting_refuses_bad_witnesses(item: str) -> None:
    with pytest.raises(ValidationError):
        Settings(witnesses=[item])


def test_the_setting_takes_url_and_vkey() -> None:
    item = f"http://127.0.0.1:8480 {COSIGNER.verifier.vkey}"
    assert Settings(witnesses=[item]).witnesses == [item]
