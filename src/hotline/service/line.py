"""The line's use cases: send, ingest, receipts, acknowledge, add a peer, link tests.

Owns the order of checks at the boundary (decode, addressee, known sender, signature,
date, open, payload) before any unit of work reaches the writer, and the units that
append ledger entries and apply projections in one transaction. A refused envelope or
request raises before its unit runs, so it changes nothing. Must not touch: sockets or
HTTP (the link and the API call in), SQL beyond the projections' helpers and simple reads.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hotline.clock import Clock
from hotline.crypto import primitives
from hotline.crypto.card import SignedCard, parse_card, safety_number
from hotline.crypto.keys import StationIdentity
from hotline.errors import (
    EnvelopeError,
    InputError,
    MisaddressedError,
    NotFoundError,
    ReplayError,
)
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.service.events import EventBus
from hotline.service.peers import PeerBook
from hotline.settings import Settings
from hotline.store import schema
from hotline.store.projections import ProjectionExtension, Projector, action_bytes
from hotline.store.writer import Writer, WriteTx
from hotline.wire import envelope as wire
from hotline.wire.envelope import Envelope, Header, Kind, Precedence
from hotline.wire.messages import (
    AckPayload,
    LinkTestPayload,
    LinkTestReplyPayload,
    MessagePayload,
    ReceiptPayload,
    parse_payload,
)

log = logging.getLogger(__name__)

_HELD = sa.select(schema.inbound.c.envelope_hash, schema.inbound.c.receipt).where(
    schema.inbound.c.peer == sa.bindparam("b_peer"),
    schema.inbound.c.sequence == sa.bindparam("b_seq"),
)
_OUTBOX_BY_HASH = sa.select(schema.outbox.c.sequence).where(
    schema.outbox.c.envelope_hash == sa.bindparam("b_hash"),
    schema.outbox.c.peer == sa.bindparam("b_peer"),
)
_NEXT_SEQ = sa.select(schema.peers.c.next_out_seq).where(
    schema.peers.c.station_id == sa.bindparam("b_peer")
)


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: uuid.UUID
    peer: str
    sequence: int
    precedence: Precedence
    entry_idx: int


@dataclass(frozen=True, slots=True)
class Inbound:
    """An envelope that passed every check and is ready to be stored."""

    envelope: Envelope
    payload: Any


class Line:
    def __init__(
        self,
        identity: StationIdentity,
        settings: Settings,
        writer: Writer,
        reader: Engine,
        peers: PeerBook,
        clock: Clock,
        events: EventBus,
        extensions: Sequence[ProjectionExtension] = (),
        validators: Mapping[str, Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        self.identity = identity
        self.extensions = tuple(extensions)
        #: checks of typed message data by type; they raise an InputError naming the problem
        self.validators = dict(validators or {})
        self.station_id = identity.station_id
        self.settings = settings
        self.writer = writer
        self.reader = reader
        self.peers = peers
        self.clock = clock
        self.events = events
        self._signer = primitives.Signer(identity.signing_seed)
        self._opener = primitives.Opener(identity.encryption_private)
        self.projector = self._new_projector()
        self._card = identity.card()
        #: called after commit with (peer, precedence) when something is queued
        self.on_queued: list[Any] = []

    @property
    def card(self) -> SignedCard:
        return self._card

    def _new_projector(self) -> Projector:
        return Projector(self.deadline_us, self._make_receipt, self.station_id, self.extensions)

    def check_data(self, payload: MessagePayload) -> None:
        """Typed messages must carry data their type's checker accepts."""
        if payload.type == "text":
            return
        check = self.validators.get(payload.type)
        if check is None:
            raise InputError(f"message type {payload.type!r} is not supported here",
                             code="bad_message_type")  # fmt: skip
        if payload.data is None:
            raise InputError(f"a {payload.type} message needs data", code="bad_message_data")
        check(payload.data)

    def deadline_us(self, precedence: int, sent_at_us: int) -> int:
        s = self.settings
        seconds = (
            s.ack_deadline_flash_s,
            s.ack_deadline_immediate_s,
            s.ack_deadline_priority_s,
            s.ack_deadline_routine_s,
        )[precedence]
        return sent_at_us + int(seconds * 1_000_000)

    # --- peers ------------------------------------------------------------------------

    def load_peers(self) -> None:
        with self.reader.connect() as conn:
            rows = conn.execute(sa.select(schema.peers.c.station_id, schema.peers.c.card)).all()
        self.peers.load([(r[0], r[1]) for r in rows])

    def peer_add_unit(self, card_text: str, operator: str | None) -> tuple[SignedCard, Any]:
        """Check a card and return it with the unit that records it."""
        card = parse_card(card_text)
        sid = card.card.station_id
        if sid == self.station_id:
            raise InputError("that is this station's own card", code="own_card")
        if sid in self.peers:
            raise InputError(f"station {sid!r} is already a peer", code="peer_exists")
        action = {
            "action": "peer_add",
            "station_id": sid,
            "card": card.to_text(),
            "safety_number": safety_number(self._card, card),
            "operator": operator,
        }

        def unit(tx: WriteTx) -> None:
            self._append_action(tx, action, peer=sid)
            tx.after_commit(lambda: self.peers.add(card))

        return card, unit

    # --- send ---------------------------------------------------------------------------

    async def send(
        self,
        *,
        peer: str,
        channel: str,
        precedence: Precedence,
        payload: MessagePayload,
        operator: str | None = None,
    ) -> Sent:
        card = self.peers.get(peer)
        if not channel or len(channel.encode()) > wire.MAX_CHANNEL_BYTES:
            raise InputError("channel must be 1 to 64 bytes", code="bad_channel")
        if len(payload.text) > self.settings.max_text_chars:
            raise InputError(
                f"text is longer than {self.settings.max_text_chars} characters",
                code="text_too_long",
            )
        self.check_data(payload)
        plaintext = payload.to_bytes()
        mid = uuid.uuid4()

        def unit(tx: WriteTx) -> Sent:
            seq = self._next_seq(tx.conn, peer)
            now = self.clock.now_us()
            header = Header(
                Kind.MESSAGE,
                precedence,
                wire.DEFAULT_SUITE,
                self.station_id,
                peer,
                channel,
                seq,
                mid,
                now,
            )
            env = wire.seal_envelope(header, plaintext, self._signer, card.card.encryption_key)
            if len(env.raw) > self.settings.max_envelope_bytes:
                raise InputError("message is larger than the envelope limit", code="too_large")
            action = {
                "action": "send",
                "message_id": str(mid),
                "operator": operator,
                "payload": json.loads(plaintext),
            }
            self._append_action(tx, action, peer=peer, seq=seq)
            idx = self._append_envelope_out(tx, env, None)
            tx.after_commit(lambda: self._queued(peer, precedence, "message.queued", str(mid)))
            return Sent(mid, peer, seq, precedence, idx)

        return await self.writer.submit(unit)

    # --- acknowledge ---------------------------------------------------------------------

    async def acknowledge(self, message_id: str, officer: str, note: str | None = None) -> None:
        officer = officer.strip()
        if not officer or len(officer) > 100:
            raise InputError("name the acknowledging officer (1 to 100 characters)")
        m = schema.messages
        with self.reader.connect() as conn:
            row = conn.execute(
                sa.select(m.c.peer, m.c.channel, m.c.precedence, m.c.acknowledged_at_us).where(
                    m.c.message_id == message_id, m.c.direction == "in"
                )
            ).first()
        if row is None:
            raise NotFoundError(f"no received message {message_id}")
        if row.acknowledged_at_us is not None:
            raise InputError("message is already acknowledged", code="already_acknowledged")
        card = self.peers.get(row.peer)

        def unit(tx: WriteTx) -> None:
            again = tx.conn.execute(
                sa.select(m.c.acknowledged_at_us).where(
                    m.c.message_id == message_id, m.c.direction == "in"
                )
            ).scalar_one()
            if again is not None:
                raise InputError("message is already acknowledged", code="already_acknowledged")
            now = self.clock.now_us()
            ack = AckPayload(
                message_id=uuid.UUID(message_id),
                officer=officer,
                note=note,
                acknowledged_at_us=now,
            )
            seq = self._next_seq(tx.conn, row.peer)
            header = Header(
                Kind.ACK,
                Precedence(row.precedence),
                wire.DEFAULT_SUITE,
                self.station_id,
                row.peer,
                row.channel,
                seq,
                uuid.uuid4(),
                now,
            )
            env = wire.seal_envelope(header, ack.to_bytes(), self._signer, card.card.encryption_key)
            action = {"action": "ack", "message_id": message_id, "officer": officer, "note": note}
            self._append_action(tx, action, peer=row.peer)
            self._append_envelope_out(tx, env, ack)
            tx.after_commit(
                lambda: self._queued(
                    row.peer, Precedence(row.precedence), "message.acknowledged", message_id
                )
            )

        await self.writer.submit(unit)

    # --- ingest (peer endpoint) ---------------------------------------------------------

    def check_inbound(self, raw: bytes) -> Inbound:
        """Every check an envelope must pass before anything is stored (pure CPU work)."""
        u = wire.decode(raw, max_bytes=self.settings.max_envelope_bytes)
        h = u.header
        if h.recipient != self.station_id:
            raise MisaddressedError(f"envelope is addressed to {h.recipient!r}")
        card = self.peers.get(h.sender)
        env = u.verify(card.card.signing_key)
        if not h.kind.sequenced:
            raise EnvelopeError(f"{h.kind.name} envelopes are not delivered here", code="bad_kind")
        self._check_date(h.sent_at_us)
        payload = parse_payload(h.kind, env.open(self._opener))
        if isinstance(payload, MessagePayload):
            try:
                self.check_data(payload)
            except InputError as exc:
                raise EnvelopeError(f"message data refused: {exc.message}",
                                    code="bad_payload") from None  # fmt: skip
        return Inbound(env, payload)

    async def store_inbound(self, items: list[Inbound]) -> list[bytes | Exception]:
        """Store checked envelopes exactly once; return each one's receipt (or error)."""
        import asyncio

        units = [self._ingest_unit(item) for item in items]
        results = await asyncio.gather(
            *(self.writer.submit(u) for u in units), return_exceptions=True
        )
        out: list[bytes | Exception] = []
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Exception):
                raise r
            out.append(r)
        return out

    def _ingest_unit(self, item: Inbound) -> Any:
        env = item.envelope
        h = env.header

        def unit(tx: WriteTx) -> bytes:
            held = tx.conn.execute(_HELD, {"b_peer": h.sender, "b_seq": h.sequence}).first()
            if held is not None:
                if primitives.equal(bytes(held.envelope_hash), env.hash):
                    return bytes(held.receipt)
                raise ReplayError(
                    f"sequence {h.sequence} from {h.sender} was already used by another envelope"
                )
            now = self.clock.now_us()
            entry = Entry(EntryKind.ENVELOPE_IN, h.sender, h.sequence, env.hash, now, env.raw)
            idx = tx.append(entry)
            applied = self.projector.apply(tx.conn, idx, entry, (env, item.payload))
            kind = "message.received" if h.kind is Kind.MESSAGE else "ack.received"
            ref = str(h.message_id if h.kind is Kind.MESSAGE else item.payload.message_id)
            tx.after_commit(lambda: self.events.publish(kind, peer=h.sender, message_id=ref))
            if applied.receipt is None:  # pragma: no cover - projector always makes one
                raise EnvelopeError("no receipt made")
            return applied.receipt

        return unit

    # --- receipts (sender side) ----------------------------------------------------------

    def check_receipt(self, peer: str, raw: bytes) -> tuple[Envelope, ReceiptPayload]:
        u = wire.decode(raw, max_bytes=self.settings.max_envelope_bytes)
        h = u.header
        if h.kind is not Kind.RECEIPT:
            raise EnvelopeError("expected a receipt", code="bad_kind")
        if h.sender != peer or h.recipient != self.station_id:
            raise MisaddressedError("receipt is not from the peer we sent to, or not for us")
        env = u.verify(self.peers.get(peer).card.signing_key)
        receipt: ReceiptPayload = parse_payload(Kind.RECEIPT, env.payload)
        return env, receipt

    async def record_receipt(self, peer: str, raw: bytes) -> bool:
        """Record a peer's receipt once; True when it was new."""
        env, receipt = self.check_receipt(peer, raw)
        our_hash = bytes.fromhex(receipt.envelope_hash)

        def unit(tx: WriteTx) -> bool:
            row = tx.conn.execute(_OUTBOX_BY_HASH, {"b_hash": our_hash, "b_peer": peer}).first()
            if row is None:
                return False  # already receipted, or not ours: nothing to record
            if row.sequence != receipt.sequence:
                raise EnvelopeError("receipt names the wrong sequence number", code="bad_receipt")
            now = self.clock.now_us()
            entry = Entry(EntryKind.RECEIPT_IN, peer, receipt.sequence, our_hash, now, env.raw)
            idx = tx.append(entry)
            self.projector.apply(tx.conn, idx, entry, receipt)
            tx.after_commit(
                lambda: self.events.publish(
                    "message.delivered", peer=peer, message_id=str(receipt.message_id)
                )
            )
            return True

        return await self.writer.submit(unit)

    # --- link tests -----------------------------------------------------------------------

    def make_link_test(
        self, peer: str, *, witness: str | None = None, prove: list[tuple[int, int]] | None = None
    ) -> tuple[Envelope, LinkTestPayload]:
        card = self.peers.get(peer)
        with self.reader.connect() as conn:
            last = conn.execute(
                sa.select(schema.peers.c.next_out_seq).where(schema.peers.c.station_id == peer)
            ).scalar_one()
        now = self.clock.now_us()
        payload = LinkTestPayload(
            nonce=primitives.random_bytes(16).hex(),
            t1_us=now,
            last_sequence=int(last) - 1,
            witness=witness,
            prove=prove or [],
        )
        header = Header(
            Kind.LINK_TEST, Precedence.ROUTINE, wire.DEFAULT_SUITE, self.station_id, peer,
            "link-test", 0, uuid.uuid4(), now,
        )  # fmt: skip
        env = wire.seal_envelope(header, payload.to_bytes(), self._signer, card.card.encryption_key)
        return env, payload

    def check_link_test(self, raw: bytes) -> tuple[Envelope, LinkTestPayload]:
        """Every check a peer's link test must pass (pure CPU work and one read)."""
        u = wire.decode(raw, max_bytes=self.settings.max_envelope_bytes)
        h = u.header
        if h.kind is not Kind.LINK_TEST:
            raise EnvelopeError("expected a link test", code="bad_kind")
        if h.recipient != self.station_id:
            raise MisaddressedError(f"link test is addressed to {h.recipient!r}")
        env = u.verify(self.peers.get(h.sender).card.signing_key)
        self._check_date(h.sent_at_us)
        test: LinkTestPayload = parse_payload(Kind.LINK_TEST, env.open(self._opener))
        return env, test

    def reply_link_test(
        self, env: Envelope, test: LinkTestPayload, t2_us: int, extra: dict[str, Any]
    ) -> bytes:
        """Our sealed, signed answer to a checked link test."""
        h = env.header
        reply = LinkTestReplyPayload(
            nonce=test.nonce,
            t1_us=test.t1_us,
            t2_us=t2_us,
            t3_us=self.clock.now_us(),
            missing=self._missing_upto(h.sender, test.last_sequence),
            **extra,
        )
        header = Header(
            Kind.LINK_TEST_REPLY, Precedence.ROUTINE, wire.DEFAULT_SUITE, self.station_id,
            h.sender, "link-test", 0, h.message_id, self.clock.now_us(),
        )  # fmt: skip
        card = self.peers.get(h.sender)
        return wire.seal_envelope(
            header, reply.to_bytes(), self._signer, card.card.encryption_key
        ).raw

    def check_link_reply(
        self, peer: str, sent: LinkTestPayload, raw: bytes
    ) -> LinkTestReplyPayload:
        u = wire.decode(raw, max_bytes=self.settings.max_envelope_bytes)
        h = u.header
        if h.kind is not Kind.LINK_TEST_REPLY or h.sender != peer:
            raise EnvelopeError("expected the peer's link test reply", code="bad_kind")
        if h.recipient != self.station_id:
            raise MisaddressedError("link test reply is not for us")
        env = u.verify(self.peers.get(peer).card.signing_key)
        reply: LinkTestReplyPayload = parse_payload(Kind.LINK_TEST_REPLY, env.open(self._opener))
        if not primitives.equal(reply.nonce.encode(), sent.nonce.encode()):
            raise EnvelopeError("link test reply answers another test", code="bad_nonce")
        return reply

    async def record_link_test(self, peer: str, result: dict[str, Any]) -> None:
        def unit(tx: WriteTx) -> None:
            now = self.clock.now_us()
            self._append(tx, EntryKind.LINK_TEST, peer, 0, ZERO_HASH, now, action_bytes(result))

        await self.writer.submit(unit)

    # --- rebuild ----------------------------------------------------------------------------

    def rebuild_projections(self, conn: Connection, chunk: int = 1000) -> int:
        """Wipe every projection and replay the whole ledger into it; returns entries read.

        Runs inside the caller's transaction (a writer unit, or ``Writer.run_sync``).
        Envelopes are checked again on the way (our own with our key, a peer's with the
        card its ``peer_add`` recorded), so a rebuilt store has the same trust as a live one.
        """
        for table in reversed(schema.PROJECTIONS):
            conn.execute(table.delete())
        for ext in self.extensions:
            ext.reset()
            for table in reversed(ext.tables):
                conn.execute(table.delete())
        projector = self._new_projector()
        book = PeerBook()
        e = schema.entries
        done, last = 0, -1
        while True:
            rows = conn.execute(
                sa.select(e.c.idx, e.c.leaf).where(e.c.idx > last).order_by(e.c.idx).limit(chunk)
            ).all()
            if not rows:
                for ext in self.extensions:
                    ext.rebuild_finished(conn)
                return done
            for row in rows:
                entry = Entry.decode(bytes(row.leaf))
                parsed = self._parse_entry(entry, book)
                projector.apply(conn, int(row.idx), entry, parsed)
                done, last = done + 1, int(row.idx)

    def _parse_entry(self, entry: Entry, book: PeerBook) -> Any:
        if entry.kind is EntryKind.OPERATOR_ACTION:
            action: dict[str, Any] = json.loads(entry.data)
            if action.get("action") in ("peer_add", "peer_rekey"):
                book.add(parse_card(action["card"]))
            return action
        if entry.kind is EntryKind.LINK_TEST or entry.kind is EntryKind.WITNESS:
            return json.loads(entry.data)
        u = wire.decode(entry.data, max_bytes=len(entry.data))
        if entry.kind is EntryKind.ENVELOPE_OUT:  # its plaintext is in the "send" action
            return u.verify(self._signer.public_key), None
        env = u.verify(book.get(entry.peer).card.signing_key)
        if entry.kind is EntryKind.RECEIPT_IN:
            return parse_payload(Kind.RECEIPT, env.payload)
        return env, parse_payload(env.header.kind, env.open(self._opener))

    # --- helpers ---------------------------------------------------------------------------

    def _missing_upto(self, peer: str, last: int) -> list[tuple[int, int]]:
        p, i = schema.peers, schema.inbound
        with self.reader.connect() as conn:
            contiguous = int(
                conn.execute(
                    sa.select(p.c.in_contiguous).where(p.c.station_id == peer)
                ).scalar_one()
            )
            if contiguous >= last:
                return []
            held = [
                int(s)
                for s in conn.execute(
                    sa.select(i.c.sequence)
                    .where(i.c.peer == peer, i.c.sequence > contiguous, i.c.sequence <= last)
                    .order_by(i.c.sequence)
                    .limit(10_000)
                ).scalars()
            ]
        gaps: list[tuple[int, int]] = []
        expected = contiguous + 1
        for s in [*held, last + 1]:
            if s > expected:
                gaps.append((expected, s - 1))
            expected = s + 1
        return gaps[:64]

    def _check_date(self, sent_at_us: int) -> None:
        if sent_at_us > self.clock.now_us() + int(self.settings.max_clock_skew_s * 1_000_000):
            raise EnvelopeError(
                "envelope is dated too far in the future: check both stations' clocks",
                code="clock_skew",
            )

    def _next_seq(self, conn: Connection, peer: str) -> int:
        seq = conn.execute(_NEXT_SEQ, {"b_peer": peer}).scalar()
        if seq is None:
            raise NotFoundError(f"station {peer!r} is not a peer")
        return int(seq)

    def _append(
        self, tx: WriteTx, kind: EntryKind, peer: str, seq: int, h: bytes, at: int, data: bytes
    ) -> tuple[int, Entry]:
        entry = Entry(kind, peer, seq, h, at, data)
        return tx.append(entry), entry

    def _append_action(
        self, tx: WriteTx, action: dict[str, Any], *, peer: str = "", seq: int = 0
    ) -> int:
        idx, entry = self._append(
            tx,
            EntryKind.OPERATOR_ACTION,
            peer,
            seq,
            ZERO_HASH,
            self.clock.now_us(),
            action_bytes(action),
        )
        # project the canonical bytes, exactly as a rebuild will read them
        self.projector.apply(tx.conn, idx, entry, json.loads(entry.data))
        return idx

    def _append_envelope_out(self, tx: WriteTx, env: Envelope, payload: Any) -> int:
        h = env.header
        idx, entry = self._append(
            tx,
            EntryKind.ENVELOPE_OUT,
            h.recipient,
            h.sequence,
            env.hash,
            self.clock.now_us(),
            env.raw,
        )
        self.projector.apply(tx.conn, idx, entry, (env, payload))
        return idx

    def _queued(self, peer: str, precedence: Precedence, event: str, message_id: str) -> None:
        self.events.publish(event, peer=peer, message_id=message_id)
        for fn in self.on_queued:
            fn(peer, precedence)

    def _make_receipt(
        self,
        env: Envelope,
        leaf_index: int,
        tree_size: int,
        stored_at: int,
        missing: list[tuple[int, int]],
    ) -> bytes:
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
            Kind.RECEIPT,
            h.precedence,
            primitives.SUITE_NONE,
            self.station_id,
            h.sender,
            h.channel,
            0,
            h.message_id,
            stored_at,
        )
        return wire.seal_envelope(header, payload.to_bytes(), self._signer, None).raw
