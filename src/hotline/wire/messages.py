"""What travels inside envelopes: the checked payload of each envelope kind.

Owns the JSON payload schemas (pydantic, strict, unknown fields refused) and parsing
untrusted plaintext into them in one step. Must not touch: keys, the store, the network.
Message ``data`` of typed messages (site notices, activity notices, concerns) is checked
by the deconfliction models when the service accepts it; here it is any JSON object.

Every count and index is bounded to a signed 64-bit integer at parse time (the store
keeps them in BIGINT columns). Times a peer claims are checked against the envelope's sent time
and our receive time by ``check_claimed_time`` (code ``bad_time``): a claim is never
believed beyond that, and our own recorded times drive deadlines and displays.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hotline.errors import BadTimeError, EnvelopeError
from hotline.wire.envelope import Kind

MAX_TEXT = 100_000
INT64_MAX = 2**63 - 1
#: 2020-01-01T00:00:00Z: no claimed time of this protocol is earlier
MIN_TIME_US = 1_577_836_800_000_000

#: a count, index or sequence number: what a BIGINT column holds
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: a time in microseconds since the epoch as claimed by whoever signed the payload: any
#: integer at parse time, so that an out-of-range one is refused as ``bad_time`` by
#: ``check_claimed_time`` (which every use of a peer's payload runs first)
ClaimedTime = int


def check_claimed_time(what: str, value: int, *, not_after_us: int) -> None:
    """Refuse a claimed time before 2020 or after ``not_after_us`` (``bad_time``).

    ``not_after_us`` is the earlier of the envelope's sent time and our receive time,
    each plus the allowed clock skew."""
    if value < MIN_TIME_US or value > not_after_us or value > INT64_MAX:
        raise BadTimeError(f"{what} {value} is out of range (2020 to {not_after_us})")


MessageType = Literal[
    "text",
    "site_notice",
    "activity_notice",
    "concern",
    "channel_accept",
    "channel_decline",
    "channel_propose",
    "dissemination",
    "escalation",
    "read",
    "suspension",
]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class OfficerRef(_Payload):
    """The sending officer, as the sending station authenticated it (a claim of that
    station: shown to the recipient as who sent, never checked against anything here)."""

    username: Annotated[str, Field(min_length=1, max_length=64)]
    display_name: Annotated[str, Field(min_length=1, max_length=100)]
    #: the officer's role at the sending station (service/roles.py Role, or another name)
    role: Annotated[str, Field(min_length=1, max_length=40)]


class MessagePayload(_Payload):
    """An operator's message."""

    type: MessageType = "text"
    text: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    data: dict[str, Any] | None = None
    in_reply_to: uuid.UUID | None = None
    ack_required: bool = True
    #: who sent it (absent from stations before officers' accounts)
    officer: OfficerRef | None = None
    #: one message on a channel with several members travels as one envelope per
    #: recipient (each its own sequence number and message id), tied by this shared id
    group: uuid.UUID | None = None


class AckPayload(_Payload):
    """A named duty officer's "received and understood"."""

    message_id: uuid.UUID
    officer: Annotated[str, Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=2000)] | None = None
    #: the peer's claim; checked by the inbox, stored beside our own receive time
    acknowledged_at_us: ClaimedTime


SeqRange = tuple[Count, Count]


class ReceiptPayload(_Payload):
    """The recipient's signed statement that it durably stored an envelope."""

    envelope_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    sender: str
    sequence: Count
    message_id: uuid.UUID
    #: the peer's claim; checked when the receipt is, never used as our delivery time
    stored_at_us: ClaimedTime
    leaf_index: Count
    tree_size: Annotated[int, Field(ge=1, le=INT64_MAX)]
    duplicate: bool = False
    #: sequence ranges (inclusive) the recipient is missing from this sender
    missing: Annotated[list[SeqRange], Field(max_length=64)] = []


MAX_PROVE = 64
#: most void ranges a link test declares
MAX_VOID = 64


class LinkTestPayload(_Payload):
    nonce: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    t1_us: ClaimedTime
    #: the sender's last sequence number on this direction, so gaps at the tail show up
    last_sequence: Count = 0
    #: a C2SP tlog-witness add-checkpoint request body for the sender's log
    witness: Annotated[str, Field(max_length=16_384)] | None = None
    #: (leaf index, tree size) pairs of the recipient's log to prove inclusion of
    prove: Annotated[list[tuple[Count, Count]], Field(max_length=MAX_PROVE)] = []
    #: inclusive ranges of the sender's sequence numbers on this direction it declares
    #: void (their envelopes were refused for good: service/voids.py); omitted when none
    void: Annotated[list[SeqRange], Field(max_length=MAX_VOID)] | None = None


class InclusionProof(_Payload):
    leaf_index: Count
    tree_size: Annotated[int, Field(ge=1, le=INT64_MAX)]
    hashes: Annotated[list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]], Field(max_length=64)]


class LinkLimits(_Payload):
    """What the replying station accepts on its peer endpoint (its settings of the same
    names); a sender cuts its batches to fit."""

    max_batch_envelopes: Annotated[int, Field(ge=1, le=2**31)]
    max_request_bytes: Annotated[int, Field(ge=1, le=2**53)]
    max_envelope_bytes: Annotated[int, Field(ge=1, le=2**53)]


class LinkTestReplyPayload(_Payload):
    nonce: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    t1_us: ClaimedTime
    #: the peer's claims of when it received the test and answered it
    t2_us: ClaimedTime
    t3_us: ClaimedTime
    missing: Annotated[list[SeqRange], Field(max_length=64)] = []
    #: the tlog-cosignature/v1 line for the checkpoint in the test, when it was cosigned
    cosignature: Annotated[str, Field(max_length=1024)] | None = None
    #: why it was not: the witness's error code (and its stored size on a conflict)
    witness_error: Annotated[str, Field(max_length=64)] | None = None
    witness_size: Count | None = None
    proofs: Annotated[list[InclusionProof], Field(max_length=MAX_PROVE)] = []
    #: the replying station's limits (optional: older stations do not send them)
    limits: LinkLimits | None = None
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


#: a JSON string literal once its escaped backslashes and quotes are taken out
_STRING = re.compile(rb'"[^"]*"')


def json_values_over(plaintext: bytes, limit: int) -> int | None:
    """The number of JSON containers and separators (``[``, ``{``, ``,`` outside strings,
    about one per value) in ``plaintext`` when it is over ``limit``, else None; counted
    without parsing, in time linear in its size and far less than a parse takes.

    A parse holds the interpreter for its whole length (about 1 s for the 10^6 vertices
    of an 8 MB notice): long enough to starve the threads that must run meanwhile (the
    active's election heartbeat). A payload with more values than any message may hold
    is refused before it is parsed."""
    if plaintext.count(b"[") + plaintext.count(b"{") + plaintext.count(b",") <= limit:
        return None  # the usual case: a few byte counts
    bare = plaintext.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes out, in that order
    outside = _STRING.sub(b"", bare)
    n = outside.count(b"[") + outside.count(b"{") + outside.count(b",")
    return n if n > limit else None


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
