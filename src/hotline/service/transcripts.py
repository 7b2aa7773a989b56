"""Transcripts: export a station's record, and verify one (or a pair) offline.

Owns building a ``hotline.ledger.transcript.Transcript`` from a store, and the checks a
transcript needs beyond the Merkle tree and notes: every envelope's signature by the
right station's card key, every entry's fields matching its envelope, every cosigner's
key matching the card the station recorded for that peer, and, with both sides'
transcripts, each side's cards matching the other's own. Must not touch: the network;
verification uses nothing but the files (docs/transcript.md).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.crypto import primitives
from hotline.crypto.card import SignedCard, parse_card
from hotline.errors import HotlineError, SignatureError
from hotline.ledger import transcript as tlog
from hotline.ledger.cosignature import CosignatureVerifier
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.note import Ed25519Verifier
from hotline.service.witnessing import cosigner_of, origin_of
from hotline.store import schema
from hotline.wire import envelope as wire
from hotline.wire.envelope import Kind
from hotline.wire.messages import ReceiptPayload, parse_payload

PARALLEL_FROM = 4096  #: entries from which signature checks run on every core


def export(
    conn: Connection, card: SignedCard, progress: Callable[[int], None] | None = None
) -> str:
    """The whole record of the station whose store ``conn`` reads, as transcript JSON."""
    sid = card.card.station_id
    e, c, co = schema.entries, schema.checkpoints, schema.cosignatures
    leaves: list[bytes] = []
    for row in conn.execute(sa.select(e.c.leaf).order_by(e.c.idx)).yield_per(4096):
        leaves.append(bytes(row.leaf))
        if progress is not None and len(leaves) % 4096 == 0:
            progress(len(leaves))
    notes = conn.execute(sa.select(c.c.size, c.c.note).order_by(c.c.size)).all()
    index = {int(n.size): i for i, n in enumerate(notes)}
    peer_cards = {
        r.station_id: parse_card(r.card)
        for r in conn.execute(sa.select(schema.peers.c.station_id, schema.peers.c.card))
    }
    cosigs = []
    for r in conn.execute(sa.select(co).order_by(co.c.size, co.c.peer)):
        if int(r.size) not in index or r.peer not in peer_cards:
            continue
        key = CosignatureVerifier(cosigner_of(r.peer), peer_cards[r.peer].card.cosign_key)
        cosigs.append(tlog.TranscriptCosignature(index[int(r.size)], key.vkey, str(r.line)))
    t = tlog.Transcript(
        station=sid,
        card=card.to_text().encode(),
        log_key=Ed25519Verifier(origin_of(sid), card.card.log_key).vkey,
        entries=tuple(leaves),
        checkpoints=tuple(str(n.note) for n in notes),
        cosignatures=tuple(cosigs),
    )
    return t.to_json()


@dataclass(frozen=True, slots=True)
class Verified:
    report: tlog.TranscriptReport
    card: SignedCard
    peers: dict[str, SignedCard]
    envelopes: int

    @property
    def station(self) -> str:
        return self.report.station


def verify(data: bytes | str, *, executor: Executor | None = None) -> Verified:
    """Verify one transcript completely; raise ``TranscriptError`` naming the first bad item."""
    t = tlog.parse_transcript(data)
    try:
        card = parse_card(t.card)
    except HotlineError as exc:
        raise tlog.TranscriptError("card", exc.message, code=exc.code) from None
    if card.card.station_id != t.station:
        raise tlog.TranscriptError("card", "the card is not the transcript's station's")
    if Ed25519Verifier(origin_of(t.station), card.card.log_key).vkey != t.log_key:
        raise tlog.TranscriptError("log key", "the log key is not the one on the card")
    recorded = _peer_cards(t)
    peers = {p: c for p, (c, _) in recorded.items()}
    keys = {p: (c.card.signing_key, at) for p, (c, at) in recorded.items()}
    hook = functools.partial(check_entry, t.station, card.card.signing_key, keys)
    own = None
    if executor is None and len(t.entries) >= PARALLEL_FROM:
        executor = own = ProcessPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        report = tlog.verify_transcript(t, hook, executor=executor)
    finally:
        if own is not None:
            own.shutdown()
    for i, cs in enumerate(t.cosignatures):
        peer = next((p for p in peers if cosigner_of(p) == cs.cosigner.split("+", 1)[0]), None)
        expected = (
            None
            if peer is None
            else CosignatureVerifier(cosigner_of(peer), peers[peer].card.cosign_key).vkey
        )
        if cs.cosigner != expected:
            raise tlog.TranscriptError(f"cosignature {i}", "cosigner is not a peer on record")
    n = sum(1 for e in report.entries if e.kind in _ENVELOPE_KINDS)
    return Verified(report, card, peers, n)


_ENVELOPE_KINDS = (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN, EntryKind.RECEIPT_IN)


def _peer_cards(t: tlog.Transcript) -> dict[str, tuple[SignedCard, int]]:
    """The peers' cards as the station recorded them (its peer_add actions), each with
    the index of the entry that recorded it."""
    cards: dict[str, tuple[SignedCard, int]] = {}
    for i, raw in enumerate(t.entries):
        if len(raw) < 2 or raw[1] != EntryKind.OPERATOR_ACTION:
            continue
        try:
            entry = Entry.decode(raw)
            action = json.loads(entry.data)
            if isinstance(action, dict) and action.get("action") == "peer_add":
                card = parse_card(action["card"])
                cards[card.card.station_id] = (card, i)
        except (HotlineError, ValueError, KeyError, TypeError) as exc:
            raise tlog.TranscriptError(
                f"entry {i}", f"unreadable peer card: {exc}", entry=i
            ) from None
    return cards


def check_entry(
    station: str,
    own_key: bytes,
    peer_keys: dict[str, tuple[bytes, int]],
    _i: int,
    entry: Entry,
) -> None:
    """One entry's own checks (module level: runs in worker processes). ``peer_keys``
    holds each peer's signing key and the index of the entry that recorded its card."""
    if entry.kind in (EntryKind.OPERATOR_ACTION, EntryKind.LINK_TEST, EntryKind.WITNESS):
        if not isinstance(json.loads(entry.data), dict):
            raise ValueError("entry data is not a JSON object")
        return
    if entry.peer not in peer_keys:
        raise tlog.TranscriptError("entry", f"envelope of {entry.peer!r}, not a peer on record")
    key, card_at = peer_keys[entry.peer]
    try:
        _check_envelope_entry(station, own_key, key, entry)
    except SignatureError as exc:
        if entry.kind is EntryKind.ENVELOPE_OUT:
            raise
        raise SignatureError(
            f"{exc.message} with {entry.peer}'s card as the station recorded it "
            f"(entry {card_at}): either this entry or that card was changed"
        ) from None


def _check_envelope_entry(station: str, own_key: bytes, peer_key: bytes, entry: Entry) -> None:
    u = wire.decode(entry.data, max_bytes=len(entry.data))
    h = u.header
    if entry.kind is EntryKind.RECEIPT_IN:
        env = u.verify(peer_key)
        receipt: ReceiptPayload = parse_payload(Kind.RECEIPT, env.payload)
        if (
            (h.sender, h.recipient) != (entry.peer, station)
            or bytes.fromhex(receipt.envelope_hash) != entry.envelope_hash
            or receipt.sequence != entry.peer_seq
        ):
            raise tlog.TranscriptError("entry", "receipt does not match its entry")
        return
    if not primitives.equal(primitives.sha256(entry.data), entry.envelope_hash):
        raise tlog.TranscriptError("entry", "envelope hash does not match its bytes")
    if entry.kind is EntryKind.ENVELOPE_OUT:
        u.verify(own_key)
        ends = (station, entry.peer)
    else:
        u.verify(peer_key)
        ends = (entry.peer, station)
    if (h.sender, h.recipient) != ends or h.sequence != entry.peer_seq:
        raise tlog.TranscriptError("entry", "envelope header does not match its entry")


def cross_check(a: Verified, b: Verified) -> tlog.CrossCheck:
    """Each side's record of the other's card must be the other's own; then compare logs."""
    for x, y in ((a, b), (b, a)):
        held = x.peers.get(y.station)
        if held is None:
            raise tlog.TranscriptError(x.station, f"{y.station} is not a peer on its record")
        if not primitives.equal(held.card.signing_key, y.card.card.signing_key):
            raise tlog.TranscriptError(
                x.station, f"the card it holds for {y.station} is not {y.station}'s own card"
            )
    return tlog.cross_check(a.report, b.report)


def summary(v: Verified) -> dict[str, Any]:
    r = v.report
    return {
        "station": v.station,
        "entries": len(r.entries),
        "envelopes_verified": v.envelopes,
        "checkpoints": len(r.checkpoints),
        "cosignatures": len(r.cosignatures),
        "attested_size": r.attested_size,
        "unattested": r.unattested,
        "root": r.root.hex(),
    }
