"""C2SP tlog-cosignature/v1 (Ed25519, signature type 0x04): create and verify.

Owns: the cosigned message ``"cosignature/v1\\ntime <ts>\\n" || checkpoint body``, the
cosigner key id ``SHA-256(name || 0x0A || 0x04 || pubkey)[:4]``, cosigner vkeys, and
the signature bytes ``key id || u64 BE timestamp || Ed25519 signature``.
A :class:`CosignatureVerifier` is a ``NoteVerifier``, so a checkpoint note carrying
both the log's signature and peers' cosignatures opens with one ``open_note`` call.
Must not touch: witness decisions (``witness.py``), storage, clocks (timestamps are
parameters), the network.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hotline.crypto import primitives
from hotline.errors import NoteError, SignatureError
from hotline.ledger.note import (
    NoteSignature,
    format_vkey,
    key_id,
    parse_note,
    parse_vkey,
    signature_line,
    valid_key_name,
)

ALG_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = 2**63 - 1
_HEADER = b"cosignature/v1\ntime "


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """The exact bytes an Ed25519 v1 cosignature signs."""
    _check_timestamp(timestamp)
    return _HEADER + str(timestamp).encode("ascii") + b"\n" + body


def _check_timestamp(timestamp: int) -> None:
    if not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise SignatureError("cosignature timestamp out of range", code="bad_cosignature")


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: who, when, and the raw signature line."""

    name: str
    key_id: int
    timestamp: int
    signature: bytes  #: 64-byte Ed25519 signature

    def line(self) -> str:
        return signature_line(
            self.name, self.key_id, struct.pack(">Q", self.timestamp) + self.signature
        )


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A cosigner's Ed25519 key (type 0x04); also a ``NoteVerifier``."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name) or len(self.public_key) != 32:
            raise NoteError("cosigner needs a valid name and a 32-byte key", code="bad_key")

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_COSIGNATURE_V1, self.public_key)

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, ALG_COSIGNATURE_V1, self.public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        name, _, alg, key = parse_vkey(vkey)
        if alg != ALG_COSIGNATURE_V1 or len(key) != 32:
            raise NoteError("not an Ed25519 cosignature/v1 key (type 0x04)", code="bad_key")
        return cls(name, key)

    def verify(self, text: bytes, signature: bytes) -> None:
        """Check ``timestamp(8) || sig(64)`` over ``text`` (a checkpoint body)."""
        self.open(text, signature)

    def open(self, text: bytes, signature: bytes) -> Cosignature:
        if len(signature) != 8 + primitives.ED25519_SIGNATURE_LEN:
            raise SignatureError("cosignature has the wrong length", code="bad_cosignature")
        (timestamp,) = struct.unpack(">Q", signature[:8])
        _check_timestamp(timestamp)
        primitives.verify(self.public_key, signature[8:], b"", cosigned_message(text, timestamp))
        return Cosignature(self.name, self.key_id, timestamp, signature[8:])

    def verify_line(self, body: str, line: str) -> Cosignature:
        """Verify one signature line (``— name base64\\n``) over a checkpoint body.

        Raises ``SignatureError`` if the line is not this cosigner's or does not verify.
        """
        try:
            parsed = parse_note(body + "\n" + (line if line.endswith("\n") else line + "\n"))
        except NoteError as exc:
            raise SignatureError(
                f"malformed cosignature line: {exc.message}", code="bad_cosignature"
            ) from None
        if len(parsed.signatures) != 1:
            raise SignatureError("expected exactly one cosignature line", code="bad_cosignature")
        sig: NoteSignature = parsed.signatures[0]
        if (sig.name, sig.key_id) != (self.name, self.key_id):
            raise SignatureError(
                f"cosignature is by {sig.name}+{sig.key_id:08x}, not {self.name}+{self.key_id:08x}",
                code="bad_cosignature",
            )
        return self.open(body.encode("utf-8"), sig.signature)


class Cosigner:
    """Produces v1 cosignatures with one Ed25519 key (seed parsed once)."""

    __slots__ = ("_signer", "name")

    def __init__(self, name: str, seed: bytes) -> None:
        if not valid_key_name(name) or len(seed) != 32:
            raise NoteError("cosigner needs a valid name and a 32-byte seed", code="bad_key")
        self.name = name
        self._signer = primitives.Signer(seed)

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self._signer.public_key)

    def cosign(self, body: str, timestamp: int) -> Cosignature:
        """Cosign a checkpoint body at ``timestamp`` (POSIX seconds, > 0 for a witness)."""
        sig = self._signer.sign(b"", cosigned_message(body.encode("utf-8"), timestamp))
        return Cosignature(self.name, self.verifier.key_id, timestamp, sig)
