"""Sending: an operator's message and a duty officer's acknowledgement, sealed, signed,
appended and queued for the peer.

Owns the checks of what an operator sends (peer, channel, text, typed data) and the
choice of the next sequence number: a message is sealed and signed on the loop with the
station's guess (service/outseq.py), and its unit checks the guess against the store
inside the writer's transaction (sealing again when it is wrong), so two sends never
share one and the record has no gap. After commit the envelope is handed to the peer's
outbox (``LineContext.on_sealed``) before the wake. A refused request raises before
its unit appends anything; a refusal only the unit can decide is returned by it as a
value and raised here, so the writer never rolls back a batch (and reloads nothing) for
it. Must not touch: SQL (store/linedb), the network (the outbox delivers what is
queued).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from hotline.errors import HotlineError, InputError, NotFoundError, PermissionDeniedError
from hotline.service import suspension
from hotline.service.acting import ACTING
from hotline.service.appending import append_action, append_envelope_out
from hotline.service.context import LineContext
from hotline.service.events import message_content
from hotline.service.roles import Principal
from hotline.store import linedb
from hotline.store.writer import WriteTx
from hotline.wire import envelope as wire
from hotline.wire.channels import ChannelSpec
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


def words(text: str) -> int:
    """How many words a text has (runs of non-space characters)."""
    return len(text.split())


def check_brevity(spec: ChannelSpec, precedence: Precedence, payload: MessagePayload) -> None:
    """FLASH and IMMEDIATE texts have at most ``spec.brevity_words`` words (``too_long``)."""
    if precedence > Precedence.IMMEDIATE:
        return
    count = words(payload.text)
    if count > spec.brevity_words:
        raise InputError(
            f"a {precedence.name} text has at most {spec.brevity_words} words on channel "
            f"{spec.name!r}; this one has {count}",
            code="too_long",
            hint="shorten the text, or send the detail at PRIORITY or ROUTINE after it",
        )


def check_channel(
    ctx: LineContext, spec: ChannelSpec, peer: str, principal: Principal | None
) -> None:
    """A message on ``spec`` to ``peer``: both must be members (a standing channel has
    every peer), and the officer needs one of the roles the terms let send here."""
    me = ctx.station_id
    if not spec.standing and (me not in spec.members or peer not in spec.members):
        raise InputError(
            f"station {peer!r} is not a member of channel {spec.name!r} (members: "
            f"{', '.join(spec.members)})",
            code="not_a_member",
            hint="send to a member, or propose a channel that includes the station",
        )
    if principal is None:
        return
    allowed = spec.roles_at(me).send
    if not any(role.value in allowed for role in principal.roles):
        raise PermissionDeniedError(
            f"{principal.username} may not send on channel {spec.name!r}: its terms let "
            f"the roles {', '.join(allowed) or 'none'} send here",
            hint="hand the message to an officer who holds one of those roles, or agree "
            "new terms for the channel (hotline channel propose)",
        )


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
    principal: Principal | None = None,
) -> Sent:
    """Seal, record and queue a message. ``also(conn, sent)`` runs inside the same unit,
    so what it writes commits with the message or not at all (the operator API records an
    idempotency key this way); if it raises, nothing is sent.

    The sending officer (service/acting.py, set by the API from the authenticated
    principal) goes inside the sealed payload, and names the operator on the record
    unless ``operator`` does.

    The channel must be known (``unknown_channel`` lists them) with ``peer`` a member;
    with a ``principal``, one of its roles must be allowed to send on the channel here.
    FLASH and IMMEDIATE texts are brief (``too_long``). A channel with several members
    is sent to each of them by ``send_group``. A suspended channel or line refuses what
    its terms do not let through (``suspended``: service/suspension.py)."""
    suspension.check_send(ctx, peer, channel, precedence, payload.type)
    card = ctx.peers.get(peer)
    officer = ACTING.get()
    if officer is not None and payload.officer is None:
        payload = payload.model_copy(update={"officer": officer})
    if operator is None and officer is not None:
        operator = officer.username
    if not channel or len(channel.encode()) > wire.MAX_CHANNEL_BYTES:
        raise InputError("channel must be 1 to 64 bytes", code="bad_channel")
    spec = ctx.channels.require(channel)
    check_channel(ctx, spec, peer, principal)
    check_brevity(spec, precedence, payload)
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
    key = card.card.encryption_key

    def seal(seq: int) -> wire.Envelope:
        header = Header(
            Kind.MESSAGE, precedence, wire.DEFAULT_SUITE, ctx.station_id, peer, channel, seq,
            mid, ctx.clock.now_us(),
        )  # fmt: skip
        return wire.seal_envelope(header, plaintext, ctx.signer, key)

    # sealed and signed here, on the loop, with the number the station guesses (taken
    # under its lock, with no await before the unit is submitted, so the guesses reach
    # the writer in order): the writer holds the GIL for the append only. The unit checks
    # the guess against the store and seals again when it is wrong (service/outseq.py)
    book = ctx.out_sequences
    guess = book.take(peer)
    early = seal(guess) if guess is not None else None
    if early is not None and guess is not None and len(early.raw) > ctx.settings.max_envelope_bytes:
        book.give_back(peer, guess)
        raise _too_large()

    def unit(tx: WriteTx) -> Sent | InputError:
        seq = next_seq(tx.conn, peer)
        book.used(peer, guess, seq)
        env = early if early is not None and guess == seq else seal(seq)
        now = env.header.sent_at_us
        if len(env.raw) > ctx.settings.max_envelope_bytes:
            return _too_large()
        action = {
            "action": "send",
            "message_id": str(mid),
            "operator": operator,
            "payload": json.loads(plaintext),  # off the loop (a notice's may be large)
        }
        append_action(ctx, tx, action, peer=peer, seq=seq)
        idx = append_envelope_out(ctx, tx, env, None)
        sent = Sent(mid, peer, seq, precedence, idx)
        if also is not None:
            also(tx.conn, sent)
        content = {"channel": channel, "sequence": seq, "operator": operator,
                   "queued_at_us": now, **message_content(payload)}  # fmt: skip
        tx.after_commit(
            lambda: _queued(ctx, peer, precedence, idx, env.raw, "message.queued", str(mid),
                            content)
        )  # fmt: skip
        return sent

    return _raised(await ctx.writer.submit(unit))


@dataclass(frozen=True, slots=True)
class GroupSent:
    """One message sent to every other member of a channel: one envelope per recipient,
    tied by ``group`` (None when the channel has a single recipient)."""

    group: uuid.UUID | None
    channel: str
    sent: list[Sent]


async def send_group(
    ctx: LineContext,
    *,
    channel: str,
    precedence: Precedence,
    payload: MessagePayload,
    peer: str | None = None,
    operator: str | None = None,
    principal: Principal | None = None,
    also: Callable[[Connection, Sent], None] | None = None,
    collect: list[Sent] | None = None,
    group: uuid.UUID | None = None,
) -> GroupSent:
    """Send on ``channel`` to every other member (a standing channel: to ``peer``). With
    several recipients the payload carries a ``group`` id (``group``, or a new one) and
    each recipient gets its own envelope through ``send`` (its own sequence number,
    message id, receipt and acknowledgement). Every recipient is checked before the
    first is sent; ``also`` runs in the last recipient's unit, when ``collect`` (if
    given) already holds the others'."""
    spec = ctx.channels.require(channel)
    recipients = spec.recipients(ctx.station_id, peer)
    if not recipients:
        raise InputError(
            f"channel {channel!r} is a standing channel: name the peer to send to",
            code="no_recipient",
            hint="add --to PEER (API: the field peer)",
        )
    if peer is not None and peer not in recipients:
        check_channel(ctx, spec, peer, principal)
    for r in recipients:
        ctx.peers.get(r)  # every recipient must be a peer before anything is sent
        check_channel(ctx, spec, r, principal)
    check_brevity(spec, precedence, payload)
    if len(recipients) < 2:
        group = None
    elif group is None:
        group = uuid.uuid4()
    body = payload.model_copy(update={"group": group}) if group is not None else payload
    sent = collect if collect is not None else []
    for i, r in enumerate(recipients):
        sent.append(
            await send(
                ctx,
                peer=r,
                channel=channel,
                precedence=precedence,
                payload=body,
                operator=operator,
                principal=principal,
                also=also if i == len(recipients) - 1 else None,
            )
        )
    return GroupSent(group, channel, list(sent))


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
        idx = append_envelope_out(ctx, tx, env, ack)
        content = {"channel": row.channel, "officer": officer, "note": note,
                   "acknowledged_at_us": now}  # fmt: skip
        tx.after_commit(
            lambda: _queued(ctx, row.peer, precedence, idx, env.raw, "message.acknowledged",
                            message_id, content)
        )  # fmt: skip
        return None

    _raised(await ctx.writer.submit(unit))


def _queued(
    ctx: LineContext,
    peer: str,
    precedence: Precedence,
    idx: int,
    raw: bytes,
    event: str,
    message_id: str,
    content: dict[str, Any],
) -> None:
    """After commit, on the loop: the envelope handed to the peer's outbox (an idle lane
    delivers it without reading the store), then the event and the wake."""
    for fn in ctx.on_sealed:
        fn(peer, precedence, idx, raw)
    ctx.queued(peer, precedence, event, message_id, **content)


def _too_large() -> InputError:
    return InputError("message is larger than the envelope limit", code="too_large")


def _raised(result: T | HotlineError) -> T:
    """A unit's result, or its refusal (returned as a value) raised."""
    if isinstance(result, HotlineError):
        raise result
    return result
