"""The scripted hostile peer: a station with VALID keys that lies in any field it sends.

Owns forging envelopes byte for byte (any header field, any value its width can hold,
including values ``wire.encode_header`` refuses to build: sequence numbers up to 2^64-1,
sent times of 2^63 and above, unknown kinds), sealing them to the target with HPKE and
signing them with the peer's real signing key (or, for a bad-signature attack, another
one); the payloads it lies in (messages, site notices, acknowledgements, link tests with
forged checkpoints); and reading the target's signed answers (receipts, link test
replies) the way an honest peer would. Invariant: everything it builds is exactly what a
peer holding these keys could put on the wire. Must not touch: the target's store or
internals; it only speaks through the peer endpoint, like any peer.
"""

from __future__ import annotations

import json
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from hotline.crypto import primitives
from hotline.crypto.card import SignedCard
from hotline.crypto.keys import StationIdentity
from hotline.crypto.primitives import SUITE_NONE, HpkeSuite
from hotline.ledger import checkpoint as cps
from hotline.ledger import witness as wit
from hotline.ledger.note import NoteSigner
from hotline.service.witnessing import origin_of
from hotline.wire import batchreceipt
from hotline.wire import envelope as wire
from hotline.wire.envelope import Kind, Precedence
from hotline.wire.messages import LinkTestReplyPayload, ReceiptPayload, parse_payload

_U64 = (1 << 64) - 1
_HEAD = struct.Struct(">4sBBBBHHH")
_LEN32 = struct.Struct(">I")

#: sealed kinds of the wire; anything else (RECEIPT, unknown numbers) travels in clear
_SEALED = {int(k) for k in Kind if k.sealed}


@dataclass
class Forged:
    """The header fields of a forged envelope; any value fits (it is packed modulo its
    field's width), and ``plaintext`` is sealed for sealed kinds, sent in clear otherwise."""

    kind: int = int(Kind.MESSAGE)
    precedence: int = int(Precedence.ROUTINE)
    suite: HpkeSuite = wire.DEFAULT_SUITE
    sender: str = "mallory"
    recipient: str = "alpha"
    channel: str = "working"
    sequence: int = 1
    message_id: uuid.UUID = field(default_factory=uuid.uuid4)
    sent_at_us: int = 0
    plaintext: bytes = b'{"text":"hello"}'
    version: int = wire.VERSION
    flags: int = 0

    def header_bytes(self) -> bytes:
        def short(s: str) -> bytes:
            b = s.encode("utf-8", errors="replace")[:255]
            return bytes((len(b),)) + b

        return (
            _HEAD.pack(
                wire.MAGIC,
                self.version & 0xFF,
                self.kind & 0xFF,
                self.precedence & 0xFF,
                self.flags & 0xFF,
                self.suite.kem_id,
                self.suite.kdf_id,
                self.suite.aead_id,
            )
            + short(self.sender)
            + short(self.recipient)
            + short(self.channel)
            + struct.pack(
                ">Q16sQ", self.sequence & _U64, self.message_id.bytes, self.sent_at_us & _U64
            )
        )


def message_plaintext(text: str = "hello", **fields: Any) -> bytes:
    """A message payload as JSON (any fields; nothing is checked here)."""
    return json.dumps({"text": text, **fields}).encode()


def ack_plaintext(message_id: str, acknowledged_at_us: int, officer: str = "Col. Lie") -> bytes:
    """An acknowledgement payload; the time may be any JSON integer (2^63 and beyond)."""
    doc = {"message_id": message_id, "officer": officer, "acknowledged_at_us": acknowledged_at_us}
    return json.dumps(doc).encode()


def polygon_site_notice(vertices: int, site_id: str = "HUGE") -> bytes:
    """A site notice message whose polygon has ``vertices`` vertices (a closed ring of
    small integer coordinates, so that 10^6 vertices stay a few megabytes)."""
    ring = [[i % 7, i % 5] for i in range(vertices - 1)]
    ring.append(ring[0])
    notice = {
        "type": "site_notice",
        "notice_id": f"n-{site_id}",
        "action": "add",
        "site_id": site_id,
        "site": {
            "names": {"en": "A plant"},
            "category": "power_station",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "reconfirm_by": "2027-01-01T00:00:00Z",
        },
    }
    return json.dumps({"type": "site_notice", "text": "", "data": notice}).encode()


@dataclass
class HostilePeer:
    """A real peer of the target (its card was added there), scripted to attack it."""

    identity: StationIdentity
    target: SignedCard
    #: the next sequence number the target expects from us (what an honest peer would use)
    next_seq: int = 1

    @property
    def station_id(self) -> str:
        return self.identity.station_id

    @property
    def target_id(self) -> str:
        return self.target.card.station_id

    def take_seq(self) -> int:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        return seq

    def forged(self, now_us: int, **fields: Any) -> Forged:
        """Header fields of an honest envelope from us to the target, with ``fields``
        replaced."""
        base: dict[str, Any] = {
            "sender": self.station_id,
            "recipient": self.target_id,
            "sent_at_us": now_us,
        }
        return Forged(**{**base, **fields})

    def seal(
        self,
        f: Forged,
        *,
        signing_seed: bytes | None = None,
        encryption_key: bytes | None = None,
    ) -> bytes:
        """The envelope's exact bytes: sealed to the target (or ``encryption_key``) and
        signed with our real key (or ``signing_seed``)."""
        head = f.header_bytes()
        if f.kind in _SEALED and f.suite != SUITE_NONE:
            key = encryption_key or self.target.card.encryption_key
            payload = primitives.seal(f.suite, key, wire.PAYLOAD_INFO + head, f.plaintext)
        else:
            payload = f.plaintext
        signed = head + _LEN32.pack(len(payload)) + payload
        signer = primitives.Signer(signing_seed or self.identity.signing_seed)
        return signed + signer.sign(wire.SIGN_CONTEXT, signed)

    def envelope(self, now_us: int, **fields: Any) -> bytes:
        """Forge, seal and sign in one step (``signing_seed``/``encryption_key`` apart)."""
        seed = fields.pop("signing_seed", None)
        key = fields.pop("encryption_key", None)
        return self.seal(self.forged(now_us, **fields), signing_seed=seed, encryption_key=key)

    def message(self, now_us: int, seq: int, text: str = "hello", **fields: Any) -> bytes:
        return self.envelope(now_us, sequence=seq, plaintext=message_plaintext(text), **fields)

    def receipt_for(
        self,
        now_us: int,
        envelope: bytes,
        *,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> bytes:
        """Our signed receipt for the target's ``envelope``: truthful, except for
        ``claims`` in its payload and ``header`` fields."""
        h = wire.decode(envelope, max_bytes=len(envelope)).header
        doc: dict[str, Any] = {
            "envelope_hash": primitives.sha256(envelope).hex(),
            "sender": h.sender,
            "sequence": h.sequence,
            "message_id": str(h.message_id),
            "stored_at_us": now_us,
            "leaf_index": 3,
            "tree_size": 4,
            **claims,
        }
        fields: dict[str, Any] = {
            "kind": int(Kind.RECEIPT),
            "suite": SUITE_NONE,
            "sequence": 0,
            "channel": h.channel,
            "message_id": h.message_id,
            "plaintext": json.dumps(doc).encode(),
            **(header or {}),
        }
        return self.envelope(now_us, **fields)

    def batch_receipt_for(
        self,
        now_us: int,
        envelope: bytes,
        *,
        others: int = 2,
        index: int = 0,
        signing_seed: bytes | None = None,
        root_claims: dict[str, Any] | None = None,
        **claims: Any,
    ) -> tuple[bytes, bytes, list[bytes]]:
        """A batch receipt (docs/wire.md) for the target's ``envelope`` at ``index`` among
        ``others`` receipts of made-up envelopes: truthful, except for ``claims`` in the
        item and ``root_claims`` in the signed root. Returns (the batch receipt, its root
        envelope, every item)."""
        h = wire.decode(envelope, max_bytes=len(envelope)).header
        items: list[bytes] = []
        for k in range(others + 1):
            doc: dict[str, Any] = {
                "envelope_hash": primitives.sha256(envelope if k == index else b"%d" % k).hex(),
                "sender": h.sender,
                "sequence": h.sequence if k == index else 1000 + k,
                "message_id": str(h.message_id),
                "stored_at_us": now_us,
                "leaf_index": 3 + k,
                "tree_size": 4 + k,
                **(claims if k == index else {}),
            }
            items.append(json.dumps(doc).encode())
        root, proofs = batchreceipt.tree(items)
        root_doc = {"format": batchreceipt.FORMAT, "root": root.hex(), "count": len(items),
                    **(root_claims or {})}  # fmt: skip
        root_env = self.envelope(
            now_us, kind=int(Kind.RECEIPT), suite=SUITE_NONE, sequence=0, channel=h.channel,
            message_id=h.message_id, plaintext=json.dumps(root_doc).encode(),
            signing_seed=signing_seed,
        )  # fmt: skip
        return batchreceipt.encode(root_env, items[index], index, proofs[index]), root_env, items

    # --- what the target signs back ---------------------------------------------------

    def receipt(self, raw: bytes) -> ReceiptPayload:
        """Check a receipt as a peer must (either form: docs/wire.md): from the target, to
        us, signed by its key."""
        _h, payload = batchreceipt.open_receipt(
            raw, self.target.card.signing_key, sender=self.target_id,
            recipient=self.station_id, max_envelope_bytes=1 << 20,
        )  # fmt: skip
        return payload

    # --- link tests and checkpoints ---------------------------------------------------

    def link_test(
        self,
        now_us: int,
        *,
        witness: str | None = None,
        t1_us: int | None = None,
        last_sequence: int | None = None,
    ) -> tuple[bytes, str]:
        """A sealed, signed link test carrying ``witness`` (an add-checkpoint request);
        returns its bytes and its nonce."""
        nonce = primitives.random_bytes(16).hex()
        doc: dict[str, Any] = {
            "nonce": nonce,
            "t1_us": now_us if t1_us is None else t1_us,
            "last_sequence": self.next_seq - 1 if last_sequence is None else last_sequence,
        }
        if witness is not None:
            doc["witness"] = witness
        raw = self.envelope(
            now_us,
            kind=int(Kind.LINK_TEST),
            sequence=0,
            channel="link-test",
            plaintext=json.dumps(doc).encode(),
        )
        return raw, nonce

    def link_reply(self, raw: bytes, nonce: str) -> LinkTestReplyPayload:
        u = wire.decode(raw, max_bytes=1 << 20)
        assert u.header.kind is Kind.LINK_TEST_REPLY
        env = u.verify(self.target.card.signing_key)
        opener = primitives.Opener(self.identity.encryption_private)
        reply: LinkTestReplyPayload = parse_payload(Kind.LINK_TEST_REPLY, env.open(opener))
        assert reply.nonce == nonce
        return reply

    def checkpoint_note(self, size: int, root: bytes, *, log_seed: bytes | None = None) -> str:
        """A checkpoint of our log, signed with our real log key (or ``log_seed``)."""
        origin = origin_of(self.station_id)
        signer = NoteSigner(origin, log_seed or self.identity.log_seed)
        return cps.sign_checkpoint(cps.Checkpoint(origin, size, root), signer)

    @staticmethod
    def add_checkpoint(old_size: int, proof: list[bytes], note: str) -> str:
        return wit.AddCheckpoint(old_size, tuple(proof), note).format().decode()
