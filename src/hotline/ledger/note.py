"""C2SP signed notes (c2sp.org/signed-note): parse, sign, open with known verifiers.

Owns: the note byte format, Ed25519 note keys (signature type 0x01) as verifier key
strings ``name+hex(keyid)+base64(0x01||pubkey)`` and signer key strings
``PRIVATE+KEY+name+hex(keyid)+base64(0x01||seed)``, key ids, and the rules for which
signatures count. Other signature types (cosignatures, type 0x04) plug in through the
:class:`NoteVerifier` protocol. Must not touch: checkpoint semantics (``checkpoint.py``),
storage, the network; the Ed25519 maths (``hotline.crypto.primitives``).

Rules (stricter than golang.org/x/mod/sumdb/note where the spec allows):
- valid UTF-8, no ASCII control character but newline; text ends in newline and is
  split from the signatures by the LAST blank line; every signature line is
  ``— <name> <base64>\\n`` with a valid name and canonical base64 of at least 5 bytes;
- at most ``max_signatures`` lines (default 100, the spec asks for at least 16);
- signatures from unknown (name, key id) pairs are ignored; every signature whose
  (name, key id) is known is verified (repeated lines too) and one failure rejects the
  whole note; at least one known signature must verify.
Every refusal is a ``NoteError`` (codes ``bad_note``, ``bad_key``,
``bad_note_signature``, ``unverified_note``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hotline.crypto import primitives
from hotline.errors import NoteError, SignatureError

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100
_SIG_PREFIX = "— "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_HEX8 = re.compile(r"[0-9a-f]{8}", re.ASCII)


# --- encodings ----------------------------------------------------------------------


def b64decode_strict(text: str, what: str, *, code: str = "bad_note") -> bytes:
    """Canonical standard base64 (RFC 4648 section 4), or ``NoteError``."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64", code=code) from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64", code=code)
    return raw


def b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode space, no ``+`` (signed-note "Key names")."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || alg || public key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes((alg,)) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def format_vkey(name: str, alg: int, public_key: bytes) -> str:
    """Verifier key string ``name+hex(keyid)+base64(alg || public key)``."""
    if not valid_key_name(name):
        raise NoteError(f"key name {name!r} is not valid", code="bad_key")
    return f"{name}+{key_id(name, alg, public_key):08x}+{b64encode(bytes((alg,)) + public_key)}"


def parse_vkey(vkey: str) -> tuple[str, int, int, bytes]:
    """Split a verifier key into (name, key id, alg, public key); check the key id."""
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError("verifier key must be name+keyid+key", code="bad_key")
    name, hex_id, key64 = parts
    if not valid_key_name(name) or not _HEX8.fullmatch(hex_id):
        raise NoteError("verifier key has a bad name or key id", code="bad_key")
    raw = b64decode_strict(key64, "verifier key", code="bad_key")
    if len(raw) < 2:
        raise NoteError("verifier key is too short", code="bad_key")
    kid = int(hex_id, 16)
    if kid != key_id(name, raw[0], raw[1:]):
        raise NoteError("verifier key id does not match the key", code="bad_key")
    return name, kid, raw[0], raw[1:]


# --- verifiers and signers ----------------------------------------------------------


class NoteVerifier(Protocol):
    """One known key: its (name, key id) and how it checks a signature over note text."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, text: bytes, signature: bytes) -> None:
        """Return None or raise ``SignatureError``; ``signature`` excludes the key id."""
        ...


@dataclass(frozen=True, slots=True)
class Ed25519Verifier:
    """An Ed25519 note key (signature type 0x01)."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not valid_key_name(self.name) or len(self.public_key) != 32:
            raise NoteError("Ed25519 verifier needs a valid name and a 32-byte key", code="bad_key")

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_ED25519, self.public_key)

    @property
    def vkey(self) -> str:
        return format_vkey(self.name, ALG_ED25519, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> None:
        primitives.verify(self.public_key, signature, b"", text)

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        name, _, alg, key = parse_vkey(vkey)
        if alg != ALG_ED25519:
            raise NoteError(f"verifier key type 0x{alg:02x} is not Ed25519 (0x01)", code="bad_key")
        if len(key) != 32:
            raise NoteError("Ed25519 verifier key is not 32 bytes", code="bad_key")
        return cls(name, key)


class NoteSigner:
    """An Ed25519 note signer (type 0x01); the seed is parsed once."""

    __slots__ = ("_signer", "name")

    def __init__(self, name: str, seed: bytes) -> None:
        if not valid_key_name(name) or len(seed) != 32:
            raise NoteError("signer needs a valid name and a 32-byte seed", code="bad_key")
        self.name = name
        self._signer = primitives.Signer(seed)

    @property
    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self._signer.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_ED25519, self._signer.public_key)

    def sign(self, text: bytes) -> bytes:
        """The raw signature (without key id) over note text."""
        return self._signer.sign(b"", text)

    def signature_line(self, text: bytes) -> str:
        return signature_line(self.name, self.key_id, self.sign(text))

    @classmethod
    def from_skey(cls, skey: str) -> NoteSigner:
        """Parse ``PRIVATE+KEY+name+hex(keyid)+base64(0x01 || seed)``."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("signer key must start with PRIVATE+KEY+", code="bad_key")
        name, hex_id, key64 = parts[2], parts[3], parts[4]
        if not valid_key_name(name) or not _HEX8.fullmatch(hex_id):
            raise NoteError("signer key has a bad name or key id", code="bad_key")
        raw = b64decode_strict(key64, "signer key", code="bad_key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("signer key is not an Ed25519 seed", code="bad_key")
        signer = cls(name, raw[1:])
        if signer.key_id != int(hex_id, 16):
            raise NoteError("signer key id does not match the key", code="bad_key")
        return signer


def format_skey(name: str, seed: bytes) -> str:
    """Signer key string for an Ed25519 seed (keep it secret)."""
    signer = NoteSigner(name, seed)
    return f"PRIVATE+KEY+{name}+{signer.key_id:08x}+{b64encode(bytes((ALG_ED25519,)) + seed)}"


# --- notes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes  #: without the 4-byte key id

    def line(self) -> str:
        return signature_line(self.name, self.key_id, self.signature)


def signature_line(name: str, kid: int, signature: bytes) -> str:
    return f"{_SIG_PREFIX}{name} {b64encode(struct.pack('>I', kid) + signature)}\n"


@dataclass(frozen=True, slots=True)
class ParsedNote:
    """A note split into text and signature lines. Its text is NOT yet trusted."""

    text: str  #: including the final newline
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True, slots=True)
class Note:
    """A note whose text at least one known key signed."""

    text: str
    verified: tuple[NoteSignature, ...]  #: from known keys, all checked
    unverified: tuple[NoteSignature, ...]  #: from unknown keys, ignored


def parse_note(msg: bytes | str, *, max_signatures: int = MAX_SIGNATURES) -> ParsedNote:
    """Split a signed note; raise ``NoteError`` if it is not well-formed."""
    if isinstance(msg, bytes):
        try:
            msg = msg.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not UTF-8", code="bad_note") from None
    if _CONTROL.search(msg) or _has_surrogate(msg):
        raise NoteError("note has control characters or is not UTF-8", code="bad_note")
    split = msg.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures", code="bad_note")
    text, block = msg[: split + 1], msg[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("note has no signatures or does not end in newline", code="bad_note")
    lines = block[:-1].split("\n")
    if len(lines) > max_signatures:
        raise NoteError(f"note has more than {max_signatures} signatures", code="bad_note")
    sigs: list[NoteSignature] = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("signature line does not start with an em dash", code="bad_note")
        name, space, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not space or not valid_key_name(name) or not b64:
            raise NoteError("signature line has a bad key name", code="bad_note")
        raw = b64decode_strict(b64, "signature")
        if len(raw) < 5:
            raise NoteError("signature is too short", code="bad_note")
        sigs.append(NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return ParsedNote(text, tuple(sigs))


def _has_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def open_note(
    msg: bytes | str,
    verifiers: Iterable[NoteVerifier],
    *,
    max_signatures: int = MAX_SIGNATURES,
) -> Note:
    """Parse ``msg`` and check it against the known ``verifiers`` (see module rules)."""
    parsed = parse_note(msg, max_signatures=max_signatures)
    known: dict[tuple[str, int], NoteVerifier] = {}
    for verifier in verifiers:
        known[(verifier.name, verifier.key_id)] = verifier
    text = parsed.text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for sig in parsed.signatures:
        v = known.get((sig.name, sig.key_id))
        if v is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        try:
            v.verify(text, sig.signature)
        except SignatureError:
            raise NoteError(
                f"signature by known key {sig.name}+{sig.key_id:08x} does not verify",
                code="bad_note_signature",
            ) from None
        if sig not in verified:
            verified.append(sig)
    if not verified:
        raise NoteError("note has no signature from a known key", code="unverified_note")
    return Note(parsed.text, tuple(verified), tuple(unverified))


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """A signed note: ``text`` (which must end in newline), a blank line, signatures."""
    if not signers:
        raise NoteError("a note needs at least one signer", code="bad_note")
    if not text.endswith("\n") or _CONTROL.search(text) or _has_surrogate(text):
        raise NoteError("note text must end in newline and have no controls", code="bad_note")
    raw = text.encode("utf-8")
    return text + "\n" + "".join(s.signature_line(raw) for s in signers)


def add_signature_lines(note: str, lines: Iterable[str]) -> str:
    """Append signature lines (e.g. cosignatures) to a signed note, dropping duplicates."""
    parsed = parse_note(note)
    out = note
    have = {s.line() for s in parsed.signatures}
    for line in lines:
        if not line.endswith("\n"):
            line += "\n"
        if line not in have:
            parse_note(parsed.text + "\n" + line)  # refuses a malformed line
            out += line
            have.add(line)
    return out
