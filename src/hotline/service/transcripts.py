"""Transcripts: export a station's record, and verify one (or a pair) offline.

Owns building a ``hotline.ledger.transcript.Transcript`` from a store (the SQL is in
``hotline.store.transcripts``), signed whole: the export signs a checkpoint at the
exported size with the station's log key, so that no entry is left unattested. Owns the
checks a transcript needs beyond the Merkle tree and notes: every envelope's signature
by the right station's card key, every entry's fields matching its envelope, every
cosigner's key matching the card the station recorded for that peer or a third-party
witness key the station recorded (``witness_add`` action), and, with both sides'
transcripts, each side's cards matching the other's own, then the receipts and the
signed notes each side holds from the other (``hotline.ledger.transcript.cross_check``),
and the processes that check a large transcript's signatures on every core
(:class:`ForkedChunks`). Must not touch: the network; verification uses nothing but the
files (docs/transcript.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from hotline.crypto import primitives
from hotline.crypto.card import SignedCard, parse_card
from hotline.errors import (
    ConfigError,
    EnvelopeError,
    HotlineError,
    MisaddressedError,
    SignatureError,
)
from hotline.ledger import checkpoint as cps
from hotline.ledger import transcript as tlog
from hotline.ledger.cosignature import CosignatureVerifier
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.merkle import frontier_append, frontier_root, leaf_hash
from hotline.ledger.note import Ed25519Verifier, NoteSigner
from hotline.service.witnessing import cosigner_of, origin_of
from hotline.store import transcripts as stored
from hotline.wire import batchreceipt
from hotline.wire import envelope as wire
from hotline.wire.envelope import Kind
from hotline.wire.messages import ReceiptPayload, parse_payload

#: transcript size (bytes) from which signatures are checked on every core, by workers
#: forked once it is parsed (or, where this process cannot fork, by a pool started
#: before the JSON is parsed); an envelope entry is ~450 bytes: ~2,300 entries
PARALLEL_BYTES = 1 << 20
#: entries are checked in about this many chunks per worker (the last chunk is what a
#: core may wait for at the end), of at least MIN_CHUNK entries (each costs a submit)
CHUNKS_PER_WORKER = 16
MIN_CHUNK = 256
#: the same for forked workers taking chunks from a shared counter (no submit per chunk:
#: a chunk costs a lock and the hook's setup, so they can be smaller)
FORK_CHUNKS_PER_WORKER = 64
FORK_MIN_CHUNK = 64
WITNESS_ADD = "witness_add"  #: the operator action that puts a witness's key on record


def witness_name(key: CosignatureVerifier) -> str:
    """The ``cosignatures.peer`` value of a third-party witness (at most 32 characters)."""
    return f"@{key.name[:22]}+{key.key_id:08x}"


def witness_action(key: CosignatureVerifier, url: str) -> dict[str, Any]:
    """The operator action that records a third-party witness's key on the ledger."""
    return {"action": WITNESS_ADD, "witness": witness_name(key), "vkey": key.vkey, "url": url}


def export(
    conn: Connection,
    card: SignedCard,
    log_signer: NoteSigner,
    progress: Callable[[int], None] | None = None,
) -> str:
    """The whole record of the station whose store ``conn`` reads, as transcript JSON,
    attested whole: unless a checkpoint at the exported size is stored, one is signed
    now with ``log_signer`` (the station's log key, as every checkpoint is signed)."""
    sid = card.card.station_id
    log_key = Ed25519Verifier(origin_of(sid), card.card.log_key)
    if log_signer.verifier.vkey != log_key.vkey:
        raise ConfigError("the log key given is not the one on the station's card")
    rec = stored.read_record(conn, progress)
    n = len(rec.leaves)
    notes = list(rec.notes)
    if not any(size == n for size, _ in notes):
        frontier: list[bytes] = []
        for i, leaf in enumerate(rec.leaves):
            frontier_append(i, frontier, leaf_hash(leaf))
        cp = cps.Checkpoint(origin_of(sid), n, frontier_root(frontier))
        notes.append((n, cps.sign_checkpoint(cp, log_signer)))
    index = {size: i for i, (size, _) in enumerate(notes)}
    record = _on_record(rec.leaves)
    keys: dict[str, str] = {}
    for peer, text in rec.peer_cards.items():
        keys[peer] = CosignatureVerifier(cosigner_of(peer), parse_card(text).card.cosign_key).vkey
    for vkey in record.witnesses:
        keys[witness_name(CosignatureVerifier.from_vkey(vkey))] = vkey
    cosigs = [
        tlog.TranscriptCosignature(index[size], keys[name], line)
        for name, size, line in rec.cosignatures
        if size in index and name in keys  # a witness never put on record is left out
    ]
    t = tlog.Transcript(
        station=sid,
        card=card.to_text().encode(),
        log_key=log_key.vkey,
        entries=tuple(rec.leaves),
        checkpoints=tuple(note for _, note in notes),
        cosignatures=tuple(cosigs),
    )
    return t.to_json()


@dataclass(frozen=True, slots=True)
class Verified:
    report: tlog.TranscriptReport
    card: SignedCard
    peers: dict[str, SignedCard]
    envelopes: int
    #: third-party witness vkeys on record (``witness_add``), each with its entry index
    witnesses: dict[str, int] = field(default_factory=dict)
    accepted_unattested: bool = False

    @property
    def station(self) -> str:
        return self.report.station


def verify(
    data: bytes | str, *, executor: Executor | None = None, accept_unattested: bool = False
) -> Verified:
    """Verify one transcript completely; raise ``TranscriptError`` naming the first bad
    item. Entries after the last signed checkpoint are refused (``unattested``) unless
    ``accept_unattested``, when the result says how many were accepted so."""
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    own = None
    fork = 0
    if executor is None and len(data) >= PARALLEL_BYTES:
        if can_fork():
            # workers forked once the transcript is parsed and its keys are known: they
            # read the entries from shared memory and take chunks from a shared counter
            fork = workers
        else:
            # no fork here: a pool started now, whose workers start while the JSON is
            # parsed, and chunks of entry bytes sent to it
            executor = own = ProcessPoolExecutor(max_workers=workers)
            for _ in range(workers):
                own.submit(int)
    try:
        return _verify(data, executor, workers, accept_unattested, fork)
    finally:
        if own is not None:
            own.shutdown()


def can_fork() -> bool:
    """Whether :class:`ForkedChunks` may run here (the platform forks)."""
    return "fork" in multiprocessing.get_all_start_methods()


class ForkedChunks:
    """``hook`` over ``entries`` in chunks of ``step``, in ``workers`` forked processes.

    The workers are forked at construction and read ``entries`` from the memory they
    share with this process (copy on write: nothing is pickled). Each takes the next
    chunk from a shared counter until none is left, and marks a chunk done only when
    the hook found nothing in it. :meth:`finish` makes this process take chunks from
    the same counter, waits for the workers, then checks again, itself, every chunk not
    marked done (a failure, or a chunk whose worker died before it said): the first
    failure it finds is the earliest in the transcript, and no chunk counts as checked
    on any word but the hook's. :meth:`close` kills workers still running (after an
    exception, or when a worker died holding the counter's lock) and reaps them.
    """

    def __init__(
        self, entries: Sequence[bytes], hook: tlog.ChunkHook, step: int, workers: int
    ) -> None:
        ctx = multiprocessing.get_context("fork")
        self.entries, self.hook, self.step = entries, hook, step
        self.starts = range(0, len(entries), step)
        self.taken = ctx.Value("q", 0)  #: chunks handed out so far
        self.done = ctx.RawArray("b", len(self.starts))  #: 1: checked, nothing found
        self.procs = [ctx.Process(target=self._work, daemon=True) for _ in range(workers)]
        for p in self.procs:
            p.start()

    def _work(self) -> None:
        """A worker: checks chunks, then leaves at once (``os._exit``: it flushes no
        stream and runs no exit handler, so it touches no lock that a thread of the
        parent other than the forking one may have held at the fork). A hook that raises
        leaves its chunk unmarked; the verifying process checks it again and raises."""
        code = 1
        try:
            self._drain()
            code = 0
        finally:
            os._exit(code)

    def _drain(self, watch: bool = False) -> bool:
        """Check chunks until none is left; False if a worker died holding the counter
        (only ``watch``-ed in this process: it cannot wait for that lock for ever)."""
        lock = self.taken.get_lock()
        while True:
            while not lock.acquire(timeout=1.0):
                if watch and any(p.exitcode not in (None, 0) for p in self.procs):
                    return False
            try:
                c = self.taken.value
                self.taken.value = c + 1
            finally:
                lock.release()
            if c >= len(self.starts):
                return True
            s = self.starts[c]
            if self.hook(s, self.entries[s : s + self.step]) is None:
                self.done[c] = 1

    def finish(self) -> tuple[int, str, str] | None:
        """The first failure of the hook over all entries, or None (``tlog.ChunkChecks``)."""
        if self._drain(watch=True):
            for p in self.procs:
                p.join()
        else:
            self.close()
        for c, s in enumerate(self.starts):
            if not self.done[c]:
                got = self.hook(s, self.entries[s : s + self.step])
                if got is not None:
                    return got
        return None

    def close(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()
            p.join()


def _verify(
    data: bytes | str,
    executor: Executor | None,
    workers: int,
    accept_unattested: bool,
    fork: int = 0,
) -> Verified:
    t = tlog.parse_transcript(data)
    try:
        card = parse_card(t.card)
    except HotlineError as exc:
        raise tlog.TranscriptError("card", exc.message, code=exc.code) from None
    if card.card.station_id != t.station:
        raise tlog.TranscriptError("card", "the card is not the transcript's station's")
    if Ed25519Verifier(origin_of(t.station), card.card.log_key).vkey != t.log_key:
        raise tlog.TranscriptError("log key", "the log key is not the one on the card")
    record = _on_record(t.entries)
    peers = {p: c for p, (c, _) in record.peers.items()}
    keys = {p: (c.card.signing_key, at) for p, (c, at) in record.peers.items()}
    hook = functools.partial(check_chunk, t.station, card.card.signing_key, keys)
    # chunks small enough that no core waits long for the last one
    if fork:
        chunk = max(FORK_MIN_CHUNK, len(t.entries) // (FORK_CHUNKS_PER_WORKER * fork))
    else:
        chunk = max(MIN_CHUNK, len(t.entries) // (CHUNKS_PER_WORKER * workers))
    # forked now, once the keys are known: the workers check signatures while this
    # process opens the checkpoints, decodes the entries and rebuilds the tree
    running = ForkedChunks(t.entries, hook, chunk, fork) if fork else None
    try:
        report = tlog.verify_transcript(
            t,
            executor=executor,
            chunk_size=chunk,
            accept_unattested=accept_unattested,
            verify_chunk=hook,
            running=running,
        )
    finally:
        if running is not None:
            running.close()
    cosigners = {
        CosignatureVerifier(cosigner_of(p), c.card.cosign_key).vkey for p, c in peers.items()
    }
    for i, cs in enumerate(t.cosignatures):
        if cs.cosigner not in cosigners and cs.cosigner not in record.witnesses:
            raise tlog.TranscriptError(
                f"cosignature {i}",
                "cosigner is neither a peer nor a witness on record",
                code="unknown_cosigner",
            )
    n = sum(1 for e in report.entries if e.kind in _ENVELOPE_KINDS)
    return Verified(report, card, peers, n, dict(record.witnesses), bool(report.unattested))


_ENVELOPE_KINDS = (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN, EntryKind.RECEIPT_IN)


@dataclass(frozen=True, slots=True)
class OnRecord:
    """Keys a station put on its ledger: peers' cards (``peer_add``) and third-party
    witnesses' vkeys (``witness_add``), each with the index of the entry that did."""

    peers: dict[str, tuple[SignedCard, int]]
    witnesses: dict[str, int]


def _on_record(raws: tuple[bytes, ...] | list[bytes]) -> OnRecord:
    peers: dict[str, tuple[SignedCard, int]] = {}
    witnesses: dict[str, int] = {}
    for i, raw in enumerate(raws):
        if len(raw) < 2 or raw[1] != EntryKind.OPERATOR_ACTION:
            continue
        try:
            entry = Entry.decode(raw)
            action = json.loads(entry.data)
            if not isinstance(action, dict):
                continue
            if action.get("action") == "peer_add":
                card = parse_card(action["card"])
                peers[card.card.station_id] = (card, i)
            elif action.get("action") == WITNESS_ADD:
                witnesses.setdefault(CosignatureVerifier.from_vkey(action["vkey"]).vkey, i)
        except (HotlineError, ValueError, KeyError, TypeError) as exc:
            raise tlog.TranscriptError(
                f"entry {i}", f"unreadable key on record: {exc}", entry=i
            ) from None
    return OnRecord(peers, witnesses)


def check_entry(
    station: str,
    own_key: bytes,
    peer_keys: dict[str, tuple[bytes, int]],
    _i: int,
    entry: Entry,
    roots: batchreceipt.RootCache | None = None,
) -> None:
    """One entry's own checks (module level: runs in worker processes). ``peer_keys``
    holds each peer's signing key and the index of the entry that recorded its card;
    ``roots``: batch receipt roots verified already (each signature checked once)."""
    if entry.kind in (EntryKind.OPERATOR_ACTION, EntryKind.LINK_TEST, EntryKind.WITNESS):
        if not isinstance(json.loads(entry.data), dict):
            raise ValueError("entry data is not a JSON object")
        return
    if entry.peer not in peer_keys:
        raise tlog.TranscriptError(
            "entry", f"envelope of {entry.peer!r}, not a peer on record", code="unknown_peer"
        )
    key, card_at = peer_keys[entry.peer]
    try:
        _check_envelope_entry(station, own_key, key, entry, roots)
    except SignatureError as exc:
        if entry.kind is EntryKind.ENVELOPE_OUT:
            raise
        raise SignatureError(
            f"{exc.message} with {entry.peer}'s card as the station recorded it "
            f"(entry {card_at}): either this entry or that card was changed"
        ) from None


_ENTRY_FIXED = struct.Struct(">Q32sqI")  #: entry.py layout after the peer id
_ENTRY_VERSION = 1
_OUT, _IN, _RECEIPT = (int(EntryKind.ENVELOPE_OUT), int(EntryKind.ENVELOPE_IN),
                       int(EntryKind.RECEIPT_IN))  # fmt: skip
_KIND_RECEIPT = int(Kind.RECEIPT)


def check_chunk(
    station: str,
    own_key: bytes,
    peer_keys: dict[str, tuple[bytes, int]],
    start: int,
    raws: Sequence[bytes],
) -> tuple[int, str, str] | None:
    """Entries ``start..`` checked from their bytes (module level: runs in worker
    processes, which return only the first failure, as (index, code, message)).

    The fast path accepts an envelope entry only when every check of
    :func:`check_entry` passes (same fields read by ``struct``, keys parsed once per
    process, no ``Entry`` built); anything else (local entries, anything malformed or
    failing) goes through ``Entry.decode`` and :func:`check_entry`, which raise the
    refusal."""
    me = station.encode()
    by_peer: dict[bytes, tuple[bytes, Callable[[bytes, bytes], None]]] = {}
    for p, (k, _) in peer_keys.items():
        peer_verify = _raw_verifier(k)
        if p.isascii() and peer_verify is not None:  # else: every entry by the strict path
            by_peer[p.encode()] = (p.encode(), peer_verify)
    mine = _raw_verifier(own_key)  # None: the strict path says why
    roots: batchreceipt.RootCache = {}  # batch receipts' roots, each verified once
    ctx, sig_len, sha256 = wire.SIGN_CONTEXT, wire.SIGNATURE_LEN, hashlib.sha256
    unpack, fixed, sequenced = _ENTRY_FIXED.unpack_from, _ENTRY_FIXED.size, _SEQUENCED
    for i, raw in enumerate(raws, start):
        try:
            kind = raw[1] if raw[0] == _ENTRY_VERSION else 0
            if kind in (_OUT, _IN, _RECEIPT):
                off = 3 + raw[2]
                got = by_peer.get(raw[3:off])
                seq, env_hash, _at, size = unpack(raw, off)
                off += fixed
                if got is not None and len(raw) == off + size:
                    data = raw[off:]
                    ekind, sender, recipient, sequence, payload = _read_envelope(data)
                    peer, peer_verify = got
                    if kind == _RECEIPT:
                        peer_verify(data[-sig_len:], ctx + data[:-sig_len])
                        if ekind == _KIND_RECEIPT and sender == peer and recipient == me:
                            r: ReceiptPayload = parse_payload(Kind.RECEIPT, payload)
                            if r.sequence == seq and bytes.fromhex(r.envelope_hash) == env_hash:
                                continue
                    elif sha256(data).digest() == env_hash and ekind in sequenced:
                        out = kind == _OUT
                        signer = mine if out else peer_verify
                        if signer is not None:
                            signer(data[-sig_len:], ctx + data[:-sig_len])
                            ends = (me, peer) if out else (peer, me)
                            if (sender, recipient) == ends and sequence == seq:
                                continue
        except Exception:  # noqa: S110 - re-checked below, which names the failure
            pass
        try:
            check_entry(station, own_key, peer_keys, i, Entry.decode(raw), roots)
        except HotlineError as exc:
            return i, exc.code, exc.message
        except ValueError as exc:
            return i, "bad_entry", str(exc)
    return None


def _raw_verifier(key: bytes) -> Callable[[bytes, bytes], None] | None:
    try:
        return primitives.raw_verifier(key)
    except HotlineError:
        return None


def _verify_envelope(key: bytes, raw: bytes) -> None:
    """The envelope signature check of ``wire.UnverifiedEnvelope.verify``."""
    signed, signature = raw[: -wire.SIGNATURE_LEN], raw[-wire.SIGNATURE_LEN :]
    primitives.verify(key, signature, wire.SIGN_CONTEXT, signed)


_HEAD = struct.Struct(">4sBBBB6x")  #: magic, version, kind, precedence, flags (suite skipped)
_TAIL = struct.Struct(">Q16sqI")  #: sequence, message id, sent at, payload length
_SEQUENCED = frozenset(int(k) for k in Kind if k.sequenced)


def _read_envelope(raw: bytes) -> tuple[int, bytes, bytes, int, bytes]:
    """(kind, sender, recipient, sequence, payload) of an envelope's exact bytes, read
    only as far as the transcript check needs (docs/wire.md layout; the signature,
    checked after, covers every byte). ``wire.decode`` costs a fifth of a signature
    check; this a twentieth. Raises ``EnvelopeError``."""
    try:
        magic, version, kind, _precedence, flags = _HEAD.unpack_from(raw, 0)
        off = _HEAD.size
        sender = raw[off + 1 : off + 1 + raw[off]]
        off += 1 + raw[off]
        recipient = raw[off + 1 : off + 1 + raw[off]]
        off += 1 + raw[off]
        off += 1 + raw[off]  # channel
        sequence, _mid, _sent, payload_len = _TAIL.unpack_from(raw, off)
    except (struct.error, IndexError):
        raise EnvelopeError("envelope truncated", code="truncated") from None
    off += _TAIL.size
    if magic != wire.MAGIC or version != wire.VERSION or flags:
        raise EnvelopeError("not a hotline envelope of a known version")
    if len(raw) != off + payload_len + wire.SIGNATURE_LEN:
        raise EnvelopeError("envelope length does not match its payload", code="truncated")
    return kind, sender, recipient, sequence, raw[off : off + payload_len]


def _check_envelope_entry(
    station: str,
    own_key: bytes,
    peer_key: bytes,
    entry: Entry,
    roots: batchreceipt.RootCache | None = None,
) -> None:
    if entry.kind is not EntryKind.RECEIPT_IN:
        kind, sender, recipient, sequence, _payload = _read_envelope(entry.data)
    peer, me = entry.peer.encode(), station.encode()
    if entry.kind is EntryKind.RECEIPT_IN:  # either form (wire/batchreceipt.py)
        try:
            _h, receipt = batchreceipt.open_receipt(
                entry.data, peer_key, sender=entry.peer, recipient=station,
                max_envelope_bytes=len(entry.data), roots=roots,
            )  # fmt: skip
        except (MisaddressedError, EnvelopeError) as exc:
            if not isinstance(exc, MisaddressedError) and exc.code != "bad_kind":
                raise
            raise tlog.TranscriptError(
                "entry", "receipt envelope does not match its entry", code="bad_entry"
            ) from None
        if (
            bytes.fromhex(receipt.envelope_hash) != entry.envelope_hash
            or receipt.sequence != entry.peer_seq
        ):
            raise tlog.TranscriptError(
                "entry", "receipt does not match its entry", code="bad_entry"
            )
        return
    if not primitives.equal(primitives.sha256(entry.data), entry.envelope_hash):
        raise tlog.TranscriptError(
            "entry", "envelope hash does not match its bytes", code="bad_entry"
        )
    if entry.kind is EntryKind.ENVELOPE_OUT:
        _verify_envelope(own_key, entry.data)
        ends = (me, peer)
    else:
        _verify_envelope(peer_key, entry.data)
        ends = (peer, me)
    if kind not in _SEQUENCED:
        raise tlog.TranscriptError(
            "entry", f"an envelope of kind {kind} is not logged as one", code="bad_entry"
        )
    if (sender, recipient) != ends or sequence != entry.peer_seq:
        raise tlog.TranscriptError(
            "entry", "envelope header does not match its entry", code="bad_entry"
        )


def cross_check(a: Verified, b: Verified) -> tlog.CrossCheck:
    """Each side's record of the other's card must be the other's own; then compare the
    logs, the receipts and the signed notes each holds from the other."""
    for x, y in ((a, b), (b, a)):
        held = x.peers.get(y.station)
        if held is None:
            raise tlog.TranscriptError(x.station, f"{y.station} is not a peer on its record")
        if not primitives.equal(held.card.signing_key, y.card.card.signing_key):
            raise tlog.TranscriptError(
                x.station, f"the card it holds for {y.station} is not {y.station}'s own card"
            )
    return tlog.cross_check(_side(a, b.station), _side(b, a.station))


def _side(v: Verified, peer: str) -> tlog.Side:
    """``v`` with the receipts and the notes of ``peer``'s log that it holds (verified
    already: each receipt's signature by ``peer``, each entry's JSON)."""
    receipts: list[tlog.ReceiptClaim] = []
    notes: list[tlog.HeldNote] = []
    for i, e in enumerate(v.report.entries):
        if e.peer != peer:
            continue
        if e.kind is EntryKind.RECEIPT_IN:
            r = batchreceipt.item_of(e.data)
            h = bytes.fromhex(r.envelope_hash)
            claim = (r.sequence, h, r.leaf_index, r.tree_size, r.stored_at_us)
            receipts.append(tlog.ReceiptClaim(i, e.data, *claim))
        elif e.kind is EntryKind.WITNESS:
            doc = json.loads(e.data)
            for key in ("note", "cosigned_note", "offered_note"):
                if isinstance(doc.get(key), str):
                    notes.append(tlog.HeldNote(i, doc[key]))
    return tlog.Side(v.report, tuple(receipts), tuple(notes))


def summary(v: Verified) -> dict[str, Any]:
    r = v.report
    return {
        "station": v.station,
        "entries": len(r.entries),
        "envelopes_verified": v.envelopes,
        "checkpoints": len(r.checkpoints),
        "cosignatures": len(r.cosignatures),
        "witnesses": len(v.witnesses),
        "attested_size": r.attested_size,
        "unattested": r.unattested,
        "accepted_unattested": v.accepted_unattested,
        "root": r.root.hex(),
    }
