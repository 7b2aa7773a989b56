"""The SQL of the watch: the duty rota, escalation steps and shift handovers.

Owns the statements over ``rota``, ``escalations`` and ``handovers`` (projections of the
``rota_set``, ``rota_clear``, ``escalation``, ``handover`` and ``handover_ack`` actions
and of a peer's ``escalation`` typed messages), and the reads of ``messages`` the
escalation check and the handover summary need. Rows are returned as the database gave
them; what they mean is the service's (service/escalation.py, rota.py, handover.py,
watch.py). Every function takes the caller's connection and never opens or commits a
transaction. Must not touch: ``entries``, alarms (store/operational.py).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_r, _e, _h, _m = schema.rota, schema.escalations, schema.handovers, schema.messages

# --- the rota -----------------------------------------------------------------------------


def rota_put(conn: Connection, row: dict[str, Any]) -> None:
    """Create or replace the rota entry ``row["entry_id"]``."""
    conn.execute(_r.delete().where(_r.c.entry_id == row["entry_id"]))
    conn.execute(_r.insert().values(**row))


def rota_delete(conn: Connection, entry_id: str) -> bool:
    """Remove a rota entry; False when there was none."""
    return bool(conn.execute(_r.delete().where(_r.c.entry_id == entry_id)).rowcount)


def rota_get(conn: Connection, entry_id: str) -> Any:
    return conn.execute(sa.select(_r).where(_r.c.entry_id == entry_id)).first()


def rota_count(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(_r)).scalar_one())


def rota_list(
    conn: Connection, *, role: str | None = None, at_us: int | None = None, limit: int = 500
) -> list[Any]:
    """Rota entries by start time (then id); ``at_us``: only those covering that time."""
    q = sa.select(_r)
    if role is not None:
        q = q.where(_r.c.role == role)
    if at_us is not None:
        q = q.where(_r.c.from_us <= at_us, _r.c.to_us > at_us)
    return list(conn.execute(q.order_by(_r.c.from_us, _r.c.entry_id).limit(limit)).all())


def on_watch(conn: Connection, role: str, at_us: int) -> list[str]:
    """The usernames on watch in ``role`` at ``at_us`` (start inclusive, end exclusive)."""
    rows = conn.execute(
        sa.select(_r.c.username)
        .where(_r.c.role == role, _r.c.from_us <= at_us, _r.c.to_us > at_us)
        .distinct()
        .order_by(_r.c.username)
    ).scalars()
    return [str(u) for u in rows]


# --- escalation steps ---------------------------------------------------------------------


def escalation_insert(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(_e.insert().values(**row))


def steps_done(conn: Connection, message_ids: list[str]) -> dict[str, set[int]]:
    """Per message, the steps of our own ladder already on the record."""
    if not message_ids:
        return {}
    rows = conn.execute(
        sa.select(_e.c.message_id, _e.c.step).where(
            _e.c.origin == "local", _e.c.message_id.in_(message_ids)
        )
    ).all()
    out: dict[str, set[int]] = {}
    for mid, step in rows:
        out.setdefault(str(mid), set()).add(int(step))
    return out


def peer_step_raised(conn: Connection, message_id: str, peer: str, step: int) -> bool:
    """Whether the peer's escalation step for this message was already taken."""
    row = conn.execute(
        sa.select(_e.c.entry_idx).where(
            _e.c.message_id == message_id,
            _e.c.origin == "peer",
            _e.c.peer == peer,
            _e.c.step == step,
            _e.c.status == "raised",
        )
    ).first()
    return row is not None


def escalations(
    conn: Connection, *, message_id: str | None = None, open_only: bool = False, limit: int = 100
) -> list[Any]:
    """Escalation steps, newest first, with their message's precedence and
    acknowledgement (``open_only``: raised steps of messages not acknowledged)."""
    q = sa.select(
        _e, _m.c.precedence, _m.c.direction, _m.c.acknowledged_at_us, _m.c.ack_deadline_us
    ).outerjoin(_m, _m.c.message_id == _e.c.message_id)
    if message_id is not None:
        q = q.where(_e.c.message_id == message_id)
    if open_only:
        q = q.where(_e.c.status == "raised", _m.c.acknowledged_at_us.is_(None))
    return list(conn.execute(q.order_by(_e.c.entry_idx.desc()).limit(limit)).all())


# --- messages the watch reads -------------------------------------------------------------


def overdue_outbound(
    conn: Connection, now_us: int, limit: int, after: tuple[int, str] | None = None
) -> list[Any]:
    """Our messages the peer has not acknowledged by their deadline, by (deadline,
    message id); ``after``: only those past that key (to page through them)."""
    q = sa.select(_m).where(
        _m.c.direction == "out",
        _m.c.ack_required.is_(True),
        _m.c.acknowledged_at_us.is_(None),
        _m.c.ack_deadline_us < now_us,
    )
    if after is not None:
        q = q.where(sa.tuple_(_m.c.ack_deadline_us, _m.c.message_id) > sa.tuple_(*after))
    q = q.order_by(_m.c.ack_deadline_us, _m.c.message_id).limit(limit)
    return list(conn.execute(q).all())


def message_row(conn: Connection, message_id: str, direction: str, peer: str) -> Any:
    """One message (whole row) of this direction and peer, or None."""
    return conn.execute(
        sa.select(_m).where(
            _m.c.message_id == message_id, _m.c.direction == direction, _m.c.peer == peer
        )
    ).first()


def acknowledged(conn: Connection, message_ids: list[str]) -> set[str]:
    """Which of these messages are acknowledged."""
    if not message_ids:
        return set()
    rows = conn.execute(
        sa.select(_m.c.message_id).where(
            _m.c.message_id.in_(message_ids), _m.c.acknowledged_at_us.is_not(None)
        )
    ).scalars()
    return {str(r) for r in rows}


# --- handovers ----------------------------------------------------------------------------


def handover_insert(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(_h.insert().values(**row))


def handover_ack(
    conn: Connection, handover_id: str, officer: str, at_us: int, note: str | None
) -> bool:
    """Record the acknowledgement of a handover not yet acknowledged; False otherwise."""
    done = conn.execute(
        _h.update()
        .where(_h.c.handover_id == handover_id, _h.c.acknowledged_at_us.is_(None))
        .values(acknowledged_by=officer, acknowledged_at_us=at_us, ack_note=note)
    ).rowcount
    return bool(done)


def handover_get(conn: Connection, handover_id: str) -> Any:
    return conn.execute(sa.select(_h).where(_h.c.handover_id == handover_id)).first()


def handovers(conn: Connection, *, open_only: bool = False, limit: int = 50) -> list[Any]:
    """Handovers, latest first (``open_only``: not yet acknowledged)."""
    q = sa.select(_h)
    if open_only:
        q = q.where(_h.c.acknowledged_at_us.is_(None))
    q = q.order_by(_h.c.written_at_us.desc(), _h.c.entry_idx.desc()).limit(limit)
    return list(conn.execute(q).all())
