"""The SQL of delivery: what is queued for a peer, and what became of each attempt.

Owns reads of the ``outbox`` projection for the delivery lanes (candidates in send
order with their sizes, then the envelopes of the chosen few) and writes of the
operational ``deliveries`` table: attempts, when an envelope first left on the wire,
the last error, and refusals (an envelope the peer refused is *parked*: ``refused``
holds the peer's code and the lanes skip it until it is unparked). Writes run as writer
units (``Connection`` handed in), reads on a reader connection. Must not touch: the
ledger (``entries`` is only read), health or alarms (``operational``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.ledger.entry import Entry
from hotline.store import schema


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt did with one envelope."""

    entry_idx: int
    #: the error code (None: the peer answered with a receipt)
    error: str | None = None
    #: whether it left on the wire (False: no connection was made)
    sent: bool = True
    #: the peer refused it with this code, for good: park it
    refused: str | None = None
    #: the path it went on (the one that carried it, when the peer answered a receipt)
    path: str | None = None


def candidates(
    conn: Connection, peer: str, precedences: Collection[int], *, limit: int
) -> list[tuple[int, int]]:
    """The first ``limit`` envelopes queued for ``peer`` at ``precedences`` that are not
    parked, as (entry index, upper bound of the envelope's size in bytes), in the order
    they go: lowest precedence value, then lowest sequence number."""
    o, e, d = schema.outbox, schema.entries, schema.deliveries
    rows = conn.execute(
        sa.select(o.c.entry_idx, sa.func.length(e.c.leaf))
        .join(e, e.c.idx == o.c.entry_idx)
        .outerjoin(d, d.c.entry_idx == o.c.entry_idx)
        .where(o.c.peer == peer, o.c.precedence.in_(list(precedences)), d.c.refused.is_(None))
        .order_by(o.c.precedence, o.c.sequence)
        .limit(limit)
    ).all()
    return [(int(idx), int(size)) for idx, size in rows]


def envelopes(conn: Connection, indices: Sequence[int]) -> list[tuple[int, bytes]]:
    """The envelopes of ``indices`` (in that order) that are still queued."""
    o, e = schema.outbox, schema.entries
    rows = conn.execute(
        sa.select(e.c.idx, e.c.leaf)
        .join(o, o.c.entry_idx == e.c.idx)
        .where(e.c.idx.in_(list(indices)))
    ).all()
    got = {int(r.idx): Entry.decode(bytes(r.leaf)).data for r in rows}
    return [(i, got[i]) for i in indices if i in got]


def note_attempts(conn: Connection, attempts: Sequence[Attempt], now_us: int) -> None:
    """Count one attempt for each envelope: the error, the first time it left on the
    wire, and a refusal (parks it). One statement per kind of outcome, not per envelope.
    An envelope already off the queue (its receipt came meanwhile, in a bundle or on
    another path) keeps the path that carried it."""
    d, o = schema.deliveries, schema.outbox
    indices = [a.entry_idx for a in attempts]
    held = set(conn.execute(sa.select(d.c.entry_idx).where(d.c.entry_idx.in_(indices))).scalars())
    queued = set(conn.execute(sa.select(o.c.entry_idx).where(o.c.entry_idx.in_(indices))).scalars())
    groups: dict[tuple[str | None, bool, str | None, str | None, bool], list[int]] = {}
    for a in attempts:
        if a.entry_idx in held:
            key = (a.error, a.sent, a.refused, a.path, a.entry_idx in queued)
            groups.setdefault(key, []).append(a.entry_idx)
    for (error, was_sent, refused, path, still_queued), idx in groups.items():
        values: dict[str, Any] = {
            "attempts": d.c.attempts + 1,
            "last_attempt_us": now_us,
            "last_error": error,
            "first_sent_us": sa.func.coalesce(d.c.first_sent_us, now_us if was_sent else None),
            "refused": refused,
            "refused_at_us": now_us if refused is not None else None,
        }
        if still_queued:
            values["path"] = path
        conn.execute(d.update().where(d.c.entry_idx.in_(idx)).values(**values))
    new = [
        {
            "entry_idx": a.entry_idx,
            "attempts": 1,
            "first_sent_us": now_us if a.sent else None,
            "last_attempt_us": now_us,
            "last_error": a.error,
            "refused": a.refused,
            "path": a.path,
            "refused_at_us": now_us if a.refused is not None else None,
        }
        for a in attempts
        if a.entry_idx not in held
    ]
    if new:
        conn.execute(d.insert(), new)


def note_carried(conn: Connection, envelope_hash: bytes, path: str, now_us: int) -> None:
    """Its receipt came back on ``path`` outside a delivery of ours (in a bundle, or late
    on the relay): that path is what the message shows as carrying it. Call before the
    receipt takes the envelope off the queue."""
    o, d = schema.outbox, schema.deliveries
    idx = conn.execute(sa.select(o.c.entry_idx).where(o.c.envelope_hash == envelope_hash)).scalar()
    if idx is None:
        return
    if not conn.execute(d.update().where(d.c.entry_idx == idx).values(path=path)).rowcount:
        conn.execute(
            d.insert().values(entry_idx=idx, attempts=0, last_attempt_us=now_us, path=path)
        )


def parked(conn: Connection, peer: str) -> list[tuple[int, str]]:
    """Envelopes queued for ``peer`` that it refused: (entry index, the peer's code)."""
    o, d = schema.outbox, schema.deliveries
    rows = conn.execute(
        sa.select(o.c.entry_idx, d.c.refused)
        .join(d, d.c.entry_idx == o.c.entry_idx)
        .where(o.c.peer == peer, d.c.refused.is_not(None))
        .order_by(o.c.precedence, o.c.sequence)
    ).all()
    return [(int(idx), str(code)) for idx, code in rows]


def unpark(
    conn: Connection,
    peer: str,
    codes: Collection[str] | None = None,
    *,
    max_bytes: int | None = None,
) -> int:
    """Let the lanes send again the envelopes ``peer`` refused: only those refused with
    one of ``codes``, when given, and only those of at most ``max_bytes`` (their ledger
    leaf, a bound on the envelope's size), when given. Returns how many."""
    o, d, e = schema.outbox, schema.deliveries, schema.entries
    queued = sa.select(o.c.entry_idx).where(o.c.peer == peer)
    if max_bytes is not None:
        queued = queued.join(e, e.c.idx == o.c.entry_idx).where(
            sa.func.length(e.c.leaf) <= max_bytes
        )
    q = d.update().where(d.c.refused.is_not(None), d.c.entry_idx.in_(queued.scalar_subquery()))
    if codes is not None:
        q = q.where(d.c.refused.in_(list(codes)))
    return int(conn.execute(q.values(refused=None, refused_at_us=None)).rowcount)
