"""Relay frames: what one station puts on the NATS relay for another, signed by its sender.

Owns the byte format of a frame, its signature (Ed25519 with the sending station's signing
key, domain-separated from every other signature of the station), and the subject and
stream names a station id maps to. Pure: bytes in, bytes out; refuses anything malformed
with ``EnvelopeError`` (code ``bad_frame``, or ``too_large`` before any byte is parsed).
Must not touch: NATS, the store, envelopes (a frame's body is opaque here).

A frame::

    b"HTLF" u8 version(1) u8 kind
    u8 len, sender id | u8 len, recipient id | 16 bytes correlation id
    u32 len, body | 64 bytes signature over DOMAIN || everything before it

Kinds: BATCH (body: a batch, ``framing.encode_batch``), RESULTS (``framing.encode_results``),
LINK_TEST (one envelope), LINK_REPLY (the reply envelope), REFUSED (body: the ASCII code
with which the whole request was refused). A reply carries the correlation id of its
request. The relay sees sealed envelopes under a signature it cannot forge: it can delay,
drop, replay or misroute frames, never alter one unnoticed.

Station ids are 1 to 32 of ``[a-z0-9-]`` (``crypto.card.check_station_id``), which are
subject tokens and stream-name characters as they are: no mapping is needed.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass

from hotline.crypto import primitives
from hotline.errors import EnvelopeError

MAGIC = b"HTLF"
VERSION = 1
DOMAIN = b"hotline/relay-frame/v1\x00"
CORRELATION_LEN = 16
_HEAD = struct.Struct(">4sBB")
_LEN = struct.Struct(">I")
_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
#: bytes a frame adds to its body at most (two 32-character ids)
OVERHEAD = _HEAD.size + 2 * 33 + CORRELATION_LEN + _LEN.size + primitives.ED25519_SIGNATURE_LEN
_PREFIX_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


class Kind(enum.IntEnum):
    BATCH = 1
    RESULTS = 2
    LINK_TEST = 3
    LINK_REPLY = 4
    REFUSED = 5


REQUESTS = frozenset({Kind.BATCH, Kind.LINK_TEST})


@dataclass(frozen=True, slots=True)
class Frame:
    kind: Kind
    sender: str
    recipient: str
    correlation: bytes
    body: bytes
    #: the bytes the signature covers (after DOMAIN), and the signature
    signed: bytes = b""
    signature: bytes = b""


def encode(
    signer: primitives.Signer,
    kind: Kind,
    sender: str,
    recipient: str,
    correlation: bytes,
    body: bytes,
) -> bytes:
    if len(correlation) != CORRELATION_LEN:
        raise ValueError("a correlation id is 16 bytes")
    s, r = _id_bytes(sender), _id_bytes(recipient)
    signed = b"".join(
        [
            _HEAD.pack(MAGIC, VERSION, kind),
            bytes([len(s)]),
            s,
            bytes([len(r)]),
            r,
            correlation,
            _LEN.pack(len(body)),
            body,
        ]
    )
    return signed + signer.sign(DOMAIN, signed)


def decode(data: bytes, *, max_bytes: int) -> Frame:
    """Parse a frame (its signature not yet checked: see ``verify``)."""
    if len(data) > max_bytes:
        raise EnvelopeError(f"frame of {len(data)} bytes exceeds {max_bytes}", code="too_large")
    end = len(data) - primitives.ED25519_SIGNATURE_LEN
    if end < _HEAD.size:
        raise EnvelopeError("frame truncated", code="bad_frame")
    magic, version, kind = _HEAD.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise EnvelopeError("not a hotline relay frame", code="bad_frame")
    try:
        kind = Kind(kind)
    except ValueError:
        raise EnvelopeError(f"unknown frame kind {kind}", code="bad_frame") from None
    off = _HEAD.size
    sender, off = _read_id(data, off, end)
    recipient, off = _read_id(data, off, end)
    if off + CORRELATION_LEN + _LEN.size > end:
        raise EnvelopeError("frame truncated", code="bad_frame")
    correlation = data[off : off + CORRELATION_LEN]
    off += CORRELATION_LEN
    (n,) = _LEN.unpack_from(data, off)
    off += _LEN.size
    if off + n != end:
        raise EnvelopeError("frame body length does not match", code="bad_frame")
    return Frame(kind, sender, recipient, correlation, data[off:end], data[:end], data[end:])


def verify(frame: Frame, signing_key: bytes) -> None:
    """Raise ``SignatureError`` unless ``frame`` is signed by ``signing_key``."""
    primitives.verify(signing_key, frame.signature, DOMAIN, frame.signed)


def _id_bytes(station_id: str) -> bytes:
    if _ID_RE.fullmatch(station_id) is None:
        raise ValueError(f"invalid station id {station_id!r}")
    return station_id.encode("ascii")


def _read_id(data: bytes, off: int, end: int) -> tuple[str, int]:
    if off >= end:
        raise EnvelopeError("frame truncated", code="bad_frame")
    n = data[off]
    off += 1
    if off + n > end:
        raise EnvelopeError("frame truncated", code="bad_frame")
    raw = data[off : off + n]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise EnvelopeError("station id is not ASCII", code="bad_frame") from None
    if _ID_RE.fullmatch(text) is None:
        raise EnvelopeError("invalid station id in frame", code="bad_frame")
    return text, off + n


# --- names on the relay -----------------------------------------------------------------


def check_prefix(prefix: str) -> str:
    if _PREFIX_RE.fullmatch(prefix) is None:
        raise ValueError("a relay prefix is 1 to 32 of A-Z a-z 0-9 _ -")
    return prefix


def inbound_subject(prefix: str, station: str, sender: str) -> str:
    """Where ``sender`` publishes frames for ``station``."""
    return f"{prefix}.{station}.in.{sender}"


def stream_subjects(prefix: str, station: str) -> str:
    """The subjects ``station``'s stream holds: every sender's frames for it."""
    return f"{prefix}.{station}.in.>"


def stream_name(prefix: str, station: str) -> str:
    return f"{prefix}_{station}".upper()
