"""The SQL of message stages: who read a message, its first answer, alarm acknowledgements,
and the messages an officer must still acknowledge.

Owns the statements over ``message_reads`` and ``message_answers`` (projections written
by service/stages.py's extension inside the writer's transaction), the acknowledgement
columns of ``alarms`` (migration 0010), and the reads the stages use cases and the
"action required" source run. Rows are returned as the database gave them; what they
mean is decided by service/stages.py and service/queries.py. Must not touch: ``entries``,
business rules.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_r, _a, _m, _al = schema.message_reads, schema.message_answers, schema.messages, schema.alarms

# --- projection writes (inside the writer's transaction) --------------------------------


def record_read(
    conn: Connection,
    *,
    message_id: str,
    station: str,
    officer: str,
    read_at_us: int,
    claimed_at_us: int | None,
    entry_idx: int,
) -> bool:
    """The first read of ``message_id`` by ``officer`` of ``station``; False if already
    recorded (a later read by the same officer changes nothing)."""
    if has_read(conn, message_id, station, officer):
        return False
    conn.execute(
        _r.insert().values(
            message_id=message_id, station=station, officer=officer, read_at_us=read_at_us,
            claimed_at_us=claimed_at_us, entry_idx=entry_idx,
        )
    )  # fmt: skip
    return True


def has_read(conn: Connection, message_id: str, station: str, officer: str) -> bool:
    q = sa.select(_r.c.read_at_us).where(
        _r.c.message_id == message_id, _r.c.station == station, _r.c.officer == officer
    )
    return conn.execute(q).first() is not None


def reader_count(conn: Connection, message_id: str, station: str) -> int:
    """How many officers of ``station`` have a read recorded for ``message_id``."""
    q = sa.select(sa.func.count()).where(_r.c.message_id == message_id, _r.c.station == station)
    return int(conn.execute(q).scalar_one())


def record_answer(
    conn: Connection, *, message_id: str, reply_id: str, direction: str, at_us: int, idx: int
) -> bool:
    """The first answer to ``message_id``; later ones stay on the ledger and the thread."""
    if conn.execute(sa.select(_a.c.reply_id).where(_a.c.message_id == message_id)).first():
        return False
    conn.execute(
        _a.insert().values(message_id=message_id, reply_id=reply_id, direction=direction,
                           answered_at_us=at_us, entry_idx=idx)
    )  # fmt: skip
    return True


def ack_alarm(conn: Connection, alarm_id: int, officer: str, note: str | None, at_us: int) -> int:
    """Record an alarm's acknowledgement (the first one counts); rows changed."""
    q = (
        _al.update()
        .where(_al.c.id == alarm_id, _al.c.acknowledged_at_us.is_(None))
        .values(acknowledged_at_us=at_us, acknowledged_by=officer, ack_note=note)
    )
    return int(conn.execute(q).rowcount)


# --- reads ------------------------------------------------------------------------------


def outgoing_to(conn: Connection, message_id: str) -> str | None:
    """The peer we sent ``message_id`` to, or None: not a message we sent."""
    q = sa.select(_m.c.peer).where(_m.c.message_id == message_id, _m.c.direction == "out")
    peer = conn.execute(q).scalar()
    return None if peer is None else str(peer)


def message_row(conn: Connection, message_id: str) -> Any:
    """(message_id, direction, peer, channel, precedence, type, acknowledged_at_us) or None."""
    q = sa.select(
        _m.c.message_id, _m.c.direction, _m.c.peer, _m.c.channel, _m.c.precedence, _m.c.type,
        _m.c.acknowledged_at_us, _m.c.ack_required, _m.c.body,
    ).where(_m.c.message_id == message_id)  # fmt: skip
    return conn.execute(q).first()


def reads_of(conn: Connection, message_ids: list[str]) -> list[Any]:
    """Every recorded read of these messages, earliest first."""
    if not message_ids:
        return []
    q = sa.select(_r).where(_r.c.message_id.in_(message_ids))
    q = q.order_by(_r.c.read_at_us, _r.c.entry_idx)
    return list(conn.execute(q).all())


def answers_of(conn: Connection, message_ids: list[str]) -> list[Any]:
    if not message_ids:
        return []
    return list(conn.execute(sa.select(_a).where(_a.c.message_id.in_(message_ids))).all())


def thread_of(conn: Connection, message_ids: list[str], limit: int) -> list[Any]:
    """The messages answering any of ``message_ids`` (the next level of a thread)."""
    if not message_ids:
        return []
    q = sa.select(_a.c.reply_id).where(_a.c.message_id.in_(message_ids)).limit(limit)
    return [str(x) for x in conn.execute(q).scalars()]


def awaiting_ack(conn: Connection, limit: int, *, types: tuple[str, ...] = ()) -> list[Any]:
    """Received messages that ask for an acknowledgement and have none, by deadline."""
    q = sa.select(_m).where(
        _m.c.direction == "in",
        _m.c.ack_required.is_(True),
        _m.c.acknowledged_at_us.is_(None),
    )
    if types:
        q = q.where(_m.c.type.in_(types))
    return list(conn.execute(q.order_by(_m.c.ack_deadline_us).limit(limit)).all())


def open_unacknowledged_alarms(conn: Connection, limit: int) -> list[Any]:
    q = (
        sa.select(_al)
        .where(_al.c.cleared_at_us.is_(None), _al.c.acknowledged_at_us.is_(None))
        .order_by(_al.c.raised_at_us)
        .limit(limit)
    )
    return list(conn.execute(q).all())


def alarm(conn: Connection, alarm_id: int) -> Any:
    return conn.execute(sa.select(_al).where(_al.c.id == alarm_id)).first()
