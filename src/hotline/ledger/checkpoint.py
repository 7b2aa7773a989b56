"""C2SP tlog-checkpoint bodies, and checkpoints opened from signed notes.

Owns: the checkpoint note text (origin line, decimal tree size, base64 root hash,
optional non-empty extension lines), its strict parsing and formatting, and the fork
error that carries two contradicting signed checkpoints. Must not touch: Merkle maths
beyond the empty-tree root, storage, the network.

Invariants of a parsed :class:`Checkpoint`: the origin is non-empty; the size is ASCII
decimal without leading zeros and below 2**64; the root is canonical base64 of exactly
32 bytes; a size-0 checkpoint carries SHA-256("") (code ``bad_empty_root`` otherwise);
``format()`` gives back exactly the bytes that were parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hotline.errors import ForkError, NoteError
from hotline.ledger.merkle import EMPTY_ROOT, HASH_LEN, MAX_SIZE
from hotline.ledger.note import (
    Note,
    NoteSigner,
    NoteVerifier,
    b64decode_strict,
    b64encode,
    open_note,
    sign_note,
)

_SIZE = re.compile(r"0|[1-9][0-9]*", re.ASCII)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise NoteError("checkpoint origin must be one non-empty line", code="bad_checkpoint")
        if not 0 <= self.size <= MAX_SIZE or len(self.root) != HASH_LEN:
            raise NoteError("checkpoint size or root out of range", code="bad_checkpoint")
        if self.size == 0 and self.root != EMPTY_ROOT:
            raise NoteError("a size-0 checkpoint must carry SHA-256('')", code="bad_empty_root")
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise NoteError("extension lines must be non-empty", code="bad_checkpoint")

    def format(self) -> str:
        """The note text (body) of this checkpoint, ending in newline."""
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text strictly; raise ``NoteError``."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint text must end in newline", code="bad_checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines):
        raise NoteError("checkpoint needs three or more non-empty lines", code="bad_checkpoint")
    origin, size_s, root_s, *ext = lines
    if not _SIZE.fullmatch(size_s):
        raise NoteError(
            "checkpoint size is not a decimal without leading zeros", code="bad_checkpoint"
        )
    size = int(size_s)
    root = b64decode_strict(root_s, "checkpoint root", code="bad_checkpoint")
    if len(root) != HASH_LEN:
        raise NoteError("checkpoint root is not 32 bytes", code="bad_checkpoint")
    return Checkpoint(origin, size, root, tuple(ext))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint whose note verified against the log's key; ``note`` is verbatim."""

    checkpoint: Checkpoint
    note: str
    opened: Note


def open_checkpoint(
    note: bytes | str, log_keys: Iterable[NoteVerifier], *, origin: str | None = None
) -> SignedCheckpoint:
    """Open a signed checkpoint with the log's key(s) and parse its body.

    ``origin`` defaults to the first log key's name: hotline logs sign with a key named
    after their origin, and a checkpoint for another origin is refused.
    """
    keys = list(log_keys)
    if not keys:
        raise NoteError("no log key to open the checkpoint with", code="unverified_note")
    opened = open_note(note, keys)
    cp = parse_checkpoint(opened.text)
    want = keys[0].name if origin is None else origin
    if cp.origin != want:
        raise NoteError(f"checkpoint origin {cp.origin!r} is not {want!r}", code="bad_origin")
    text = note.decode("utf-8") if isinstance(note, bytes) else note
    return SignedCheckpoint(cp, text, opened)


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> str:
    """The signed note for ``cp``."""
    return sign_note(cp.format(), [signer])


class CheckpointFork(ForkError):
    """Two checkpoints signed by one log that cannot both be true.

    ``first`` and ``second`` are the signed notes, verbatim: a third party who knows the
    log's key can check both signatures and see the contradiction. ``proof`` is the
    consistency proof that showed it, when there is one.
    """

    def __init__(
        self, message: str, first: str, second: str, proof: tuple[bytes, ...] = ()
    ) -> None:
        super().__init__(message)
        self.first = first
        self.second = second
        self.proof = proof

    @property
    def evidence(self) -> tuple[bytes, bytes]:
        return self.first.encode("utf-8"), self.second.encode("utf-8")
