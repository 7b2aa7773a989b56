"""Sending: an operator's message and a duty officer's acknowledgement, sealed, signed,
appended and queued for the peer.

Owns the checks of what an operator sends (peer, channel, text, typed data) and the
choice of the next sequence number inside the writer's transaction, so two sends never
share one. A refused request raises before its unit appends anything; a refusal only the
unit can decide is returned by it as a value and raised here, so the writer never rolls
back a batch (and reloads nothing) for it. Must not touch:
SQL (store/linedb), the network (the outbox delivers what is queued).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from hotline.errors import HotlineError, InputError, NotFoundError
from hotline.service import suspension
from hotline.service.acting import ACTING
from hotline.service.appending import append_action, append_envelope_out
from hotline.service.context import LineContext
from hotline.service.events import message_content
from hotline.store import linedb
from hotline.store.writer import WriteTx
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from hotline.wire.messages import AckPayload, MessagePayload

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: uuid.UUID
    peer: str
    sequence: int
    precedence: Precedence
    entry_idx: int


def check_data(ctx: LineContext, payload: MessagePayload) -> None:
    """Typed messages must carry data their type's checker accepts."""
    if payload.type == "text":
        return
    check = ctx.validators.get(payload.type)
    if check is None:
        raise InputError(f"message type {payload.type!r} is not supported here",
                         code="bad_message_type")  # fmt: skip
    if payload.data is None:
        raise InputError(f"a {payload.type} message needs data", code="bad_message_data")
    check(payload.data)


def next_seq(conn: Connection, peer: str) -> int:
    """The next sequence number towards ``peer`` (inside the writer's transaction)."""
    seq = linedb.next_out_seq(conn, peer)
    if seq is None:
        raise NotFoundError(f"station {peer!r} is not a peer")
    return seq


async def send(
    ctx: LineContext,
    *,
    peer: str,
    channel: str,
    precedence: Precedence,
    payload: MessagePayload,
    operator: str | None = None,
    also: Callable[[Connection, Sent], None] | None = None,
) -> Sent:
    """Seal, record and queue a message. ``also(conn, sent)`` runs inside the same unit,
    so what it writes commits with the message or not at all (the operator API records an
    idempotency key this way); if it raises, nothing is sent.

    The sending officer (service/acting.py, set by the API from the authenticated
    principal) goes inside the sealed payload, and names the operator on the record
    unless ``operator`` does."""
    suspension.check_send(ctx, peer, channel, precedence, payload.type)
    card = ctx.peers.get(peer)
    officer = ACTING.get()
    if officer is not None and payload.officer is None:
        payload = payload.model_copy(update={"officer": officer})
    if operator is None and officer is not None:
        operator = officer.username
    if not channel or len(channel.encode()) > wire.MAX_CHANNEL_BYTES:
        raise InputError("channel must be 1 to 64 bytes", code="bad_channel")
    if payload.type == "text" and not payload.text.strip():
        raise InputError("a message needs text", code="empty_message")
    if len(payload.text) > ctx.settings.max_text_chars:
        raise InputError(
            f"text is longer than {ctx.settings.max_text_chars} characters",
            code="text_too_long",
        )
    check_data(ctx, payload)
    plaintext = payload.to_bytes()
    mid = uuid.uuid4()

    def unit(tx: WriteTx) -> Sent | InputError:
        seq = next_seq(tx.conn, peer)
        now = ctx.clock.now_us()
        header = Header(
            Kind.MESSAGE, precedence, wire.DEFAULT_SUITE, ctx.station_id, peer, channel, seq,
            mid, now,
        )  # fmt: skip
        env = wire.seal_envelope(header, plaintext, ctx.signer, card.card.encryption_key)
        if len(env.raw) > ctx.settings.max_envelope_bytes:
            return InputError("message is larger than the envelope limit", code="too_large")
        action = {
            "action": "send",
            "message_id": str(mid),
            "operator": operator,
            "payload": json.loads(plaintext),
        }
        append_action(ctx, tx, action, peer=peer, seq=seq)
        idx = append_envelope_out(ctx, tx, env, None)
        sent = Sent(mid, peer, seq, precedence, idx)
        if also is not None:
            also(tx.conn, sent)
        content = {"channel": channel, "sequence": seq, "operator": operator,
                   "queued_at_us": now, **message_content(payload)}  # fmt: skip
        tx.after_commit(lambda: ctx.queued(peer, precedence, "message.queued", str(mid), **content))
        return sent

    return _raised(await ctx.writer.submit(unit))


async def acknowledge(
    ctx: LineContext, message_id: str, officer: str, note: str | None = None
) -> None:
    officer = officer.strip()
    if not officer or len(officer) > 100:
        raise InputError("name the acknowledging officer (1 to 100 characters)")

    def read() -> Any:  # a worker thread: never a database read on the loop
        with ctx.reader.connect() as conn:
            return linedb.received_message(conn, message_id)

    row = await asyncio.to_thread(read)
    if row is None:
        raise NotFoundError(f"no received message {message_id}")
    if row.acknowledged_at_us is not None:
        raise InputError("message is already acknowledged", code="already_acknowledged")
    card = ctx.peers.get(row.peer)
    precedence = Precedence(row.precedence)

    def unit(tx: WriteTx) -> InputError | None:
        if linedb.received_message(tx.conn, message_id).acknowledged_at_us is not None:
            return InputError("message is already acknowledged", code="already_acknowledged")
        now = ctx.clock.now_us()
        ack = AckPayload(
            message_id=uuid.UUID(message_id), officer=officer, note=note, acknowledged_at_us=now
        )
        seq = next_seq(tx.conn, row.peer)
        header = Header(
            Kind.ACK, precedence, wire.DEFAULT_SUITE, ctx.station_id, row.peer, row.channel,
            seq, uuid.uuid4(), now,
        )  # fmt: skip
        env = wire.seal_envelope(header, ack.to_bytes(), ctx.signer, card.card.encryption_key)
        action = {"action": "ack", "message_id": message_id, "officer": officer, "note": note}
        append_action(ctx, tx, action, peer=row.peer)
        append_envelope_out(ctx, tx, env, ack)
        content = {"channel": row.channel, "officer": officer, "note": note,
                   "acknowledged_at_us": now}  # fmt: skip
        tx.after_commit(
            lambda: ctx.queued(row.peer, precedence, "message.acknowledged", message_id,
                               **content)
        )  # fmt: skip
        return None

    _raised(await ctx.writer.submit(unit))


def _raised(result: T | HotlineError) -> T:
    """A unit's result, or its refusal (returned as a value) raised."""
    if isinstance(result, HotlineError):
        raise result
    return result
