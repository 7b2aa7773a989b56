"""Transcripts: build two stations' logs, verify, tamper each way, cross-check."""

from __future__ import annotations

import dataclasses
import hashlib
from concurrent.futures import ProcessPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives
from hotline.errors import ForkError, SignatureError
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


def test_a_clean_transcript_verifies_and_round_trips_through_json() -> None:
    report = tr.verify_transcript(ALPHA, envelope_hook)
    assert [cp.size for cp in report.checkpoints] == [3, 6, 10]
    assert report.unattested == 1
    assert report.attested_size == 10
    assert len(report.cosignatures) == 3
    assert report.root == merkle.root_of(merkle.leaf_hash(r) for r in ALPHA.entries)
    again = tr.parse_transcript(ALPHA.to_json())
    assert again == ALPHA
    assert tr.verify_transcript(again).root == report.root


def test_parallel_verification_gives_the_same_report() -> None:
    with ProcessPoolExecutor(2) as pool:
        report = tr.verify_transcript(ALPHA, envelope_hook, executor=pool, chunk_size=3)
        assert report.root == tr.verify_transcript(ALPHA, envelope_hook).root
        bad = _with_entries(
            ALPHA, {4: _flip_data(ALPHA.entries[4]), 9: _flip_data(ALPHA.entries[9])}
        )
        with pytest.raises(tr.TranscriptError) as e:
            tr.verify_transcript(bad, envelope_hook, executor=pool, chunk_size=2)
    assert e.value.entry == 4


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
    (
        "entry duplicated",
        _entries(ALPHA, [*E[:5], E[4], *E[5:]]),
        True,
        "entry 5",
        "duplicate_entry",
    ),
    (
        "entries reordered",
        _entries(ALPHA, [*E[:4], E[5], E[4], *E[6:]]),
        True,
        "checkpoint 1",
        "bad_root",
    ),
    ("entry undecodable", _with_entries(ALPHA, {2: b"\x09garbage"}), False, "entry 2", "bad_entry"),
    ("entries missing for a checkpoint", _entries(ALPHA, E[:8]), False, "checkpoint 2", "bad_root"),
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
        tr.verify_transcript(t, envelope_hook if hook else None)
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


def test_cross_check_reports_what_each_side_did_not_log() -> None:
    a = tr.verify_transcript(ALPHA, envelope_hook)
    b = tr.verify_transcript(build("bravo", bravo_entries()), envelope_hook)
    x = tr.cross_check(a, b)
    assert not x.clean
    assert [s for s, _ in x.a_to_b_missing] == [2, 4, 5]
    assert [s for s, _ in x.b_to_a_missing] == [3]
    assert [s for s, _ in x.b_received_unsent] == [4, 9]
    assert x.a_received_unsent == ()
    assert x.conflicts == (("alpha->bravo", 4),)
    assert tr.cross_check(a, a).a_to_b_missing == ()  # alpha is not its own peer


def test_cross_check_of_matching_logs_is_clean() -> None:
    a = build("alpha", [out_entry("alpha", "bravo", 1), in_entry("alpha", "bravo", 1)], (2,))
    b = build("bravo", [in_entry("bravo", "alpha", 1), out_entry("bravo", "alpha", 1)], (2,))
    x = tr.cross_check(
        tr.verify_transcript(a, envelope_hook), tr.verify_transcript(b, envelope_hook)
    )
    assert x.clean
