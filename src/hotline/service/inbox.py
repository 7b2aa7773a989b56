"""The inbox: a peer's sequenced envelopes (messages, acknowledgements) checked, then
stored exactly once, each answered with a signed receipt (one signature per writer
batch: service/receipts.py).

Owns the order of checks at the boundary (decode, addressee, known sender, signature,
date, channel, open, payload, claimed times) before any unit reaches the writer, and the ingest
unit that appends an ``ENVELOPE_IN`` entry and applies its projections in one
transaction. A duplicate (same sequence, same bytes) gets its stored receipt again and
changes nothing.

Invariant: the unit decides every refusal that needs the store (replay, a number its
sender declared void, sequence window, old message id, an acknowledgement of a message
we never sent to that peer or older than its message) by reading BEFORE it appends
anything, and returns the refusal as a value: the writer commits the rest of the batch
and never rolls back for a peer's misbehaviour (a rollback reloads in-memory projections
such as the deconfliction registry, far dearer than an envelope). Must not touch: SQL
(store/linedb), sockets or HTTP (the peer endpoint calls in).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from hotline.crypto import primitives
from hotline.errors import (
    BadTimeError,
    EnvelopeError,
    HotlineError,
    InputError,
    MisaddressedError,
    ReplayError,
    SequenceWindowError,
)
from hotline.ledger.entry import Entry, EntryKind
from hotline.service import receipts
from hotline.service.context import LineContext
from hotline.service.events import message_content
from hotline.service.sender import check_data
from hotline.store import linedb, voids
from hotline.store.writer import WriteTx
from hotline.wire import envelope as wire
from hotline.wire.envelope import Envelope, Kind
from hotline.wire.messages import (
    INT64_MAX,
    AckPayload,
    MessagePayload,
    check_claimed_time,
    json_values_over,
    parse_payload,
)


@dataclass(frozen=True, slots=True)
class Inbound:
    """An envelope that passed every check and is ready to be stored."""

    envelope: Envelope
    payload: Any


def check_inbound(ctx: LineContext, raw: bytes) -> Inbound:
    """Every check an envelope must pass before anything is stored (pure CPU work)."""
    u = wire.decode(raw, max_bytes=ctx.settings.max_envelope_bytes)
    h = u.header
    if h.recipient != ctx.station_id:
        raise MisaddressedError(f"envelope is addressed to {h.recipient!r}")
    card = ctx.peers.get(h.sender)
    env = u.verify(card.card.signing_key)
    if not h.kind.sequenced:
        raise EnvelopeError(f"{h.kind.name} envelopes are not delivered here", code="bad_kind")
    if h.sequence < 1:
        raise EnvelopeError("sequence numbers start at 1", code="bad_envelope")
    if h.sequence > INT64_MAX:  # beyond any window, and beyond what the store holds
        raise SequenceWindowError(f"sequence {h.sequence} is beyond any window")
    ctx.check_date(h.sent_at_us)
    if not ctx.channels.admits(h.channel, h.sender, ctx.station_id):
        # neither standing nor agreed with the sender as a member (service/channels.py)
        raise EnvelopeError(
            f"channel {h.channel!r} is not a channel {h.sender} and this station share",
            code="unknown_channel",
        )
    plaintext = env.open(ctx.opener)
    most = ctx.payload_values_most
    over = json_values_over(plaintext, most)
    if over is not None:
        raise EnvelopeError(
            f"the payload holds {over:,} JSON values, more than the {most:,} a message may "
            "hold (a notice at its vertex limit holds half as many); refused unparsed",
            code="bad_payload",
        )
    payload = parse_payload(h.kind, plaintext)
    if isinstance(payload, AckPayload):
        check_claimed_time(
            "acknowledged_at_us",
            payload.acknowledged_at_us,
            not_after_us=ctx.claim_limit_us(h.sent_at_us),
        )
    elif isinstance(payload, MessagePayload):
        try:
            check_data(ctx, payload)
        except InputError as exc:
            # an over-limit geometry keeps its own code (the peer is told what to fix);
            # any other refusal of the data is bad_payload
            code = exc.code if exc.code == "geometry_too_large" else "bad_payload"
            raise EnvelopeError(f"message data refused: {exc.message}", code=code) from None
        by_sender = ctx.sender_checks.get(payload.type)
        if by_sender is not None and payload.data is not None:
            by_sender(h.sender, h.channel, payload.data)
    return Inbound(env, payload)


async def store_inbound(ctx: LineContext, items: list[Inbound]) -> list[bytes | Exception]:
    """Store checked envelopes exactly once; return each one's receipt (or error). The
    receipts of one writer batch share one signature (service/receipts.py)."""
    results = await asyncio.gather(
        *(ctx.writer.submit(ingest_unit(ctx, item)) for item in items), return_exceptions=True
    )
    out: list[bytes | Exception] = []
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, Exception):
            raise r
        out.append(r.receipt() if isinstance(r, receipts.Pending) else r)
    return out


def refusal(ctx: LineContext, conn: Connection, item: Inbound) -> HotlineError | None:
    """Why the store refuses this (new) envelope, read before anything is appended."""
    h = item.envelope.header
    if voids.is_void_in(conn, h.sender, h.sequence):
        return EnvelopeError(
            f"sequence {h.sequence} from {h.sender} was declared void by its sender",
            code="void",
        )
    ahead = ctx.settings.max_sequence_ahead
    if h.sequence > linedb.in_contiguous(conn, h.sender) + ahead:
        return SequenceWindowError(
            f"sequence {h.sequence} from {h.sender} is more than {ahead} ahead of the "
            "highest contiguous one received"
        )
    mid = str(h.message_id)
    if linedb.message_id_used(conn, h.sender, mid, as_message=h.kind is Kind.MESSAGE):
        return ReplayError(
            f"sequence {h.sequence} from {h.sender} carries message id {mid} already received",
            code="old_message_id",
        )
    if isinstance(item.payload, AckPayload):
        sent = linedb.sent_at(conn, h.sender, str(item.payload.message_id))
        if sent is None:
            return EnvelopeError(
                f"acknowledgement from {h.sender} names message {item.payload.message_id}, "
                "which this station never sent to it",
                code="unknown_message",
            )
        if item.payload.acknowledged_at_us < sent:
            return BadTimeError(
                f"acknowledgement of {item.payload.message_id} claims a time before the "
                "message was sent"
            )
    return None


def received_content(h: Any, payload: Any, now_us: int) -> tuple[str, str, dict[str, Any]]:
    """The event a stored envelope makes: (type, message id, content). Times are ours;
    the peer's are named ``claimed_...``."""
    common = {"channel": h.channel, "precedence": h.precedence.name}
    if h.kind is Kind.MESSAGE:
        return "message.received", str(h.message_id), {
            **common, "sequence": h.sequence, "received_at_us": now_us,
            "claimed_sent_at_us": h.sent_at_us, **message_content(payload),
        }  # fmt: skip
    return "ack.received", str(payload.message_id), {
        **common, "officer": payload.officer, "note": payload.note,
        "acknowledged_at_us": now_us, "claimed_acknowledged_at_us": payload.acknowledged_at_us,
    }  # fmt: skip


def ingest_unit(
    ctx: LineContext, item: Inbound
) -> Callable[[WriteTx], receipts.Pending | bytes | HotlineError]:
    """The unit storing one checked envelope: its result is its receipt, made right
    before the batch commits (a ``Pending``), the stored receipt of a duplicate, or the
    refusal."""
    env = item.envelope
    h = env.header
    hook = ctx.sign_receipts
    if hook is None:  # pragma: no cover - Line always sets it
        raise RuntimeError("the line context has no receipt signer")

    def unit(tx: WriteTx) -> receipts.Pending | bytes | HotlineError:
        held = linedb.held(tx.conn, h.sender, h.sequence)
        if held is not None:
            if primitives.equal(bytes(held.envelope_hash), env.hash):
                if held.receipt:
                    return bytes(held.receipt)
                # stored earlier in this same batch: its receipt is made before commit
                dup = receipts.Pending(h, None)
                tx.before_commit(hook, dup)
                return dup
            return ReplayError(
                f"sequence {h.sequence} from {h.sender} was already used by another envelope"
            )
        refused = refusal(ctx, tx.conn, item)
        if refused is not None:
            return refused
        now = ctx.clock.now_us()
        entry = Entry(EntryKind.ENVELOPE_IN, h.sender, h.sequence, env.hash, now, env.raw)
        idx = tx.append(entry)
        applied = ctx.projector.apply(tx.conn, idx, entry, (env, item.payload))
        kind, ref, content = received_content(h, item.payload, now)
        tx.after_commit(lambda: ctx.events.publish(kind, peer=h.sender, message_id=ref, **content))
        if applied.item is None:  # pragma: no cover - projector always makes one
            raise EnvelopeError("no receipt item made")
        pending = receipts.Pending(h, applied.item)
        tx.before_commit(hook, pending)
        return pending

    return unit
