"""The witness add-checkpoint decision as a table of cases, plus request parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import HotlineError, NoteError, ProofError
from hotline.ledger import checkpoint as c
from hotline.ledger import cosignature as co
from hotline.ledger import merkle, tree
from hotline.ledger import note as n
from hotline.ledger import witness as w

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
V = json.loads((VECTORS_DIR / "signed-note" / "signed_note_vectors.json").read_text())

ORIGIN = "example.org/log"
LOG = n.NoteSigner(ORIGIN, b"L" * 32)
WIT = co.Cosigner("example.org/witness", b"W" * 32)
TS = 1_700_000_000

# The honest log: 20 leaves. A forked log: same first 6 leaves, then others.
HONEST = tree.MemoryTree()
HONEST.append([merkle.leaf_hash(b"e%d" % i) for i in range(20)])
FORKED = tree.MemoryTree()
FORKED.append([merkle.leaf_hash(b"e%d" % i) for i in range(6)])
FORKED.append([merkle.leaf_hash(b"f%d" % i) for i in range(6, 20)])


def note(t: tree.MemoryTree, size: int, signer: n.NoteSigner = LOG) -> str:
    return c.sign_checkpoint(c.Checkpoint(ORIGIN, size, t.root(size)), signer)


def state(t: tree.MemoryTree, size: int) -> w.WitnessState:
    return w.WitnessState(size, t.root(size), note(t, size))


@dataclass
class Case:
    name: str
    state: w.WitnessState | None
    request: w.AddCheckpoint
    want: type[HotlineError] | None
    check: Callable[[HotlineError], None] | None = None


def _conflict_size(size: int) -> Callable[[HotlineError], None]:
    def check(exc: HotlineError) -> None:
        assert isinstance(exc, w.WitnessConflict)
        assert exc.stored_size == size
        assert exc.body() == f"{size}\n".encode()

    return check


def _fork_evidence(exc: HotlineError) -> None:
    assert isinstance(exc, c.CheckpointFork)
    first, second = exc.evidence
    # both halves are checkpoints validly signed by the log
    a = c.open_checkpoint(first, [LOG.verifier]).checkpoint
    b = c.open_checkpoint(second, [LOG.verifier]).checkpoint
    assert a.root != b.root or a.size != b.size


bad_proof = [bytes(32) if i == 0 else p for i, p in enumerate(HONEST.consistency_proof(7, 12))]
CASES = [
    Case(
        "happy",
        state(HONEST, 7),
        w.AddCheckpoint(7, tuple(HONEST.consistency_proof(7, 12)), note(HONEST, 12)),
        None,
    ),
    Case(
        "happy power of two",
        state(HONEST, 8),
        w.AddCheckpoint(8, tuple(HONEST.consistency_proof(8, 20)), note(HONEST, 20)),
        None,
    ),
    Case("old 0 first contact", None, w.AddCheckpoint(0, (), note(HONEST, 12)), None),
    Case("old 0 size 0", None, w.AddCheckpoint(0, (), note(HONEST, 0)), None),
    Case(
        "same checkpoint again", state(HONEST, 12), w.AddCheckpoint(12, (), note(HONEST, 12)), None
    ),
    Case(
        "old 0 with a proof",
        None,
        w.AddCheckpoint(0, (HONEST.root(1),), note(HONEST, 12)),
        ProofError,
    ),
    Case(
        "stale: old size below stored",
        state(HONEST, 12),
        w.AddCheckpoint(7, tuple(HONEST.consistency_proof(7, 15)), note(HONEST, 15)),
        w.WitnessConflict,
        _conflict_size(12),
    ),
    Case(
        "conflict: never seen, old > 0",
        None,
        w.AddCheckpoint(7, tuple(HONEST.consistency_proof(7, 12)), note(HONEST, 12)),
        w.WitnessConflict,
        _conflict_size(0),
    ),
    Case(
        "conflict: old size above stored",
        state(HONEST, 7),
        w.AddCheckpoint(9, tuple(HONEST.consistency_proof(9, 12)), note(HONEST, 12)),
        w.WitnessConflict,
        _conflict_size(7),
    ),
    Case(
        "rollback: checkpoint smaller than stored",
        state(HONEST, 12),
        w.AddCheckpoint(12, (), note(HONEST, 7)),
        w.WitnessBadRequest,
    ),
    Case(
        "old size above checkpoint size",
        state(HONEST, 7),
        w.AddCheckpoint(13, (), note(HONEST, 12)),
        w.WitnessBadRequest,
    ),
    Case(
        "fork: same size other root",
        state(HONEST, 12),
        w.AddCheckpoint(12, (), note(FORKED, 12)),
        c.CheckpointFork,
        _fork_evidence,
    ),
    Case(
        "fork: proof verifies new root but not stored root",
        state(HONEST, 7),
        w.AddCheckpoint(7, tuple(FORKED.consistency_proof(7, 12)), note(FORKED, 12)),
        c.CheckpointFork,
        _fork_evidence,
    ),
    Case(
        "bad proof: element changed",
        state(HONEST, 7),
        w.AddCheckpoint(7, tuple(bad_proof), note(HONEST, 12)),
        ProofError,
    ),
    Case(
        "bad proof: too short",
        state(HONEST, 7),
        w.AddCheckpoint(7, tuple(HONEST.consistency_proof(7, 12)[:-1]), note(HONEST, 12)),
        ProofError,
    ),
    Case(
        "bad proof: same size with a proof",
        state(HONEST, 12),
        w.AddCheckpoint(12, (HONEST.root(1),), note(HONEST, 12)),
        ProofError,
    ),
    Case(
        "bad signature: other key",
        state(HONEST, 7),
        w.AddCheckpoint(
            7,
            tuple(HONEST.consistency_proof(7, 12)),
            note(HONEST, 12, n.NoteSigner(ORIGIN, b"X" * 32)),
        ),
        NoteError,
    ),
    Case(
        "bad signature: tampered note",
        state(HONEST, 7),
        w.AddCheckpoint(
            7, tuple(HONEST.consistency_proof(7, 12)), note(HONEST, 12).replace("\n12\n", "\n13\n")
        ),
        NoteError,
    ),
    Case(
        "size 0 with a non-empty root",
        None,
        w.AddCheckpoint(0, (), n.sign_note(f"{ORIGIN}\n0\n{'A' * 43}=\n", [LOG])),
        ProofError,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_add_checkpoint(case: Case) -> None:
    if case.want is None:
        new_state, cosig = w.add_checkpoint(case.state, case.request, LOG.verifier, WIT, TS)
        cp = c.open_checkpoint(case.request.note, [LOG.verifier]).checkpoint
        assert (new_state.size, new_state.root, new_state.note) == (
            cp.size,
            cp.root,
            case.request.note,
        )
        assert WIT.verifier.verify_line(cp.format(), cosig.line()).timestamp == TS
        return
    with pytest.raises(case.want) as e:
        w.add_checkpoint(case.state, case.request, LOG.verifier, WIT, TS)
    if case.check is not None:
        case.check(e.value)


def test_zero_timestamp_is_refused() -> None:
    with pytest.raises(w.WitnessBadRequest):
        w.add_checkpoint(None, w.AddCheckpoint(0, (), note(HONEST, 3)), LOG.verifier, WIT, 0)


def test_c2sp_request_example_round_trips() -> None:
    body = V["c2sp_tlog_witness_add_checkpoint_request_example"].encode()
    req = w.parse_add_checkpoint(body)
    assert req.old_size == 20852014
    assert len(req.proof) == 4
    assert req.note.startswith("example.com/behind-the-sofa\n20852163\n")
    assert req.format() == body


@pytest.mark.parametrize(
    "body",
    [
        b"old 1\n",
        b"old 01\n\nx",
        b"new 1\n\nx",
        b"old -1\n\nx",
        b"old 1\nnot base64!\n\nx",
        b"old 1\nAAAA\n\nx",
        b"\xff\n\n",
        b"old 1\n" + b"".join([b"A" * 43 + b"=\n"] * 64) + b"\nx",
        b"old 18446744073709551616\n\nx",
    ],
)
def test_bad_requests(body: bytes) -> None:
    with pytest.raises(w.WitnessBadRequest):
        w.parse_add_checkpoint(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_requests_only_raise_trust_errors(body: bytes) -> None:
    try:
        req = w.parse_add_checkpoint(body)
    except w.WitnessBadRequest:
        return
    with pytest.raises((NoteError, w.WitnessBadRequest, w.WitnessConflict, ProofError)):
        w.add_checkpoint(None, req, LOG.verifier, WIT, TS)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=1, max_size=8), st.integers(0, 20))
def test_honest_log_is_always_cosigned_and_a_fork_never_is(sizes: list[int], fork_at: int) -> None:
    """Walk an honest log through increasing sizes; then offer the forked log's head."""
    st_: w.WitnessState | None = None
    for size in sorted(sizes):
        old = 0 if st_ is None else st_.size
        proof = tuple(HONEST.consistency_proof(old, size)) if old else ()
        req = w.AddCheckpoint(old, proof, note(HONEST, size))
        st_, cosig = w.add_checkpoint(st_, req, LOG.verifier, WIT, TS)
        assert st_.size == size
        body = c.open_checkpoint(st_.note, [LOG.verifier]).checkpoint.format()
        assert WIT.verifier.verify_line(body, cosig.line()).timestamp == TS
    assert st_ is not None
    if st_.size > 6 and fork_at >= st_.size:  # FORKED differs from HONEST after leaf 6
        proof = tuple(FORKED.consistency_proof(st_.size, fork_at)) if fork_at > st_.size else ()
        req = w.AddCheckpoint(st_.size, proof, note(FORKED, fork_at))
        with pytest.raises((c.CheckpointFork, ProofError)):
            w.add_checkpoint(st_, req, LOG.verifier, WIT, TS)
