"""The line's use cases between two in-process stations, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.crypto import primitives
from hotline.errors import (
    DecryptError,
    EnvelopeError,
    HotlineError,
    InputError,
    MisaddressedError,
    NotFoundError,
    ReplayError,
    SignatureError,
    UnknownPeerError,
)
from hotline.ledger import merkle
from hotline.service import queries
from hotline.store import schema
from hotline.wire import batchreceipt
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from hotline.wire.messages import ReceiptPayload, parse_payload
from tests.service.conftest import Pair, make_identity, snapshot


def message(pair_station: Any, mid: Any) -> dict[str, Any]:
    with pair_station.read_engine.connect() as conn:
        found = queries.get_message(conn, pair_station.clock.now_us(), str(mid))
    assert found is not None
    return found


def test_send_deliver_acknowledge_round_trip(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("Confirm intentions near the plant.", Precedence.FLASH)
        assert message(p.alpha, sent.message_id)["state"] == "queued"
        [raw] = p.outbound(p.alpha, "bravo")
        [receipt_raw] = await p.deliver(p.alpha, p.bravo, [raw])
        out = message(p.alpha, sent.message_id)
        assert out["state"] == "delivered"
        assert out["delivered_at_us"] is not None
        got = message(p.bravo, sent.message_id)
        assert got["direction"] == "in"
        assert got["body"]["text"] == "Confirm intentions near the plant."
        assert got["precedence"] == "FLASH"
        # the receipt names the envelope, its sequence and where the peer logged it
        receipt = parse_payload(Kind.RECEIPT, wire.decode(receipt_raw, max_bytes=1 << 20).payload)
        assert isinstance(receipt, ReceiptPayload)
        assert receipt.envelope_hash == primitives.sha256(raw).hex()
        assert receipt.sequence == 1
        assert receipt.tree_size == receipt.leaf_index + 1
        await p.bravo.line.acknowledge(str(sent.message_id), "Maj. Ivanova", "understood")
        assert message(p.bravo, sent.message_id)["acknowledged_by"] == "Maj. Ivanova"
        await p.flush()
        acked = message(p.alpha, sent.message_id)
        assert acked["state"] == "acknowledged"
        assert acked["acknowledged_by"] == "Maj. Ivanova"
        assert acked["ack_note"] == "understood"
        assert p.outbound(p.alpha, "bravo") == []
        assert p.outbound(p.bravo, "alpha") == []

    run_pair(scenario)


def test_duplicate_gets_the_same_receipt_and_changes_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send()
        [raw] = p.outbound(p.alpha, "bravo")
        [first] = await p.deliver(p.alpha, p.bravo, [raw])
        before = snapshot(p.bravo)
        again = await p.bravo.line.store_inbound([p.bravo.line.check_inbound(raw)])
        assert again == [first]
        assert snapshot(p.bravo) == before

    run_pair(scenario)


def test_same_sequence_other_bytes_is_a_replay(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send("one")
        [raw] = p.outbound(p.alpha, "bravo")
        await p.deliver(p.alpha, p.bravo, [raw])
        u = wire.decode(raw, max_bytes=1 << 20)
        forged = wire.seal_envelope(
            dataclasses.replace(u.header, message_id=uuid.uuid4()),
            b'{"type":"text","text":"two"}',
            primitives.Signer(p.alpha.identity.signing_seed),
            p.bravo.line.card.card.encryption_key,
        )
        before = snapshot(p.bravo)
        [err] = await p.bravo.line.store_inbound([p.bravo.line.check_inbound(forged.raw)])
        assert isinstance(err, ReplayError)
        assert err.code == "replay"
        assert snapshot(p.bravo) == before

    run_pair(scenario)


def _forge(p: Pair, **changes: Any) -> bytes:
    """A MESSAGE from alpha to bravo with header fields changed, properly signed by
    ``signer`` (default alpha) and sealed to ``seal_to`` (default bravo)."""
    signer = changes.pop("signer", p.alpha.identity.signing_seed)
    seal_to = changes.pop("seal_to", p.bravo.line.card.card.encryption_key)
    header = Header(
        Kind.MESSAGE, Precedence.ROUTINE, wire.DEFAULT_SUITE, "alpha", "bravo", "working",
        1, uuid.uuid4(), p.clock.now_us(),
    )  # fmt: skip
    header = dataclasses.replace(header, **changes)
    return wire.seal_envelope(
        header, b'{"type":"text","text":"x"}', primitives.Signer(signer), seal_to
    ).raw


REFUSALS: list[tuple[str, dict[str, Any], type[HotlineError], str]] = [
    ("misaddressed", {"recipient": "charlie"}, MisaddressedError, "misaddressed"),
    ("unknown sender", {"sender": "charlie"}, UnknownPeerError, "unknown_peer"),
    ("future dated", {"sent_at_us": 1_767_225_600_000_000 + 3_600_000_000}, EnvelopeError,
     "clock_skew"),
    ("link test kind on the message path", {"kind": Kind.LINK_TEST, "sequence": 0},
     EnvelopeError, "bad_kind"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "changes", "error", "code"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_refused_envelopes_change_nothing(
    run_pair: Any, case: str, changes: dict[str, Any], error: type[HotlineError], code: str
) -> None:
    async def scenario(p: Pair) -> None:
        raw = _forge(p, **changes)
        before = snapshot(p.bravo)
        with pytest.raises(error) as info:
            p.bravo.line.check_inbound(raw)
        assert info.value.code == code
        assert snapshot(p.bravo) == before

    run_pair(scenario)


def test_wrong_signer_and_wrong_recipient_key_are_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        mallory = make_identity("alpha")
        with pytest.raises(SignatureError):
            p.bravo.line.check_inbound(_forge(p, signer=mallory.signing_seed))
        other = primitives.encryption_public_key(primitives.new_encryption_key())
        with pytest.raises(DecryptError):
            p.bravo.line.check_inbound(_forge(p, seal_to=other))

    run_pair(scenario)


def link_test_missing(p: Pair) -> list[tuple[int, int]]:
    """alpha tests the line to bravo (without witnessing); what bravo says is missing."""
    env, sent = p.alpha.line.make_link_test("bravo")
    got, test = p.bravo.line.check_link_test(env.raw)
    raw = p.bravo.line.reply_link_test(got, test, p.clock.now_us(), {})
    return p.alpha.line.check_link_reply("bravo", sent, raw).missing


def test_gaps_are_reported_in_receipts_and_link_tests(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(4):
            await p.send(f"m{i}")
        raws = p.outbound(p.alpha, "bravo")
        [_r1, r3] = await p.deliver(p.alpha, p.bravo, [raws[0], raws[2]])
        assert batchreceipt.item_of(r3).missing == [(2, 2)]
        assert link_test_missing(p) == [(2, 2), (4, 4)]
        await p.deliver(p.alpha, p.bravo, [raws[1], raws[3]])
        assert link_test_missing(p) == []

    run_pair(scenario)


def test_projections_rebuilt_from_the_ledger_equal_the_live_ones(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = [await p.send(f"m{i}", Precedence(i % 4)) for i in range(6)]
        await p.send("from bravo", src=p.bravo, dst="alpha")
        raws = p.outbound(p.alpha, "bravo")
        await p.deliver(p.alpha, p.bravo, [raws[0], raws[2], raws[1]])  # out of order
        await p.bravo.line.acknowledge(str(sent[0].message_id), "Lt. Shevchenko")
        await p.flush()
        for station, peer in ((p.alpha, p.bravo), (p.bravo, p.alpha)):
            live = snapshot(station)

            def rebuild(tx: Any, st: Any = station) -> int:
                return int(st.line.rebuild_projections(tx.conn, chunk=3))

            replayed = await station.writer.submit(rebuild)
            assert replayed == len(live["entries"])
            assert snapshot(station) == live  # our receipts too, byte for byte

            # a store without its receipts (restored from its ledger alone): each is signed
            # again, one root per peer per chunk; the same items, each checks at the peer
            def forget(tx: Any) -> None:
                tx.conn.execute(schema.inbound.update().values(receipt=b""))

            await station.writer.submit(forget)
            await station.writer.submit(rebuild)
            again = snapshot(station)
            assert _receipt_items(again) == _receipt_items(live)
            col = list(schema.inbound.columns.keys()).index("receipt")
            for row in again["inbound"]:
                assert peer.line.check_receipt(station.line.station_id, row[col]).payload

    run_pair(scenario)


def _receipt_items(snap: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """``snap`` with each inbound row's receipt replaced by the item it receipts."""
    col = list(schema.inbound.columns.keys()).index("receipt")
    rows = [(*r[:col], batchreceipt.item_of(r[col]), *r[col + 1 :]) for r in snap["inbound"]]
    return {**snap, "inbound": rows}


def test_ledger_root_matches_a_recomputation_from_the_leaves(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(11):
            await p.send(f"m{i}")
        with p.alpha.read_engine.connect() as conn:
            leaves = conn.execute(
                sa.select(schema.entries.c.leaf).order_by(schema.entries.c.idx)
            ).scalars()
            hashes = [merkle.leaf_hash(bytes(x)) for x in leaves]
        assert p.alpha.writer.tree.root() == merkle.root_of(hashes)

    run_pair(scenario)


def test_acknowledge_errors(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send()
        await p.flush()
        with pytest.raises(NotFoundError):
            await p.bravo.line.acknowledge(str(uuid.uuid4()), "Capt. A")
        with pytest.raises(NotFoundError):  # one cannot acknowledge one's own message
            await p.alpha.line.acknowledge(str(sent.message_id), "Capt. A")
        with pytest.raises(InputError):
            await p.bravo.line.acknowledge(str(sent.message_id), "   ")
        await p.bravo.line.acknowledge(str(sent.message_id), "Capt. A")
        with pytest.raises(InputError) as info:
            await p.bravo.line.acknowledge(str(sent.message_id), "Capt. B")
        assert info.value.code == "already_acknowledged"

    run_pair(scenario)


def test_send_errors_change_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        from hotline.wire.messages import MessagePayload

        before = snapshot(p.alpha)
        with pytest.raises(UnknownPeerError):
            await p.alpha.line.send(
                peer="charlie",
                channel="working",
                precedence=Precedence.FLASH,
                payload=MessagePayload(text="x"),
            )
        with pytest.raises(InputError):
            await p.alpha.line.send(
                peer="bravo",
                channel="",
                precedence=Precedence.FLASH,
                payload=MessagePayload(text="x"),
            )
        with pytest.raises(InputError):
            await p.alpha.line.send(
                peer="bravo",
                channel="working",
                precedence=Precedence.FLASH,
                payload=MessagePayload(text="x" * 20_001),
            )
        assert snapshot(p.alpha) == before

    run_pair(scenario)


def test_overdue_acknowledgement_is_an_alarm_on_both_sides(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("urgent", Precedence.FLASH)
        await p.flush()

        def overdue(st: Any) -> list[str]:
            with st.read_engine.connect() as conn:
                return [
                    a["ref"]
                    for a in queries.alarms(conn, p.clock.now_us())
                    if a["kind"] == "ack_overdue"
                ]

        assert overdue(p.alpha) == []
        assert overdue(p.bravo) == []
        p.clock.advance(601)  # FLASH deadline is 10 minutes
        assert overdue(p.alpha) == [str(sent.message_id)]
        assert overdue(p.bravo) == [str(sent.message_id)]
        await p.bravo.line.acknowledge(str(sent.message_id), "Col. K")
        await p.flush()
        assert overdue(p.alpha) == []
        assert overdue(p.bravo) == []

    run_pair(scenario)


def test_receipt_from_the_wrong_station_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send()
        [raw] = p.outbound(p.alpha, "bravo")
        receipt = (await p.bravo.line.store_inbound([p.bravo.line.check_inbound(raw)]))[0]
        assert isinstance(receipt, bytes)
        with pytest.raises(MisaddressedError):
            await p.alpha.line.record_receipt("charlie", receipt)
        assert await p.alpha.line.record_receipt("bravo", receipt) is True
        assert await p.alpha.line.record_receipt("bravo", receipt) is False  # once only

    run_pair(scenario)


@pytest.mark.parametrize("text", ["", " ", "\n\t  \u3000"])
def test_an_empty_message_is_refused(run_pair: Any, text: str) -> None:
    async def scenario(p: Pair) -> None:
        from hotline.wire.messages import MessagePayload

        before = snapshot(p.alpha)
        with pytest.raises(InputError) as info:
            await p.alpha.line.send(
                peer="bravo",
                channel="working",
                precedence=Precedence.ROUTINE,
                payload=MessagePayload(text=text),
            )
        assert info.value.code == "empty_message"
        assert snapshot(p.alpha) == before

    run_pair(scenario)


def test_a_reply_to_a_real_message_is_sent_delivered_and_rebuilt(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        from hotline.wire.messages import MessagePayload

        first = await p.send("Confirm intentions.")
        await p.flush()
        reply = await p.bravo.line.send(
            peer="alpha",
            channel="working",
            precedence=Precedence.ROUTINE,
            payload=MessagePayload(text="Confirmed.", in_reply_to=first.message_id),
        )
        await p.flush()
        for station in (p.alpha, p.bravo):
            got = message(station, reply.message_id)
            assert got["body"]["in_reply_to"] == str(first.message_id)
        live = snapshot(p.bravo)

        def rebuild(tx: Any) -> int:
            return int(p.bravo.line.rebuild_projections(tx.conn))

        await p.bravo.writer.submit(rebuild)
        assert snapshot(p.bravo) == live

    run_pair(scenario)
