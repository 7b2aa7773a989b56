"""Batch framing on the peer endpoint: many envelopes (or results) in one request body.

Owns the two body formats of ``POST /peer/v1/envelopes`` (docs/wire.md). Pure: bytes in,
bytes out; refuses anything malformed with ``EnvelopeError`` before any envelope is read.

Request::   b"HTLB" u32 count, then count x (u32 length, envelope bytes)
Response::  b"HTLR" u32 count, then count x (u8 status, u32 length, bytes)
            status 0: the signed receipt; status 1: refused, bytes = ASCII error code

Also owns the sender's side of the receiver's limits (``Limits``, ``take``): how many of
the next envelopes fit one request, by count and by bytes of the framed body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hotline.errors import EnvelopeError

REQUEST_MAGIC = b"HTLB"
RESPONSE_MAGIC = b"HTLR"
_COUNT = struct.Struct(">4sI")
_LEN = struct.Struct(">I")
_RESULT = struct.Struct(">BI")
CONTENT_TYPE = "application/vnd.hotline.batch"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a receiver accepts on its peer endpoint (its settings of the same names)."""

    max_batch_envelopes: int
    max_request_bytes: int
    max_envelope_bytes: int

    def within(self, other: Limits) -> Limits:
        """The tighter of two sets of limits, field by field."""
        return Limits(
            min(self.max_batch_envelopes, other.max_batch_envelopes),
            min(self.max_request_bytes, other.max_request_bytes),
            min(self.max_envelope_bytes, other.max_envelope_bytes),
        )


def request_bytes(sizes: list[int]) -> int:
    """The size of the request body that frames envelopes of ``sizes`` bytes."""
    return _COUNT.size + sum(_LEN.size + n for n in sizes)


def take(sizes: list[int], limits: Limits) -> int:
    """How many of the leading envelopes (of ``sizes`` bytes, in order) go in one request:
    as many as fit ``max_batch_envelopes`` and ``max_request_bytes``, and never fewer than
    one while any is left. An envelope over ``max_envelope_bytes`` or too large for any
    request goes alone, so that the receiver refuses that one envelope and nothing else."""
    total, n = _COUNT.size, 0
    for size in sizes[: max(limits.max_batch_envelopes, 1)]:
        if size > limits.max_envelope_bytes:  # refused whatever comes with it: alone
            return n or 1
        total += _LEN.size + size
        if n and total > limits.max_request_bytes:
            break
        n += 1
        if total > limits.max_request_bytes:
            break
    return n


@dataclass(frozen=True, slots=True)
class Result:
    receipt: bytes | None = None
    refused: str | None = None


def encode_batch(envelopes: list[bytes]) -> bytes:
    parts = [_COUNT.pack(REQUEST_MAGIC, len(envelopes))]
    for e in envelopes:
        parts += [_LEN.pack(len(e)), e]
    return b"".join(parts)


def decode_batch(body: bytes, *, max_items: int, max_item_bytes: int) -> list[bytes]:
    _magic, count = _read_head(body, REQUEST_MAGIC, max_items)
    off, out = _COUNT.size, []
    for _ in range(count):
        if off + _LEN.size > len(body):
            raise EnvelopeError("batch truncated", code="bad_batch")
        (n,) = _LEN.unpack_from(body, off)
        off += _LEN.size
        if n > max_item_bytes:
            raise EnvelopeError(f"envelope of {n} bytes exceeds the limit", code="too_large")
        if off + n > len(body):
            raise EnvelopeError("batch truncated", code="bad_batch")
        out.append(body[off : off + n])
        off += n
    if off != len(body):
        raise EnvelopeError("trailing bytes after the batch", code="bad_batch")
    return out


def encode_results(results: list[Result]) -> bytes:
    parts = [_COUNT.pack(RESPONSE_MAGIC, len(results))]
    for r in results:
        status, data = (0, r.receipt) if r.receipt is not None else (1, (r.refused or "").encode())
        parts += [_RESULT.pack(status, len(data)), data]
    return b"".join(parts)


def decode_results(body: bytes, *, expected: int) -> list[Result]:
    _, count = _read_head(body, RESPONSE_MAGIC, expected)
    if count != expected:
        raise EnvelopeError(f"{count} results for {expected} envelopes", code="bad_batch")
    off, out = _COUNT.size, []
    for _ in range(count):
        if off + _RESULT.size > len(body):
            raise EnvelopeError("results truncated", code="bad_batch")
        status, n = _RESULT.unpack_from(body, off)
        off += _RESULT.size
        if off + n > len(body) or status not in (0, 1):
            raise EnvelopeError("results malformed", code="bad_batch")
        data = body[off : off + n]
        off += n
        if status == 0:
            out.append(Result(receipt=data))
        else:
            out.append(Result(refused=data.decode("ascii", errors="replace")[:64]))
    if off != len(body):
        raise EnvelopeError("trailing bytes after the results", code="bad_batch")
    return out


def _read_head(body: bytes, magic: bytes, max_items: int) -> tuple[bytes, int]:
    if len(body) < _COUNT.size:
        raise EnvelopeError("batch truncated", code="bad_batch")
    got, count = _COUNT.unpack_from(body, 0)
    if got != magic:
        raise EnvelopeError("not a hotline batch", code="bad_batch")
    if count > max_items:
        raise EnvelopeError(f"batch of {count} exceeds {max_items} envelopes", code="bad_batch")
    return got, count
