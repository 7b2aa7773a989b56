"""Projections: every table an operator reads, derived from ledger entries.

Owns the rules that turn one ledger entry into rows of ``peers``, ``messages``,
``outbox``, ``inbound`` and ``voids`` (its SQL in ``store/voids``). The live path (a
service unit that has just appended an entry) and ``rebuild`` (wipe and replay every
entry) call the same ``Projector.apply``, so a rebuilt store equals the live one; a test
proves it. Times: deadlines and the times an operator reads (delivered, acknowledged)
are OUR recorded times (the entry's ``recorded_at_us``); what a peer claims (its
acknowledgement time, its receipt's stored time) is kept beside them, labelled as a
claim. Must not touch: ``entries``, the network, or anything outside the transaction it
is handed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.ledger.entry import Entry, EntryKind
from hotline.store import schema, voids
from hotline.store.prepared import Prepared
from hotline.wire.envelope import Envelope, Kind
from hotline.wire.messages import AckPayload, MessagePayload, ReceiptPayload

#: most out-of-order sequence numbers looked at when computing gaps
MAX_OUT_OF_ORDER = 10_000

#: computes a message's acknowledgement deadline from its precedence, sent time and
#: channel (``LineContext.deadline_us``: a channel's terms may set their own deadlines)
DeadlineRule = Callable[[int, int, str], int]

#: the columns of a ``messages`` row as the projection inserts it
MESSAGE_KEYS = (
    "message_id", "direction", "peer", "channel", "precedence", "sequence", "kind", "type",
    "body", "operator", "sent_at_us", "stored_at_us", "delivered_at_us", "ack_required",
    "ack_deadline_us", "acknowledged_at_us", "acknowledged_by", "ack_note", "entry_idx",
)  # fmt: skip


class _S:
    """Hot-path statements, built once with bind parameters and run on the driver's
    cursor (store/prepared.py: SQLAlchemy's execution path cost more than the database
    work itself)."""

    _p, _i, _o, _m = schema.peers, schema.inbound, schema.outbox, schema.messages
    outbox_insert = Prepared(
        _o.insert(), ("entry_idx", "peer", "sequence", "precedence", "envelope_hash")
    )
    inbound_insert = Prepared(
        _i.insert(),
        ("peer", "sequence", "envelope_hash", "entry_idx", "receipt", "message_id"),
    )
    receipt_insert = Prepared(
        schema.receipts.insert(),
        ("peer", "sequence", "envelope_hash", "leaf_index", "tree_size", "stored_at_us"),
    )
    message_insert = Prepared(_m.insert(), MESSAGE_KEYS)
    peer_next_seq = Prepared(
        _p.update().where(_p.c.station_id == sa.bindparam("b_peer")), ("next_out_seq",)
    )
    outbox_delete = Prepared(_o.delete().where(_o.c.envelope_hash == sa.bindparam("b_hash")))
    acked_by_peer = Prepared(
        _m.update().where(
            _m.c.message_id == sa.bindparam("b_mid"),
            _m.c.direction == "out",
            _m.c.peer == sa.bindparam("b_peer"),
            _m.c.acknowledged_at_us.is_(None),
        ),
        ("acknowledged_at_us", "ack_claimed_at_us", "acknowledged_by", "ack_note"),
    )
    delivered = Prepared(
        _m.update().where(
            _m.c.peer == sa.bindparam("b_peer"),
            _m.c.direction == "out",
            _m.c.sequence == sa.bindparam("b_seq"),
            _m.c.delivered_at_us.is_(None),
        ),
        ("delivered_at_us",),
    )
    in_contiguous = Prepared(
        sa.select(_p.c.in_contiguous).where(_p.c.station_id == sa.bindparam("b_peer"))
    )
    above = Prepared(
        sa.select(_i.c.sequence)
        .where(_i.c.peer == sa.bindparam("b_peer"), _i.c.sequence > sa.bindparam("b_c"))
        .order_by(_i.c.sequence)
        .limit(MAX_OUT_OF_ORDER)
    )
    set_contiguous = Prepared(
        _p.update().where(_p.c.station_id == sa.bindparam("b_peer")), ("in_contiguous",)
    )
    set_receipt = _i.update().where(
        _i.c.peer == sa.bindparam("b_peer"), _i.c.sequence == sa.bindparam("b_seq")
    )


#: our receipts kept across a rebuild of the projections (a temporary table of the
#: rebuild's transaction): a rebuilt inbound row keeps its receipt, byte for byte
_stash = sa.Table(
    "receipt_stash",
    sa.MetaData(),
    sa.Column("entry_idx", sa.BigInteger, primary_key=True),
    sa.Column("receipt", sa.LargeBinary, nullable=False),
    prefixes=["TEMPORARY"],
)


def stash_receipts(conn: Connection) -> None:
    """Before a rebuild wipes ``inbound``: keep every receipt by its entry index."""
    _stash.create(conn)
    i = schema.inbound
    conn.execute(
        _stash.insert().from_select(["entry_idx", "receipt"], sa.select(i.c.entry_idx, i.c.receipt))
    )


def stashed_receipts(conn: Connection, first: int, last: int) -> dict[int, bytes]:
    """The kept receipts of the entries ``first..last`` (inclusive)."""
    q = sa.select(_stash.c.entry_idx, _stash.c.receipt).where(
        _stash.c.entry_idx >= first, _stash.c.entry_idx <= last
    )
    return {int(r.entry_idx): bytes(r.receipt) for r in conn.execute(q)}


def drop_stash(conn: Connection) -> None:
    _stash.drop(conn)


def set_receipts(conn: Connection, rows: list[tuple[str, int, bytes]]) -> None:
    """Write the signed receipts of inbound rows: (peer, sequence, receipt bytes)."""
    if rows:
        conn.execute(_S.set_receipt, [{"b_peer": p, "b_seq": s, "receipt": r} for p, s, r in rows])


@dataclass(frozen=True, slots=True)
class Applied:
    """What the live path needs back from applying an inbound envelope: the receipt
    item to sign (the inbound row holds an empty receipt until ``set_receipts``: one
    signature covers a whole batch, made right before commit: service/receipts.py)."""

    item: ReceiptPayload | None = None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A typed message as a projection extension sees it (sent or received)."""

    idx: int
    direction: str  #: "out" | "in"
    peer: str
    sender: str
    message_id: str
    channel: str
    precedence: int
    sent_at_us: int
    recorded_at_us: int
    body: MessagePayload


class ProjectionExtension(Protocol):
    """A further projection of messages (e.g. the deconfliction registry).

    Called inside the writer's transaction, in ledger order, live and on rebuild.
    """

    #: tables this extension owns; wiped before a rebuild
    tables: tuple[sa.Table, ...]

    def on_message(self, conn: Connection, event: MessageEvent) -> None: ...

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None: ...

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        """An operator action (after the core projection of it), ``at_us`` its recorded
        time. Actions this extension does not own are ignored."""
        ...

    def reset(self) -> None:
        """Forget in-memory state before a rebuild replays the ledger."""
        ...

    def rebuild_finished(self, conn: Connection) -> None:
        """The replay is done: reconcile what lives outside the projections (alarms)."""
        ...


class Projector:
    def __init__(
        self,
        deadline: DeadlineRule,
        station_id: str = "",
        extensions: Sequence[ProjectionExtension] = (),
        max_ahead: int = 4096,
    ) -> None:
        self._deadline = deadline
        self._max_ahead = max_ahead
        self._station_id = station_id
        self.extensions = tuple(extensions)
        self._pending_send: dict[str, dict[str, Any]] = {}

    def apply(self, conn: Connection, idx: int, entry: Entry, parsed: Any) -> Applied:
        """Apply one entry. ``parsed`` is the entry's checked content: the action dict
        for operator actions, (Envelope, payload) for envelopes."""
        if entry.kind is EntryKind.OPERATOR_ACTION:
            self._action(conn, idx, entry, parsed)
        elif entry.kind is EntryKind.ENVELOPE_OUT:
            env, payload = parsed
            self._envelope_out(conn, idx, entry, env, payload)
        elif entry.kind is EntryKind.ENVELOPE_IN:
            env, payload = parsed
            return self._envelope_in(conn, idx, entry, env, payload)
        elif entry.kind is EntryKind.RECEIPT_IN:
            self._receipt_in(conn, entry, parsed)
        return Applied()

    # --- operator actions ------------------------------------------------------------

    def _action(self, conn: Connection, idx: int, entry: Entry, action: dict[str, Any]) -> None:
        self._core_action(conn, idx, entry, action)
        for ext in self.extensions:
            ext.on_action(conn, idx, action, entry.recorded_at_us)

    def _core_action(
        self, conn: Connection, idx: int, entry: Entry, action: dict[str, Any]
    ) -> None:
        name = action.get("action")
        if name == "peer_add":
            _peer_add(conn, action, entry.recorded_at_us)
        elif name in PEER_ACTIONS:
            _peer_change(conn, action, entry.recorded_at_us)
        elif name == "reissue":
            # an envelope re-sealed under a new sequence number (service/resync.py): the old
            # one leaves the queue; the ENVELOPE_OUT entry that follows carries the new one
            o = schema.outbox
            conn.execute(
                o.delete().where(o.c.peer == entry.peer, o.c.sequence == action["old_sequence"])
            )
            if action.get("message_id") is not None:
                self._pending_send[action["message_id"]] = action
        elif name == "void":
            # we declared a sequence number void: the refused envelope leaves the queue
            voids.declare_out(conn, action["peer"], action["sequence"], action["entry_idx"],
                              action["code"], idx)  # fmt: skip
        elif name == "peer_void":
            # the peer declared numbers void (its signed link test is in the action): the
            # contiguous mark moves over them
            ranges = [(int(a), int(b)) for a, b in action["void"]]
            voids.declare_in(conn, action["peer"], ranges, idx)
        elif name == "send":
            self._pending_send[action["message_id"]] = action
        elif name == "ack":
            for ext in self.extensions:
                ext.on_ack(conn, action["message_id"], self._station_id, action["officer"],
                           entry.recorded_at_us)  # fmt: skip
            m = schema.messages
            conn.execute(
                m.update()
                .where(m.c.message_id == action["message_id"], m.c.direction == "in")
                .values(
                    acknowledged_at_us=entry.recorded_at_us,
                    acknowledged_by=action["officer"],
                    ack_note=action.get("note"),
                )
            )

    # --- envelopes -------------------------------------------------------------------

    def _envelope_out(
        self, conn: Connection, idx: int, entry: Entry, env: Envelope, payload: Any
    ) -> None:
        h = env.header
        _S.outbox_insert.run(
            conn,
            {
                "entry_idx": idx,
                "peer": h.recipient,
                "sequence": h.sequence,
                "precedence": int(h.precedence),
                "envelope_hash": entry.envelope_hash,
            },
        )
        _S.peer_next_seq.run(conn, {"b_peer": h.recipient, "next_out_seq": h.sequence + 1})
        if h.kind is Kind.MESSAGE:
            action = self._pending_send.pop(str(h.message_id), None)
            if action is None:
                raise ValueError(f"send action missing for message {h.message_id}")
            if action.get("action") == "reissue":
                m = schema.messages
                conn.execute(
                    m.update()
                    .where(m.c.message_id == str(h.message_id), m.c.direction == "out")
                    .values(sequence=h.sequence, entry_idx=idx)
                )
                return
            # the action holds the payload as JSON: parse it as JSON (a UUID is a string)
            body = MessagePayload.model_validate_json(json.dumps(action["payload"]))
            self._insert_message(conn, idx, entry, env, body, "out", action.get("operator"))

    def _envelope_in(
        self, conn: Connection, idx: int, entry: Entry, env: Envelope, payload: Any
    ) -> Applied:
        h = env.header
        if h.kind is Kind.MESSAGE:
            self._insert_message(conn, idx, entry, env, payload, "in", None)
        elif h.kind is Kind.ACK:
            ack: AckPayload = payload
            at = entry.recorded_at_us  # ours; the peer's claim is kept as ack_claimed_at_us
            for ext in self.extensions:
                ext.on_ack(conn, str(ack.message_id), h.sender, ack.officer, at)
            _S.acked_by_peer.run(  # the first acknowledgement counts; later ones stay on the ledger
                conn,
                {
                    "b_mid": str(ack.message_id),
                    "b_peer": h.sender,
                    "acknowledged_at_us": at,
                    "ack_claimed_at_us": ack.acknowledged_at_us,
                    "acknowledged_by": ack.officer,
                    "ack_note": ack.note,
                },
            )
        missing = advance_inbound(conn, h.sender, h.sequence, self._max_ahead)
        item = ReceiptPayload(
            envelope_hash=env.hash.hex(),
            sender=h.sender,
            sequence=h.sequence,
            message_id=h.message_id,
            stored_at_us=entry.recorded_at_us,
            leaf_index=idx,
            tree_size=idx + 1,
            missing=missing,
        )
        _S.inbound_insert.run(
            conn,
            {
                "peer": h.sender,
                "sequence": h.sequence,
                "envelope_hash": entry.envelope_hash,
                "entry_idx": idx,
                "receipt": b"",  # set before commit, with the batch's signature
                "message_id": str(h.message_id),
            },
        )
        return Applied(item=item)

    def _receipt_in(self, conn: Connection, entry: Entry, receipt: ReceiptPayload) -> None:
        _S.outbox_delete.run(conn, {"b_hash": entry.envelope_hash})
        _S.receipt_insert.run(
            conn,
            {
                "peer": entry.peer,
                "sequence": receipt.sequence,
                "envelope_hash": entry.envelope_hash,
                "leaf_index": receipt.leaf_index,
                "tree_size": receipt.tree_size,
                "stored_at_us": receipt.stored_at_us,
            },
        )
        _S.delivered.run(
            conn,
            {
                "b_peer": entry.peer,
                "b_seq": receipt.sequence,
                "delivered_at_us": entry.recorded_at_us,  # ours; the claim is in receipts
            },
        )

    def _insert_message(
        self,
        conn: Connection,
        idx: int,
        entry: Entry,
        env: Envelope,
        body: MessagePayload,
        direction: str,
        operator: str | None,
    ) -> None:
        h = env.header
        _S.message_insert.run(
            conn,
            dict(
                message_id=str(h.message_id),
                direction=direction,
                peer=h.recipient if direction == "out" else h.sender,
                channel=h.channel,
                precedence=int(h.precedence),
                sequence=h.sequence,
                kind=int(h.kind),
                type=body.type,
                body=body.model_dump_json(exclude_none=True),
                operator=operator,
                sent_at_us=h.sent_at_us,
                stored_at_us=entry.recorded_at_us,
                delivered_at_us=entry.recorded_at_us if direction == "in" else None,
                ack_required=body.ack_required,
                # counted from our own time: a received message's sent time is a claim
                ack_deadline_us=(
                    self._deadline(
                        int(h.precedence),
                        h.sent_at_us if direction == "out" else entry.recorded_at_us,
                        h.channel,
                    )
                    if body.ack_required
                    else None
                ),
                acknowledged_at_us=None,
                acknowledged_by=None,
                ack_note=None,
                entry_idx=idx,
            ),
        )
        if body.type != "text" and self.extensions:
            event = MessageEvent(
                idx=idx, direction=direction, peer=h.recipient if direction == "out" else h.sender,
                sender=h.sender, message_id=str(h.message_id), channel=h.channel,
                precedence=int(h.precedence), sent_at_us=h.sent_at_us,
                recorded_at_us=entry.recorded_at_us, body=body,
            )  # fmt: skip
            for ext in self.extensions:
                ext.on_message(conn, event)
        if body.in_reply_to is not None:  # a reply (any type): extensions that thread see it
            peer = h.recipient if direction == "out" else h.sender
            for ext in self.extensions:
                on_reply = getattr(ext, "on_reply", None)
                if on_reply is not None:
                    on_reply(conn, idx, direction, peer, str(h.message_id),
                             str(body.in_reply_to), entry.recorded_at_us)  # fmt: skip


#: operator/system actions on a peer row, besides ``peer_add`` (service/peering.py,
#: service/resync.py)
PEER_ACTIONS = ("peer_remove", "peer_rekey", "resync")


def _peer_add(conn: Connection, action: dict[str, Any], at_us: int) -> None:
    """A new peer; a removed one added again keeps its sequence numbers (a peer never
    sees a sequence number twice)."""
    p = schema.peers
    sid = action["station_id"]
    if conn.execute(sa.select(p.c.station_id).where(p.c.station_id == sid)).first() is None:
        conn.execute(
            p.insert().values(
                station_id=sid, card=action["card"], added_at_us=at_us, next_out_seq=1,
                in_contiguous=0, removed_at_us=None,
            )
        )  # fmt: skip
    else:
        conn.execute(
            p.update()
            .where(p.c.station_id == sid)
            .values(card=action["card"], added_at_us=at_us, removed_at_us=None)
        )


def _peer_change(conn: Connection, action: dict[str, Any], at_us: int) -> None:
    p = schema.peers
    where = p.c.station_id == action["station_id"]
    name = action["action"]
    if name == "peer_remove":
        conn.execute(p.update().where(where).values(removed_at_us=at_us))
    elif name == "peer_rekey":
        conn.execute(p.update().where(where).values(card=action["card"]))
    else:  # resync: resume above the sequence numbers the peer holds
        conn.execute(
            p.update()
            .where(where, p.c.next_out_seq < action["next_out_seq"])
            .values(next_out_seq=action["next_out_seq"])
        )


def advance_inbound(
    conn: Connection, peer: str, seq: int, max_ahead: int = 4096
) -> list[tuple[int, int]]:
    """Record that ``seq`` arrived from ``peer``; return the inclusive ranges still
    missing below it (at most 64, none beyond ``max_ahead`` past the contiguous mark).
    Moves the peer's contiguous mark past every sequence now held or declared void."""
    contiguous = int(_S.in_contiguous.scalar(conn, {"b_peer": peer}))
    above = {int(s) for s in _S.above.scalars(conn, {"b_peer": peer, "b_c": contiguous})}
    above |= voids.void_in_above(conn, peer, contiguous, MAX_OUT_OF_ORDER)
    above.add(seq)
    while contiguous + 1 in above:
        contiguous += 1
        above.discard(contiguous)
    _S.set_contiguous.run(conn, {"b_peer": peer, "in_contiguous": contiguous})
    return gaps_above(contiguous, sorted(above), max_ahead)


def gaps_above(contiguous: int, held: list[int], max_ahead: int) -> list[tuple[int, int]]:
    """The inclusive ranges missing between ``contiguous`` and the highest of ``held``
    (ascending, all above ``contiguous``), capped: at most 64 ranges, and nothing beyond
    ``contiguous + max_ahead`` (a peer's far jump never makes every later receipt carry
    a huge range)."""
    limit = contiguous + max_ahead
    gaps: list[tuple[int, int]] = []
    expected = contiguous + 1
    for s in held:
        if s > expected and expected <= limit:
            gaps.append((expected, min(s - 1, limit)))
        expected = s + 1
        if len(gaps) == 64:
            break
    return gaps


def action_bytes(action: dict[str, Any]) -> bytes:
    """The canonical JSON of an operator action, as stored in its ledger entry."""
    return json.dumps(action, sort_keys=True, separators=(",", ":")).encode()
