"""Transcripts: build two stations' logs, verify, tamper each way, cross-check."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives
from hotline.errors import ForkError, HotlineError, SignatureError
from hotline.ledger import checkpoint as c
from hotline.ledger import cosignature as co
from hotline.ledger import merkle, tree
from hotline.ledger import note as n
from hotline.ledger import transcript as tr
from hotline.ledger.entry import Entry, EntryKind

SEEDS = {"alpha": b"A" * 32, "bravo": b"B" * 32}
PUBLIC = {k: primitives.signing_public_key(v) for k, v in SEEDS.items()}
LOGS = {k: n.NoteSigner(f"{k}.example/log", v) for k, v in SEEDS.items()}
COSIGNERS = {
    k: co.Cosigner(f"{k}.example/witness", bytes([v[0] + 1]) * 32) for k, v in SEEDS.items()
}


def envelope_hook(index: int, entry: Entry) -> None:
    """Test envelope check: data = signature(64) || body, signed by the sender."""
    if entry.kind not in (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN):
        return
    sender = entry.peer if entry.kind == EntryKind.ENVELOPE_IN else _station_of(entry)
    primitives.verify(PUBLIC[sender], entry.data[:64], b"env", entry.data[64:])
    if hashlib.sha256(entry.data).digest() != entry.envelope_hash:
        raise SignatureError("envelope hash does not match")


def _station_of(entry: Entry) -> str:
    return "bravo" if entry.peer == "alpha" else "alpha"


def envelope(sender: str, seq: int, text: str) -> bytes:
    body = f"{sender}:{seq}:{text}".encode()
    return primitives.sign(SEEDS[sender], b"env", body) + body


def out_entry(me: str, peer: str, seq: int, text: str = "hello") -> Entry:
    data = envelope(me, seq, text)
    return Entry(EntryKind.ENVELOPE_OUT, peer, seq, hashlib.sha256(data).digest(), seq, data)


def in_entry(me: str, peer: str, seq: int, text: str = "hello") -> Entry:
    data = envelope(peer, seq, text)
    return Entry(EntryKind.ENVELOPE_IN, peer, seq, hashlib.sha256(data).digest(), seq, data)


def receipt_entry(peer: str, seq: int) -> Entry:
    """A receipt entry (its envelope is not checked by the test hook)."""
    return Entry(EntryKind.RECEIPT_IN, peer, seq, hashlib.sha256(b"%d" % seq).digest(), seq, b"r")


def local_entry(i: int) -> Entry:
    return Entry(EntryKind.OPERATOR_ACTION, "", 0, bytes(32), i, b'{"action":"login"}')


def build(me: str, entries: list[Entry], sizes: tuple[int, ...] = (3, 6, 10)) -> tr.Transcript:
    raws = [e.encode() for e in entries]
    t = tree.MemoryTree()
    t.append(merkle.leaf_hash(r) for r in raws)
    log, peer = LOGS[me], "bravo" if me == "alpha" else "alpha"
    notes = [c.sign_checkpoint(c.Checkpoint(log.name, s, t.root(s)), log) for s in sizes]
    cosigs = [
        tr.TranscriptCosignature(
            i,
            COSIGNERS[peer].verifier.vkey,
            COSIGNERS[peer]
            .cosign(c.open_checkpoint(note, [log.verifier]).checkpoint.format(), 1_700_000_000 + i)
            .line(),
        )
        for i, note in enumerate(notes)
    ]
    proofs = [
        tr.TranscriptProof(i, i + 1, tuple(t.consistency_proof(sizes[i], sizes[i + 1])))
        for i in range(len(sizes) - 1)
    ]
    return tr.Transcript(
        me,
        b"card:" + me.encode(),
        log.verifier.vkey,
        tuple(raws),
        tuple(notes),
        tuple(cosigs),
        tuple(proofs),
    )


def alpha_entries() -> list[Entry]:
    return [
        local_entry(0),
        out_entry("alpha", "bravo", 1),
        in_entry("alpha", "bravo", 1),
        out_entry("alpha", "bravo", 2),
        out_entry("alpha", "bravo", 3, "strike notice"),
        in_entry("alpha", "bravo", 2),
        local_entry(6),
        out_entry("alpha", "bravo", 4),
        local_entry(8),
        local_entry(9),
        out_entry("alpha", "bravo", 5),
    ]


ALPHA = build("alpha", alpha_entries())


def test_entries_after_the_last_signed_checkpoint_are_refused_unless_accepted() -> None:
    with pytest.raises(tr.TranscriptError) as e:
        tr.verify_transcript(ALPHA, envelope_hook)
    assert (e.value.code, e.value.entry, e.value.where) == ("unattested", 10, "entries 10..10")
    report = tr.verify_transcript(ALPHA, envelope_hook, accept_unattested=True)
    assert (report.unattested, report.attested_size) == (1, 10)
    whole = build("alpha", alpha_entries(), (3, 6, 11))
    assert tr.verify_transcript(whole, envelope_hook).unattested == 0


def test_a_clean_transcript_verifies_and_round_trips_through_json() -> None:
    report = tr.verify_transcript(ALPHA, envelope_hook, accept_unattested=True)
    assert [cp.size for cp in report.checkpoints] == [3, 6, 10]
    assert report.unattested == 1
    assert report.attested_size == 10
    assert len(report.cosignatures) == 3
    assert report.root == merkle.root_of(merkle.leaf_hash(r) for r in ALPHA.entries)
    again = tr.parse_transcript(ALPHA.to_json())
    assert again == ALPHA
    assert tr.verify_transcript(again, accept_unattested=True).root == report.root


def test_parallel_verification_gives_the_same_report() -> None:
    with ProcessPoolExecutor(2) as pool:
        report = tr.verify_transcript(
            ALPHA, envelope_hook, executor=pool, chunk_size=3, accept_unattested=True
        )
        assert (
            report.root == tr.verify_transcript(ALPHA, envelope_hook, accept_unattested=True).root
        )
        bad = _with_entries(
            ALPHA, {4: _flip_data(ALPHA.entries[4]), 9: _flip_data(ALPHA.entries[9])}
        )
        with pytest.raises(tr.TranscriptError) as e:
            tr.verify_transcript(bad, envelope_hook, executor=pool, chunk_size=2)
    assert e.value.entry == 4


def chunk_hook(start: int, raws: Sequence[bytes]) -> tuple[int, str, str] | None:
    """``envelope_hook`` over entry bytes, first failure returned (as a worker does)."""
    for i, raw in enumerate(raws, start):
        try:
            envelope_hook(i, Entry.decode(raw))
        except HotlineError as exc:
            return i, exc.code, exc.message
    return None


def test_a_chunk_hook_checks_every_entry_in_process_and_in_a_pool() -> None:
    bad = _with_entries(ALPHA, {4: _flip_data(ALPHA.entries[4]), 9: _flip_data(ALPHA.entries[9])})
    serial = tr.verify_transcript(ALPHA, accept_unattested=True, verify_chunk=chunk_hook)
    assert serial == tr.verify_transcript(ALPHA, envelope_hook, accept_unattested=True)
    with pytest.raises(tr.TranscriptError) as e:
        tr.verify_transcript(bad, verify_chunk=chunk_hook)
    assert (e.value.entry, e.value.code) == (4, "bad_signature")
    with ProcessPoolExecutor(2) as pool:
        report = tr.verify_transcript(
            ALPHA, executor=pool, chunk_size=3, accept_unattested=True, verify_chunk=chunk_hook
        )
        assert report == serial
        with pytest.raises(tr.TranscriptError) as e:
            tr.verify_transcript(bad, executor=pool, chunk_size=2, verify_chunk=chunk_hook)
    assert (e.value.entry, e.value.code) == (4, "bad_signature")


class _Ran:
    """Chunk checks run before ``verify_transcript`` was called (as forked workers do)."""

    def __init__(self, t: tr.Transcript) -> None:
        self.got = chunk_hook(0, t.entries)
        self.finished = False

    def finish(self) -> tuple[int, str, str] | None:
        self.finished = True
        return self.got


def test_chunk_checks_already_running_are_waited_for_and_name_their_failure() -> None:
    serial = tr.verify_transcript(ALPHA, accept_unattested=True, verify_chunk=chunk_hook)
    ran = _Ran(ALPHA)
    assert tr.verify_transcript(ALPHA, accept_unattested=True, running=ran) == serial
    assert ran.finished
    bad = _with_entries(ALPHA, {4: _flip_data(ALPHA.entries[4]), 9: _flip_data(ALPHA.entries[9])})
    with pytest.raises(tr.TranscriptError) as e:
        tr.verify_transcript(bad, running=_Ran(bad))
    assert (e.value.entry, e.value.code) == (4, "bad_signature")


def _flip_data(raw: bytes) -> bytes:
    return raw[:-1] + bytes([raw[-1] ^ 1])


def _with_entries(t: tr.Transcript, changes: dict[int, bytes]) -> tr.Transcript:
    entries = list(t.entries)
    for i, raw in changes.items():
        entries[i] = raw
    return dataclasses.replace(t, entries=tuple(entries))


def _entries(t: tr.Transcript, entries: list[bytes]) -> tr.Transcript:
    return dataclasses.replace(t, entries=tuple(entries))


E = list(ALPHA.entries)
OTHER_LOG = n.NoteSigner("alpha.example/log", b"Z" * 32)
FORK_NOTE = c.sign_checkpoint(c.Checkpoint("alpha.example/log", 6, bytes(32)), LOGS["alpha"])
TAMPER = [
    # (name, transcript, hook, where, code or None)
    (
        "byte changed, with envelope check",
        _with_entries(ALPHA, {4: _flip_data(E[4])}),
        True,
        "entry 4",
        None,
    ),
    (
        "byte changed, roots only",
        _with_entries(ALPHA, {4: _flip_data(E[4])}),
        False,
        "checkpoint 1",
        "bad_root",
    ),
    ("entry dropped", _entries(ALPHA, E[:4] + E[5:]), True, "checkpoint 1", "bad_root"),
    ("entry duplicated", _entries(ALPHA, [*E[:5], E[4], *E[5:]]), True, "checkpoint 1", "bad_root"),
    (
        "entry duplicated by the log itself (signed)",
        build("alpha", [*alpha_entries()[:5], alpha_entries()[4], *alpha_entries()[5:]]),
        True,
        "entry 5",
        "duplicate_entry",
    ),
    (
        "two envelopes for one sequence number (signed)",
        build("alpha", [*alpha_entries()[:5], out_entry("alpha", "bravo", 3, "other")], (3, 6)),
        True,
        "entry 5",
        "equivocation",
    ),
    (
        "two envelopes received for one sequence number (signed)",
        build("alpha", [*alpha_entries()[:6], in_entry("alpha", "bravo", 2, "other")], (3, 6, 7)),
        True,
        "entry 6",
        "equivocation",
    ),
    (
        "receipt for an envelope never sent (signed)",
        build("alpha", [*alpha_entries()[:6], receipt_entry("bravo", 7)], (3, 6, 7)),
        True,
        "entry 6",
        "receipt_unsent",
    ),
    (
        "unsigned tail",
        build("alpha", alpha_entries(), (3, 6)),
        True,
        "entries 6..10",
        "unattested",
    ),
    (
        "entries reordered",
        _entries(ALPHA, [*E[:4], E[5], E[4], *E[6:]]),
        True,
        "checkpoint 1",
        "bad_root",
    ),
    ("entry undecodable", _with_entries(ALPHA, {2: b"\x09garbage"}), False, "entry 2", "bad_entry"),
    (
        "entries missing for a checkpoint",
        _entries(ALPHA, E[:8]),
        False,
        "checkpoint 2",
        "missing_entries",
    ),
    (
        "checkpoint signature wrong",
        dataclasses.replace(
            ALPHA,
            checkpoints=(
                ALPHA.checkpoints[0],
                c.sign_checkpoint(
                    c.parse_checkpoint(n.parse_note(ALPHA.checkpoints[1]).text), OTHER_LOG
                ),
                ALPHA.checkpoints[2],
            ),
        ),
        False,
        "checkpoint 1",
        "unverified_note",
    ),
    (
        "checkpoint text altered",
        dataclasses.replace(
            ALPHA,
            checkpoints=(
                ALPHA.checkpoints[0],
                ALPHA.checkpoints[1].replace("\n6\n", "\n7\n"),
                ALPHA.checkpoints[2],
            ),
        ),
        False,
        "checkpoint 1",
        "bad_note_signature",
    ),
    (
        "cosignature wrong",
        dataclasses.replace(
            ALPHA, cosignatures=(dataclasses.replace(ALPHA.cosignatures[0], checkpoint=1),)
        ),
        False,
        "cosignature 0",
        None,
    ),
    (
        "cosignature by an unknown key type",
        dataclasses.replace(
            ALPHA,
            cosignatures=(
                dataclasses.replace(ALPHA.cosignatures[0], cosigner=LOGS["bravo"].verifier.vkey),
            ),
        ),
        False,
        "cosignature 0",
        "bad_key",
    ),
    (
        "wrong proof length",
        dataclasses.replace(
            ALPHA, proofs=(dataclasses.replace(ALPHA.proofs[0], proof=ALPHA.proofs[0].proof[:-1]),)
        ),
        False,
        "proof 0",
        "bad_proof_length",
    ),
    (
        "proof between unknown checkpoints",
        dataclasses.replace(ALPHA, proofs=(tr.TranscriptProof(0, 7, ()),)),
        False,
        "proof 0",
        None,
    ),
    ("log key garbage", dataclasses.replace(ALPHA, log_key="nope"), False, "log key", None),
]


@pytest.mark.parametrize(("name", "t", "hook", "where", "code"), TAMPER, ids=[x[0] for x in TAMPER])
def test_tampering_is_named(
    name: str, t: tr.Transcript, hook: bool, where: str, code: str | None
) -> None:
    with pytest.raises(tr.TranscriptError) as e:
        tr.verify_transcript(
            t, envelope_hook if hook else None, accept_unattested=code != "unattested"
        )
    assert e.value.where.startswith(where), str(e.value)
    assert str(e.value).startswith(where)
    if code is not None:
        assert e.value.code == code


def test_forked_checkpoint_is_a_fork_error_with_both_notes() -> None:
    t = dataclasses.replace(ALPHA, checkpoints=(*ALPHA.checkpoints, FORK_NOTE))
    with pytest.raises(c.CheckpointFork) as e:
        tr.verify_transcript(t)
    assert isinstance(e.value, ForkError)
    assert "checkpoints 1 and 3" in str(e.value)
    assert e.value.first == ALPHA.checkpoints[1]
    assert e.value.second == FORK_NOTE


@pytest.mark.parametrize(
    "doc",
    [
        "",
        "[]",
        "{}",
        '{"format": "hotline-transcript/v1"}',
        '{"format": "hotline-transcript/v1", "station": "a", "log_key": "k", "entries": [1],'
        ' "checkpoints": [], "card": ""}',
        '{"format": "hotline-transcript/v1", "station": "a", "log_key": "k", "entries": [],'
        ' "checkpoints": [1], "card": ""}',
        '{"format": "hotline-transcript/v1", "station": "a", "log_key": "k", "entries": [],'
        ' "checkpoints": [], "card": "!!"}',
        '{"format": "hotline-transcript/v1", "station": "a", "log_key": "k", "entries": [],'
        ' "checkpoints": [], "card": "", "cosignatures": [{"checkpoint": true}]}',
        '{"format": "hotline-transcript/v1", "station": "a", "log_key": "k", "entries": [],'
        ' "checkpoints": [], "card": "", "proofs": [{"old": 0, "new": 1, "proof": "x"}]}',
    ],
)
def test_malformed_transcript_documents(doc: str) -> None:
    with pytest.raises(tr.TranscriptError):
        tr.parse_transcript(doc)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_garbage_transcripts_are_refused_with_transcript_error(doc: bytes | str) -> None:
    with pytest.raises(tr.TranscriptError):
        tr.parse_transcript(doc)


def bravo_entries() -> list[Entry]:
    return [
        in_entry("bravo", "alpha", 1),
        out_entry("bravo", "alpha", 1),
        local_entry(2),
        out_entry("bravo", "alpha", 2),
        in_entry("bravo", "alpha", 3, "strike notice"),
        in_entry("bravo", "alpha", 4, "something else"),  # not what alpha sent as 4
        in_entry("bravo", "alpha", 9),  # alpha never logged sending 9
        local_entry(7),
        out_entry("bravo", "alpha", 3),  # alpha never logged receiving 3
        local_entry(9),
    ]


def side(t: tr.Transcript, **kw: tuple[object, ...]) -> tr.Side:
    return tr.Side(tr.verify_transcript(t, envelope_hook, accept_unattested=True), **kw)  # type: ignore[arg-type]


def test_cross_check_names_equivocation_missing_and_stale() -> None:
    a, b = side(ALPHA), side(build("bravo", bravo_entries()))
    x = tr.cross_check(a, b)
    assert not x.clean
    [eq] = x.of("equivocation")
    assert (eq.station, eq.sequence) == ("alpha", 4)
    sent = {e.peer_seq: e.data for e in a.report.entries if e.kind is EntryKind.ENVELOPE_OUT}
    assert eq.evidence[0] == base64.b64encode(sent[4]).decode()
    assert eq.evidence[1] != eq.evidence[0]
    missing = [(f.station, f.sequence) for f in x.of("not_received")]
    assert missing == [("bravo", 2), ("bravo", 5), ("alpha", 3)]
    # bravo logged alpha's 9, signed by alpha; alpha's log ends at its 5: older, not a lie
    [stale] = x.of("stale_transcript")
    assert stale.station == "alpha"
    assert x.of("received_unsent") == ()
    assert tr.cross_check(a, a).of("not_received") == ()  # alpha is not its own peer


def test_cross_check_names_an_envelope_received_that_the_sender_never_logged() -> None:
    a = build("alpha", [out_entry("alpha", "bravo", 1), out_entry("alpha", "bravo", 3)], (2,))
    b = build("bravo", [in_entry("bravo", "alpha", k) for k in (1, 2, 3)], (3,))
    x = tr.cross_check(side(a), side(b))
    assert [(f.code, f.station, f.sequence) for f in x.findings] == [
        ("received_unsent", "alpha", 2)
    ]


def test_cross_check_of_matching_logs_is_clean() -> None:
    a = build("alpha", [out_entry("alpha", "bravo", 1), in_entry("alpha", "bravo", 1)], (2,))
    b = build("bravo", [in_entry("bravo", "alpha", 1), out_entry("bravo", "alpha", 1)], (2,))
    assert tr.cross_check(side(a), side(b)).clean


def _claim(b: tr.Transcript, leaf: int, size: int, **kw: int) -> tr.ReceiptClaim:
    e = Entry.decode(b.entries[leaf])
    fields = {"sequence": e.peer_seq, "stored_at_us": e.recorded_at_us} | kw
    return tr.ReceiptClaim(0, b"receipt", fields["sequence"], e.envelope_hash, leaf, size,
                           fields["stored_at_us"])  # fmt: skip


def test_receipts_are_checked_against_the_peer_entries() -> None:
    a = build("alpha", [out_entry("alpha", "bravo", 1), local_entry(1)], (2,))
    b = build("bravo", [local_entry(0), in_entry("bravo", "alpha", 1)], (2,))
    good = _claim(b, 1, 2)
    assert tr.cross_check(side(a, receipts=(good,)), side(b)).clean
    for bad in (
        _claim(b, 1, 1),  # a tree that does not hold the leaf
        dataclasses.replace(good, leaf_index=0),  # another entry
        dataclasses.replace(good, stored_at_us=5),  # another time
        dataclasses.replace(good, sequence=2),  # another envelope
    ):
        x = tr.cross_check(side(a, receipts=(bad,)), side(b))
        assert x.codes == {"receipt_mismatch"}, bad
        assert x.findings[0].station == "bravo"
    # a tree larger than bravo's transcript: bravo's transcript is older
    x = tr.cross_check(side(a, receipts=(dataclasses.replace(good, tree_size=9),)), side(b))
    assert x.codes == {"stale_transcript"}
    assert x.findings[0].station == "bravo"


def test_notes_held_by_the_peer_are_compared_with_the_log() -> None:
    a = build("alpha", [out_entry("alpha", "bravo", 1), local_entry(1), local_entry(2)], (3,))
    b = build("bravo", [in_entry("bravo", "alpha", 1)], (1,))
    log = LOGS["alpha"]
    honest = c.sign_checkpoint(c.Checkpoint(log.name, 2, _root(a, 2)), log)
    assert tr.cross_check(side(a), side(b, notes=(tr.HeldNote(0, honest),))).clean
    other = c.sign_checkpoint(c.Checkpoint(log.name, 2, bytes(32)), log)
    same = c.sign_checkpoint(c.Checkpoint(log.name, 3, bytes(32)), log)
    for note, evidence in ((other, (other, a.checkpoints[0])), (same, (a.checkpoints[0], same))):
        x = tr.cross_check(side(a), side(b, notes=(tr.HeldNote(0, note),)))
        [f] = x.findings
        assert (f.code, f.station, f.evidence) == ("fork", "alpha", evidence)
    # two notes the peer holds, one size, two roots: a fork, whichever transcript held them
    x = tr.cross_check(side(a), side(b, notes=(tr.HeldNote(0, honest), tr.HeldNote(1, other))))
    assert x.codes == {"fork"}
    later = c.sign_checkpoint(c.Checkpoint(log.name, 7, bytes(32)), log)
    x = tr.cross_check(side(a), side(b, notes=(tr.HeldNote(0, later),)))
    assert x.codes == {"stale_transcript"}
    forged = c.sign_checkpoint(c.Checkpoint(log.name, 2, bytes(32)), LOGS["bravo"])
    x = tr.cross_check(side(a), side(b, notes=(tr.HeldNote(0, forged),)))
    assert x.codes == {"bad_held_note"}


def _root(t: tr.Transcript, size: int) -> bytes:
    return merkle.root_of(merkle.leaf_hash(r) for r in t.entries[:size])


class _StalledPool(Executor):
    """An executor whose workers never start a task: every future stays pending."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return Future()


def test_the_verifying_process_takes_the_chunks_no_worker_started() -> None:
    """Chunks still queued when this process has decoded and hashed everything are
    cancelled and checked here, first failure still the earliest entry."""
    pool = _StalledPool()
    report = tr.verify_transcript(
        ALPHA, executor=pool, chunk_size=3, accept_unattested=True, verify_chunk=chunk_hook
    )
    assert pool.submitted == 4
    assert report == tr.verify_transcript(ALPHA, accept_unattested=True, verify_chunk=chunk_hook)
    bad = _with_entries(ALPHA, {4: _flip_data(ALPHA.entries[4]), 9: _flip_data(ALPHA.entries[9])})
    with pytest.raises(tr.TranscriptError) as e:
        tr.verify_transcript(bad, executor=_StalledPool(), chunk_size=2, verify_chunk=chunk_hook)
    assert (e.value.entry, e.value.code) == (4, "bad_signature")
