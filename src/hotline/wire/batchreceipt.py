"""Batch receipts: one signature over many receipts, each still provable by itself.

Owns the byte format of a *batch receipt* (docs/wire.md "Batch receipts"), the Merkle
tree over receipt items (RFC 9162 hashing; leaves carry their own domain-separation
prefix) and its inclusion proofs, and the root payload a receiver signs once per batch.
A batch receipt is self-contained: the signed root envelope (kind RECEIPT, payload
``ReceiptRootPayload``), one item (the canonical bytes of a ``ReceiptPayload``), its
index and the inclusion proof of the item under the signed root::

    b"HTRB" | version (1) | root_len (2) | root envelope | item_len (2) | item
            | index (4) | proof_count (1) | proof_count x 32-byte hashes

Pure: bytes in, bytes out; every size is checked before anything is parsed, and nothing
here verifies a signature (service/receipts.py does, once per distinct root). Must not
touch: keys, the store, the network.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, ValidationError

from hotline.errors import EnvelopeError, MisaddressedError, ProofError
from hotline.ledger import merkle
from hotline.wire import envelope
from hotline.wire.envelope import Header, Kind
from hotline.wire.messages import ReceiptPayload, _Payload, parse_payload

MAGIC = b"HTRB"
VERSION = 1
#: most hashes in an inclusion proof (a tree of up to 2**64 items needs at most 64)
MAX_PROOF = 64
#: most items one root covers (a writer batch is far smaller)
MAX_COUNT = 1 << 20
#: largest root envelope (its payload is ~130 bytes; the header and signature ~200)
MAX_ROOT_BYTES = 2048
#: largest item (a ReceiptPayload with 64 missing ranges of int64 is ~3 KB)
MAX_ITEM_BYTES = 8192
#: domain separation of the leaves: a receipt item never hashes like a ledger entry
LEAF_PREFIX = b"hotline-receipt-item/v1\x00"
FORMAT: Literal["hotline-receipts/v1"] = "hotline-receipts/v1"

_HEAD = struct.Struct(">4sBH")
_LEN = struct.Struct(">H")
_TAIL = struct.Struct(">IB")
MAX_BYTES = _HEAD.size + MAX_ROOT_BYTES + _LEN.size + MAX_ITEM_BYTES + _TAIL.size + 32 * MAX_PROOF


class ReceiptRootPayload(_Payload):
    """What the receiver signs once per batch: the root over ``count`` receipt items."""

    format: Literal["hotline-receipts/v1"]
    root: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    count: Annotated[int, Field(ge=1, le=MAX_COUNT)]


def parse_root(plaintext: bytes) -> ReceiptRootPayload:
    """The root envelope's payload; ``EnvelopeError`` (``bad_payload``) when malformed."""
    try:
        return ReceiptRootPayload.model_validate_json(plaintext, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise EnvelopeError(
            f"receipt root payload invalid at {where}: {first['msg']}", code="bad_payload"
        ) from None


@dataclass(frozen=True, slots=True)
class BatchReceipt:
    """A parsed, not yet trusted, batch receipt."""

    root_envelope: bytes
    item: bytes
    index: int
    proof: tuple[bytes, ...]

    def encode(self) -> bytes:
        return encode(self.root_envelope, self.item, self.index, self.proof)


def is_batch(raw: bytes) -> bool:
    """True when ``raw`` is in the batch form (else it is a single signed receipt)."""
    return raw[:4] == MAGIC


def encode(root_envelope: bytes, item: bytes, index: int, proof: Sequence[bytes]) -> bytes:
    if len(root_envelope) > MAX_ROOT_BYTES or len(item) > MAX_ITEM_BYTES:
        raise ValueError("root envelope or item too large")
    if len(proof) > MAX_PROOF or any(len(p) != 32 for p in proof):
        raise ValueError("bad proof")
    return b"".join(
        [
            _HEAD.pack(MAGIC, VERSION, len(root_envelope)),
            root_envelope,
            _LEN.pack(len(item)),
            item,
            _TAIL.pack(index, len(proof)),
            *proof,
        ]
    )


def _bad(msg: str) -> EnvelopeError:
    return EnvelopeError(f"batch receipt {msg}", code="bad_receipt")


def decode(raw: bytes) -> BatchReceipt:
    """Parse a batch receipt; ``EnvelopeError`` (``bad_receipt`` or ``too_large``) before
    any part is read when a size is out of bounds or the bytes are truncated."""
    if len(raw) > MAX_BYTES:
        raise EnvelopeError(f"batch receipt of {len(raw)} bytes exceeds {MAX_BYTES}",
                            code="too_large")  # fmt: skip
    if len(raw) < _HEAD.size:
        raise _bad("truncated")
    magic, version, root_len = _HEAD.unpack_from(raw, 0)
    if magic != MAGIC:
        raise _bad("has the wrong magic")
    if version != VERSION:
        raise EnvelopeError(f"batch receipt version {version} is not supported",
                            code="bad_version")  # fmt: skip
    if root_len > MAX_ROOT_BYTES:
        raise EnvelopeError("receipt root envelope too large", code="too_large")
    off = _HEAD.size
    if off + root_len + _LEN.size > len(raw):
        raise _bad("truncated")
    root_env = raw[off : off + root_len]
    off += root_len
    (item_len,) = _LEN.unpack_from(raw, off)
    off += _LEN.size
    if item_len > MAX_ITEM_BYTES:
        raise EnvelopeError("receipt item too large", code="too_large")
    if off + item_len + _TAIL.size > len(raw):
        raise _bad("truncated")
    item = raw[off : off + item_len]
    off += item_len
    index, n = _TAIL.unpack_from(raw, off)
    off += _TAIL.size
    if n > MAX_PROOF:
        raise EnvelopeError(f"inclusion proof of {n} hashes exceeds {MAX_PROOF}",
                            code="bad_receipt_proof")  # fmt: skip
    if off + 32 * n != len(raw):
        raise _bad("truncated or followed by trailing bytes")
    proof = tuple(raw[off + 32 * i : off + 32 * (i + 1)] for i in range(n))
    return BatchReceipt(root_env, item, index, proof)


# --- the tree over items -----------------------------------------------------------


def leaf_hash(item: bytes) -> bytes:
    """SHA-256(0x00 || "hotline-receipt-item/v1\\x00" || item)."""
    return merkle.leaf_hash(LEAF_PREFIX + item)


def tree(items: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """(root, inclusion proof of each item) of the RFC 9162 tree over ``items``, in
    O(n log n) hashing."""
    if not items:
        raise ValueError("no items")
    return _all([leaf_hash(i) for i in items])


def _all(hashes: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    n = len(hashes)
    if n == 1:
        return hashes[0], [[]]
    k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two below n
    left, lp = _all(hashes[:k])
    right, rp = _all(hashes[k:])
    return merkle.node_hash(left, right), [[*p, right] for p in lp] + [[*p, left] for p in rp]


def check_inclusion(b: BatchReceipt, root: ReceiptRootPayload) -> None:
    """The item is at ``index`` under the signed root (hashes only); ``EnvelopeError``
    (``bad_receipt_proof``) when not."""
    if b.index >= root.count:
        raise EnvelopeError(f"receipt index {b.index} is not below the batch's count "
                            f"{root.count}", code="bad_receipt_proof")  # fmt: skip
    try:
        merkle.verify_inclusion(
            leaf_hash(b.item), b.index, root.count, b.proof, bytes.fromhex(root.root)
        )
    except ProofError as exc:
        raise EnvelopeError(f"receipt inclusion proof: {exc.message}",
                            code="bad_receipt_proof") from None  # fmt: skip


def root_digest(root_envelope: bytes) -> bytes:
    """The cache key of a root envelope (its SHA-256)."""
    return hashlib.sha256(root_envelope).digest()


# --- either form, verified -----------------------------------------------------------

#: roots already verified in this call: root envelope digest -> (its header, payload)
RootCache = dict[bytes, "tuple[Header, ReceiptRootPayload]"]


def open_receipt(
    raw: bytes,
    signing_key: bytes | Callable[[], bytes],
    *,
    sender: str,
    recipient: str,
    max_envelope_bytes: int,
    roots: RootCache | None = None,
) -> tuple[Header, ReceiptPayload]:
    """A receipt in either form, checked: (the signed header, the receipt item).

    The single form is a RECEIPT envelope whose payload is the item. The batch form's
    root envelope must be a RECEIPT from ``sender`` to ``recipient`` signed by
    ``signing_key`` (verified once per distinct root when ``roots`` is given), then the
    item's inclusion proof under its root (hashes only). Addressing is checked before
    any signature (``signing_key`` may be a callable, asked only then). The caller
    checks dates, claimed times and what the item names."""
    if not is_batch(raw):
        u = envelope.decode(raw, max_bytes=max_envelope_bytes)
        _addressed(u.header, sender, recipient)
        env = u.verify(_key(signing_key))
        return env.header, parse_payload(Kind.RECEIPT, env.payload)
    b = decode(raw)
    key = root_digest(b.root_envelope)
    got = roots.get(key) if roots is not None else None
    if got is None:
        u = envelope.decode(b.root_envelope, max_bytes=MAX_ROOT_BYTES)
        _addressed(u.header, sender, recipient)
        env = u.verify(_key(signing_key))
        got = (env.header, parse_root(env.payload))
        if roots is not None:
            roots[key] = got
    header, root = got
    check_inclusion(b, root)
    return header, parse_payload(Kind.RECEIPT, b.item)


def signed_header(raw: bytes, *, max_envelope_bytes: int) -> Header:
    """The header of the envelope that signs a receipt in either form (the receipt's, or
    its root's), NOT verified: for cheap checks of addressing before anything else."""
    if is_batch(raw):
        return envelope.decode(decode(raw).root_envelope, max_bytes=MAX_ROOT_BYTES).header
    return envelope.decode(raw, max_bytes=max_envelope_bytes).header


def item_of(raw: bytes) -> ReceiptPayload:
    """The receipt item of a receipt in either form, NOT verified (for a receipt checked
    already, e.g. one read back from our own ledger)."""
    if is_batch(raw):
        return parse_payload(Kind.RECEIPT, decode(raw).item)  # type: ignore[no-any-return]
    u = envelope.decode(raw, max_bytes=len(raw))
    return parse_payload(Kind.RECEIPT, u.payload)  # type: ignore[no-any-return]


def _key(k: bytes | Callable[[], bytes]) -> bytes:
    return k if isinstance(k, bytes) else k()


def _addressed(h: Header, sender: str, recipient: str) -> None:
    if h.kind is not Kind.RECEIPT:
        raise EnvelopeError("expected a receipt", code="bad_kind")
    if h.sender != sender or h.recipient != recipient:
        raise MisaddressedError("receipt is not from the peer we sent to, or not for us")
