"""The link-test protocol: make a test, check a peer's test, answer it, check the
answer, record the result on the ledger.

Owns the nonce that binds an answer to its test, the sequence gaps an answer reports
(what we miss from the tester up to its last sequence number, capped at
``max_sequence_ahead``), and the checks of both messages before they are used, the
times each side claims included (``bad_time``). Must not touch: scheduling and health rules
(link/linktest.py), witnessing (service/witnessing.py), SQL (store/linedb).
"""

from __future__ import annotations

import uuid
from typing import Any

from hotline.crypto import primitives
from hotline.errors import BadTimeError, EnvelopeError, MisaddressedError, NotFoundError
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.service.context import LineContext
from hotline.store import linedb, voids
from hotline.store.projections import action_bytes, gaps_above
from hotline.store.writer import WriteTx
from hotline.wire import envelope as wire
from hotline.wire.envelope import Envelope, Header, Kind, Precedence
from hotline.wire.messages import (
    LinkTestPayload,
    LinkTestReplyPayload,
    check_claimed_time,
    parse_payload,
)

#: most gaps an answer reports (the payload's limit)
MAX_GAPS = 64


def make_link_test(
    ctx: LineContext,
    peer: str,
    *,
    witness: str | None = None,
    prove: list[tuple[int, int]] | None = None,
    void: list[tuple[int, int]] | None = None,
) -> tuple[Envelope, LinkTestPayload]:
    card = ctx.peers.get(peer)
    with ctx.reader.connect() as conn:
        nxt = linedb.next_out_seq(conn, peer)
    if nxt is None:  # pragma: no cover - a peer in the book has a row
        raise NotFoundError(f"station {peer!r} is not a peer")
    now = ctx.clock.now_us()
    payload = LinkTestPayload(
        nonce=primitives.random_bytes(16).hex(),
        t1_us=now,
        last_sequence=nxt - 1,
        witness=witness,
        prove=prove or [],
        void=void or None,
    )
    header = Header(
        Kind.LINK_TEST, Precedence.ROUTINE, wire.DEFAULT_SUITE, ctx.station_id, peer,
        "link-test", 0, uuid.uuid4(), now,
    )  # fmt: skip
    env = wire.seal_envelope(header, payload.to_bytes(), ctx.signer, card.card.encryption_key)
    return env, payload


def check_link_test(ctx: LineContext, raw: bytes) -> tuple[Envelope, LinkTestPayload]:
    """Every check a peer's link test must pass (pure CPU work)."""
    u = wire.decode(raw, max_bytes=ctx.settings.max_envelope_bytes)
    h = u.header
    if h.kind is not Kind.LINK_TEST:
        raise EnvelopeError("expected a link test", code="bad_kind")
    if h.recipient != ctx.station_id:
        raise MisaddressedError(f"link test is addressed to {h.recipient!r}")
    env = u.verify(ctx.peers.get(h.sender).card.signing_key)
    ctx.check_date(h.sent_at_us)
    test: LinkTestPayload = parse_payload(Kind.LINK_TEST, env.open(ctx.opener))
    check_claimed_time("t1_us", test.t1_us, not_after_us=ctx.claim_limit_us(h.sent_at_us))
    return env, test


def reply_link_test(
    ctx: LineContext, env: Envelope, test: LinkTestPayload, t2_us: int, extra: dict[str, Any]
) -> bytes:
    """Our sealed, signed answer to a checked link test."""
    h = env.header
    reply = LinkTestReplyPayload(
        nonce=test.nonce,
        t1_us=test.t1_us,
        t2_us=t2_us,
        t3_us=ctx.clock.now_us(),
        missing=missing_upto(ctx, h.sender, test.last_sequence),
        **extra,
    )
    header = Header(
        Kind.LINK_TEST_REPLY, Precedence.ROUTINE, wire.DEFAULT_SUITE, ctx.station_id,
        h.sender, "link-test", 0, h.message_id, ctx.clock.now_us(),
    )  # fmt: skip
    card = ctx.peers.get(h.sender)
    return wire.seal_envelope(header, reply.to_bytes(), ctx.signer, card.card.encryption_key).raw


def check_link_reply(
    ctx: LineContext, peer: str, sent: LinkTestPayload, raw: bytes
) -> LinkTestReplyPayload:
    u = wire.decode(raw, max_bytes=ctx.settings.max_envelope_bytes)
    h = u.header
    if h.kind is not Kind.LINK_TEST_REPLY or h.sender != peer:
        raise EnvelopeError("expected the peer's link test reply", code="bad_kind")
    if h.recipient != ctx.station_id:
        raise MisaddressedError("link test reply is not for us")
    env = u.verify(ctx.peers.get(peer).card.signing_key)
    ctx.check_date(h.sent_at_us)
    reply: LinkTestReplyPayload = parse_payload(Kind.LINK_TEST_REPLY, env.open(ctx.opener))
    if not primitives.equal(reply.nonce.encode(), sent.nonce.encode()):
        raise EnvelopeError("link test reply answers another test", code="bad_nonce")
    if reply.t1_us != sent.t1_us:
        raise BadTimeError("link test reply echoes another t1 than the test's")
    limit = ctx.claim_limit_us(h.sent_at_us)
    check_claimed_time("t2_us", reply.t2_us, not_after_us=limit)
    check_claimed_time("t3_us", reply.t3_us, not_after_us=limit)
    if reply.t3_us < reply.t2_us:
        raise BadTimeError("link test reply claims it answered before it received the test")
    return reply


async def record_link_test(ctx: LineContext, peer: str, result: dict[str, Any]) -> None:
    def unit(tx: WriteTx) -> None:
        now = ctx.clock.now_us()
        tx.append(Entry(EntryKind.LINK_TEST, peer, 0, ZERO_HASH, now, action_bytes(result)))

    await ctx.writer.submit(unit)


def missing_upto(ctx: LineContext, peer: str, last: int) -> list[tuple[int, int]]:
    """The inclusive ranges of sequence numbers from ``peer`` up to ``last`` (the peer's
    claim, capped at ``max_sequence_ahead`` past what we hold contiguously) we miss."""
    ahead = ctx.settings.max_sequence_ahead
    with ctx.reader.connect() as conn:
        contiguous = linedb.in_contiguous(conn, peer)
        last = min(last, contiguous + ahead)
        if contiguous >= last:
            return []
        # held or declared void by the peer (service/voids.py): not missing
        held = sorted(voids.taken_in(conn, peer, contiguous, last))
    return gaps_above(contiguous, [*held, last + 1], ahead)[:MAX_GAPS]
