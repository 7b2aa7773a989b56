"""Receipts: the signed statement that an envelope was durably stored, both ways.

Owns making our receipt for a peer's envelope (signed, unsealed, naming where our
ledger holds it and what we still miss from that sender), and checking and recording a
peer's receipt for ours (once: a receipt for an envelope no longer queued changes
nothing). The time a receipt claims (``stored_at_us``) is checked (``bad_time``) and
kept as the peer's claim; the message counts as delivered at OUR receive time. Must
not touch: SQL (store/linedb), the network.
"""

from __future__ import annotations

import asyncio

from hotline.crypto import primitives
from hotline.errors import EnvelopeError, MisaddressedError
from hotline.ledger.entry import Entry, EntryKind
from hotline.service.context import LineContext
from hotline.store import linedb
from hotline.store import outbox as outbox_db
from hotline.store.writer import WriteTx
from hotline.wire import envelope as wire
from hotline.wire.envelope import Envelope, Header, Kind
from hotline.wire.messages import ReceiptPayload, check_claimed_time, parse_payload


def make_receipt(
    ctx: LineContext,
    env: Envelope,
    leaf_index: int,
    tree_size: int,
    stored_at: int,
    missing: list[tuple[int, int]],
) -> bytes:
    """Our signed receipt for a peer's envelope stored at ``leaf_index``."""
    h = env.header
    payload = ReceiptPayload(
        envelope_hash=env.hash.hex(),
        sender=h.sender,
        sequence=h.sequence,
        message_id=h.message_id,
        stored_at_us=stored_at,
        leaf_index=leaf_index,
        tree_size=tree_size,
        missing=missing,
    )
    header = Header(
        Kind.RECEIPT, h.precedence, primitives.SUITE_NONE, ctx.station_id, h.sender, h.channel,
        0, h.message_id, stored_at,
    )  # fmt: skip
    return wire.seal_envelope(header, payload.to_bytes(), ctx.signer, None).raw


def check_receipt(ctx: LineContext, peer: str, raw: bytes) -> tuple[Envelope, ReceiptPayload]:
    """Every check a peer's receipt must pass (pure CPU work)."""
    u = wire.decode(raw, max_bytes=ctx.settings.max_envelope_bytes)
    h = u.header
    if h.kind is not Kind.RECEIPT:
        raise EnvelopeError("expected a receipt", code="bad_kind")
    if h.sender != peer or h.recipient != ctx.station_id:
        raise MisaddressedError("receipt is not from the peer we sent to, or not for us")
    env = u.verify(ctx.peers.get(peer).card.signing_key)
    ctx.check_date(h.sent_at_us)
    receipt: ReceiptPayload = parse_payload(Kind.RECEIPT, env.payload)
    check_claimed_time(
        "stored_at_us", receipt.stored_at_us, not_after_us=ctx.claim_limit_us(h.sent_at_us)
    )
    return env, receipt


async def record_receipt(
    ctx: LineContext, peer: str, raw: bytes, carried_by: str | None = None
) -> bool:
    """Record a peer's receipt once; True when it was new. The receipt is decoded and
    verified in a worker thread (a batch brings up to 256), never on the event loop.
    ``carried_by``: the path that carried the envelope, when the receipt came back outside
    a delivery of the outbox (which records its own path): a bundle, late relay results."""
    env, receipt = await asyncio.to_thread(check_receipt, ctx, peer, raw)
    our_hash = bytes.fromhex(receipt.envelope_hash)

    def unit(tx: WriteTx) -> bool | EnvelopeError:
        seq = linedb.outbox_sequence(tx.conn, our_hash, peer)
        if seq is None:
            return False  # already receipted, or not ours: nothing to record
        if seq != receipt.sequence:
            # returned, not raised: a peer's bad receipt never rolls the writer's batch back
            return EnvelopeError("receipt names the wrong sequence number", code="bad_receipt")
        now = ctx.clock.now_us()
        if carried_by is not None:
            outbox_db.note_carried(tx.conn, our_hash, carried_by, now)
        entry = Entry(EntryKind.RECEIPT_IN, peer, receipt.sequence, our_hash, now, env.raw)
        idx = tx.append(entry)
        ctx.projector.apply(tx.conn, idx, entry, receipt)
        tx.after_commit(
            lambda: ctx.events.publish(
                "message.delivered",
                peer=peer,
                message_id=str(receipt.message_id),
                sequence=receipt.sequence,
                delivered_at_us=now,
                claimed_stored_at_us=receipt.stored_at_us,
            )
        )
        return True

    result = await ctx.writer.submit(unit)
    if isinstance(result, EnvelopeError):
        raise result
    return result
