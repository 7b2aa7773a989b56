"""Envelopes: the unit on the wire, as exact signed bytes.

Owns the binary layout (docs/wire.md), parsing untrusted bytes into an
``UnverifiedEnvelope`` in one step, and turning that into an ``Envelope`` only by
verifying its signature against the sender's card key. Must not touch: the store, the
network, peers' state (the caller supplies the key), or ``cryptography`` directly.

The signature covers the exact bytes received; nothing is ever re-serialised to check
it. The sealed payload's HPKE ``info`` is the header, so a payload cannot be moved
under another header.

Layout (big-endian)::

    4   magic        b"HTLN"
    1   version      1
    1   kind         Kind
    1   precedence   Precedence
    1   flags        0 (reserved)
    2   kem_id       HPKE suite, RFC 9180 ids (0 0 0: payload not sealed)
    2   kdf_id
    2   aead_id
    1+n sender       station id, ASCII
    1+n recipient    station id, ASCII
    1+n channel      UTF-8, at most 64 bytes
    8   sequence     per-direction sequence number (0 for unsequenced kinds)
    16  message_id   UUID
    8   sent_at      microseconds since the Unix epoch, UTC (signed)
    4+n payload      HPKE enc || ciphertext, or plain bytes for receipts
    64  signature    Ed25519 over b"hotline-envelope/v1\\x00" || every byte before it
"""

from __future__ import annotations

import enum
import re
import struct
import uuid
from dataclasses import dataclass

from hotline.crypto import primitives
from hotline.crypto.primitives import SUITE_NONE, SUITE_X25519_CHACHA, HpkeSuite
from hotline.errors import EnvelopeError

MAGIC = b"HTLN"
VERSION = 1
SIGN_CONTEXT = b"hotline-envelope/v1\x00"
PAYLOAD_INFO = b"hotline-payload/v1\x00"
DEFAULT_SUITE = SUITE_X25519_CHACHA
SIGNATURE_LEN = 64
MAX_CHANNEL_BYTES = 64
_STATION_ID = re.compile(rb"^[a-z0-9][a-z0-9-]{0,31}$")
_FIXED_HEAD = struct.Struct(">4sBBBBHHH")
_FIXED_TAIL = struct.Struct(">Q16sq")
_LEN32 = struct.Struct(">I")
MIN_ENVELOPE_LEN = _FIXED_HEAD.size + 3 + 2 + 0 + _FIXED_TAIL.size + 4 + SIGNATURE_LEN


class Kind(enum.IntEnum):
    MESSAGE = 1  #: operator message (sealed, sequenced)
    ACK = 2  #: a duty officer's acknowledgement (sealed, sequenced)
    RECEIPT = 3  #: machine receipt for a stored envelope (plain, unsequenced)
    LINK_TEST = 4  #: scheduled test exchange (sealed, unsequenced)
    LINK_TEST_REPLY = 5  #: answer to a link test (sealed, unsequenced)

    @property
    def sealed(self) -> bool:
        return self is not Kind.RECEIPT

    @property
    def sequenced(self) -> bool:
        return self in (Kind.MESSAGE, Kind.ACK)


class Precedence(enum.IntEnum):
    """Message precedence; lower value goes first."""

    FLASH = 0
    IMMEDIATE = 1
    PRIORITY = 2
    ROUTINE = 3


@dataclass(frozen=True, slots=True)
class Header:
    kind: Kind
    precedence: Precedence
    suite: HpkeSuite
    sender: str
    recipient: str
    channel: str
    sequence: int
    message_id: uuid.UUID
    sent_at_us: int


@dataclass(frozen=True, slots=True)
class UnverifiedEnvelope:
    """Parsed but not yet trusted: only ``verify`` gives out an ``Envelope``."""

    header: Header
    header_bytes: bytes
    payload: bytes
    raw: bytes

    def verify(self, sender_signing_key: bytes) -> Envelope:
        signed, signature = self.raw[:-SIGNATURE_LEN], self.raw[-SIGNATURE_LEN:]
        primitives.verify(sender_signing_key, signature, SIGN_CONTEXT, signed)
        return Envelope(self.header, self.header_bytes, self.payload, self.raw)


@dataclass(frozen=True, slots=True)
class Envelope:
    """An envelope whose signature has been verified (or that we signed ourselves)."""

    header: Header
    header_bytes: bytes
    payload: bytes
    raw: bytes

    @property
    def hash(self) -> bytes:
        return primitives.sha256(self.raw)

    def open(self, opener: primitives.Opener) -> bytes:
        """Open the sealed payload with the recipient's key (plain kinds: as is)."""
        if not self.header.kind.sealed:
            return self.payload
        return opener.open(self.header.suite, PAYLOAD_INFO + self.header_bytes, self.payload)


def encode_header(h: Header) -> bytes:
    sender, recipient = _station_id(h.sender), _station_id(h.recipient)
    channel = h.channel.encode("utf-8")
    if len(channel) > MAX_CHANNEL_BYTES:
        raise EnvelopeError("channel name is longer than 64 bytes")
    if h.kind.sequenced != (h.sequence > 0):
        raise EnvelopeError(
            f"{h.kind.name} envelopes {'need' if h.kind.sequenced else 'take no'} sequence number"
        )
    return (
        _FIXED_HEAD.pack(
            MAGIC, VERSION, h.kind, h.precedence, 0, h.suite.kem_id, h.suite.kdf_id, h.suite.aead_id
        )
        + bytes((len(sender),))
        + sender
        + bytes((len(recipient),))
        + recipient
        + bytes((len(channel),))
        + channel
        + _FIXED_TAIL.pack(h.sequence, h.message_id.bytes, h.sent_at_us)
    )


def seal_envelope(
    header: Header,
    plaintext: bytes,
    signer: primitives.Signer,
    recipient_encryption_key: bytes | None,
) -> Envelope:
    """Build, seal (for sealed kinds) and sign an envelope."""
    header_bytes = encode_header(header)
    if header.kind.sealed:
        if recipient_encryption_key is None or header.suite == SUITE_NONE:
            raise EnvelopeError(f"{header.kind.name} envelopes must be sealed")
        payload = primitives.seal(
            header.suite, recipient_encryption_key, PAYLOAD_INFO + header_bytes, plaintext
        )
    else:
        if header.suite != SUITE_NONE:
            raise EnvelopeError(f"{header.kind.name} envelopes are not sealed")
        payload = plaintext
    signed = header_bytes + _LEN32.pack(len(payload)) + payload
    raw = signed + signer.sign(SIGN_CONTEXT, signed)
    return Envelope(header, header_bytes, payload, raw)


def decode(raw: bytes, *, max_bytes: int) -> UnverifiedEnvelope:
    """Parse untrusted bytes; raise ``EnvelopeError`` saying exactly what is wrong."""
    if len(raw) > max_bytes:
        raise EnvelopeError(
            f"envelope of {len(raw)} bytes exceeds the limit of {max_bytes}", code="too_large"
        )
    if len(raw) < MIN_ENVELOPE_LEN:
        raise EnvelopeError("envelope truncated", code="truncated")
    magic, version, kind, prec, flags, kem, kdf, aead = _FIXED_HEAD.unpack_from(raw, 0)
    if magic != MAGIC:
        raise EnvelopeError("not a hotline envelope (bad magic)")
    if version != VERSION:
        raise EnvelopeError(f"envelope version {version} is not supported", code="bad_version")
    try:
        kind_v, prec_v = Kind(kind), Precedence(prec)
    except ValueError:
        raise EnvelopeError(f"unknown kind {kind} or precedence {prec}") from None
    if flags != 0:
        raise EnvelopeError("reserved flags are set")
    suite = HpkeSuite(kem, kdf, aead)
    if kind_v.sealed and not primitives.supported_suite(suite):
        raise EnvelopeError(f"HPKE suite {suite} is not supported", code="bad_suite")
    if not kind_v.sealed and suite != SUITE_NONE:
        raise EnvelopeError(f"{kind_v.name} envelopes are not sealed", code="bad_suite")
    off = _FIXED_HEAD.size
    sender, off = _read_short(raw, off)
    recipient, off = _read_short(raw, off)
    channel_b, off = _read_short(raw, off)
    if not _STATION_ID.match(sender) or not _STATION_ID.match(recipient):
        raise EnvelopeError("sender or recipient is not a valid station id")
    if len(channel_b) > MAX_CHANNEL_BYTES:
        raise EnvelopeError("channel is longer than 64 bytes")
    try:
        channel = channel_b.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvelopeError("channel is not UTF-8") from None
    if len(raw) < off + _FIXED_TAIL.size + _LEN32.size + SIGNATURE_LEN:
        raise EnvelopeError("envelope truncated", code="truncated")
    sequence, mid, sent_at = _FIXED_TAIL.unpack_from(raw, off)
    off += _FIXED_TAIL.size
    if kind_v.sequenced != (sequence > 0):
        raise EnvelopeError(f"sequence number {sequence} not valid for {kind_v.name}")
    header_bytes = raw[:off]
    (payload_len,) = _LEN32.unpack_from(raw, off)
    off += _LEN32.size
    if len(raw) != off + payload_len + SIGNATURE_LEN:
        raise EnvelopeError("envelope length does not match its payload", code="truncated")
    header = Header(
        kind_v,
        prec_v,
        suite,
        sender.decode(),
        recipient.decode(),
        channel,
        sequence,
        uuid.UUID(bytes=mid),
        sent_at,
    )
    return UnverifiedEnvelope(header, header_bytes, raw[off : off + payload_len], raw)


def _read_short(raw: bytes, off: int) -> tuple[bytes, int]:
    if off >= len(raw):
        raise EnvelopeError("envelope truncated", code="truncated")
    n = raw[off]
    end = off + 1 + n
    if end > len(raw):
        raise EnvelopeError("envelope truncated", code="truncated")
    return raw[off + 1 : end], end


def _station_id(value: str) -> bytes:
    b = value.encode("ascii", errors="replace")
    if not _STATION_ID.match(b):
        raise EnvelopeError(f"{value!r} is not a valid station id")
    return b
