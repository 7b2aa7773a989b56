"""The SQL of void sequence numbers (the ``voids`` projection).

Owns reads and writes of ``voids``: the numbers we declared void towards a peer
(direction "out": the peer refused their envelope for good) and the numbers a peer
declared void towards us (direction "in", from its signed link test), and the rule that
moves a peer's contiguous mark over held and voided numbers. Writes run inside the
projector (a writer unit, ``Connection`` handed in); reads anywhere. Must not touch: the
ledger, the outbox's delivery state (``deliveries``), alarms.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema
from hotline.store.prepared import Prepared

_v, _i, _o, _p = schema.voids, schema.inbound, schema.outbox, schema.peers


def collapse(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted inclusive ranges covering ``numbers``."""
    ranges: list[tuple[int, int]] = []
    for n in sorted(set(numbers)):
        if ranges and ranges[-1][1] + 1 == n:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


def queued(conn: Connection, entry_idx: int) -> tuple[str, int] | None:
    """The (peer, sequence) of a queued outbox envelope, or None."""
    q = sa.select(_o.c.peer, _o.c.sequence).where(_o.c.entry_idx == entry_idx)
    row = conn.execute(q).first()
    return None if row is None else (str(row.peer), int(row.sequence))


def declare_out(conn: Connection, peer: str, sequence: int, entry_idx: int, code: str,
                action_idx: int) -> None:  # fmt: skip
    """Project a ``void`` action: the envelope leaves the queue, its number is void."""
    conn.execute(_o.delete().where(_o.c.entry_idx == entry_idx))
    conn.execute(
        _v.insert().values(
            peer=peer, direction="out", sequence=sequence, entry_idx=action_idx, code=code
        )
    )


def declared_out(conn: Connection, peer: str, above: int, upto: int) -> list[int]:
    """Numbers we declared void towards ``peer`` in (above, upto], ascending."""
    return [
        int(s)
        for s in conn.execute(
            sa.select(_v.c.sequence)
            .where(_v.c.peer == peer, _v.c.direction == "out")
            .where(_v.c.sequence > above, _v.c.sequence <= upto)
            .order_by(_v.c.sequence)
        ).scalars()
    ]


_VOID_IN = Prepared(
    sa.select(_v.c.sequence).where(
        _v.c.peer == sa.bindparam("b_peer"),
        _v.c.direction == "in",
        _v.c.sequence == sa.bindparam("b_seq"),
    )
)
_VOID_IN_ABOVE = Prepared(
    sa.select(_v.c.sequence)
    .where(
        _v.c.peer == sa.bindparam("b_peer"),
        _v.c.direction == "in",
        _v.c.sequence > sa.bindparam("b_above"),
    )
    .order_by(_v.c.sequence)
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)


def is_void_in(conn: Connection, peer: str, sequence: int) -> bool:
    """Whether ``peer`` declared ``sequence`` void towards us."""
    return _VOID_IN.first(conn, {"b_peer": peer, "b_seq": sequence}) is not None


def taken_in(conn: Connection, peer: str, above: int, upto: int) -> set[int]:
    """Numbers from ``peer`` in (above, upto] we hold or it declared void."""
    held = sa.select(_i.c.sequence).where(
        _i.c.peer == peer, _i.c.sequence > above, _i.c.sequence <= upto
    )
    void = sa.select(_v.c.sequence).where(
        _v.c.peer == peer, _v.c.direction == "in", _v.c.sequence > above, _v.c.sequence <= upto
    )
    return {int(s) for s in conn.execute(sa.union_all(held, void)).scalars()}


def void_in_above(conn: Connection, peer: str, above: int, limit: int) -> set[int]:
    """Numbers above ``above`` that ``peer`` declared void (at most ``limit``)."""
    params = {"b_peer": peer, "b_above": above, "b_limit": limit}
    return {int(s) for s in _VOID_IN_ABOVE.scalars(conn, params)}


def declare_in(conn: Connection, peer: str, ranges: list[tuple[int, int]], action_idx: int) -> None:
    """Project a ``peer_void`` action: record the voided numbers, move the mark over them."""
    rows = [
        {"peer": peer, "direction": "in", "sequence": s, "entry_idx": action_idx, "code": None}
        for a, b in ranges
        for s in range(a, b + 1)
    ]
    if rows:
        conn.execute(_v.insert(), rows)
    contiguous = int(
        conn.execute(sa.select(_p.c.in_contiguous).where(_p.c.station_id == peer)).scalar_one()
    )
    while True:  # over the voided numbers and those held above them
        taken = taken_in(conn, peer, contiguous, contiguous + 1024)
        if contiguous + 1 not in taken:
            break
        while contiguous + 1 in taken:
            contiguous += 1
    conn.execute(_p.update().where(_p.c.station_id == peer).values(in_contiguous=contiguous))


def parked_out(conn: Connection, message_id: str) -> tuple[int, str, str] | None:
    """(entry index, peer, the peer's code) of our message ``message_id`` when it is still
    queued and parked (the peer refused it), else None."""
    m, d = schema.messages, schema.deliveries
    row = conn.execute(
        sa.select(_o.c.entry_idx, _o.c.peer, d.c.refused)
        .join(m, m.c.entry_idx == _o.c.entry_idx)
        .join(d, d.c.entry_idx == _o.c.entry_idx)
        .where(m.c.message_id == message_id, m.c.direction == "out", d.c.refused.is_not(None))
    ).first()
    return None if row is None else (int(row.entry_idx), str(row.peer), str(row.refused))
