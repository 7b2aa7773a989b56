"""Mutual witnessing on the line, between two in-process stations (SQLite and PostgreSQL).

Each test does the link test's witnessing by hand, through the same calls the link
tester and the peer endpoint make: the log ``offer``s a signed checkpoint, the link
test carries it sealed, the peer checks it, ``witness``es it (and answers ``proofs``),
the reply carries the cosignature back, and the log ``take_reply``s it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from hotline.crypto import primitives
from hotline.errors import SignatureError
from hotline.ledger import checkpoint as cps
from hotline.ledger import merkle
from hotline.ledger import witness as wit
from hotline.ledger.cosignature import CosignatureVerifier
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.note import Ed25519Verifier, NoteSigner, open_note
from hotline.link.linktest import HealthRecorder, LinkTester
from hotline.service.witnessing import Offer, cosigner_of, latest_cosigned, origin_of
from hotline.station import Station
from hotline.store import schema, witnessdb
from hotline.wire.messages import InclusionProof, LinkTestReplyPayload
from tests.service.conftest import Pair, snapshot

Extra = dict[str, Any]


async def answer(dst: Station, raw: bytes, alter: Callable[[Extra], Extra] | None = None) -> bytes:
    """What the peer endpoint (/peer/v1/link-test) does with a link test; ``alter`` changes
    the reply fields before they are sealed."""
    t2 = dst.clock.now_us()
    got, test = dst.line.check_link_test(raw)
    extra: Extra = {}
    if test.witness is not None:
        extra |= await dst.witnessing.witness(got.header.sender, test.witness)
    if test.prove:
        extra["proofs"] = dst.witnessing.proofs(test.prove)
    if alter is not None:
        extra = alter(extra)
    return dst.line.reply_link_test(got, test, t2, extra)


async def exchange(
    src: Station,
    dst: Station,
    *,
    request: str | None = None,
    alter: Callable[[Extra], Extra] | None = None,
    take: bool = True,
) -> tuple[Offer, LinkTestReplyPayload, dict[str, Any]]:
    """One link test from ``src`` to ``dst`` with witnessing, as LinkTester.test_once and
    the peer endpoint do it. ``request`` replaces the offered add-checkpoint body;
    ``alter`` changes the peer's reply fields before they are sealed; ``take=False``
    loses the reply (the log never stores the cosignature)."""
    peer = dst.line.station_id
    offer = await src.witnessing.offer(peer)
    env, sent = src.line.make_link_test(
        peer, witness=offer.request if request is None else request, prove=offer.prove
    )
    raw = await answer(dst, env.raw, alter)
    reply = src.line.check_link_reply(peer, sent, raw)
    result = await src.witnessing.take_reply(peer, offer, reply) if take else {}
    return offer, reply, result


def rows(station: Station, table: sa.Table, *where: Any) -> list[Any]:
    with station.read_engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(*where)).all())


def witness_state(station: Station, peer: str) -> Any:
    ws = schema.witness_state
    found = rows(station, ws, ws.c.peer == peer)
    return found[0] if found else None


def witness_docs(station: Station) -> list[dict[str, Any]]:
    e = schema.entries
    out = []
    for r in rows(station, e, e.c.kind == int(EntryKind.WITNESS)):
        out.append(json.loads(Entry.decode(bytes(r.leaf)).data))
    return out


def open_alarms(station: Station, kind: str) -> list[Any]:
    a = schema.alarms
    return rows(station, a, a.c.kind == kind, a.c.cleared_at_us.is_(None))


def log_key(station: Station) -> Ed25519Verifier:
    sid = station.line.station_id
    return Ed25519Verifier(origin_of(sid), station.line.card.card.log_key)


def cosign_key(station: Station) -> CosignatureVerifier:
    sid = station.line.station_id
    return CosignatureVerifier(cosigner_of(sid), station.line.card.card.cosign_key)


def ledger_size(station: Station) -> int:
    with station.read_engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(schema.entries)).scalar_one()
        )


async def traffic(p: Pair, n: int, src: Station | None = None) -> None:
    """``n`` messages from ``src`` (alpha), delivered, with their receipts recorded."""
    src = src or p.alpha
    dst = p.bravo if src is p.alpha else p.alpha
    for i in range(n):
        await p.send(f"message {i}", src=src, dst=dst.line.station_id)
    await p.deliver(src, dst, p.outbound(src, dst.line.station_id))


# --- a first checkpoint, and the next ------------------------------------------------


def test_first_exchange_cosigns_and_both_sides_keep_it(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        offer, reply, result = await exchange(p.alpha, p.bravo)
        size = ledger_size(p.alpha) - 1  # take_reply appended the cosigned_by_peer entry
        assert offer.checkpoint.size == size
        assert offer.request.startswith("old 0\n\n")  # nothing cosigned yet: no proof
        assert offer.prove == []  # alpha witnesses nothing of bravo's yet
        assert result == {"checkpoint_size": size, "cosigned": True}
        assert reply.witness_error is None
        # bravo keeps alpha's checkpoint: size, root and the note verbatim
        ws = witness_state(p.bravo, "alpha")
        assert (ws.size, bytes(ws.root)) == (size, offer.checkpoint.root)
        opened = cps.open_checkpoint(ws.note, [log_key(p.alpha)]).checkpoint
        assert opened == offer.checkpoint
        # alpha signed the checkpoint and keeps it
        [c] = rows(p.alpha, schema.checkpoints)
        assert (c.size, bytes(c.root), c.note) == (size, offer.checkpoint.root, ws.note)
        # alpha keeps bravo's cosignature, which verifies with the key on bravo's card
        [co] = rows(p.alpha, schema.cosignatures)
        assert (co.peer, co.size, co.line) == ("bravo", size, reply.cosignature)
        cosig = cosign_key(p.bravo).verify_line(offer.checkpoint.format(), co.line)
        assert cosig.timestamp == p.clock.now_us() // 1_000_000
        # ... and not with alpha's own cosigner key, nor over another checkpoint
        other = cps.Checkpoint(origin_of("alpha"), size + 1, bytes(32))
        for key, body in (
            (cosign_key(p.alpha), offer.checkpoint.format()),
            (cosign_key(p.bravo), other.format()),
        ):
            with pytest.raises(SignatureError):
                key.verify_line(body, co.line)
        # both ledgers record the event
        [b_doc] = witness_docs(p.bravo)
        assert b_doc["witness"] == "cosigned_for_peer"
        assert (b_doc["peer"], b_doc["size"], b_doc["note"]) == ("alpha", size, ws.note)
        assert b_doc["line"] == co.line
        [a_doc] = witness_docs(p.alpha)
        assert a_doc["witness"] == "cosigned_by_peer"
        assert (a_doc["size"], a_doc["root"]) == (size, offer.checkpoint.root.hex())
        # the operator API's view: the note carrying bravo's line verifies with both keys
        with p.alpha.read_engine.connect() as conn:
            latest = latest_cosigned(conn)
        assert latest is not None
        assert (latest["size"], latest["cosigned_by"]) == (size, ["bravo"])
        note = open_note(latest["note"], [log_key(p.alpha), cosign_key(p.bravo)])
        assert len(note.verified) == 2
        assert not open_alarms(p.bravo, "fork")

    run_pair(scenario)


def test_next_round_proves_consistency_from_the_cosigned_size(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        first, _, _ = await exchange(p.alpha, p.bravo)
        await traffic(p, 3)
        second, reply, result = await exchange(p.alpha, p.bravo)
        old, new = first.checkpoint, second.checkpoint
        assert old.size < new.size
        req = wit.parse_add_checkpoint(second.request.encode())
        assert req.old_size == old.size
        assert req.proof  # a real proof, checked here independently of the witness
        merkle.verify_consistency(old.size, new.size, list(req.proof), old.root, new.root)
        assert result["cosigned"] is True
        cosign_key(p.bravo).verify_line(new.format(), reply.cosignature or "")
        ws = witness_state(p.bravo, "alpha")
        assert (ws.size, bytes(ws.root)) == (new.size, new.root)
        sizes = [r.size for r in rows(p.alpha, schema.cosignatures)]
        assert sorted(sizes) == [old.size, new.size]
        with p.alpha.read_engine.connect() as conn:
            latest = latest_cosigned(conn)
        assert latest is not None
        assert latest["size"] == new.size
        # a third round with nothing new but the cosigned_by_peer entry still extends it
        third, _, result = await exchange(p.alpha, p.bravo)
        assert third.checkpoint.size == new.size + 1
        assert result["cosigned"] is True

    run_pair(scenario)


def test_the_newest_checkpoint_one_peer_cosigned_is_found_past_newer_ones(
    run_pair: Any,
) -> None:
    """``latest_cosigned(conn, by)`` (``GET /api/v1/ledger/checkpoint?cosigned_by=``):
    after a third station cosigned a newer checkpoint, the newest overall is that one,
    and bravo's newest is still the one bravo cosigned; a station that never cosigned
    finds none."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        first, _, _ = await exchange(p.alpha, p.bravo)
        size = first.checkpoint.size
        newer = size + 3

        def third_station_cosigns(tx: Any) -> None:  # as a link test to icrc would
            # (the note and line are bravo's copied: only the sizes matter here)
            note = witnessdb.checkpoint_note(tx.conn, size)
            [(_, line)] = witnessdb.cosignature_lines(tx.conn, size)
            witnessdb.add_checkpoint(tx.conn, newer, bytes(32), note or "", 1)
            witnessdb.add_cosignature(tx.conn, "icrc", newer, line, 1)

        await p.alpha.writer.submit(third_station_cosigns)
        with p.alpha.read_engine.connect() as conn:
            newest = latest_cosigned(conn)
            by_bravo = latest_cosigned(conn, "bravo")
            by_nobody = latest_cosigned(conn, "charlie")
        assert newest is not None
        assert by_bravo is not None
        assert (newest["size"], newest["cosigned_by"]) == (newer, ["icrc"])
        assert (by_bravo["size"], by_bravo["cosigned_by"]) == (size, ["bravo"])
        assert by_nobody is None

    run_pair(scenario)


def test_a_round_without_new_entries_is_cosigned_again(run_pair: Any) -> None:
    """offer() at a size already signed reuses the note (one checkpoint per size)."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        first, _, _ = await exchange(p.alpha, p.bravo, take=False)  # nothing appended
        again, reply, result = await exchange(p.alpha, p.bravo)
        assert again.checkpoint == first.checkpoint
        assert len(rows(p.alpha, schema.checkpoints)) == 1
        # bravo already holds this size: alpha, with no cosignature, says old 0 -> conflict
        assert result["cosigned"] is False
        assert (reply.witness_error, reply.witness_size) == (
            "witness_conflict",
            first.checkpoint.size,
        )
        # with the hint: old == size, equal roots, empty proof -> cosigned
        third, _, result = await exchange(p.alpha, p.bravo)
        assert third.checkpoint == first.checkpoint
        assert third.request.startswith(f"old {first.checkpoint.size}\n\n")
        assert result["cosigned"] is True

    run_pair(scenario)


# --- refusals --------------------------------------------------------------------------


def test_conflict_returns_the_stored_size_and_the_hint_fixes_the_next_round(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        first, _, _ = await exchange(p.alpha, p.bravo, take=False)  # the reply was lost
        assert rows(p.alpha, schema.cosignatures) == []
        await traffic(p, 1)
        before = witness_state(p.bravo, "alpha")
        b_before = snapshot(p.bravo)
        offer, reply, result = await exchange(p.alpha, p.bravo)
        assert offer.request.startswith("old 0\n")
        assert reply.cosignature is None
        assert (reply.witness_error, reply.witness_size) == (
            "witness_conflict",
            first.checkpoint.size,
        )
        assert result == {
            "checkpoint_size": offer.checkpoint.size,
            "cosigned": False,
            "witness_error": "witness_conflict",
        }
        assert witness_state(p.bravo, "alpha") == before  # a conflict changes nothing
        assert snapshot(p.bravo) == b_before
        assert not open_alarms(p.bravo, "fork")
        # the next round starts from bravo's stored size, with a proof from it
        offer, _, result = await exchange(p.alpha, p.bravo)
        req = wit.parse_add_checkpoint(offer.request.encode())
        assert req.old_size == first.checkpoint.size
        merkle.verify_consistency(
            req.old_size,
            offer.checkpoint.size,
            list(req.proof),
            first.checkpoint.root,
            offer.checkpoint.root,
        )
        assert result["cosigned"] is True
        assert witness_state(p.bravo, "alpha").size == offer.checkpoint.size
        # the hint is used once: the round after that starts from the stored cosignature
        offer, _, result = await exchange(p.alpha, p.bravo)
        assert result["cosigned"] is True

    run_pair(scenario)


def forged_note(station: Station, size: int, root: bytes) -> str:
    """A checkpoint note signed with ``station``'s real log key over any root: what a
    station that rewrote its history would have to show."""
    signer = NoteSigner(origin_of(station.line.station_id), station.identity.log_seed)
    cp = cps.Checkpoint(origin_of(station.line.station_id), size, root)
    return cps.sign_checkpoint(cp, signer)


def check_fork_evidence(p: Pair, honest: str, other: str) -> None:
    """bravo's ledger holds both notes, each verifiable with alpha's log key, for the same
    size (or an old size the other cannot extend), and a CRITICAL alarm is open."""
    [alarm] = open_alarms(p.bravo, "fork")
    assert (alarm.severity, alarm.peer) == ("CRITICAL", "alpha")
    [doc] = [d for d in witness_docs(p.bravo) if d["witness"] == "fork_evidence"]
    assert (doc["peer"], doc["error"]) == ("alpha", "fork")  # a CheckpointFork, not a bad proof
    assert (doc["cosigned_note"], doc["offered_note"]) == (honest, other)
    a = cps.open_checkpoint(doc["cosigned_note"], [log_key(p.alpha)]).checkpoint
    b = cps.open_checkpoint(doc["offered_note"], [log_key(p.alpha)]).checkpoint
    assert a.root != b.root


def test_fork_same_size_other_root_signed_by_the_log_is_kept_as_evidence(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        first, _, _ = await exchange(p.alpha, p.bravo)
        cp = first.checkpoint
        stored = witness_state(p.bravo, "alpha")
        fake = forged_note(p.alpha, cp.size, primitives.sha256(b"another history"))
        request = wit.AddCheckpoint(cp.size, (), fake).format().decode()
        _, reply, result = await exchange(p.alpha, p.bravo, request=request)
        assert reply.witness_error == "fork"
        assert reply.cosignature is None
        assert result["cosigned"] is False
        assert result["witness_error"] == "fork"
        check_fork_evidence(p, stored.note, fake)
        # the witness keeps the checkpoint it cosigned, not the forged one
        assert witness_state(p.bravo, "alpha") == stored

    run_pair(scenario)


def test_fork_stored_root_replaced_then_honest_extension_is_a_fork(run_pair: Any) -> None:
    """bravo's stored checkpoint for alpha is replaced (SQL) by a signed note over another
    root at the same size; alpha's honest next checkpoint cannot extend it."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        first, _, _ = await exchange(p.alpha, p.bravo)
        size = first.checkpoint.size
        other = primitives.sha256(b"another history")
        fake = forged_note(p.alpha, size, other)
        ws = schema.witness_state
        with p.bravo.write_engine.begin() as conn:
            conn.execute(ws.update().where(ws.c.peer == "alpha").values(root=other, note=fake))
        await traffic(p, 2)
        offer, reply, result = await exchange(p.alpha, p.bravo)
        assert reply.witness_error == "fork"
        assert result["witness_error"] == "fork"
        check_fork_evidence(p, fake, offer.request.split("\n\n", 1)[1])
        [doc] = [d for d in witness_docs(p.bravo) if d["witness"] == "fork_evidence"]
        req = wit.parse_add_checkpoint(offer.request.encode())
        assert doc["old_size"] == size
        assert doc["proof"] == [h.hex() for h in req.proof]
        assert bytes(witness_state(p.bravo, "alpha").root) == other  # unchanged

    run_pair(scenario)


def test_a_failed_proof_against_a_cosigned_checkpoint_is_fork_evidence(run_pair: Any) -> None:
    """The issue's rule: 'A failed proof, or two different roots of the same size under the
    same key, is evidence of a fork: a CRITICAL alarm, the evidence kept, the line marked.'
    The proof travels in the log's signed link test, so the evidence is attributable: it
    keeps both notes, the proof and the signed envelope that carried them."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        await exchange(p.alpha, p.bravo)
        await traffic(p, 2)
        offer = await p.alpha.witnessing.offer("bravo")
        req = wit.parse_add_checkpoint(offer.request.encode())
        assert req.proof
        bad = wit.AddCheckpoint(req.old_size, req.proof[:-1], req.note).format().decode()
        _, reply, result = await exchange(p.alpha, p.bravo, request=bad)
        assert result["cosigned"] is False
        assert reply.witness_error == "fork"
        assert open_alarms(p.bravo, "fork")
        [evidence] = [d for d in witness_docs(p.bravo) if d["witness"] == "fork_evidence"]
        assert evidence["offered_note"] == req.note
        assert evidence["proof"] == [h.hex() for h in req.proof[:-1]]
        assert evidence["cosigned_note"]

    run_pair(scenario)


def test_a_failed_proof_before_anything_was_cosigned_is_refused_not_a_fork(
    run_pair: Any,
) -> None:
    """With nothing cosigned yet there is no history to contradict: refused, no alarm."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        offer = await p.alpha.witnessing.offer("bravo")
        req = wit.parse_add_checkpoint(offer.request.encode())
        bad = wit.AddCheckpoint(0, (bytes(32),), req.note).format().decode()
        _, reply, result = await exchange(p.alpha, p.bravo, request=bad)
        assert result["cosigned"] is False
        assert reply.witness_error not in (None, "fork")
        assert not open_alarms(p.bravo, "fork")

    run_pair(scenario)


def test_refused_requests_change_nothing_and_raise_no_alarm(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        first, _, _ = await exchange(p.alpha, p.bravo)
        cp = first.checkpoint
        stranger = NoteSigner(origin_of("alpha"), primitives.new_signing_key())
        wrong_key = cps.sign_checkpoint(cps.Checkpoint(cp.origin, cp.size + 1, cp.root), stranger)
        bravo_note = forged_note(p.bravo, cp.size + 1, cp.root)  # bravo's origin and key
        honest = forged_note(p.alpha, cp.size, cp.root)
        cases = {
            "garbage": ("hello", "bad_witness_request"),
            "no blank line": (f"old {cp.size}\n", "bad_witness_request"),
            "old above size": (
                wit.AddCheckpoint(cp.size + 5, (), honest).format().decode(),
                "bad_witness_request",
            ),
            "signed by another key": (
                wit.AddCheckpoint(cp.size, (), wrong_key).format().decode(),
                None,
            ),
            "another origin": (
                wit.AddCheckpoint(cp.size, (), bravo_note).format().decode(),
                None,
            ),
        }
        for name, (request, code) in cases.items():
            before = snapshot(p.bravo)
            ws_before = witness_state(p.bravo, "alpha")
            result = await p.bravo.witnessing.witness("alpha", request)
            assert set(result) == {"witness_error"}, name
            if code is not None:
                assert result["witness_error"] == code, name
            assert result["witness_error"] not in ("fork", "witness_conflict"), name
            assert snapshot(p.bravo) == before, name
            assert witness_state(p.bravo, "alpha") == ws_before, name
        assert not open_alarms(p.bravo, "fork")

    run_pair(scenario)


def flip_cosignature(extra: Extra) -> Extra:
    """The peer's cosignature line with one signature byte changed (name kept)."""
    head, b64 = extra["cosignature"].rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return extra | {"cosignature": f"{head} {base64.b64encode(bytes(raw)).decode()}\n"}


def test_a_cosignature_that_does_not_verify_is_not_stored(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        _, _, result = await exchange(p.alpha, p.bravo, alter=flip_cosignature)
        assert result["cosigned"] is False
        assert result["witness_error"] in ("bad_signature", "bad_cosignature")
        assert rows(p.alpha, schema.cosignatures) == []
        assert [d["witness"] for d in witness_docs(p.alpha)] == []

        def alpha_line(extra: Extra) -> Extra:  # a valid line, by the wrong cosigner
            note = witness_state(p.bravo, "alpha").note
            cp = cps.open_checkpoint(note, [log_key(p.alpha)]).checkpoint
            line = p.alpha.witnessing.cosigner.cosign(cp.format(), 1_700_000_000).line()
            return extra | {"cosignature": line}

        await traffic(p, 1)
        _, _, result = await exchange(p.alpha, p.bravo, alter=alpha_line)
        assert result["cosigned"] is False
        assert rows(p.alpha, schema.cosignatures) == []

    run_pair(scenario)


# --- receipts proved against the peer's cosigned log ----------------------------------


def receipt_proofs(station: Station) -> list[Any]:
    return rows(station, schema.receipt_proofs)


def test_receipts_are_proved_in_the_peers_cosigned_log(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 3)  # alpha -> bravo, receipts on alpha
        receipts = rows(p.alpha, schema.receipts)
        assert len(receipts) == 3
        # before alpha has cosigned any of bravo's log, it asks for no proof
        offer, _, result = await exchange(p.alpha, p.bravo)
        assert offer.prove == []
        assert "receipts_proved" not in result
        # bravo -> alpha: alpha witnesses bravo's log, which holds the ENVELOPE_IN entries
        b_offer, _, b_result = await exchange(p.bravo, p.alpha)
        assert b_result["cosigned"] is True
        witnessed = witness_state(p.alpha, "bravo")
        assert witnessed.size == b_offer.checkpoint.size
        # alpha -> bravo: now alpha asks for its receipts' leaves, at the witnessed size
        offer, reply, result = await exchange(p.alpha, p.bravo)
        assert sorted(offer.prove) == sorted((r.leaf_index, witnessed.size) for r in receipts)
        assert len(reply.proofs) == 3
        assert result["receipts_proved"] == 3
        assert result["receipts_failed"] == 0
        proved = receipt_proofs(p.alpha)
        assert sorted((r.peer, r.sequence, r.tree_size) for r in proved) == [
            ("bravo", s, witnessed.size) for s in (1, 2, 3)
        ]
        # each proof, checked here too: bravo's ENVELOPE_IN leaf under the cosigned root
        e = schema.entries
        for proof in reply.proofs:
            [leaf] = rows(p.bravo, e, e.c.idx == proof.leaf_index)
            merkle.verify_inclusion(
                bytes(leaf.leaf_hash),
                proof.leaf_index,
                proof.tree_size,
                [bytes.fromhex(h) for h in proof.hashes],
                bytes(witnessed.root),
            )
        # proved receipts are not asked for again
        offer, _, result = await exchange(p.alpha, p.bravo)
        assert offer.prove == []
        assert "receipts_proved" not in result
        assert not open_alarms(p.alpha, "receipt_unproved")

    run_pair(scenario)


def test_receipts_both_ways(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 2, src=p.alpha)
        await traffic(p, 2, src=p.bravo)
        for _ in range(2):  # round 1 cosigns, round 2 proves
            for src, dst in ((p.alpha, p.bravo), (p.bravo, p.alpha)):
                await exchange(src, dst)
        assert len(receipt_proofs(p.alpha)) == 2
        assert len(receipt_proofs(p.bravo)) == 2
        for s in (p.alpha, p.bravo):
            assert not open_alarms(s, "receipt_unproved")
            assert not open_alarms(s, "fork")

    run_pair(scenario)


def tamper_first_proof(extra: Extra) -> Extra:
    proofs: list[InclusionProof] = list(extra["proofs"])
    first = proofs[0]
    hashes = list(first.hashes)
    hashes[0] = ("0" if hashes[0][0] != "0" else "1") + hashes[0][1:]
    proofs[0] = InclusionProof(
        leaf_index=first.leaf_index, tree_size=first.tree_size, hashes=hashes
    )
    return extra | {"proofs": proofs}


def test_a_tampered_proof_raises_receipt_unproved_and_is_asked_again(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        await exchange(p.bravo, p.alpha)  # alpha cosigns bravo's log
        offer, _, result = await exchange(p.alpha, p.bravo, alter=tamper_first_proof)
        assert (result["receipts_proved"], result["receipts_failed"]) == (1, 1)
        [alarm] = open_alarms(p.alpha, "receipt_unproved")
        first_leaf = offer.prove[0][0]
        [r] = rows(p.alpha, schema.receipts, schema.receipts.c.leaf_index == first_leaf)
        assert (alarm.peer, alarm.ref, alarm.severity) == ("bravo", str(r.sequence), "HIGH")
        assert r.sequence not in [x.sequence for x in receipt_proofs(p.alpha)]
        # the unproved receipt is asked for again and an honest proof settles it
        offer, _, result = await exchange(p.alpha, p.bravo)
        assert [i for i, _ in offer.prove] == [first_leaf]
        assert (result["receipts_proved"], result["receipts_failed"]) == (1, 0)
        assert len(receipt_proofs(p.alpha)) == 2

    run_pair(scenario)


def test_a_proof_against_another_size_is_not_accepted(run_pair: Any) -> None:
    """A proof that leads to a checkpoint of bravo's log other than the one alpha cosigned
    and asked against proves nothing (whether it is ignored or alarmed on), and the
    receipt is asked for again."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        await exchange(p.bravo, p.alpha)
        size = witness_state(p.alpha, "bravo").size

        def other_size(extra: Extra) -> Extra:
            [proof] = extra["proofs"]
            again = p.bravo.witnessing.proofs([(proof.leaf_index, size + 1)])
            return extra | {"proofs": again}

        await traffic(p, 1, src=p.bravo)  # bravo's log grows past the witnessed size
        offer, reply, result = await exchange(p.alpha, p.bravo, alter=other_size)
        assert reply.proofs[0].tree_size == size + 1
        assert result.get("receipts_proved", 0) == 0
        assert receipt_proofs(p.alpha) == []
        again = await p.alpha.witnessing.offer("bravo")
        assert again.prove == offer.prove

    run_pair(scenario)


def test_proofs_answers_only_sizes_that_exist(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        size = ledger_size(p.bravo)
        got = p.bravo.witnessing.proofs(
            [(0, size), (size, size), (-1, 1), (0, size + 1), (3, 2), (0, 0)]
        )
        assert [(x.leaf_index, x.tree_size) for x in got] == [(0, size)]

    run_pair(scenario)


# --- garbage from a peer ------------------------------------------------------------


def in_thread(loop: asyncio.AbstractEventLoop, coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)


def test_garbage_witness_requests_and_proofs_change_nothing(run_pair: Any) -> None:
    """Hypothesis drives witness() and take_reply() from a thread, so that the stations'
    writers keep running on the scenario's loop."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        await exchange(p.bravo, p.alpha)  # alpha cosigned bravo's log: proofs get checked
        loop = asyncio.get_running_loop()
        ws_before = witness_state(p.bravo, "alpha")
        note = forged_note(p.alpha, 3, primitives.sha256(b"x"))

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            st.one_of(
                st.text(max_size=300),
                st.builds(lambda n, t: f"old {n}\n{t}\n\n{note}", st.integers(0, 99), st.text()),
            )
        )
        def requests(text: str) -> None:
            result = in_thread(loop, p.bravo.witnessing.witness("alpha", text))
            assert "cosignature" not in result

        await asyncio.to_thread(requests)
        assert witness_state(p.bravo, "alpha") == ws_before
        offer = await p.alpha.witnessing.offer("bravo")

        hexes = st.text("0123456789abcdef", min_size=64, max_size=64)

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            st.lists(
                st.builds(
                    InclusionProof,
                    leaf_index=st.integers(0, 40),
                    tree_size=st.integers(1, 40),
                    hashes=st.lists(hexes, max_size=6),
                ),
                max_size=4,
            )
        )
        def proofs(items: list[InclusionProof]) -> None:
            reply = LinkTestReplyPayload(nonce="0" * 32, t1_us=0, t2_us=0, t3_us=0, proofs=items)
            result = in_thread(loop, p.alpha.witnessing.take_reply("bravo", offer, reply))
            assert result.get("receipts_proved", 0) == 0

        await asyncio.to_thread(proofs)
        assert receipt_proofs(p.alpha) == []

    run_pair(scenario)


# --- two link tests in flight -----------------------------------------------------------


async def half_exchange(src: Station, dst: Station) -> tuple[Offer, LinkTestReplyPayload]:
    """A link test up to the reply, not yet taken by the log."""
    peer = dst.line.station_id
    offer = await src.witnessing.offer(peer)
    env, sent = src.line.make_link_test(peer, witness=offer.request, prove=offer.prove)
    return offer, src.line.check_link_reply(peer, sent, await answer(dst, env.raw))


def test_two_link_tests_in_flight_prove_each_receipt_once(run_pair: Any) -> None:
    """The scheduled link test and one an operator asked for (POST /link/{peer}/test) can
    overlap: both offers ask for the same unproved receipts and both replies prove them.
    Taking the second reply must not fail (a receipt proved twice is still proved once)."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        await exchange(p.bravo, p.alpha)  # alpha cosigns bravo's log
        first, reply1 = await half_exchange(p.alpha, p.bravo)
        second, reply2 = await half_exchange(p.alpha, p.bravo)
        assert first.prove == second.prove != []
        r1 = await p.alpha.witnessing.take_reply("bravo", first, reply1)
        assert r1["receipts_proved"] == 2
        r2 = await p.alpha.witnessing.take_reply("bravo", second, reply2)
        assert r2.get("receipts_failed", 0) == 0
        assert len(receipt_proofs(p.alpha)) == 2
        assert not open_alarms(p.alpha, "receipt_unproved")

    run_pair(scenario)


def test_an_unrequested_proof_of_a_proved_receipt_changes_nothing(run_pair: Any) -> None:
    """A peer's reply may carry proofs the log did not ask for; one for a receipt that is
    already proved must neither fail the link test nor add a row."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        await exchange(p.bravo, p.alpha)
        _, reply, result = await exchange(p.alpha, p.bravo)
        assert result["receipts_proved"] == 1
        before = receipt_proofs(p.alpha)

        def resend(extra: Extra) -> Extra:
            return extra | {"proofs": reply.proofs}

        _, _, result = await exchange(p.alpha, p.bravo, alter=resend)
        assert result.get("receipts_failed", 0) == 0
        assert receipt_proofs(p.alpha) == before

    run_pair(scenario)


class Forward:
    """A PeerClient stand-in for LinkTester: hands the link test to the peer's endpoint
    code in-process, with an optional change to its reply."""

    def __init__(self, dst: Station, alter: Callable[[Extra], Extra] | None = None) -> None:
        self.dst, self.alter = dst, alter
        self.peer = dst.line.station_id
        self.path = "https"

    async def link_test(self, raw: bytes) -> bytes:
        return await answer(self.dst, raw, self.alter)


def test_the_link_tester_survives_a_reply_proving_a_proved_receipt(run_pair: Any) -> None:
    """LinkTester.run() is a task of the station's TaskGroup: an exception out of
    test_once (anything but a HotlineError) ends the task group, i.e. the station.
    A peer's reply that proves a receipt again must give a result, not an exception."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 1)
        await exchange(p.bravo, p.alpha)
        _, reply, result = await exchange(p.alpha, p.bravo)
        assert result["receipts_proved"] == 1
        tester = LinkTester(
            p.alpha.line,
            Forward(p.bravo, lambda extra: extra | {"proofs": reply.proofs}),  # type: ignore[arg-type]
            HealthRecorder(p.alpha.line),
            60.0,
            witnessing=p.alpha.witnessing,
        )
        got = await tester.test_once()
        assert got["ok"] is True
        assert got["cosigned"] is True

    run_pair(scenario)


def test_the_link_tester_carries_witnessing_and_records_it(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        a_tester = LinkTester(
            p.alpha.line, Forward(p.bravo), HealthRecorder(p.alpha.line), 60.0,  # type: ignore[arg-type]
            witnessing=p.alpha.witnessing,
        )  # fmt: skip
        b_tester = LinkTester(
            p.bravo.line, Forward(p.alpha), HealthRecorder(p.bravo.line), 60.0,  # type: ignore[arg-type]
            witnessing=p.bravo.witnessing,
        )  # fmt: skip
        first = await a_tester.test_once()
        assert (first["ok"], first["cosigned"], first["state"]) == (True, True, "UP")
        await b_tester.test_once()
        second = await a_tester.test_once()
        assert (second["receipts_proved"], second["receipts_failed"]) == (2, 0)
        # each test is on the ledger with what it measured and witnessed
        e = schema.entries
        docs = [
            json.loads(Entry.decode(bytes(r.leaf)).data)
            for r in rows(p.alpha, e, e.c.kind == int(EntryKind.LINK_TEST))
        ]
        assert [d["checkpoint_size"] for d in docs] == [
            first["checkpoint_size"],
            second["checkpoint_size"],
        ]
        assert docs[-1]["receipts_proved"] == 2

    run_pair(scenario)


def test_crossing_link_tests_raise_no_false_receipt_alarm(run_pair: Any) -> None:
    """Both stations test the line on their own schedules, so bravo's link test to alpha
    (which moves alpha's witness state for bravo on) can arrive while alpha's own test to
    bravo is in flight. bravo's proofs are then against a checkpoint alpha did cosign,
    only not its latest: that is no evidence against bravo, so no alarm; the receipts
    are proved then or in the next round."""

    async def scenario(p: Pair) -> None:
        await traffic(p, 2)
        await exchange(p.bravo, p.alpha)  # alpha cosigns bravo's log at W1
        offer, reply = await half_exchange(p.alpha, p.bravo)  # asks for proofs at W1
        assert offer.prove
        await traffic(p, 1, src=p.bravo)
        await exchange(p.bravo, p.alpha)  # meanwhile: alpha cosigns bravo's log at W2 > W1
        result = await p.alpha.witnessing.take_reply("bravo", offer, reply)
        assert result.get("receipts_failed", 0) == 0, result
        assert not open_alarms(p.alpha, "receipt_unproved")
        await exchange(p.alpha, p.bravo)
        assert len(receipt_proofs(p.alpha)) == 2

    run_pair(scenario)
