"""Reads of the ``peers`` projection and of the sequence state of a line.

Owns the SQL that peering (add, remove, re-key) and resync (restore from backup) read:
which peers are active and their cards, what this station holds from a peer (highest
contiguous and highest sequence number), our next outbound sequence number, and the
queued envelopes of a peer. Plain functions over a connection; the caller picks the
thread (never the event loop) and the transaction. Must not touch: writes (those are
projections of ledger entries, ``projections``), the network, business rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema


@dataclass(frozen=True, slots=True)
class PeerRow:
    station_id: str
    card: str
    removed_at_us: int | None


@dataclass(frozen=True, slots=True)
class Queued:
    """One envelope of ours still waiting for the peer's receipt."""

    entry_idx: int
    sequence: int
    leaf: bytes


def peer_rows(conn: Connection) -> list[PeerRow]:
    """Every peer ever added, removed ones included, by station id."""
    p = schema.peers
    rows = conn.execute(
        sa.select(p.c.station_id, p.c.card, p.c.removed_at_us).order_by(p.c.station_id)
    ).all()
    return [PeerRow(str(r.station_id), str(r.card), r.removed_at_us) for r in rows]


def peer_row(conn: Connection, station_id: str) -> PeerRow | None:
    p = schema.peers
    r = conn.execute(
        sa.select(p.c.station_id, p.c.card, p.c.removed_at_us).where(p.c.station_id == station_id)
    ).first()
    return None if r is None else PeerRow(str(r.station_id), str(r.card), r.removed_at_us)


def next_out_seq(conn: Connection, peer: str) -> int | None:
    p = schema.peers
    got = conn.execute(sa.select(p.c.next_out_seq).where(p.c.station_id == peer)).scalar()
    return None if got is None else int(got)


def held_from(conn: Connection, peer: str) -> tuple[int, int]:
    """(highest contiguous, highest) sequence numbers this station holds from ``peer``;
    (0, 0) when it holds none (or ``peer`` is unknown)."""
    p, i = schema.peers, schema.inbound
    contiguous = conn.execute(sa.select(p.c.in_contiguous).where(p.c.station_id == peer)).scalar()
    highest = conn.execute(sa.select(sa.func.max(i.c.sequence)).where(i.c.peer == peer)).scalar()
    c = int(contiguous or 0)
    return c, max(c, int(highest or 0))


def queued_from(conn: Connection, peer: str, first_sequence: int, limit: int) -> list[Queued]:
    """Our queued envelopes to ``peer`` with sequence numbers from ``first_sequence`` up."""
    o, e = schema.outbox, schema.entries
    rows = conn.execute(
        sa.select(o.c.entry_idx, o.c.sequence, e.c.leaf)
        .join(e, e.c.idx == o.c.entry_idx)
        .where(o.c.peer == peer, o.c.sequence >= first_sequence)
        .order_by(o.c.sequence)
        .limit(limit)
    ).all()
    return [Queued(int(r.entry_idx), int(r.sequence), bytes(r.leaf)) for r in rows]


def queued_at(conn: Connection, peer: str, entry_idx: int) -> Queued | None:
    """Our queued envelope at ledger index ``entry_idx``, if it still waits for a receipt."""
    o, e = schema.outbox, schema.entries
    r = conn.execute(
        sa.select(o.c.entry_idx, o.c.sequence, e.c.leaf)
        .join(e, e.c.idx == o.c.entry_idx)
        .where(o.c.peer == peer, o.c.entry_idx == entry_idx)
    ).first()
    return None if r is None else Queued(int(r.entry_idx), int(r.sequence), bytes(r.leaf))


def receipted_in(conn: Connection, peer: str, ranges: list[tuple[int, int]]) -> list[int]:
    """Our sequence numbers in ``ranges`` (inclusive) that ``peer`` gave us a receipt for;
    at most 1,000 of them."""
    r = schema.receipts
    if not ranges:
        return []
    within = sa.or_(*(r.c.sequence.between(lo, hi) for lo, hi in ranges))
    rows = conn.execute(
        sa.select(r.c.sequence).where(r.c.peer == peer, within).order_by(r.c.sequence).limit(1000)
    ).scalars()
    return [int(s) for s in rows]


def entry_leaf(conn: Connection, idx: int) -> bytes | None:
    e = schema.entries
    got = conn.execute(sa.select(e.c.leaf).where(e.c.idx == idx)).scalar()
    return None if got is None else bytes(got)


def sent_message(conn: Connection, message_id: str) -> tuple[str, bool] | None:
    """(body JSON, ack required) of a message we sent, for re-sealing it."""
    m = schema.messages
    r = conn.execute(
        sa.select(m.c.body, m.c.ack_required).where(
            m.c.message_id == message_id, m.c.direction == "out"
        )
    ).first()
    return None if r is None else (str(r.body), bool(r.ack_required))


def acknowledgement(conn: Connection, message_id: str) -> tuple[str, str | None, int] | None:
    """(officer, note, acknowledged at) of a message we acknowledged, for re-sealing."""
    m = schema.messages
    r = conn.execute(
        sa.select(m.c.acknowledged_by, m.c.ack_note, m.c.acknowledged_at_us).where(
            m.c.message_id == message_id, m.c.direction == "in"
        )
    ).first()
    if r is None or r.acknowledged_by is None:
        return None
    return str(r.acknowledged_by), r.ack_note, int(r.acknowledged_at_us)


def delete_witness_state(conn: Connection, peer: str) -> None:
    """Forget the checkpoint we cosigned for ``peer`` (a re-keyed peer starts afresh; the
    cosignatures and any fork evidence stay on the ledger)."""
    ws = schema.witness_state
    conn.execute(ws.delete().where(ws.c.peer == peer))
