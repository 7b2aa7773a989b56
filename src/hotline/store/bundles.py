"""The SQL of bundle files: which bundles went to and came from each peer, and which of
our receipts a peer is still owed.

Owns the ``bundles`` table (migration 0018) and the read of owed receipts from
``inbound`` (which keeps our signed receipt for every envelope a peer sent us). A
receipt is *owed* to a peer when its inbound entry lies above the peer's mark: the
highest ``receipts_through`` of our bundles to it that it answered. Re-sending a
receipt the peer already holds is harmless (it records a receipt once); losing one is
not, so the mark moves only on an answer. Every function takes the caller's connection
(a writer unit's for writes, a reader's for reads). Must not touch: the ledger, the
outbox projection (store/outbox.py reads it), checks of any kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_b = schema.bundles


@dataclass(frozen=True, slots=True)
class BundleRow:
    peer: str
    direction: str  # "out" | "in"
    bundle_id: str
    created_at_us: int
    recorded_at_us: int
    envelopes: int
    receipts: int
    receipts_through: int
    answers: str | None
    answered_at_us: int | None
    digest: bytes
    entry_idx: int


def known(conn: Connection, peer: str, direction: str, bundle_id: str) -> bool:
    """Whether the bundle ``bundle_id`` of ``peer`` was recorded in ``direction``."""
    q = sa.select(_b.c.bundle_id).where(
        _b.c.peer == peer, _b.c.direction == direction, _b.c.bundle_id == bundle_id
    )
    return conn.execute(q).first() is not None


def add(conn: Connection, row: BundleRow) -> None:
    conn.execute(
        _b.insert().values(
            peer=row.peer, direction=row.direction, bundle_id=row.bundle_id,
            created_at_us=row.created_at_us, recorded_at_us=row.recorded_at_us,
            envelopes=row.envelopes, receipts=row.receipts,
            receipts_through=row.receipts_through, answers=row.answers,
            answered_at_us=row.answered_at_us, digest=row.digest, entry_idx=row.entry_idx,
        )
    )  # fmt: skip


def mark_answered(conn: Connection, peer: str, bundle_id: str, now_us: int) -> bool:
    """Record that ``peer`` answered our bundle ``bundle_id``; False when it is not one
    of ours to that peer, or was answered already."""
    q = (
        _b.update()
        .where(
            _b.c.peer == peer,
            _b.c.direction == "out",
            _b.c.bundle_id == bundle_id,
            _b.c.answered_at_us.is_(None),
        )
        .values(answered_at_us=now_us)
    )
    return bool(conn.execute(q).rowcount)


def receipts_mark(conn: Connection, peer: str) -> int:
    """The inbound entry index up to which ``peer`` holds our receipts (0: none known)."""
    q = sa.select(sa.func.max(_b.c.receipts_through)).where(
        _b.c.peer == peer, _b.c.direction == "out", _b.c.answered_at_us.is_not(None)
    )
    return int(conn.execute(q).scalar() or 0)


def owed_receipts(
    conn: Connection, peer: str, above: int, *, limit: int
) -> list[tuple[int, int, bytes]]:
    """Our receipts for ``peer``'s envelopes stored above entry ``above``, oldest first:
    (entry index, the peer's sequence number, the receipt's bytes)."""
    i = schema.inbound
    rows = conn.execute(
        sa.select(i.c.entry_idx, i.c.sequence, i.c.receipt)
        .where(i.c.peer == peer, i.c.entry_idx > above)
        .order_by(i.c.entry_idx)
        .limit(limit)
    ).all()
    return [(int(r.entry_idx), int(r.sequence), bytes(r.receipt)) for r in rows]


def held_sequences(conn: Connection, peer: str, sequences: list[int]) -> set[int]:
    """Which of ``sequences`` from ``peer`` are stored already."""
    if not sequences:
        return set()
    i = schema.inbound
    q = sa.select(i.c.sequence).where(i.c.peer == peer, i.c.sequence.in_(sequences))
    return {int(s) for s in conn.execute(q).scalars()}


def history(conn: Connection, peer: str | None, *, limit: int) -> list[BundleRow]:
    """The newest ``limit`` bundles (of ``peer``, when given), newest first."""
    q = sa.select(_b).order_by(_b.c.recorded_at_us.desc(), _b.c.entry_idx.desc()).limit(limit)
    if peer is not None:
        q = q.where(_b.c.peer == peer)
    return [
        BundleRow(
            r.peer,
            r.direction,
            r.bundle_id,
            int(r.created_at_us),
            int(r.recorded_at_us),
            int(r.envelopes),
            int(r.receipts),
            int(r.receipts_through),
            r.answers,
            None if r.answered_at_us is None else int(r.answered_at_us),
            bytes(r.digest),
            int(r.entry_idx),
        )
        for r in conn.execute(q).all()
    ]
