"""The SQL the line's use cases run (service/sender, inbox, receipts, linkproto, replay).

Owns the statements over ``peers``, ``inbound``, ``outbox``, ``messages`` and ``entries``
that the line reads before (or while) it appends, and the wipe of projections before a
rebuild. Statements are built once with bind parameters. Invariants: reads only, except
``wipe``; every function takes the caller's connection (a writer unit's or a reader's)
and never opens or commits a transaction. Must not touch: business rules (what a value
means is decided by the service module that asked), the ledger's append.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoResultFound

from hotline.store import schema
from hotline.store.prepared import Prepared

_p, _i, _o, _m, _e = schema.peers, schema.inbound, schema.outbox, schema.messages, schema.entries

_HELD = Prepared(
    sa.select(_i.c.envelope_hash, _i.c.receipt).where(
        _i.c.peer == sa.bindparam("b_peer"), _i.c.sequence == sa.bindparam("b_seq")
    )
)
_OUTBOX_BY_HASH = Prepared(
    sa.select(_o.c.sequence).where(
        _o.c.envelope_hash == sa.bindparam("b_hash"), _o.c.peer == sa.bindparam("b_peer")
    )
)
_NEXT_SEQ = Prepared(sa.select(_p.c.next_out_seq).where(_p.c.station_id == sa.bindparam("b_peer")))
_IN_CONTIGUOUS = Prepared(
    sa.select(_p.c.in_contiguous).where(_p.c.station_id == sa.bindparam("b_peer"))
)
_RECEIVED = sa.select(_m.c.peer, _m.c.channel, _m.c.precedence, _m.c.acknowledged_at_us).where(
    _m.c.message_id == sa.bindparam("b_mid"), _m.c.direction == "in"
)

_INBOUND_MID = Prepared(
    sa.select(_i.c.sequence)
    .where(_i.c.peer == sa.bindparam("b_peer"), _i.c.message_id == sa.bindparam("b_mid"))
    .limit(1)
)
_MESSAGE_ID = Prepared(
    sa.select(_m.c.direction).where(_m.c.message_id == sa.bindparam("b_mid")).limit(1)
)
_SENT_AT = Prepared(
    sa.select(_m.c.sent_at_us).where(
        _m.c.message_id == sa.bindparam("b_mid"),
        _m.c.direction == "out",
        _m.c.peer == sa.bindparam("b_peer"),
    )
)


class Held(NamedTuple):
    envelope_hash: bytes
    receipt: bytes


def held(conn: Connection, peer: str, seq: int) -> Held | None:
    """The stored inbound envelope's (envelope_hash, receipt) at ``seq``, or None."""
    row = _HELD.first(conn, {"b_peer": peer, "b_seq": seq})
    return None if row is None else Held(bytes(row[0]), bytes(row[1]))


def outbox_sequence(conn: Connection, envelope_hash: bytes, peer: str) -> int | None:
    """The sequence number of our queued envelope to ``peer`` with this hash, or None."""
    seq = _OUTBOX_BY_HASH.scalar(conn, {"b_hash": envelope_hash, "b_peer": peer})
    return None if seq is None else int(seq)


def next_out_seq(conn: Connection, peer: str) -> int | None:
    """The next sequence number we use towards ``peer`` (None: not a peer)."""
    seq = _NEXT_SEQ.scalar(conn, {"b_peer": peer})
    return None if seq is None else int(seq)


def in_contiguous(conn: Connection, peer: str) -> int:
    """Every sequence number from ``peer`` up to this one has been received."""
    seq = _IN_CONTIGUOUS.scalar(conn, {"b_peer": peer})
    if seq is None:
        raise NoResultFound(f"station {peer!r} is not a peer")
    return int(seq)


def held_between(conn: Connection, peer: str, above: int, upto: int, limit: int) -> list[int]:
    """Sequence numbers held from ``peer`` in (above, upto], ascending, at most ``limit``."""
    i = _i
    return [
        int(s)
        for s in conn.execute(
            sa.select(i.c.sequence)
            .where(i.c.peer == peer, i.c.sequence > above, i.c.sequence <= upto)
            .order_by(i.c.sequence)
            .limit(limit)
        ).scalars()
    ]


def message_id_used(conn: Connection, peer: str, message_id: str, *, as_message: bool) -> bool:
    """Whether an envelope from ``peer`` already carried ``message_id`` (and, for a
    message, whether any message row, ours or another peer's, has that id)."""
    params = {"b_peer": peer, "b_mid": message_id}
    if _INBOUND_MID.first(conn, params) is not None:
        return True
    return as_message and _MESSAGE_ID.first(conn, {"b_mid": message_id}) is not None


def sent_at(conn: Connection, peer: str, message_id: str) -> int | None:
    """When we sent ``message_id`` to ``peer`` (our own time), or None."""
    at = _SENT_AT.scalar(conn, {"b_peer": peer, "b_mid": message_id})
    return None if at is None else int(at)


def received_message(conn: Connection, message_id: str) -> Any:
    """A message received from a peer: (peer, channel, precedence, acknowledged_at_us)."""
    return conn.execute(_RECEIVED, {"b_mid": message_id}).first()


def peer_cards(conn: Connection) -> list[tuple[str, str]]:
    """Every peer's (station id, card text)."""
    return [(r[0], r[1]) for r in conn.execute(sa.select(_p.c.station_id, _p.c.card)).all()]


def wipe(conn: Connection, tables: Sequence[sa.Table]) -> None:
    """Delete every row of ``tables`` (projections before a rebuild), last first."""
    for table in reversed(tables):
        conn.execute(table.delete())


def leaves_after(conn: Connection, last: int, chunk: int) -> list[tuple[int, bytes]]:
    """The next ``chunk`` ledger leaves after index ``last``, in order."""
    rows = conn.execute(
        sa.select(_e.c.idx, _e.c.leaf).where(_e.c.idx > last).order_by(_e.c.idx).limit(chunk)
    ).all()
    return [(int(r.idx), bytes(r.leaf)) for r in rows]
