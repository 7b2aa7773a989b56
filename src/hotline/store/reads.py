"""The SQL of the read side: messages with their delivery state, counts, overdue
acknowledgements, the typed messages the registry is rebuilt from, and where a message
sits in the ledger.

Owns the statements over ``messages`` (joined with ``deliveries`` and ``voids``),
``outbox`` and ``entries`` that operators' reads (``service/queries``, ``api/ledger``)
and the registry's rebuild (``service/registry``) run. Rows are returned as the database
gave them; what a row means (a message's state, an alarm's wording) is decided by the
caller. Invariants: reads only; every function takes the caller's connection and never
opens or commits a transaction. Must not touch: writes, the shapes operators see.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_m, _d, _v, _o, _e = schema.messages, schema.deliveries, schema.voids, schema.outbox, schema.entries

#: a message with its delivery attempts and whether its sequence number was declared void
_WITH_DELIVERIES = (
    sa.select(
        _m,
        _d.c.first_sent_us,
        _d.c.attempts,
        _d.c.last_error,
        _d.c.refused,
        _d.c.path,
        _v.c.sequence.label("void_sequence"),
    )
    .outerjoin(_d, _d.c.entry_idx == _m.c.entry_idx)
    .outerjoin(
        _v,
        sa.and_(
            _v.c.peer == _m.c.peer, _v.c.direction == _m.c.direction, _v.c.sequence == _m.c.sequence
        ),
    )
)
_MESSAGE = _WITH_DELIVERIES.where(_m.c.message_id == sa.bindparam("b_mid"))
_CHANNELS = (
    sa.select(_m.c.channel, sa.func.count(), sa.func.max(_m.c.stored_at_us))
    .group_by(_m.c.channel)
    .order_by(_m.c.channel)
)
_DIRECTION_COUNT = sa.select(sa.func.count()).where(_m.c.direction == sa.bindparam("b_dir"))
_QUEUED = sa.select(sa.func.count()).select_from(_o)
_OVERDUE = (
    sa.select(_m)
    .where(
        _m.c.ack_required.is_(True),
        _m.c.acknowledged_at_us.is_(None),
        _m.c.ack_deadline_us < sa.bindparam("b_now"),
    )
    .order_by(_m.c.ack_deadline_us)
    .limit(sa.bindparam("b_limit"))
)
_TYPED = sa.select(_m).where(_m.c.type != "text").order_by(_m.c.entry_idx)
_ENTRY_IDX = sa.select(_m.c.entry_idx).where(_m.c.message_id == sa.bindparam("b_mid"))
_LEAF_HASH = sa.select(_e.c.leaf_hash).where(_e.c.idx == sa.bindparam("b_idx"))


# --- operators' reads ---------------------------------------------------------------------


def messages(
    conn: Connection,
    *,
    channel: str | None = None,
    peer: str | None = None,
    direction: str | None = None,
    unacknowledged: bool = False,
    limit: int = 100,
    msg_type: str | None = None,
) -> list[Any]:
    """Messages with delivery state, newest first; each filter given narrows the list."""
    q = _WITH_DELIVERIES
    if msg_type:
        q = q.where(_m.c.type == msg_type)
    if channel:
        q = q.where(_m.c.channel == channel)
    if peer:
        q = q.where(_m.c.peer == peer)
    if direction:
        q = q.where(_m.c.direction == direction)
    if unacknowledged:
        q = q.where(_m.c.ack_required.is_(True), _m.c.acknowledged_at_us.is_(None))
    q = q.order_by(_m.c.stored_at_us.desc(), _m.c.entry_idx.desc()).limit(limit)
    return list(conn.execute(q).all())


def message(conn: Connection, message_id: str) -> Any:
    """One message with its delivery state, or None."""
    return conn.execute(_MESSAGE, {"b_mid": message_id}).first()


def channels(conn: Connection) -> list[tuple[str, int, int | None]]:
    """Every channel: (name, messages, newest stored_at_us), by name."""
    return [(str(c), int(n), last) for c, n, last in conn.execute(_CHANNELS).all()]


def message_count(conn: Connection, direction: str) -> int:
    """How many messages went this way (``"out"`` or ``"in"``)."""
    return int(conn.execute(_DIRECTION_COUNT, {"b_dir": direction}).scalar_one())


def queued_count(conn: Connection) -> int:
    """How many envelopes wait in the outbox."""
    return int(conn.execute(_QUEUED).scalar_one())


def overdue(conn: Connection, now_us: int, limit: int) -> list[Any]:
    """Messages whose acknowledgement deadline passed unacknowledged, earliest first."""
    return list(conn.execute(_OVERDUE, {"b_now": now_us, "b_limit": limit}).all())


# --- the registry's rebuild -----------------------------------------------------------------


def typed_messages(conn: Connection) -> list[Any]:
    """Every message that is not plain text (whole rows), in ledger order."""
    return list(conn.execute(_TYPED).all())


# --- where a message is in the ledger --------------------------------------------------------


def message_entry(conn: Connection, message_id: str) -> int | None:
    """The ledger index of a message's envelope, or None: no such message."""
    idx = conn.execute(_ENTRY_IDX, {"b_mid": message_id}).scalar()
    return None if idx is None else int(idx)


def leaf_hash(conn: Connection, idx: int) -> bytes:
    """The leaf hash of the ledger entry at ``idx`` (which must exist)."""
    return bytes(conn.execute(_LEAF_HASH, {"b_idx": idx}).scalar_one())
