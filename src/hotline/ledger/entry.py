"""Ledger entries: the exact bytes that become Merkle leaves.

Owns the binary encoding of one ledger entry and its parsing. An entry commits to the
peer, the direction, the per-direction sequence number and the SHA-256 of the envelope
it records, so that one station's ``envelope_out`` can be matched to the other's
``envelope_in`` from the two logs alone. Must not touch: the store or the network.

Layout (big-endian)::

    u8   version            1
    u8   kind               EntryKind
    u8   len(peer)          then peer station id, ASCII ("" for local entries)
    u64  peer_seq           the envelope's sequence number (0 where none)
    32   envelope_hash      SHA-256 of the envelope bytes (zeros where none)
    i64  recorded_at        microseconds since the Unix epoch, UTC
    u32  len(data)          then data: envelope bytes, or UTF-8 JSON for local entries
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from hotline.errors import EnvelopeError

ENTRY_VERSION = 1
ZERO_HASH = bytes(32)
_FIXED = struct.Struct(">Q32sqI")


class EntryKind(enum.IntEnum):
    ENVELOPE_OUT = 1  #: an envelope this station signed and queued for a peer
    ENVELOPE_IN = 2  #: an envelope received from a peer, as its exact bytes
    RECEIPT_IN = 3  #: a peer's signed receipt for one of our envelopes
    OPERATOR_ACTION = 4  #: a local operator action (JSON)
    LINK_TEST = 5  #: a completed link test and its measurements (JSON)
    WITNESS = 6  #: a checkpoint cosigned for a peer, or evidence of a fork (JSON)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: EntryKind
    peer: str
    peer_seq: int
    envelope_hash: bytes
    recorded_at_us: int
    data: bytes

    def encode(self) -> bytes:
        peer = self.peer.encode("ascii")
        if len(peer) > 255 or len(self.envelope_hash) != 32:
            raise ValueError("peer id too long or envelope hash not 32 bytes")
        return (
            bytes((ENTRY_VERSION, int(self.kind), len(peer)))
            + peer
            + _FIXED.pack(self.peer_seq, self.envelope_hash, self.recorded_at_us, len(self.data))
            + self.data
        )

    @classmethod
    def decode(cls, raw: bytes) -> Entry:
        """Parse entry bytes; raise ``EnvelopeError`` naming what is wrong."""
        if len(raw) < 3:
            raise EnvelopeError("entry truncated", code="bad_entry")
        version, kind, peer_len = raw[0], raw[1], raw[2]
        if version != ENTRY_VERSION:
            raise EnvelopeError(f"entry version {version} unknown", code="bad_entry")
        entry_kind = _KINDS.get(kind)
        if entry_kind is None:
            raise EnvelopeError(f"entry kind {kind} unknown", code="bad_entry")
        off = 3 + peer_len
        if len(raw) < off + _FIXED.size:
            raise EnvelopeError("entry truncated", code="bad_entry")
        try:
            peer = raw[3:off].decode("ascii")
        except UnicodeDecodeError:
            raise EnvelopeError("entry peer id is not ASCII", code="bad_entry") from None
        seq, env_hash, recorded, data_len = _FIXED.unpack_from(raw, off)
        off += _FIXED.size
        if len(raw) != off + data_len:
            raise EnvelopeError("entry length does not match its data", code="bad_entry")
        return cls(entry_kind, peer, seq, env_hash, recorded, raw[off:])


#: kind byte -> EntryKind (a dict lookup: decoding runs once per entry of a transcript)
_KINDS = {int(k): k for k in EntryKind}
