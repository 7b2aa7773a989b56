"""One bad peer never stops a station; peers are removed and re-keyed on the record.

Two in-process stations on SQLite and PostgreSQL (tests/service/conftest.py). A third
station (charlie) is only a set of keys: its envelopes are sealed by hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.parse
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.api.operator import create_operator_app
from hotline.crypto import primitives
from hotline.crypto.card import safety_number
from hotline.crypto.keys import StationIdentity
from hotline.errors import HotlineError, UnknownPeerError
from hotline.service import peering
from hotline.station import Station, bind
from hotline.store import operational, schema
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import Pair, make_identity, snapshot

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def sealed(sender: StationIdentity, to: Station, seq: int, text: str = "hi") -> bytes:
    """A message envelope signed by ``sender`` for ``to``, sealed by hand."""
    header = Header(
        Kind.MESSAGE, Precedence.ROUTINE, wire.DEFAULT_SUITE, sender.station_id,
        to.line.station_id, "working", seq, uuid.uuid4(), to.clock.now_us(),
    )  # fmt: skip
    return wire.seal_envelope(
        header,
        MessagePayload(text=text).to_bytes(),
        primitives.Signer(sender.signing_seed),
        to.line.card.card.encryption_key,
    ).raw


async def receive(station: Station, raw: bytes) -> bytes:
    item = station.line.check_inbound(raw)
    [receipt] = await station.line.store_inbound([item])
    if isinstance(receipt, Exception):
        raise receipt
    return receipt


async def add(station: Station, ident: StationIdentity) -> None:
    _card, unit = station.line.peer_add_unit(ident.card().to_text(), "test")
    await station.writer.submit(unit)


def alarms_of(station: Station, kind: str) -> list[dict[str, Any]]:
    with station.read_engine.connect() as conn:
        return [a for a in operational.open_alarms(conn) if a["kind"] == kind]


async def serving(station: Station) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Start ``station.serve`` on free loopback ports; return once it is up."""
    up, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        station.serve(bind("127.0.0.1", 0), bind("127.0.0.1", 0), up.set, stop)
    )
    done, _ = await asyncio.wait([task, asyncio.create_task(up.wait())], timeout=60,
                                 return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    if task in done:
        task.result()  # raises what stopped the station
    assert up.is_set(), "the station did not come up"
    return task, stop


# --- one bad peer never stops a station --------------------------------------------------


def test_a_card_without_endpoint_is_a_receive_only_peer(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        charlie = dataclasses.replace(make_identity("charlie"), endpoints=())
        await add(pair.alpha, charlie)
        task, stop = await serving(pair.alpha)
        try:
            assert set(pair.alpha.outboxes) == {"bravo"}  # bravo's line runs, charlie's none
            await receive(pair.alpha, sealed(charlie, pair.alpha, 1, "from charlie"))
            with pair.alpha.read_engine.connect() as conn:
                got = conn.execute(
                    sa.select(schema.messages.c.body).where(schema.messages.c.peer == "charlie")
                ).scalar_one()
            assert "from charlie" in got
            with pytest.raises(HotlineError) as err:
                await pair.alpha.link_test_now("charlie")
            assert err.value.code == "no_link"
        finally:
            stop.set()
            await task

    run_pair(scenario)


def test_a_recorded_card_that_no_longer_checks_leaves_out_that_peer_only(
    run_pair: Any,
) -> None:
    async def scenario(pair: Pair) -> None:
        charlie = make_identity("charlie")
        await add(pair.alpha, charlie)
        p = schema.peers

        def spoil(tx: Any) -> None:  # a card damaged in the store (or from an old version)
            tx.conn.execute(p.update().where(p.c.station_id == "charlie").values(card="{}"))

        await pair.alpha.writer.submit(spoil)
        again = Station(pair.alpha.settings, pair.alpha.identity, pair.clock)
        try:
            assert again.line.peers.ids() == ["bravo"]
            assert [u.station_id for u in again.unusable] == ["charlie"]
        finally:
            again.close()
        # and a running station says so with an alarm
        pair.alpha.unusable = again.unusable
        task, stop = await serving(pair.alpha)
        try:
            [alarm] = alarms_of(pair.alpha, "peer_unusable")
            assert alarm["peer"] == "charlie"
        finally:
            stop.set()
            await task

    run_pair(scenario)


# --- remove ------------------------------------------------------------------------------


def test_a_removed_peer_is_refused_as_unknown_and_its_history_stays(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        await pair.send("before")
        await pair.send("reply", src=pair.bravo, dst="alpha")
        await pair.flush()
        before = snapshot(pair.alpha)["messages"]
        await pair.alpha.writer.submit(peering.remove_unit(pair.alpha.line, "bravo", "ops"))
        assert "bravo" not in pair.alpha.line.peers
        await pair.send("late", src=pair.bravo, dst="alpha")
        [raw] = pair.outbound(pair.bravo, "alpha")
        untouched = snapshot(pair.alpha)
        with pytest.raises(UnknownPeerError) as err:
            pair.alpha.line.check_inbound(raw)
        assert err.value.code == "unknown_peer"
        assert snapshot(pair.alpha) == untouched
        assert snapshot(pair.alpha)["messages"] == before  # history stays
        with pytest.raises(UnknownPeerError):
            await pair.send("to nobody")
        with pytest.raises(UnknownPeerError):  # removing twice is refused
            peering.remove_unit(pair.alpha.line, "bravo", "ops")
        # the record rebuilds to the same projections, the removal included
        rebuilt = await pair.alpha.writer.submit(
            lambda tx: pair.alpha.line.rebuild_projections(tx.conn)
        )
        assert rebuilt > 0
        assert snapshot(pair.alpha) == untouched
        with pair.alpha.read_engine.connect() as conn:
            assert (
                conn.execute(
                    sa.select(schema.peers.c.removed_at_us).where(
                        schema.peers.c.station_id == "bravo"
                    )
                ).scalar_one()
                is not None
            )
        # a station restarted on this store leaves the removed peer out
        again = Station(pair.alpha.settings, pair.alpha.identity, pair.clock)
        try:
            assert again.line.peers.ids() == []
        finally:
            again.close()

    run_pair(scenario)


def test_a_peer_added_again_after_removal_continues_its_sequence_numbers(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        await pair.send("one")
        await pair.flush()
        await pair.alpha.writer.submit(peering.remove_unit(pair.alpha.line, "bravo", None))
        await add(pair.alpha, pair.bravo.identity)
        sent = await pair.send("two")
        assert sent.sequence == 2
        await pair.flush()  # bravo accepts it: no replay of sequence 1

    run_pair(scenario)


# --- re-key ------------------------------------------------------------------------------


def test_a_rekeyed_peer_is_checked_with_its_new_keys_and_the_record_rebuilds(
    run_pair: Any,
) -> None:
    async def scenario(pair: Pair) -> None:
        old = pair.bravo.identity
        await receive(pair.alpha, sealed(old, pair.alpha, 1, "old keys"))
        new = make_identity("bravo")  # bravo's new keys, same station id
        card, unit = peering.rekey_unit(pair.alpha.line, new.card().to_text(), "ops")
        assert card.card.station_id == "bravo"
        await pair.alpha.writer.submit(unit)
        assert pair.alpha.line.peers.get("bravo").fingerprint() == new.card().fingerprint()
        with pytest.raises(HotlineError) as err:
            pair.alpha.line.check_inbound(sealed(old, pair.alpha, 2, "old keys again"))
        assert err.value.code == "bad_signature"
        await receive(pair.alpha, sealed(new, pair.alpha, 2, "new keys"))
        live = snapshot(pair.alpha)
        await pair.alpha.writer.submit(lambda tx: pair.alpha.line.rebuild_projections(tx.conn))
        assert snapshot(pair.alpha) == live  # old envelopes with the old card, new with new
        with pair.alpha.read_engine.connect() as conn:
            stored = conn.execute(
                sa.select(schema.peers.c.card).where(schema.peers.c.station_id == "bravo")
            ).scalar_one()
        assert stored == new.card().to_text()

    run_pair(scenario)


@pytest.mark.parametrize(
    ("who", "code"),
    [("alpha", "own_card"), ("charlie", "unknown_peer")],
)
def test_rekey_refuses_own_card_and_strangers(run_pair: Any, who: str, code: str) -> None:
    async def scenario(pair: Pair) -> None:
        text = (
            pair.alpha.line.card.to_text()
            if who == "alpha"
            else make_identity(who).card().to_text()
        )
        before = snapshot(pair.alpha)
        with pytest.raises(HotlineError) as err:
            peering.rekey_unit(pair.alpha.line, text, None)
        assert err.value.code == code
        assert snapshot(pair.alpha) == before

    run_pair(scenario)


# --- the operator API --------------------------------------------------------------------


async def api(station: Station, method: str, path: str, **kw: Any) -> httpx.Response:
    app = create_operator_app(station.line, TOKEN, peer_admin=station)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://op") as c:
        return await c.request(method, path, headers=AUTH, **kw)


def test_operator_api_removes_and_rekeys_with_typed_answers(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        a = pair.alpha
        new = make_identity("bravo")
        text = new.card().to_text()
        number = safety_number(a.line.card, new.card())
        before = snapshot(a)
        wrong = await api(a, "POST", "/api/v1/peers/bravo/rekey",
                          json={"card": text, "safety_number": "123"})  # fmt: skip
        assert wrong.status_code == 422
        assert wrong.json()["error"]["code"] == "safety_number_mismatch"
        other = await api(a, "POST", "/api/v1/peers/charlie/rekey",
                          json={"card": text, "safety_number": number})  # fmt: skip
        assert other.json()["error"]["code"] == "wrong_station"
        assert snapshot(a) == before
        r = await api(a, "POST", "/api/v1/peers/bravo/rekey",
                      json={"card": text, "safety_number": number})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json() == {
            "station_id": "bravo",
            "old_fingerprint": pair.bravo.line.card.fingerprint(),
            "fingerprint": new.card().fingerprint(),
        }
        r = await api(a, "DELETE", "/api/v1/peers/bravo")
        assert r.status_code == 200, r.text
        assert r.json() == {"station_id": "bravo", "removed": True}
        r = await api(a, "DELETE", "/api/v1/peers/bravo")
        assert r.json()["error"]["code"] == "unknown_peer"
        spec = (await api(a, "GET", "/openapi.json")).json()
        assert "PeerRemoved" in spec["components"]["schemas"]
        assert "PeerRekeyed" in spec["components"]["schemas"]

    run_pair(scenario)


GARBAGE = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@GARBAGE
@given(card=st.text(max_size=300), number=st.text(max_size=60))
def test_rekey_garbage_is_refused_and_changes_nothing(
    rekey_target: Station, card: str, number: str
) -> None:
    before = snapshot(rekey_target)
    r = asyncio.run(api(rekey_target, "POST", "/api/v1/peers/bravo/rekey",
                        json={"card": card, "safety_number": number}))  # fmt: skip
    assert 400 <= r.status_code < 500
    assert snapshot(rekey_target) == before


@pytest.fixture(scope="module")
def rekey_target(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One SQLite station with peer bravo whose writer runs on its own loop per request."""
    from tests.service.conftest import station_with_bravo

    station = station_with_bravo(tmp_path_factory.mktemp("rekey"))
    yield station
    station.close()


@GARBAGE
@given(station_id=st.text(max_size=40).filter(lambda s: s != "bravo"))
def test_remove_garbage_is_refused_and_changes_nothing(
    rekey_target: Station, station_id: str
) -> None:
    before = snapshot(rekey_target)
    path = "/api/v1/peers/" + urllib.parse.quote(station_id, safe="")
    r = asyncio.run(api(rekey_target, "DELETE", path))
    assert 300 <= r.status_code < 500  # refused (or redirected, for an empty id)
    assert snapshot(rekey_target) == before
