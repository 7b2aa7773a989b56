"""Bundle files: envelopes and receipts for one peer, carried by hand, as one signed file.

Owns the container (docs/bundles.md is its specification): encoding one, and turning a
file's bytes into a checked ``Bundle`` in one step. The checks run cheapest first and
refuse before the contents are parsed: the size limit, the fixed prefix, the header
(bounded JSON), the recipient, the sender's key, the signature over every byte before
it; only then the records. A ``Bundle`` exists only for a file that passed them all.
The envelopes and receipts inside are NOT checked here (the line checks each as it
would one from any path). Pure: no store, no clock, no files; keys come in as bytes.
Must not touch: SQL, the network, what the records mean.

Layout (all integers big-endian)::

    magic "HLBUNDLE" (8) | version 1 (1) | header length H (4) | header (H, JSON)
    | records: kind (1: envelope, 2: receipt) (1) | length L (4) | bytes (L) ...
    | Ed25519 signature (64) over DOMAIN || every byte before it
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hotline.crypto import primitives
from hotline.errors import EnvelopeError, MisaddressedError

MAGIC = b"HLBUNDLE"
VERSION = 1
FORMAT = "hotline-bundle/v1"
#: what the signature covers begins with this (domain separation)
DOMAIN = b"hotline-bundle/v1\x00"
MAX_HEADER_BYTES = 4096
RECORD_ENVELOPE = 1
RECORD_RECEIPT = 2
_PREFIX = struct.Struct(">8sBI")
_RECORD = struct.Struct(">BI")
_SIG = primitives.ED25519_SIGNATURE_LEN
#: the smallest file: prefix, an empty header is not allowed, so this is a floor only
MIN_BYTES = _PREFIX.size + 2 + _SIG
_ID = re.compile(r"^[0-9a-f]{32}$")
_STATION = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_FIELDS = frozenset(
    {"format", "bundle_id", "sender", "recipient", "created_at_us", "envelopes", "receipts",
     "answers", "body_bytes"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BundleHeader:
    """What a bundle says about itself (signed with the rest)."""

    bundle_id: str
    sender: str
    recipient: str
    created_at_us: int
    envelopes: int
    receipts: int
    #: the id of the bundle (from the recipient) that this one answers, if any
    answers: str | None
    body_bytes: int

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT, "bundle_id": self.bundle_id, "sender": self.sender,
            "recipient": self.recipient, "created_at_us": self.created_at_us,
            "envelopes": self.envelopes, "receipts": self.receipts, "answers": self.answers,
            "body_bytes": self.body_bytes,
        }  # fmt: skip
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle whose size, header, recipient and signature were checked."""

    header: BundleHeader
    envelopes: tuple[bytes, ...]
    receipts: tuple[bytes, ...]
    #: SHA-256 of the whole file
    digest: bytes


def new_bundle_id() -> str:
    return primitives.random_bytes(16).hex()


def encode(
    *,
    bundle_id: str,
    sender: str,
    recipient: str,
    created_at_us: int,
    envelopes: Sequence[bytes],
    receipts: Sequence[bytes],
    answers: str | None,
    signer: primitives.Signer,
) -> bytes:
    """The signed file carrying ``envelopes`` then ``receipts`` from ``sender``."""
    body = b"".join(
        [_RECORD.pack(RECORD_ENVELOPE, len(e)) + e for e in envelopes]
        + [_RECORD.pack(RECORD_RECEIPT, len(r)) + r for r in receipts]
    )
    header = BundleHeader(
        bundle_id, sender, recipient, created_at_us, len(envelopes), len(receipts), answers,
        len(body),
    ).to_bytes()  # fmt: skip
    _check_header(header)  # never write what we would refuse to read
    signed = _PREFIX.pack(MAGIC, VERSION, len(header)) + header + body
    return signed + signer.sign(DOMAIN, signed)


def digest(raw: bytes) -> bytes:
    """SHA-256 of a bundle file (named on the ledger)."""
    return primitives.sha256(raw)


def overhead() -> int:
    """Bytes a bundle needs besides its records' bytes (a bound)."""
    return _PREFIX.size + MAX_HEADER_BYTES + _SIG


def record_size(data: bytes) -> int:
    return _RECORD.size + len(data)


def read_header(raw: bytes, *, max_bytes: int, max_records: int = 10_000) -> BundleHeader:
    """The header of a file, checked for size and shape only (not the signature):
    at most ``max_records`` envelopes and at most as many receipts."""
    if len(raw) > max_bytes:
        raise EnvelopeError(f"bundle larger than {max_bytes} bytes", code="too_large")
    if len(raw) < MIN_BYTES:
        raise _bad("bundle is truncated")
    magic, version, hlen = _PREFIX.unpack_from(raw)
    if magic != MAGIC:
        raise _bad("not a hotline bundle file")
    if version != VERSION:
        raise EnvelopeError(f"bundle version {version} is not supported", code="bad_version")
    if not 0 < hlen <= MAX_HEADER_BYTES or _PREFIX.size + hlen + _SIG > len(raw):
        raise _bad("bundle header length out of range")
    header = _check_header(raw[_PREFIX.size : _PREFIX.size + hlen])
    if _PREFIX.size + hlen + header.body_bytes + _SIG != len(raw):
        raise _bad("bundle length does not match its header (truncated or padded)")
    if header.envelopes > max_records or header.receipts > max_records:
        raise EnvelopeError(f"bundle carries more than {max_records} records", code="too_large")
    return header


def open_bundle(
    raw: bytes,
    *,
    max_bytes: int,
    recipient: str,
    key_of: Callable[[str], bytes],
    max_records: int = 10_000,
    max_record_bytes: int | None = None,
) -> Bundle:
    """Check a file and parse its records; raises before parsing them when the size,
    header, recipient, sender (``key_of`` raises for a stranger) or signature fails.
    Records are at most ``max_record_bytes`` each (default: ``max_bytes``)."""
    header = read_header(raw, max_bytes=max_bytes, max_records=max_records)
    if header.recipient != recipient:
        raise MisaddressedError("the bundle is addressed to another station", code="misaddressed")
    key = key_of(header.sender)
    primitives.verify(key, raw[-_SIG:], DOMAIN, raw[:-_SIG])
    body = raw[len(raw) - _SIG - header.body_bytes : -_SIG]
    envelopes, receipts = _records(body, max_record_bytes or max_bytes)
    if len(envelopes) != header.envelopes or len(receipts) != header.receipts:
        raise _bad("bundle record counts do not match its header")
    return Bundle(header, tuple(envelopes), tuple(receipts), digest(raw))


def _records(body: bytes, max_bytes: int) -> tuple[list[bytes], list[bytes]]:
    envelopes: list[bytes] = []
    receipts: list[bytes] = []
    pos = 0
    while pos < len(body):
        if pos + _RECORD.size > len(body):
            raise _bad("bundle record is truncated")
        kind, length = _RECORD.unpack_from(body, pos)
        pos += _RECORD.size
        if length == 0 or length > len(body) - pos or length > max_bytes:
            raise _bad("bundle record length out of range")
        data = body[pos : pos + length]
        pos += length
        if kind == RECORD_ENVELOPE:
            if receipts:
                raise _bad("bundle envelopes must come before its receipts")
            envelopes.append(data)
        elif kind == RECORD_RECEIPT:
            receipts.append(data)
        else:
            raise _bad(f"unknown bundle record kind {kind}")
    return envelopes, receipts


def _check_header(raw: bytes) -> BundleHeader:
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad("bundle header is not JSON") from None
    if not isinstance(doc, dict) or set(doc) != _FIELDS or doc["format"] != FORMAT:
        raise _bad("bundle header has the wrong fields or format")
    answers = doc["answers"]
    ok = (
        _is_str(doc["bundle_id"], _ID)
        and _is_str(doc["sender"], _STATION)
        and _is_str(doc["recipient"], _STATION)
        and (answers is None or _is_str(answers, _ID))
        and all(_is_count(doc[k]) for k in ("created_at_us", "envelopes", "receipts", "body_bytes"))
    )
    if not ok:
        raise _bad("bundle header has a field out of range")
    return BundleHeader(
        doc["bundle_id"], doc["sender"], doc["recipient"], doc["created_at_us"],
        doc["envelopes"], doc["receipts"], answers, doc["body_bytes"],
    )  # fmt: skip


def _is_str(value: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _is_count(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def _bad(message: str) -> EnvelopeError:
    return EnvelopeError(message, code="bad_bundle")
