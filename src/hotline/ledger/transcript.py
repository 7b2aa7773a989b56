"""Transcripts: a station's ledger exported for offline verification by a third party.

Owns: the JSON transcript format (documented in docs/transcript.md), its strict
parsing, :func:`verify_transcript` (every entry, every checkpoint signature and root,
every consistency proof and cosignature, one envelope per lane and sequence number,
every receipt matched to a sent envelope, the whole transcript attested by a signed
checkpoint) and :func:`cross_check` (two stations' transcripts against each other:
equivocation, forks, receipts against the peer's entries, stale transcripts, what one
side sent that the other did not log). Must not touch: envelope decoding (the caller's
``verify_entry`` or ``verify_chunk`` hook does envelope checks, the caller extracts
receipts and held notes for the cross-check), storage, the network.

Verification walks in this order and raises on the FIRST failure, naming it:
log key; checkpoints (signature, origin, size against the entry count, forks) in
listed order; then leaf order, where entry ``i`` (decode, duplicate, equivocation,
receipt without its envelope, hook) and the root of each checkpoint at its size are
checked as the walk passes them; then the consistency proofs; then the cosignatures;
last, entries after the largest signed checkpoint (``unattested``, unless the caller
accepts them). Merkle recomputation is one O(n) pass in the calling process; entry
hooks (per decoded entry, or per chunk of entry bytes) may run in parallel chunks on an
``Executor``, submitted before this process decodes anything so that both overlap, or
be started by the caller before it calls (:class:`ChunkChecks`).

Invariant of a report: within one transcript each (kind, peer, sequence number) holds
at most one envelope, so later lookups keyed by sequence number lose nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Protocol

from hotline.errors import HotlineError, TrustError
from hotline.ledger.checkpoint import Checkpoint, CheckpointFork, open_checkpoint
from hotline.ledger.cosignature import Cosignature, CosignatureVerifier
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.merkle import frontier_append, frontier_root, verify_consistency
from hotline.ledger.note import Ed25519Verifier

FORMAT = "hotline-transcript/v1"
EntryHook = Callable[[int, Entry], None]
#: ``(start, raw entries) -> first failure as (index, code, message) or None``: checks a
#: chunk of entry bytes beginning at index ``start`` (may run in a worker process)
ChunkHook = Callable[[int, Sequence[bytes]], "tuple[int, str, str] | None"]


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


class EquivocationError(TranscriptError):
    """Two different envelopes signed by one station for one recipient and sequence
    number; ``first`` and ``second`` are both envelopes, verbatim (evidence)."""

    code = "equivocation"

    def __init__(self, where: str, message: str, first: bytes, second: bytes, **kw: int) -> None:
        super().__init__(where, message, code="equivocation", **kw)
        self.first = first
        self.second = second


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
    try:  # strict: the alphabet only, padding only at the end, whole quanta
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise TranscriptError(where, "not base64", code="bad_transcript") from None


def _b64d_all(texts: list[object]) -> tuple[bytes, ...]:
    """Every entry's bytes; one C call each while all are good, else the first bad one
    is named (the same check as :func:`_b64d`)."""
    a2b = binascii.a2b_base64
    try:
        return tuple([a2b(text.encode("ascii"), strict_mode=True) for text in texts])  # type: ignore[attr-defined]
    except (AttributeError, UnicodeEncodeError, binascii.Error, ValueError):
        return tuple(_b64d(e, f"entry {i}") for i, e in enumerate(texts))


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
    entries = _b64d_all(raw_entries)
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
    unattested: int  #: entries beyond the largest signed checkpoint (0 unless accepted)
    attested_size: int = field(default=0)
    leaf_hashes: tuple[bytes, ...] = ()  #: RFC 9162 leaf hash of each entry

    @property
    def station(self) -> str:
        return self.transcript.station

    def roots_at(self, sizes: Iterable[int]) -> dict[int, bytes]:
        """The tree root at each size up to the number of entries (one pass)."""
        out: dict[int, bytes] = {}
        frontier: list[bytes] = []
        pos = 0
        for size in sorted({s for s in sizes if 0 <= s <= len(self.leaf_hashes)}):
            while pos < size:
                frontier_append(pos, frontier, self.leaf_hashes[pos])
                pos += 1
            out[size] = frontier_root(frontier)
        return out


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


Failure = tuple[int, TranscriptError]


def _entry_failure(index: int, code: str, message: str) -> Failure:
    return index, TranscriptError(f"entry {index}", message, code=code, entry=index)


def _earliest(*failures: Failure | None) -> Failure | None:
    """The failure at the lowest index; on a tie, the one listed first."""
    found = [f for f in failures if f is not None]
    return min(found, key=lambda f: f[0]) if found else None


class ChunkChecks(Protocol):
    """Checks of every entry's bytes, chunk by chunk, already under way elsewhere (for
    example in processes forked for them: ``hotline.service.transcripts``)."""

    def finish(self) -> tuple[int, str, str] | None:
        """Wait for every chunk; the first failure of all entries, or None."""


def verify_transcript(
    t: Transcript,
    verify_entry: EntryHook | None = None,
    *,
    executor: Executor | None = None,
    chunk_size: int = 2048,
    accept_unattested: bool = False,
    verify_chunk: ChunkHook | None = None,
    running: ChunkChecks | None = None,
) -> TranscriptReport:
    """Verify everything in ``t``; return the report or raise for the first bad item.

    ``verify_entry(index, entry)`` raises a ``HotlineError`` (or ``ValueError``) for a
    bad entry, e.g. an envelope whose signature does not verify. With an ``executor``
    the hook runs on chunks of entries in parallel (it must then be picklable: a
    module-level function or a ``functools.partial`` of one) while this process
    decodes the entries and recomputes the tree once.

    ``verify_chunk(start, raws)``, if given, replaces ``verify_entry``: it checks entry
    bytes a chunk at a time and returns the first failure (with an ``executor``, chunks
    are submitted before this process decodes anything, so that workers check
    signatures while it decodes and rebuilds the tree; then it cancels the chunks no
    worker has started and checks them itself, so no core waits for the last one).
    With ``running`` instead (checks of every entry's bytes already started, e.g. by
    workers forked once the caller had parsed the transcript), no hook runs here: this
    process decodes and rebuilds the tree, then takes the first failure that
    ``running.finish()`` names.

    Entries after the largest signed checkpoint are refused (``unattested``) unless
    ``accept_unattested``; the report then counts them in ``unattested``.
    """
    try:
        log_key = Ed25519Verifier.from_vkey(t.log_key)
    except HotlineError as exc:
        raise TranscriptError("log key", exc.message, code=exc.code) from None
    cps = _open_checkpoints(t, log_key)

    futures = []
    step = max(1, chunk_size)
    starts = range(0, len(t.entries), step)
    if executor is not None and verify_chunk is not None:
        futures = [executor.submit(verify_chunk, s, t.entries[s : s + step]) for s in starts]
    elif executor is not None and verify_entry is not None:
        futures = [
            executor.submit(_check_chunk, verify_entry, s, t.entries[s : s + step])
            for s in range(0, len(t.entries), step)
        ]
    entries, decode_failure, structural = _decode_all(t)
    hook_failure = None
    if verify_chunk is not None and not futures and running is None:
        got = verify_chunk(0, t.entries)
        hook_failure = None if got is None else _entry_failure(*got)
    elif verify_entry is not None and not futures:
        hook_failure = _run_hook(verify_entry, entries)
    root, hashes, bad_cp = _walk_tree(t, cps)
    if running is not None:
        got = running.finish()
        hook_failure = None if got is None else _entry_failure(*got)
    if verify_chunk is not None and futures:
        # this process is done with its own work: it takes the chunks no worker has
        # started yet, last first, so that no core idles while another finishes
        for s, fut in reversed(list(zip(starts, futures, strict=True))):
            if fut.cancel():
                got = verify_chunk(s, t.entries[s : s + step])
                hook_failure = _earliest(
                    hook_failure, None if got is None else _entry_failure(*got)
                )
    for fut in futures:
        if fut.cancelled():
            continue
        got = fut.result()
        hook_failure = _earliest(hook_failure, None if got is None else _entry_failure(*got))
    # a hook failure (e.g. a bad signature) names an entry before a decode failure does
    failure = _earliest(hook_failure, decode_failure)

    if bad_cp is not None and (failure is None or cps[bad_cp[0]].size <= failure[0]):
        ci, code, reason = bad_cp
        raise TranscriptError(f"checkpoint {ci}", reason, code=code, checkpoint=ci)
    if failure is not None:
        raise failure[1]

    _check_proofs(t, cps)
    cosigs = _check_cosignatures(t, cps)
    attested = max((cp.size for cp in cps), default=0)
    # What the entries say of each other (equivocation, a receipt without its envelope)
    # is the station's signed statement only where the roots hold and the log signed it.
    if structural is not None and structural[0] < attested:
        raise structural[1]
    unattested = len(t.entries) - attested
    if unattested and not accept_unattested:
        raise TranscriptError(
            f"entries {attested}..{len(t.entries) - 1}",
            f"{unattested} entries after the largest signed checkpoint (size {attested}) "
            "are attested by no signature: they could have been added, dropped, reordered "
            "or edited by anyone",
            code="unattested",
            entry=attested,
        )
    if structural is not None:
        raise structural[1]
    return TranscriptReport(
        transcript=t,
        entries=entries,
        root=root,
        checkpoints=tuple(cps),
        cosignatures=cosigs,
        unattested=unattested,
        attested_size=attested,
        leaf_hashes=hashes,
    )


def _run_hook(hook: EntryHook, entries: Sequence[Entry]) -> Failure | None:
    for i, entry in enumerate(entries):
        try:
            hook(i, entry)
        except HotlineError as exc:
            return _entry_failure(i, exc.code, exc.message)
        except ValueError as exc:
            return _entry_failure(i, "bad_entry", str(exc))
    return None


def _walk_tree(
    t: Transcript, cps: Sequence[Checkpoint]
) -> tuple[bytes, tuple[bytes, ...], tuple[int, str, str] | None]:
    """One O(n) pass: the root of all entries, every leaf hash, and the first checkpoint
    (by size) that the entries do not support, as (checkpoint index, code, reason)."""
    sha = hashlib.sha256  # merkle.leaf_hash and frontier_append, inlined (per entry)
    hashes = tuple([sha(b"\x00" + raw).digest() for raw in t.entries])
    by_size = sorted(range(len(cps)), key=lambda i: cps[i].size)
    frontier: list[bytes] = []
    pos = attested = 0

    def append_upto(target: int) -> None:
        nonlocal pos
        for p in range(pos, target):
            carry, n = hashes[p], p
            while n & 1:
                carry = sha(b"\x01" + frontier.pop() + carry).digest()
                n >>= 1
            frontier.append(carry)
        pos = max(pos, target)

    bad: tuple[int, str, str] | None = None
    for ci in by_size:
        target = cps[ci].size
        if target > len(hashes):
            bad = (
                ci,
                "missing_entries",
                f"claims size {target} but the transcript has {len(hashes)} entries "
                f"(entries {len(hashes)}..{target - 1} were dropped)",
            )
            break
        append_upto(target)
        if frontier_root(frontier) != cps[ci].root:
            bad = (
                ci,
                "bad_root",
                f"root for size {target} does not match the entries (entries "
                f"{attested}..{target - 1} differ from what the log signed: changed, "
                "reordered, dropped or inserted)",
            )
            break
        attested = target
    append_upto(len(hashes))
    return frontier_root(frontier), hashes, bad


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


_LANES = (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN)


def _decode_all(t: Transcript) -> tuple[tuple[Entry, ...], Failure | None, Failure | None]:
    """Decode entries up to the first failure; and the first structural failure before
    it. Each lane (kind, peer, sequence number) holds one envelope: the same envelope
    twice is ``duplicate_entry``, two different ones ``equivocation`` (with both). A
    receipt must follow the envelope it receipts (same peer, sequence number and hash)
    or it is ``receipt_unsent``."""
    entries: list[Entry] = []
    lanes: dict[tuple[int, str, int], int] = {}
    structural: Failure | None = None
    for i, raw in enumerate(t.entries):
        try:
            entry = Entry.decode(raw)
        except HotlineError as exc:
            return tuple(entries), _entry_failure(i, exc.code, exc.message), structural
        entries.append(entry)
        if structural is None:
            structural = _structure(t.station, entries, lanes, i, entry)
    return tuple(entries), None, structural


def _structure(
    station: str,
    entries: list[Entry],
    lanes: dict[tuple[int, str, int], int],
    i: int,
    entry: Entry,
) -> Failure | None:
    """Entry ``i`` against the lanes before it (and added to them)."""
    kind = entry.kind
    if kind in _LANES:
        j = lanes.setdefault((int(kind), entry.peer, entry.peer_seq), i)
        if j == i:
            return None
        first = entries[j]
        if first.envelope_hash == entry.envelope_hash:
            msg = f"records the same envelope as entry {j} (logged twice)"
            return _entry_failure(i, "duplicate_entry", msg)
        out = kind is EntryKind.ENVELOPE_OUT
        sender, recipient = (station, entry.peer) if out else (entry.peer, station)
        equivocation = EquivocationError(
            f"entry {i}",
            f"equivocation: {sender} signed two different envelopes for {recipient} "
            f"with sequence number {entry.peer_seq} (entries {j} and {i})",
            first.data,
            entry.data,
            entry=i,
        )
        return i, equivocation
    if kind is EntryKind.RECEIPT_IN:
        j_out = lanes.get((int(EntryKind.ENVELOPE_OUT), entry.peer, entry.peer_seq))
        if j_out is None or entries[j_out].envelope_hash != entry.envelope_hash:
            msg = (
                f"a receipt from {entry.peer} for sequence number {entry.peer_seq} with "
                "no matching envelope sent before it"
            )
            return _entry_failure(i, "receipt_unsent", msg)
    return None


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
class ReceiptClaim:
    """A receipt the holder logged (``RECEIPT_IN`` entry ``entry``), signed by the other
    station: its statement that it logged the holder's envelope (``sequence``,
    ``envelope_hash``) at ``leaf_index`` of its log, in a tree of ``tree_size`` entries,
    with ``recorded_at`` = ``stored_at_us``. ``raw`` is the receipt envelope verbatim."""

    entry: int
    raw: bytes
    sequence: int
    envelope_hash: bytes
    leaf_index: int
    tree_size: int
    stored_at_us: int


@dataclass(frozen=True, slots=True)
class HeldNote:
    """A signed note of the other station's log kept in the holder's entry ``entry``
    (a checkpoint it cosigned, or one side of fork evidence), verbatim."""

    entry: int
    note: str


@dataclass(frozen=True, slots=True)
class Side:
    """One verified transcript, with what it holds that the other station signed."""

    report: TranscriptReport
    receipts: tuple[ReceiptClaim, ...] = ()  #: receipts from the other station
    notes: tuple[HeldNote, ...] = ()  #: notes of the other station's log

    @property
    def station(self) -> str:
        return self.report.station


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the two transcripts show: ``code`` names it (docs/transcript.md),
    ``station`` is the station whose log or signed statement it is about, ``evidence``
    holds what a third party needs to check it (signed notes verbatim, envelopes and
    entries as base64)."""

    code: str
    station: str
    message: str
    sequence: int | None = None
    evidence: tuple[str, ...] = ()


#: the order findings are listed in (most serious first)
FINDING_ORDER = (
    "fork",
    "equivocation",
    "receipt_mismatch",
    "bad_held_note",
    "stale_transcript",
    "received_unsent",
    "not_received",
)


@dataclass(frozen=True, slots=True)
class CrossCheck:
    """What comparing two verified transcripts found; ``clean`` when nothing."""

    a: str
    b: str
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        return not self.findings

    @property
    def codes(self) -> set[str]:
        return {f.code for f in self.findings}

    def of(self, code: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.code == code)


def _lane(r: TranscriptReport, kind: EntryKind, peer: str) -> dict[int, int]:
    """Sequence number -> entry index of one lane (unique: ``verify_transcript``)."""
    return {e.peer_seq: i for i, e in enumerate(r.entries) if e.kind == kind and e.peer == peer}


def cross_check(a: Side, b: Side) -> CrossCheck:
    """Compare two verified transcripts of the two ends of one line (both ways).

    Forks (each station's signed notes held by the other, against its own checkpoints
    and entries), equivocation (one sequence number, two envelopes, both signed by the
    sender), receipts (each against the entry the receipt names in the other's log),
    stale transcripts (one ends before what the other holds from it shows it had
    reached), then what one side sent that the other did not log. Once a fork is
    found, the two logs are not compared message by message: the fork is the finding.
    """
    found: list[Finding] = []
    stale: dict[str, list[str]] = {}
    for x, y in ((a, b), (b, a)):
        found += _forks(x, y, stale)
    for x, y in ((a, b), (b, a)):
        found += _equivocation(x, y)
        found += _receipts(x, y, stale)
    if not any(f.code == "fork" for f in found):
        for x, y in ((a, b), (b, a)):
            found += _missing(x, y, stale)
    for station, reasons in stale.items():
        more = f" (and {len(reasons) - 1} more signs of it)" if len(reasons) > 1 else ""
        found.append(
            Finding(
                "stale_transcript",
                station,
                f"{station}'s transcript is older than what the other holds from it: "
                f"{reasons[0]}{more}; compare with a newer export of {station}",
            )
        )
    found.sort(key=lambda f: FINDING_ORDER.index(f.code))
    return CrossCheck(a.station, b.station, tuple(found))


def _forks(x: Side, y: Side, stale: dict[str, list[str]]) -> list[Finding]:
    """``x``'s signed notes, its own and those ``y`` holds, against each other and
    against ``x``'s entries."""
    r = x.report
    log_key = Ed25519Verifier.from_vkey(r.transcript.log_key)
    own = list(zip(r.checkpoints, r.transcript.checkpoints, strict=True))
    notes = [(f"{x.station}'s checkpoint {i}", cp, n) for i, (cp, n) in enumerate(own)]
    out: list[Finding] = []
    for h in y.notes:
        try:
            cp = open_checkpoint(h.note, [log_key]).checkpoint
        except HotlineError as exc:
            out.append(
                Finding(
                    "bad_held_note",
                    y.station,
                    f"{y.station}'s entry {h.entry} holds a note of {x.station}'s log that "
                    f"does not open with {x.station}'s log key ({exc.code})",
                    evidence=(h.note,),
                )
            )
            continue
        notes.append((f"{y.station}'s entry {h.entry}", cp, h.note))
    n = len(r.entries)
    roots = r.roots_at(cp.size for _, cp, _ in notes)
    first: dict[int, tuple[str, Checkpoint, str]] = {}
    forked: set[int] = set()
    for where, cp, note in notes:
        held = first.setdefault(cp.size, (where, cp, note))
        if held[1].root != cp.root:
            if cp.size not in forked:
                forked.add(cp.size)
                out.append(
                    Finding(
                        "fork",
                        x.station,
                        f"{x.station}'s log signed two roots for size {cp.size} ({held[0]} "
                        f"and {where})",
                        evidence=(held[2], note),
                    )
                )
            continue
        if cp.size > n:
            stale.setdefault(x.station, []).append(
                f"{where} is {x.station}'s checkpoint at size {cp.size}, but its transcript "
                f"ends at {n} entries"
            )
        elif roots[cp.size] != cp.root and cp.size not in forked:
            forked.add(cp.size)
            later = [(c.size, nt) for c, nt in own if c.size >= cp.size]
            covering = min(later)[1] if later else None
            out.append(
                Finding(
                    "fork",
                    x.station,
                    f"{where}: {x.station}'s signed root for size {cp.size} is not the root "
                    f"of the first {cp.size} entries of its transcript"
                    + ("" if covering is None else ", which a later checkpoint of its own signs"),
                    evidence=(note,) if covering is None else (note, covering),
                )
            )
    return out


def _equivocation(x: Side, y: Side) -> list[Finding]:
    """``x``'s envelopes as ``x`` logged them sent and as ``y`` logged them received:
    both verified as ``x``'s signature, so two hashes for one sequence number are two
    envelopes ``x`` signed."""
    xr, yr = x.report, y.report
    sent = _lane(xr, EntryKind.ENVELOPE_OUT, y.station)
    got = _lane(yr, EntryKind.ENVELOPE_IN, x.station)
    out: list[Finding] = []
    for seq in sorted(sent.keys() & got.keys()):
        mine, theirs = xr.entries[sent[seq]], yr.entries[got[seq]]
        if mine.envelope_hash != theirs.envelope_hash:
            out.append(
                Finding(
                    "equivocation",
                    x.station,
                    f"{x.station} signed two different envelopes for {y.station} with "
                    f"sequence number {seq}: {x.station}'s entry {sent[seq]} and "
                    f"{y.station}'s entry {got[seq]}",
                    sequence=seq,
                    evidence=(_b64e(mine.data), _b64e(theirs.data)),
                )
            )
    return out


def _receipts(x: Side, y: Side, stale: dict[str, list[str]]) -> list[Finding]:
    """Each receipt ``x`` holds is ``y``'s signed statement about ``y``'s log: the entry
    it names must be ``x``'s envelope, received, at the time the receipt gives."""
    yr = y.report
    n = len(yr.entries)
    out: list[Finding] = []
    for rc in x.receipts:
        what = (
            f"{y.station}'s receipt in {x.station}'s entry {rc.entry} (sequence "
            f"{rc.sequence}) names leaf {rc.leaf_index} of a tree of size {rc.tree_size}"
        )
        if rc.leaf_index >= rc.tree_size:
            out.append(_mismatch(y.station, rc, f"{what}: no such leaf", ()))
            continue
        if rc.tree_size > n:
            stale.setdefault(y.station, []).append(f"{what}; its transcript ends at {n} entries")
            continue
        e = yr.entries[rc.leaf_index]
        if not (
            e.kind is EntryKind.ENVELOPE_IN
            and e.peer == x.station
            and e.peer_seq == rc.sequence
            and e.envelope_hash == rc.envelope_hash
            and e.recorded_at_us == rc.stored_at_us
        ):
            entry = _b64e(yr.transcript.entries[rc.leaf_index])
            why = f"{what}, but that entry is not the envelope it receipts"
            out.append(_mismatch(y.station, rc, why, (entry,)))
    return out


def _mismatch(station: str, rc: ReceiptClaim, message: str, more: tuple[str, ...]) -> Finding:
    return Finding(
        "receipt_mismatch", station, message, sequence=rc.sequence, evidence=(_b64e(rc.raw), *more)
    )


def _missing(x: Side, y: Side, stale: dict[str, list[str]]) -> list[Finding]:
    """``x``'s envelopes to ``y`` against ``y``'s log of them, after forks, equivocation
    and receipts: an end of a log that stops early is a stale transcript, not a lie."""
    xr, yr = x.report, y.report
    sent = _lane(xr, EntryKind.ENVELOPE_OUT, y.station)
    got = _lane(yr, EntryKind.ENVELOPE_IN, x.station)
    receipted = {rc.sequence for rc in x.receipts if rc.tree_size > len(yr.entries)}
    last_sent = max(sent, default=0)
    out: list[Finding] = []
    for seq in sorted(sent.keys() - got.keys()):
        if seq in receipted:
            continue  # y's transcript ends before the tree its receipt names: stale
        out.append(
            Finding(
                "not_received",
                y.station,
                f"{x.station}'s envelope {seq} to {y.station} is not in {y.station}'s log "
                "(still in flight when it was exported, or never received)",
                sequence=seq,
                evidence=(_b64e(xr.entries[sent[seq]].data),),
            )
        )
    for seq in sorted(got.keys() - sent.keys()):
        if seq > last_sent:
            stale.setdefault(x.station, []).append(
                f"{y.station} logged {x.station}'s envelope {seq} (signed by {x.station}) "
                f"and {x.station}'s transcript ends at envelope {last_sent} to {y.station}"
            )
            continue
        out.append(
            Finding(
                "received_unsent",
                x.station,
                f"{y.station} logged {x.station}'s envelope {seq}, signed by {x.station}, "
                f"that {x.station}'s log does not hold as sent",
                sequence=seq,
                evidence=(_b64e(yr.entries[got[seq]].data),),
            )
        )
    return out
