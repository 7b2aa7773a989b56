"""What travels inside envelopes: the checked payload of each envelope kind.

Owns the JSON payload schemas (pydantic, strict, unknown fields refused) and parsing
untrusted plaintext into them in one step. Must not touch: keys, the store, the network.
Message ``data`` of typed messages (site notices, activity notices, concerns) is checked
by the deconfliction models when the service accepts it; here it is any JSON object.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hotline.errors import EnvelopeError
from hotline.wire.envelope import Kind

MAX_TEXT = 100_000
MessageType = Literal["text", "site_notice", "activity_notice", "concern"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class MessagePayload(_Payload):
    """An operator's message."""

    type: MessageType = "text"
    text: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    data: dict[str, Any] | None = None
    in_reply_to: uuid.UUID | None = None
    ack_required: bool = True


class AckPayload(_Payload):
    """A named duty officer's "received and understood"."""

    message_id: uuid.UUID
    officer: Annotated[str, Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=2000)] | None = None
    acknowledged_at_us: int


SeqRange = tuple[int, int]


class ReceiptPayload(_Payload):
    """The recipient's signed statement that it durably stored an envelope."""

    envelope_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    sender: str
    sequence: Annotated[int, Field(ge=0)]
    message_id: uuid.UUID
    stored_at_us: int
    leaf_index: Annotated[int, Field(ge=0)]
    tree_size: Annotated[int, Field(ge=1)]
    duplicate: bool = False
    #: sequence ranges (inclusive) the recipient is missing from this sender
    missing: Annotated[list[SeqRange], Field(max_length=64)] = []


MAX_PROVE = 64


class LinkTestPayload(_Payload):
    nonce: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    t1_us: int
    #: the sender's last sequence number on this direction, so gaps at the tail show up
    last_sequence: Annotated[int, Field(ge=0)] = 0
    #: a C2SP tlog-witness add-checkpoint request body for the sender's log
    witness: Annotated[str, Field(max_length=16_384)] | None = None
    #: (leaf index, tree size) pairs of the recipient's log to prove inclusion of
    prove: Annotated[list[tuple[int, int]], Field(max_length=MAX_PROVE)] = []


class InclusionProof(_Payload):
    leaf_index: Annotated[int, Field(ge=0)]
    tree_size: Annotated[int, Field(ge=1)]
    hashes: Annotated[list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]], Field(max_length=64)]


class LinkTestReplyPayload(_Payload):
    nonce: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    t1_us: int
    t2_us: int
    t3_us: int
    missing: Annotated[list[SeqRange], Field(max_length=64)] = []
    #: the tlog-cosignature/v1 line for the checkpoint in the test, when it was cosigned
    cosignature: Annotated[str, Field(max_length=1024)] | None = None
    #: why it was not: the witness's error code (and its stored size on a conflict)
    witness_error: Annotated[str, Field(max_length=64)] | None = None
    witness_size: Annotated[int, Field(ge=0)] | None = None
    proofs: Annotated[list[InclusionProof], Field(max_length=MAX_PROVE)] = []
    #: the highest contiguous and the highest sequence number the replying station holds
    #: from the asking one (a restored asker resumes above them: service/resync.py)
    held_contiguous: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    held_highest: Annotated[int, Field(ge=0, lt=2**63)] | None = None


Payload = MessagePayload | AckPayload | ReceiptPayload | LinkTestPayload | LinkTestReplyPayload

_BY_KIND: dict[Kind, type[_Payload]] = {
    Kind.MESSAGE: MessagePayload,
    Kind.ACK: AckPayload,
    Kind.RECEIPT: ReceiptPayload,
    Kind.LINK_TEST: LinkTestPayload,
    Kind.LINK_TEST_REPLY: LinkTestReplyPayload,
}


def parse_payload(kind: Kind, plaintext: bytes) -> Any:
    """Parse the opened payload of an envelope of ``kind``; raise ``EnvelopeError``."""
    model = _BY_KIND[kind]
    try:
        return model.model_validate_json(plaintext, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise EnvelopeError(
            f"{kind.name} payload invalid at {where}: {first['msg']}", code="bad_payload"
        ) from None
