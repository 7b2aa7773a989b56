"""Transcripts: a station's ledger exported for offline verification by a third party.

Owns: the JSON transcript format (documented in docs/transcript.md), its strict
parsing, :func:`verify_transcript` (every entry, every checkpoint signature and root,
every consistency proof and cosignature) and :func:`cross_check` (what one station
sent that the other did not log as received). Must not touch: envelope decoding (the
caller's ``verify_entry`` hook does envelope checks), storage, the network.

Verification walks in this order and raises on the FIRST failure, naming it:
log key; checkpoints (signature, origin, size against the entry count, forks) in
listed order; then leaf order, where entry ``i`` (decode, duplicate, hook) and the
root of each checkpoint at its size are checked as the walk passes them; then the
consistency proofs; then the cosignatures. Merkle recomputation is one O(n) pass in
the calling process; entry hooks may run in parallel chunks on an ``Executor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

from hotline.errors import HotlineError, TrustError
from hotline.ledger.checkpoint import Checkpoint, CheckpointFork, open_checkpoint
from hotline.ledger.cosignature import Cosignature, CosignatureVerifier
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.merkle import frontier_append, frontier_root, leaf_hash, verify_consistency
from hotline.ledger.note import Ed25519Verifier

FORMAT = "hotline-transcript/v1"
EntryHook = Callable[[int, Entry], None]


class TranscriptError(TrustError):
    """A transcript failed verification; ``where`` names the first bad item."""

    code = "bad_transcript"

    def __init__(
        self,
        where: str,
        message: str,
        *,
        code: str | None = None,
        entry: int | None = None,
        checkpoint: int | None = None,
    ) -> None:
        super().__init__(f"{where}: {message}", code=code)
        self.where = where
        self.entry = entry
        self.checkpoint = checkpoint


@dataclass(frozen=True, slots=True)
class TranscriptCosignature:
    checkpoint: int  #: index into ``Transcript.checkpoints``
    cosigner: str  #: the cosigner's verifier key (type 0x04)
    line: str  #: the signature line, ``— name base64\n``


@dataclass(frozen=True, slots=True)
class TranscriptProof:
    """A consistency proof between two listed checkpoints (as a peer was given it)."""

    old: int
    new: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Transcript:
    station: str
    card: bytes
    log_key: str
    entries: tuple[bytes, ...]
    checkpoints: tuple[str, ...]
    cosignatures: tuple[TranscriptCosignature, ...] = ()
    proofs: tuple[TranscriptProof, ...] = ()

    def to_json(self) -> str:
        b64 = _b64e
        doc = {
            "format": FORMAT,
            "station": self.station,
            "card": b64(self.card),
            "log_key": self.log_key,
            "entries": [b64(e) for e in self.entries],
            "checkpoints": list(self.checkpoints),
            "cosignatures": [
                {"checkpoint": c.checkpoint, "cosigner": c.cosigner, "line": c.line}
                for c in self.cosignatures
            ],
            "proofs": [
                {"old": p.old, "new": p.new, "proof": [b64(h) for h in p.proof]}
                for p in self.proofs
            ],
        }
        return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64d(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise TranscriptError(where, "expected a base64 string", code="bad_transcript")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise TranscriptError(where, "not base64", code="bad_transcript") from None


def _get_str(doc: dict[str, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise TranscriptError(key, "missing or not a string")
    return value


def _get_list(doc: dict[str, object], key: str, *, default: bool = False) -> list[object]:
    value = doc.get(key, [] if default else None)
    if not isinstance(value, list):
        raise TranscriptError(key, "missing or not a list")
    return value


def _field(obj: object, key: str, where: str) -> object:
    if not isinstance(obj, dict) or key not in obj:
        raise TranscriptError(where, f"missing field {key!r}")
    return obj[key]


def _int_field(obj: object, key: str, where: str) -> int:
    value = _field(obj, key, where)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TranscriptError(where, f"field {key!r} is not an integer")
    return value


def _str_field(obj: object, key: str, where: str) -> str:
    value = _field(obj, key, where)
    if not isinstance(value, str):
        raise TranscriptError(where, f"field {key!r} is not a string")
    return value


def _list_field(obj: object, key: str, where: str) -> list[object]:
    value = _field(obj, key, where)
    if not isinstance(value, list):
        raise TranscriptError(where, f"field {key!r} is not a list")
    return value


def parse_transcript(data: bytes | str) -> Transcript:
    """Parse transcript JSON into a :class:`Transcript` (nothing verified yet)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise TranscriptError("transcript", "not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TranscriptError("transcript", f"not a {FORMAT} document")
    station, log_key = _get_str(doc, "station"), _get_str(doc, "log_key")
    raw_entries, raw_cps = _get_list(doc, "entries"), _get_list(doc, "checkpoints")
    raw_cos = _get_list(doc, "cosignatures", default=True)
    raw_proofs = _get_list(doc, "proofs", default=True)
    entries = tuple(_b64d(e, f"entry {i}") for i, e in enumerate(raw_entries))
    cps: list[str] = []
    for i, c in enumerate(raw_cps):
        if not isinstance(c, str):
            raise TranscriptError(f"checkpoint {i}", "not a note string")
        cps.append(c)
    cos: list[TranscriptCosignature] = []
    for i, c in enumerate(raw_cos):
        where = f"cosignature {i}"
        cos.append(
            TranscriptCosignature(
                _int_field(c, "checkpoint", where),
                _str_field(c, "cosigner", where),
                _str_field(c, "line", where),
            )
        )
    proofs: list[TranscriptProof] = []
    for i, p in enumerate(raw_proofs):
        where = f"proof {i}"
        hashes = _list_field(p, "proof", where)
        proofs.append(
            TranscriptProof(
                _int_field(p, "old", where),
                _int_field(p, "new", where),
                tuple(_b64d(h, where) for h in hashes),
            )
        )
    card = _b64d(doc.get("card"), "card")
    return Transcript(station, card, log_key, entries, tuple(cps), tuple(cos), tuple(proofs))


# --- verification -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptReport:
    """What a verified transcript proves."""

    transcript: Transcript
    entries: tuple[Entry, ...]
    root: bytes  #: root over all entries
    checkpoints: tuple[Checkpoint, ...]  #: in listed order, each matching the entries
    cosignatures: tuple[tuple[int, Cosignature], ...]  #: (checkpoint index, cosignature)
    unattested: int  #: entries beyond the largest signed checkpoint
    attested_size: int = field(default=0)

    @property
    def station(self) -> str:
        return self.transcript.station


def _check_chunk(
    hook: EntryHook | None, start: int, raws: Sequence[bytes]
) -> tuple[int, str, str] | None:
    """Decode and hook-check entries; first failure as (index, code, message).

    Runs in worker processes, so it returns the failure instead of raising it.
    """
    for offset, raw in enumerate(raws):
        try:
            entry = Entry.decode(raw)
            if hook is not None:
                hook(start + offset, entry)
        except HotlineError as exc:
            return start + offset, exc.code, exc.message
        except ValueError as exc:
            return start + offset, "bad_entry", str(exc)
    return None


Failure = tuple[int, str, str]


def _earliest(*failures: Failure | None) -> Failure | None:
    found = [f for f in failures if f is not None]
    return min(found, key=lambda f: f[0]) if found else None


def verify_transcript(
    t: Transcript,
    verify_entry: EntryHook | None = None,
    *,
    executor: Executor | None = None,
    chunk_size: int = 2048,
) -> TranscriptReport:
    """Verify everything in ``t``; return the report or raise for the first bad item.

    ``verify_entry(index, entry)`` raises a ``HotlineError`` (or ``ValueError``) for a
    bad entry, e.g. an envelope whose signature does not verify. With an ``executor``
    the hook runs on chunks of entries in parallel (it must then be picklable: a
    module-level function or a ``functools.partial`` of one) while this process
    decodes the entries and recomputes the tree once.
    """
    try:
        log_key = Ed25519Verifier.from_vkey(t.log_key)
    except HotlineError as exc:
        raise TranscriptError("log key", exc.message, code=exc.code) from None
    cps = _open_checkpoints(t, log_key)

    futures = []
    if executor is not None and verify_entry is not None:
        futures = [
            executor.submit(_check_chunk, verify_entry, s, t.entries[s : s + chunk_size])
            for s in range(0, len(t.entries), max(1, chunk_size))
        ]
    entries, decode_failure = _decode_all(t)
    hook_failure = None
    if verify_entry is not None and not futures:
        hook_failure = _run_hook(verify_entry, entries)
    root, bad_cp = _walk_tree(t, cps)
    for fut in futures:
        hook_failure = _earliest(hook_failure, fut.result())
    failure = _earliest(decode_failure, hook_failure)

    if bad_cp is not None and (failure is None or cps[bad_cp[0]].size <= failure[0]):
        ci, reason = bad_cp
        raise TranscriptError(f"checkpoint {ci}", reason, code="bad_root", checkpoint=ci)
    if failure is not None:
        index, code, message = failure
        raise TranscriptError(f"entry {index}", message, code=code, entry=index)

    _check_proofs(t, cps)
    cosigs = _check_cosignatures(t, cps)
    attested = max((cp.size for cp in cps), default=0)
    return TranscriptReport(
        transcript=t,
        entries=entries,
        root=root,
        checkpoints=tuple(cps),
        cosignatures=cosigs,
        unattested=len(t.entries) - attested,
        attested_size=attested,
    )


def _run_hook(hook: EntryHook, entries: Sequence[Entry]) -> Failure | None:
    for i, entry in enumerate(entries):
        try:
            hook(i, entry)
        except HotlineError as exc:
            return i, exc.code, exc.message
        except ValueError as exc:
            return i, "bad_entry", str(exc)
    return None


def _walk_tree(t: Transcript, cps: Sequence[Checkpoint]) -> tuple[bytes, tuple[int, str] | None]:
    """One O(n) pass: the root of all entries, and the first checkpoint (by size) that
    the entries do not support, as (checkpoint index, reason)."""
    by_size = sorted(range(len(cps)), key=lambda i: cps[i].size)
    frontier: list[bytes] = []
    pos = attested = 0
    bad: tuple[int, str] | None = None
    for ci in by_size:
        target = cps[ci].size
        if target > len(t.entries):
            bad = (ci, f"claims size {target} but the transcript has {len(t.entries)} entries")
            break
        while pos < target:
            frontier_append(pos, frontier, leaf_hash(t.entries[pos]))
            pos += 1
        if frontier_root(frontier) != cps[ci].root:
            bad = (
                ci,
                f"root for size {target} does not match the entries (entries "
                f"{attested}..{target - 1} differ from what the log signed)",
            )
            break
        attested = target
    while pos < len(t.entries):
        frontier_append(pos, frontier, leaf_hash(t.entries[pos]))
        pos += 1
    return frontier_root(frontier), bad


def _open_checkpoints(t: Transcript, log_key: Ed25519Verifier) -> list[Checkpoint]:
    cps: list[Checkpoint] = []
    seen: dict[int, int] = {}
    for i, note in enumerate(t.checkpoints):
        try:
            cp = open_checkpoint(note, [log_key]).checkpoint
        except HotlineError as exc:
            raise TranscriptError(
                f"checkpoint {i}", exc.message, code=exc.code, checkpoint=i
            ) from None
        j = seen.get(cp.size)
        if j is not None and cps[j].root != cp.root:
            raise CheckpointFork(
                f"checkpoints {j} and {i}: the log signed two roots for size {cp.size}",
                t.checkpoints[j],
                note,
            )
        seen.setdefault(cp.size, i)
        cps.append(cp)
    return cps


def _decode_all(t: Transcript) -> tuple[tuple[Entry, ...], Failure | None]:
    """Decode entries up to the first failure; a second record of one envelope (same
    kind, peer, sequence number and hash) is a failure: the ledger logs each once."""
    entries: list[Entry] = []
    seen: dict[tuple[int, str, int, bytes], int] = {}
    for i, raw in enumerate(t.entries):
        try:
            entry = Entry.decode(raw)
        except HotlineError as exc:
            return tuple(entries), (i, exc.code, exc.message)
        entries.append(entry)
        if entry.kind in (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN):
            key = (int(entry.kind), entry.peer, entry.peer_seq, entry.envelope_hash)
            j = seen.setdefault(key, i)
            if j != i:
                msg = f"records the same envelope as entry {j} (logged twice)"
                return tuple(entries), (i, "duplicate_entry", msg)
    return tuple(entries), None


def _check_proofs(t: Transcript, cps: Sequence[Checkpoint]) -> None:
    for i, p in enumerate(t.proofs):
        where = f"proof {i} (checkpoint {p.old} -> {p.new})"
        if not (0 <= p.old < len(cps) and 0 <= p.new < len(cps)):
            raise TranscriptError(where, "names a checkpoint not in the transcript")
        a, b = cps[p.old], cps[p.new]
        try:
            verify_consistency(a.size, b.size, p.proof, a.root, b.root)
        except HotlineError as exc:
            raise TranscriptError(where, exc.message, code=exc.code) from None


def _check_cosignatures(
    t: Transcript, cps: Sequence[Checkpoint]
) -> tuple[tuple[int, Cosignature], ...]:
    out: list[tuple[int, Cosignature]] = []
    for i, c in enumerate(t.cosignatures):
        where = f"cosignature {i} (checkpoint {c.checkpoint})"
        if not 0 <= c.checkpoint < len(cps):
            raise TranscriptError(where, "names a checkpoint not in the transcript")
        try:
            cosigner = CosignatureVerifier.from_vkey(c.cosigner)
            out.append((c.checkpoint, cosigner.verify_line(cps[c.checkpoint].format(), c.line)))
        except HotlineError as exc:
            raise TranscriptError(where, exc.message, code=exc.code) from None
    return tuple(out)


# --- cross-check --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """Envelopes one side logged as sent that the other did not log as received.

    Each item is ``(peer_seq, envelope_hash)``. ``*_unsent`` are envelopes one side
    logged as received that the other never logged as sent (forgery or a gap in the
    sender's log); ``conflicts`` are sequence numbers both logged with different hashes.
    """

    a: str
    b: str
    a_to_b_missing: tuple[tuple[int, bytes], ...]
    b_to_a_missing: tuple[tuple[int, bytes], ...]
    b_received_unsent: tuple[tuple[int, bytes], ...]
    a_received_unsent: tuple[tuple[int, bytes], ...]
    conflicts: tuple[tuple[str, int], ...]

    @property
    def clean(self) -> bool:
        return not (
            self.a_to_b_missing
            or self.b_to_a_missing
            or self.b_received_unsent
            or self.a_received_unsent
            or self.conflicts
        )


def _keys(r: TranscriptReport, kind: EntryKind, peer: str) -> dict[int, bytes]:
    return {e.peer_seq: e.envelope_hash for e in r.entries if e.kind == kind and e.peer == peer}


def _diff(sent: dict[int, bytes], got: dict[int, bytes]) -> tuple[tuple[int, bytes], ...]:
    return tuple(sorted((s, h) for s, h in sent.items() if got.get(s) != h))


def cross_check(a: TranscriptReport, b: TranscriptReport) -> CrossCheck:
    """Match a's ENVELOPE_OUT to b (peer = b.station) with b's ENVELOPE_IN, both ways.

    Takes verified reports so that nothing unverified is compared.
    """
    a_out = _keys(a, EntryKind.ENVELOPE_OUT, b.station)
    b_in = _keys(b, EntryKind.ENVELOPE_IN, a.station)
    b_out = _keys(b, EntryKind.ENVELOPE_OUT, a.station)
    a_in = _keys(a, EntryKind.ENVELOPE_IN, b.station)
    conflicts = [
        (f"{a.station}->{b.station}", s) for s in a_out if s in b_in and b_in[s] != a_out[s]
    ]
    conflicts += [
        (f"{b.station}->{a.station}", s) for s in b_out if s in a_in and a_in[s] != b_out[s]
    ]
    return CrossCheck(
        a=a.station,
        b=b.station,
        a_to_b_missing=_diff(a_out, b_in),
        b_to_a_missing=_diff(b_out, a_in),
        b_received_unsent=_diff(b_in, a_out),
        a_received_unsent=_diff(a_in, b_out),
        conflicts=tuple(sorted(conflicts)),
    )
