"""The witness decision of C2SP tlog-witness ``add-checkpoint``, as a pure function.

Owns: the add-checkpoint request body (parse and format), and the decision
:func:`add_checkpoint`: (stored state for the origin, request, log key, cosigner,
timestamp) -> (new state, cosignature), or a refusal. Must not touch: storage, locks,
clocks, HTTP. The caller MUST read the state, call :func:`add_checkpoint` and persist
the new state atomically (one transaction / row lock per origin), or two concurrent
requests can roll the witness back (see the spec's race).

Refusals and the HTTP status the spec gives them (mapped at the edge, not here)::

    NoteError  (bad_note, bad_note_signature, unverified_note, bad_origin)  403
    WitnessBadRequest   old size above the checkpoint size, malformed body  400
    WitnessConflict     old size != stored size; ``.stored_size`` -> body   409
    ProofError          proof does not verify, proof with old 0, size-0 root 422
    CheckpointFork      same size other root, or a proof that verifies the
                        new root but not the stored one (proves a fork)   422
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hotline.crypto.primitives import equal
from hotline.errors import NoteError, ProofError, TrustError
from hotline.ledger.checkpoint import CheckpointFork, SignedCheckpoint, open_checkpoint
from hotline.ledger.cosignature import Cosignature, Cosigner
from hotline.ledger.merkle import HASH_LEN, MAX_SIZE, roots_from_consistency_proof
from hotline.ledger.note import NoteVerifier, b64decode_strict, b64encode

MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]*)", re.ASCII)


class WitnessBadRequest(TrustError):
    code = "bad_witness_request"


class WitnessConflict(TrustError):
    """The client's old size is not what this witness last cosigned (HTTP 409)."""

    code = "witness_conflict"
    hint = "resend with the stored size as the old size and a proof from it"

    def __init__(self, stored_size: int) -> None:
        super().__init__(f"witness last cosigned size {stored_size}")
        self.stored_size = stored_size

    def body(self) -> bytes:
        """The 409 response body (Content-Type ``text/x.tlog.size``)."""
        return f"{self.stored_size}\n".encode("ascii")


@dataclass(frozen=True, slots=True)
class WitnessState:
    """What a witness keeps per origin: the latest checkpoint it cosigned, verbatim."""

    size: int
    root: bytes
    note: str  #: the log-signed checkpoint note, kept as evidence


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    """A parsed add-checkpoint request body (the note is not opened yet)."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def format(self) -> bytes:
        lines = [f"old {self.old_size}", *(b64encode(p) for p in self.proof)]
        return ("\n".join(lines) + "\n\n" + self.note).encode("utf-8")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse ``old N\\n`` + proof lines + ``\\n`` + checkpoint note; raise WitnessBadRequest."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessBadRequest("request is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessBadRequest("request has no blank line before the checkpoint")
    lines = head.split("\n")
    m = _OLD.fullmatch(lines[0])
    if m is None or int(m.group(1)) > MAX_SIZE:
        raise WitnessBadRequest("first line must be 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessBadRequest(f"more than {MAX_PROOF_LINES} proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            h = b64decode_strict(line, "proof line")
        except NoteError:
            raise WitnessBadRequest("proof line is not base64") from None
        if len(h) != HASH_LEN:
            raise WitnessBadRequest("proof line is not a 32-byte hash")
        proof.append(h)
    return AddCheckpoint(int(m.group(1)), tuple(proof), note)


def add_checkpoint(
    state: WitnessState | None,
    request: AddCheckpoint,
    log_key: NoteVerifier,
    cosigner: Cosigner,
    timestamp: int,
) -> tuple[WitnessState, Cosignature]:
    """Decide one add-checkpoint request. ``state`` None: never cosigned this origin.

    On success returns the state to persist and the cosignature (``.line()`` is the
    200 response body). The checks run in the spec's order: signature, old size,
    stored size, size-0 root, proof.
    """
    if timestamp <= 0:
        raise WitnessBadRequest("a witness cosignature needs a non-zero timestamp")
    try:
        signed = open_checkpoint(request.note, [log_key])
    except NoteError as exc:
        if exc.code == "bad_empty_root":
            raise ProofError(exc.message, code="bad_empty_root") from None
        raise
    cp = signed.checkpoint
    if request.old_size > cp.size:
        raise WitnessBadRequest(f"old size {request.old_size} exceeds size {cp.size}")
    stored_size = 0 if state is None else state.size
    if request.old_size != stored_size:
        raise WitnessConflict(stored_size)
    _check_consistent(state, signed, request.proof)
    cosig = cosigner.cosign(cp.format(), timestamp)
    return WitnessState(cp.size, cp.root, signed.note), cosig


def _check_consistent(
    state: WitnessState | None, signed: SignedCheckpoint, proof: Sequence[bytes]
) -> None:
    cp = signed.checkpoint
    if state is None or state.size == 0:
        if proof:
            raise ProofError("old size 0 needs an empty proof", code="bad_proof_length")
        return
    if state.size == cp.size:
        if proof:
            raise ProofError("equal sizes need an empty proof", code="bad_proof_length")
        if not equal(state.root, cp.root):
            raise CheckpointFork(
                f"log signed two roots for size {cp.size}", state.note, signed.note
            )
        return
    old, new = roots_from_consistency_proof(state.size, cp.size, proof, state.root)
    if not equal(new, cp.root):
        raise ProofError(
            f"consistency proof from {state.size} to {cp.size} does not verify",
            code="bad_consistency",
        )
    if not equal(old, state.root):
        raise CheckpointFork(
            f"size {cp.size} does not extend the cosigned size {state.size}",
            state.note,
            signed.note,
            tuple(proof),
        )
