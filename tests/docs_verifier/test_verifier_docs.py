"""docs/verifier.md is enough to verify a transcript: its examples are current and decode
byte for byte with both the independent verifier and hotline's own code; transcripts
of a real exchange verify with the independent verifier; tampered copies fail it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from typer.testing import CliRunner

from hotline.cli import app
from hotline.clock import FakeClock
from hotline.crypto import primitives
from hotline.crypto.card import parse_card
from hotline.crypto.keys import StationIdentity
from hotline.errors import HotlineError
from hotline.ledger import checkpoint as cps
from hotline.ledger import witness as wit
from hotline.ledger.cosignature import CosignatureVerifier, Cosigner
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.note import Ed25519Verifier, NoteSigner, open_note
from hotline.ledger.tree import MemoryTree
from hotline.service import transcripts
from hotline.station import Station
from hotline.wire import batchreceipt
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind
from hotline.wire.messages import ReceiptPayload, parse_payload
from tests.docs_verifier import examples
from tests.docs_verifier import verifier as indep
from tests.service.conftest import Pair, make_identity, paired_stations, run_pair
from tests.service.test_batch_receipts import _one_writer_batch
from tests.service.test_witnessing import exchange

__all__ = ["run_pair"]  # the fixture, imported so that pytest finds it here

DOC = examples.VERIFIER_MD.read_text()
BLOCKS = examples.doc_blocks(DOC)
EXAMPLES = examples.build()


def hex_block(name: str) -> bytes:
    return bytes.fromhex("".join(BLOCKS[name].split()))


# --- (a) the documented examples ---------------------------------------------------------


def test_docs_are_what_the_generator_makes() -> None:
    """Regenerating every example gives the documents back unchanged: they cannot drift."""
    ex = examples.build()
    assert set(BLOCKS) == set(examples.blocks(ex)), "docs/verifier.md lost or gained a block"
    fix = "run: python -m tests.docs_verifier.examples --write"
    assert examples.render_verifier_md(DOC, ex) == DOC, fix
    wire_md = examples.WIRE_MD.read_text()
    assert examples.render_wire_md(wire_md, ex) == wire_md, fix
    assert examples.TRANSCRIPT_JSON.read_text() == examples.transcript(ex), fix


def test_the_fixed_key_seal_is_rfc9180_as_hotline_opens_it() -> None:
    raw = hex_block("envelope")
    bravo_key = examples.key("bravo encryption")
    env = wire.decode(raw, max_bytes=1 << 20).verify(examples.card_of("alpha").card.signing_key)
    assert env.open(primitives.Opener(bravo_key)) == examples.MESSAGE_TEXT
    # and a seal with a fresh key (hotline's own) opens the same way: same scheme
    sealed = examples.hpke_seal_fixed(
        examples.key("x"), primitives.encryption_public_key(bravo_key), b"info", b"pt"
    )
    assert primitives.Opener(bravo_key).open(wire.DEFAULT_SUITE, b"info", sealed) == b"pt"


def test_documented_keys_are_the_cards_keys() -> None:
    for station in ("alpha", "bravo"):
        card = examples.card_of(station).card
        assert card.signing_key.hex() in BLOCKS["keys"]
        assert indep.vkey(f"hotline/{station}/log", 1, card.log_key) in BLOCKS["keys"]
        assert indep.vkey(f"hotline/{station}/witness", 4, card.cosign_key) in BLOCKS["keys"]
    assert primitives.signing_public_key(bytes(range(32))).hex() in BLOCKS["keys"]


def test_card_example_decodes_with_both() -> None:
    text = BLOCKS["card"]
    ours = indep.parse_card(text)
    theirs = parse_card(text)
    assert ours.body == theirs.body == BLOCKS["card-body"].rstrip("\n").encode()
    assert theirs.signature.hex() == BLOCKS["card-signature"].strip()
    assert (ours.station_id, ours.signing_key, ours.log_key, ours.cosign_key) == (
        theirs.card.station_id, theirs.card.signing_key, theirs.card.log_key,
        theirs.card.cosign_key,
    )  # fmt: skip
    # the signature covers "hotline-card/v1\0" || body, exactly
    primitives.verify(ours.signing_key, theirs.signature, b"hotline-card/v1\x00", ours.body)
    outer = json.loads(text)
    sig = bytearray(base64.b64decode(outer["signature"]))
    sig[0] ^= 1
    outer["signature"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(indep.VerifyError, match="bad_signature"):
        indep.parse_card(json.dumps(outer))


def test_a_card_with_a_key_twice_is_refused_by_both() -> None:
    body = BLOCKS["card-body"].rstrip("\n")
    twice = body[:-1] + ',"v":1}'
    seed = examples.key("alpha signing")
    sig = primitives.sign(seed, b"hotline-card/v1\x00", twice.encode())
    b64 = base64.b64encode
    text = json.dumps({"hotline_card": 1, "body": b64(twice.encode()).decode(),
                       "signature": b64(sig).decode()}, separators=(",", ":"))  # fmt: skip
    with pytest.raises(indep.VerifyError, match="bad_card"):
        indep.parse_card(text)
    with pytest.raises(HotlineError):
        parse_card(text)


@pytest.mark.parametrize("name", ["envelope", "receipt"])
def test_envelope_examples_decode_with_both(name: str) -> None:
    raw = hex_block(name)
    ours = indep.decode_envelope(raw)
    theirs = wire.decode(raw, max_bytes=1 << 20)
    h = theirs.header
    assert (ours.kind, ours.precedence, ours.suite) == (
        int(h.kind),
        int(h.precedence),
        (h.suite.kem_id, h.suite.kdf_id, h.suite.aead_id),
    )
    assert (ours.sender, ours.recipient, ours.channel, ours.sequence, ours.sent_at_us) == (
        h.sender, h.recipient, h.channel, h.sequence, h.sent_at_us,
    )  # fmt: skip
    assert ours.message_id == h.message_id.bytes == examples.MESSAGE_ID.bytes
    assert ours.payload == theirs.payload
    sender = examples.card_of(h.sender).card.signing_key
    ours.verify(sender, name)
    theirs.verify(sender)
    with pytest.raises(indep.VerifyError, match="bad_signature"):
        ours.verify(examples.card_of(h.recipient).card.signing_key, name)


def test_receipt_example_names_the_message() -> None:
    receipt = indep.decode_envelope(hex_block("receipt"))
    message = hex_block("envelope")
    payload = json.loads(receipt.payload)
    theirs: ReceiptPayload = parse_payload(Kind.RECEIPT, receipt.payload)
    assert payload["envelope_hash"] == theirs.envelope_hash == indep.sha256(message).hex()
    assert (payload["leaf_index"], payload["tree_size"], payload["sequence"]) == (1, 2, 1)
    assert list(payload) == list(ReceiptPayload.model_fields)  # the documented order
    assert receipt.kind == indep.RECEIPT
    assert receipt.suite == indep.NO_SUITE


def test_link_test_examples_decode_open_and_carry_the_witnessing() -> None:
    """The link test offers checkpoint 6 with a proof from 5; the reply cosigns it. Both
    envelopes decode and verify with both codes; hotline opens them with the published
    example keys to the documented plaintext."""
    alpha, bravo = examples.card_of("alpha").card, examples.card_of("bravo").card
    opened = {}
    for name, sender, kind in (("link-test", alpha, Kind.LINK_TEST),
                               ("link-test-reply", bravo, Kind.LINK_TEST_REPLY)):  # fmt: skip
        raw = hex_block(name)
        ours = indep.decode_envelope(raw)
        ours.verify(sender.signing_key, name)
        env = wire.decode(raw, max_bytes=1 << 20).verify(sender.signing_key)
        assert env.header.kind is kind
        assert ours.kind == int(kind)
        assert (ours.channel, ours.sequence) == ("link-test", 0)
        plaintext = env.open(primitives.Opener(examples.key(f"{ours.recipient} encryption")))
        assert plaintext.decode() + "\n" == BLOCKS[f"{name}-plaintext"]
        opened[name] = parse_payload(kind, plaintext)
    request = wit.parse_add_checkpoint(opened["link-test"].witness.encode())
    head, note = opened["link-test"].witness.split("\n\n", 1)
    old_size, *proof = head.split("\n")
    assert old_size == f"old {request.old_size}" == "old 5"
    assert note == request.note == EXAMPLES.notes[1]
    cps_ = [indep.open_checkpoint(n, "hotline/alpha/log", alpha.log_key, "cp") for n in
            EXAMPLES.notes]  # fmt: skip
    hashes = [base64.b64decode(h) for h in proof]
    indep.verify_consistency(5, 6, hashes, cps_[0].root, cps_[1].root, "proof")
    cosigner = CosignatureVerifier("hotline/bravo/witness", bravo.cosign_key).vkey
    line = opened["link-test-reply"].cosignature
    assert indep.verify_cosignature(cps_[1].text, line, cosigner, "reply")[0] == (
        "hotline/bravo/witness"
    )
    assert line in BLOCKS["checkpoint"]


ENTRY_KINDS = {
    "envelope-out": EntryKind.ENVELOPE_OUT,
    "envelope-in": EntryKind.ENVELOPE_IN,
    "receipt-in": EntryKind.RECEIPT_IN,
    "operator-action": EntryKind.OPERATOR_ACTION,
    "link-test": EntryKind.LINK_TEST,
    "witness": EntryKind.WITNESS,
}


@pytest.mark.parametrize("name", sorted(ENTRY_KINDS))
def test_entry_examples_decode_with_both(name: str) -> None:
    raw = hex_block(f"entry-{name}")
    ours = indep.decode_entry(raw)
    theirs = Entry.decode(raw)
    assert theirs == EXAMPLES.entries[name.replace("-", "_")]
    assert theirs.encode() == raw
    assert theirs.kind is ENTRY_KINDS[name]
    assert ours.kind == int(theirs.kind)
    assert (ours.peer, ours.peer_seq, ours.envelope_hash, ours.recorded_at_us, ours.data) == (
        theirs.peer, theirs.peer_seq, theirs.envelope_hash, theirs.recorded_at_us, theirs.data,
    )  # fmt: skip
    message = hex_block("envelope")
    if theirs.kind in (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN):
        assert ours.data == message
        assert ours.envelope_hash == indep.sha256(message)
    elif theirs.kind is EntryKind.RECEIPT_IN:
        assert ours.data == hex_block("receipt")
        assert ours.envelope_hash == indep.sha256(message)  # ours, not the receipt's
    else:
        assert ours.envelope_hash == bytes(32)
        assert indep.json_object(ours.data, name) == json.loads(theirs.data)
        assert BLOCKS[f"entry-{name}-fields"].endswith(ours.data.decode() + "\n")


def test_entry_layout_offsets_as_documented() -> None:
    """The offset table: peer at 3, then u64, 32-byte hash, i64, u32 length, data."""
    raw = hex_block("entry-link-test")
    n = raw[2]
    seq, env_hash, recorded, m = struct.unpack(">Q32sqI", raw[3 + n : 55 + n])
    assert raw[3 : 3 + n] == b"bravo"
    assert len(raw) == 55 + n + m
    assert recorded == examples.T0 + 5_000_000
    assert seq == 0
    assert env_hash == bytes(32)


def test_checkpoint_example_opens_with_both() -> None:
    note = BLOCKS["checkpoint"]
    alpha, bravo = examples.card_of("alpha").card, examples.card_of("bravo").card
    cp = indep.open_checkpoint(note, "hotline/alpha/log", alpha.log_key, "checkpoint")
    log_key = Ed25519Verifier("hotline/alpha/log", alpha.log_key)
    theirs = cps.open_checkpoint(note, [log_key]).checkpoint
    assert (cp.origin, cp.size, cp.root, cp.text) == (
        theirs.origin,
        theirs.size,
        theirs.root,
        theirs.format(),
    )
    assert cp.origin == "hotline/alpha/log"  # the origin hotline verify accepts
    assert cp.root == indep.root_of([indep.leaf_hash(e.encode()) for e in EXAMPLES.ledger])
    line = note.split("\n\n", 1)[1].split("\n")[1] + "\n"
    cosigner = CosignatureVerifier("hotline/bravo/witness", bravo.cosign_key)
    name, ts = indep.verify_cosignature(cp.text, line, cosigner.vkey, "cosignature")
    assert (name, ts) == ("hotline/bravo/witness", cosigner.verify_line(cp.text, line).timestamp)
    # one open_note with both keys checks both lines, as docs/verifier.md says
    assert len(open_note(note, [log_key, cosigner]).verified) == 2
    assert BLOCKS["cosigned-message"] == f"cosignature/v1\ntime {ts}\n{cp.text}"
    wrong = CosignatureVerifier("hotline/alpha/witness", alpha.cosign_key).vkey
    with pytest.raises(indep.VerifyError, match="bad_cosignature"):
        indep.verify_cosignature(cp.text, line, wrong, "cosignature")


def test_example_transcript_verifies_with_both() -> None:
    text = examples.TRANSCRIPT_JSON.read_text()
    report = indep.verify_transcript(text)
    summary = transcripts.summary(transcripts.verify(text))
    assert (report.entries, report.root, report.attested_size, report.envelopes) == (
        summary["entries"], summary["root"], summary["attested_size"],
        summary["envelopes_verified"],
    )  # fmt: skip
    assert [c["peer"] for c in report.cosignatures] == ["bravo", "bravo"]


def test_hotline_verify_accepts_the_example_transcript() -> None:
    """The examples use the origins `hotline verify` accepts (hotline/<station>/log)."""
    result = CliRunner().invoke(app, ["verify", str(examples.TRANSCRIPT_JSON)])
    assert result.exit_code == 0, result.output
    assert "station alpha, 6 entries" in " ".join(result.output.split())


# --- the independent verifier's own pieces --------------------------------------------------


def test_consistency_proofs_match_rfc9162() -> None:
    """Against hotline's proofs of a 13-leaf tree, for every pair of sizes."""
    from hotline.ledger import merkle

    leaves = [indep.leaf_hash(bytes([i])) for i in range(13)]
    tree = MemoryTree()
    tree.append(leaves)
    for m in range(1, 14):
        for n in range(m, 14):
            proof = _consistency_proof(leaves, m, n)
            assert proof == tree.consistency_proof(m, n)
            assert indep.root_of(leaves[:n]) == tree.root(n)
            old, new = indep.root_of(leaves[:m]), indep.root_of(leaves[:n])
            merkle.verify_consistency(m, n, proof, old, new)
            indep.verify_consistency(m, n, proof, old, new, "p")
            if n > m:
                with pytest.raises(indep.VerifyError):
                    indep.verify_consistency(m, n, proof, new, new, "p")


def _consistency_proof(leaves: list[bytes], m: int, n: int) -> list[bytes]:
    """RFC 9162 SUBPROOF, by the definition."""

    def sub(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
        n = len(leaves)
        if m == n:
            return [] if complete else [indep.root_of(leaves)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*sub(m, leaves[:k], complete), indep.root_of(leaves[k:])]
        return [*sub(m - k, leaves[k:], False), indep.root_of(leaves[:k])]

    return [] if m == n else sub(m, leaves[:n], True)


GARBAGE = st.binary(max_size=400)


@settings(max_examples=200, deadline=None)
@given(raw=GARBAGE)
def test_garbage_is_refused_with_a_verify_error(raw: bytes) -> None:
    """Random bytes as an entry, an envelope, a card, a note or a transcript: refused with
    VerifyError, never another exception."""
    text = raw.decode("utf-8", "replace")
    for decode in (
        indep.decode_entry,
        indep.decode_envelope,
        indep.parse_card,
        lambda r: indep.split_note(text, "note"),
        lambda r: indep.verify_transcript(r),
    ):
        with contextlib.suppress(indep.VerifyError):
            decode(raw)


@settings(max_examples=200, deadline=None)
@given(entry=st.integers(0, 5), at=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_bit_in_an_example_entry_is_refused(entry: int, at: int, bit: int) -> None:
    doc = json.loads(examples.TRANSCRIPT_JSON.read_text())
    raw = bytearray(base64.b64decode(doc["entries"][entry]))
    raw[at % len(raw)] ^= 1 << bit
    doc["entries"][entry] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(indep.VerifyError):
        indep.verify_transcript(json.dumps(doc))


# --- (b) a real exchange, (c) tampered copies ---------------------------------------------------


async def _traffic(p: Pair) -> None:
    """Messages both ways, an acknowledgement, link tests with cosigning each way, and a
    checkpoint over everything (as the export's own attesting checkpoint would)."""
    sent = [await p.send(f"alpha says {i}") for i in range(3)]
    await p.send("bravo says hello", src=p.bravo, dst="alpha")
    await p.flush()
    await p.bravo.line.acknowledge(str(sent[0].message_id), "Maj. Ivanova", "understood")
    await p.flush()
    for _ in range(2):
        for src, dst in ((p.alpha, p.bravo), (p.bravo, p.alpha)):
            _, _, result = await exchange(src, dst)
            await src.line.record_link_test(dst.line.station_id, {"ok": True} | result)
    await p.alpha.witnessing.offer("bravo")
    await p.bravo.witnessing.offer("alpha")


def _export(station: Station) -> str:
    with station.read_engine.connect() as conn:
        return transcripts.export(conn, station.line.card, station.witnessing.log_signer)


@dataclass
class Exported:
    alpha: str
    bravo: str
    alpha_identity: StationIdentity


def _check_clean(got: Exported) -> None:
    for text, name, peer in ((got.alpha, "alpha", "bravo"), (got.bravo, "bravo", "alpha")):
        report = indep.verify_transcript(text)
        theirs = transcripts.summary(transcripts.verify(text))
        assert report.station == name
        assert report.peers == [peer]
        assert report.unattested == 0
        assert report.attested_size == report.entries
        assert (report.entries, report.root, report.envelopes) == (
            theirs["entries"], theirs["root"], theirs["envelopes_verified"],
        )  # fmt: skip
        assert len(report.cosignatures) == theirs["cosignatures"] >= 2
        assert {c["peer"] for c in report.cosignatures} == {peer}
    # alpha: 3 messages out, 1 message and 1 acknowledgement in, 3 receipts
    assert indep.verify_transcript(got.alpha).envelopes == 3 + 2 + 3


def test_transcripts_of_a_real_exchange_verify(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await _traffic(p)
        _check_clean(Exported(_export(p.alpha), _export(p.bravo), p.alpha.identity))

    run_pair(scenario)


def test_transcripts_with_batch_receipts_verify_and_a_bad_proof_is_refused(
    run_pair: Any,
) -> None:
    """bravo stores alpha's messages in one writer batch: one signed root; alpha's
    RECEIPT_IN entries keep each batch receipt whole, and both verifiers prove each."""

    async def scenario(p: Pair) -> None:
        for i in range(3):
            await p.send(f"alpha says {i}")
        items = [p.bravo.line.check_inbound(r) for r in p.outbound(p.alpha, "bravo")]
        got = await _one_writer_batch(p, items)
        assert all(isinstance(r, bytes) and batchreceipt.is_batch(r) for r in got)
        assert await p.alpha.line.record_receipts("bravo", got) == [True] * 3  # type: ignore[arg-type]
        await _traffic(p)
        text = _export(p.alpha)
        report = indep.verify_transcript(text)
        theirs = transcripts.summary(transcripts.verify(text))
        assert (report.entries, report.root, report.envelopes) == (
            theirs["entries"], theirs["root"], theirs["envelopes_verified"],
        )  # fmt: skip
        assert report.unattested == 0
        doc = json.loads(text)
        raws = [base64.b64decode(x) for x in doc["entries"]]
        [i, *_] = [k for k, r in enumerate(raws) if Entry.decode(r).kind is EntryKind.RECEIPT_IN
                   and batchreceipt.is_batch(Entry.decode(r).data)]  # fmt: skip
        e = Entry.decode(raws[i])
        bad = bytearray(e.data)
        bad[-1] ^= 1  # the last hash of the inclusion proof
        forged = Entry(e.kind, e.peer, e.peer_seq, e.envelope_hash, e.recorded_at_us, bytes(bad))
        doc["entries"][i] = base64.b64encode(forged.encode()).decode()
        with pytest.raises(indep.VerifyError) as mine:
            indep.verify_transcript(json.dumps(doc))
        assert mine.value.code in ("bad_receipt", "root_mismatch")
        with pytest.raises(HotlineError):
            transcripts.verify(json.dumps(doc))

    run_pair(scenario)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """One exchange on SQLite for the tamper cases."""
    tmp = tmp_path_factory.mktemp("exchange")
    clock = FakeClock()
    urls = {name: f"sqlite:///{tmp / name}.db" for name in ("alpha", "bravo")}
    a, b = paired_stations(tmp, urls, clock)
    stations = [a, b]

    async def main() -> Exported:
        for station in stations:
            station.writer.start()
        try:
            await _traffic(Pair(a, b, clock))
            return Exported(_export(a), _export(b), a.identity)
        finally:
            for station in stations:
                station.close()

    return asyncio.run(main())


Doc = dict[str, Any]


def _entries(doc: Doc) -> list[Entry]:
    return [Entry.decode(base64.b64decode(e)) for e in doc["entries"]]


def _put(doc: Doc, i: int, entry: Entry) -> None:
    doc["entries"][i] = base64.b64encode(entry.encode()).decode()


def _first(doc: Doc, kind: EntryKind) -> int:
    return next(i for i, e in enumerate(_entries(doc)) if e.kind is kind)


def _resign(doc: Doc, ident: StationIdentity) -> None:
    """Sign a checkpoint over the whole (changed) ledger with the station's own log key, as
    a station lying about its own history could."""
    leaves = [indep.leaf_hash(base64.b64decode(e)) for e in doc["entries"]]
    cp = cps.Checkpoint("hotline/alpha/log", len(leaves), indep.root_of(leaves))
    doc["checkpoints"].append(
        cps.sign_checkpoint(cp, NoteSigner("hotline/alpha/log", ident.log_seed))
    )


def flip_envelope_signature(doc: Doc, _: StationIdentity) -> None:
    i = _first(doc, EntryKind.ENVELOPE_IN)
    e = _entries(doc)[i]
    data = e.data[:-1] + bytes([e.data[-1] ^ 1])
    _put(doc, i, Entry(e.kind, e.peer, e.peer_seq, primitives.sha256(data), e.recorded_at_us, data))


def retime_an_entry(doc: Doc, _: StationIdentity) -> None:
    i = _first(doc, EntryKind.RECEIPT_IN)
    e = _entries(doc)[i]
    _put(doc, i, Entry(e.kind, e.peer, e.peer_seq, e.envelope_hash, e.recorded_at_us - 1, e.data))


def edit_operator_json(doc: Doc, _: StationIdentity) -> None:
    for i, e in enumerate(_entries(doc)):
        if e.kind is EntryKind.OPERATOR_ACTION and b'"send"' in e.data:
            data = e.data.replace(b"alpha says 0", b"alpha says 9")
            _put(doc, i, Entry(e.kind, e.peer, e.peer_seq, e.envelope_hash, e.recorded_at_us, data))
            return
    raise AssertionError("no send action")


def drop_the_last_entry(doc: Doc, _: StationIdentity) -> None:
    doc["entries"].pop()


def swap_two_entries(doc: Doc, _: StationIdentity) -> None:
    i = _first(doc, EntryKind.ENVELOPE_OUT)
    doc["entries"][i], doc["entries"][i + 1] = doc["entries"][i + 1], doc["entries"][i]


def append_an_unattested_entry(doc: Doc, _: StationIdentity) -> None:
    doc["entries"].append(doc["entries"][_first(doc, EntryKind.LINK_TEST)])


def corrupt_a_checkpoint_signature(doc: Doc, _: StationIdentity) -> None:
    note = doc["checkpoints"][0]
    sig = note.rsplit(" ", 1)[1]
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    doc["checkpoints"][0] = note[: -len(sig)] + base64.b64encode(bytes(raw)).decode() + "\n"


def move_a_cosignature(doc: Doc, _: StationIdentity) -> None:
    doc["cosignatures"][0]["checkpoint"] = (doc["cosignatures"][0]["checkpoint"] + 1) % len(
        doc["checkpoints"]
    )


def replace_the_log_key(doc: Doc, _: StationIdentity) -> None:
    doc["log_key"] = Ed25519Verifier("hotline/alpha/log", bytes(32 * [7])).vkey


def swap_a_peer_card(doc: Doc, _: StationIdentity) -> None:
    """Record another card for bravo: bravo's envelopes no longer verify under it."""
    i = next(
        i for i, e in enumerate(_entries(doc))
        if e.kind is EntryKind.OPERATOR_ACTION and b"peer_add" in e.data
    )  # fmt: skip
    e = _entries(doc)[i]
    action = json.loads(e.data)
    action["card"] = make_identity("bravo").card().to_text()
    data = json.dumps(action, sort_keys=True, separators=(",", ":")).encode()
    _put(doc, i, Entry(e.kind, e.peer, e.peer_seq, e.envelope_hash, e.recorded_at_us, data))


def equivocate(doc: Doc, ident: StationIdentity) -> None:
    """alpha signs a second, different envelope for bravo's sequence 1, logs it, and signs a
    checkpoint over that history: validly signed, and equivocation."""
    first = wire.decode(_entries(doc)[_first(doc, EntryKind.ENVELOPE_OUT)].data, max_bytes=1 << 20)
    h = first.header
    other = Header(Kind.MESSAGE, h.precedence, h.suite, h.sender, h.recipient, h.channel,
                   h.sequence, uuid.uuid4(), h.sent_at_us)  # fmt: skip
    enc_key = primitives.encryption_public_key(primitives.new_encryption_key())
    env = wire.seal_envelope(other, b"{}", primitives.Signer(ident.signing_seed), enc_key)
    entry = Entry(EntryKind.ENVELOPE_OUT, "bravo", h.sequence, env.hash, 1, env.raw)
    doc["entries"].append(base64.b64encode(entry.encode()).decode())
    _resign(doc, ident)


TAMPERS: dict[str, tuple[Callable[[Doc, StationIdentity], None], set[str]]] = {
    "envelope signature flipped": (flip_envelope_signature, {"bad_signature"}),
    "recorded_at changed": (retime_an_entry, {"bad_root"}),
    "operator JSON edited": (edit_operator_json, {"bad_root"}),
    "last entry dropped": (drop_the_last_entry, {"truncated"}),
    "two entries swapped": (swap_two_entries, {"bad_root", "receipt_unsent"}),
    "entry appended after the last checkpoint": (append_an_unattested_entry, {"unattested"}),
    "checkpoint signature corrupted": (corrupt_a_checkpoint_signature, {"bad_signature"}),
    "cosignature moved to another checkpoint": (move_a_cosignature, {"bad_signature"}),
    "log key replaced": (replace_the_log_key, {"bad_log_key"}),
    "peer card replaced": (swap_a_peer_card, {"bad_signature"}),
    "equivocation, validly signed": (equivocate, {"equivocation"}),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_transcripts_fail(exported: Exported, case: str) -> None:
    tamper, codes = TAMPERS[case]
    doc = json.loads(exported.alpha)
    tamper(doc, exported.alpha_identity)
    with pytest.raises(indep.VerifyError) as caught:
        indep.verify_transcript(json.dumps(doc))
    assert caught.value.code in codes, caught.value


def test_the_untampered_copy_verifies_and_unattested_can_be_accepted(exported: Exported) -> None:
    assert indep.verify_transcript(exported.alpha).unattested == 0
    doc = json.loads(exported.alpha)
    append_an_unattested_entry(doc, exported.alpha_identity)
    report = indep.verify_transcript(json.dumps(doc), accept_unattested=True)
    assert report.unattested == 1


def test_unknown_fields_are_ignored(exported: Exported) -> None:
    """Fields the verifier does not need (the format grows) change nothing."""
    doc = json.loads(exported.alpha)
    plain = indep.verify_transcript(exported.alpha)
    doc["attestation"] = {"size": 3, "note": "x"}
    doc["witnesses"] = ["arbiter+00000000+BA=="]
    doc["equivocations"] = []
    for c in doc["cosignatures"]:
        c["received_at_us"] = 1
    assert indep.verify_transcript(json.dumps(doc)) == plain


def test_a_cosigner_not_on_record_is_verified_but_named_as_nobody(exported: Exported) -> None:
    doc = json.loads(exported.alpha)
    log_key = indep.parse_card(base64.b64decode(doc["card"])).log_key
    cp = indep.open_checkpoint(doc["checkpoints"][0], "hotline/alpha/log", log_key, "cp")
    arbiter = Cosigner("arbiter.example/witness", bytes(range(32)))
    line = arbiter.cosign(cp.text, 1_767_225_600).line()
    doc["cosignatures"].append({"checkpoint": 0, "cosigner": arbiter.verifier.vkey, "line": line})
    report = indep.verify_transcript(json.dumps(doc))
    assert report.cosignatures[-1]["peer"] is None
    assert report.cosignatures[-1]["cosigner"] == "arbiter.example/witness"
    doc["cosignatures"][-1]["line"] = line.replace(line[-10:-6], "AAAA")
    with pytest.raises(indep.VerifyError):
        indep.verify_transcript(json.dumps(doc))


def test_the_verifier_imports_nothing_of_hotline() -> None:
    source = Path(indep.__file__).read_text()
    imports = re.findall(r"^\s*(?:from|import) ([\w.]+)", source, re.M)
    assert imports
    assert not [m for m in imports if m.startswith(("hotline", "tests"))]
    assert {m.split(".")[0] for m in imports} <= {
        "__future__", "base64", "binascii", "hashlib", "json", "re", "struct", "sys",
        "dataclasses", "typing", "cryptography",
    }  # fmt: skip
    assert re.findall(r"^from cryptography\S* import .*$", source, re.M) == [
        "from cryptography.exceptions import InvalidSignature",
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey",
    ]
