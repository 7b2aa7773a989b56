"""The SQL of suspension and dissemination: the ``suspensions`` and ``disseminations``
projections and the operational ``dissemination_due`` list.

Owns reads and writes of those three tables, and the two looks at ``messages`` the
features need (a message we sent, a message we received). Writes run inside the writer's
transaction (a ``Connection`` handed in). Must not touch: ``entries``, alarms (see
store/operational.py), business rules.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_s, _d, _due, _m = (
    schema.suspensions,
    schema.disseminations,
    schema.dissemination_due,
    schema.messages,
)

# --- suspensions --------------------------------------------------------------------------


def insert_suspension(conn: Connection, **row: Any) -> None:
    conn.execute(_s.insert().values(**row))


def applied_suspensions(conn: Connection) -> list[Any]:
    """The rows that changed the state (``outcome`` applied), in ledger order."""
    q = sa.select(_s).where(_s.c.outcome == "applied").order_by(_s.c.entry_idx, _s.c.peer)
    return list(conn.execute(q).all())


def suspension_history(conn: Connection, peer: str | None, limit: int) -> list[Any]:
    """Declarations and resumptions, newest first."""
    q = sa.select(_s).order_by(_s.c.entry_idx.desc(), _s.c.peer).limit(limit)
    if peer is not None:
        q = q.where(_s.c.peer == peer)
    return list(conn.execute(q).all())


# --- disseminations -----------------------------------------------------------------------


def insert_dissemination(conn: Connection, **row: Any) -> None:
    conn.execute(_d.insert().values(**row))


def disseminations_of(conn: Connection, message_id: str) -> list[Any]:
    """Every dissemination record of one message, oldest first."""
    q = sa.select(_d).where(_d.c.message_id == message_id).order_by(_d.c.entry_idx)
    return list(conn.execute(q).all())


def disseminations_by_message(conn: Connection, message_ids: Iterable[str]) -> dict[str, list[Any]]:
    """The dissemination records of each of ``message_ids`` (oldest first), in one read."""
    ids = list(message_ids)
    if not ids:
        return {}
    q = sa.select(_d).where(_d.c.message_id.in_(ids)).order_by(_d.c.entry_idx)
    out: dict[str, list[Any]] = {}
    for r in conn.execute(q).all():
        out.setdefault(r.message_id, []).append(r)
    return out


def disseminated(conn: Connection, message_ids: Iterable[str]) -> set[str]:
    """Which of ``message_ids`` (received by us) we recorded as passed on."""
    ids = list(message_ids)
    if not ids:
        return set()
    q = sa.select(_d.c.message_id).where(
        _d.c.message_id.in_(ids), _d.c.direction == "out", _d.c.outcome == "recorded"
    )
    return {str(r) for r in conn.execute(q).scalars()}


# --- messages the features look at --------------------------------------------------------


def message(conn: Connection, message_id: str, direction: str) -> Any:
    """One message (peer, channel, precedence, sent_at_us, stored_at_us) in ``direction``."""
    q = sa.select(
        _m.c.message_id, _m.c.peer, _m.c.channel, _m.c.precedence, _m.c.sent_at_us,
        _m.c.stored_at_us, _m.c.type,
    ).where(_m.c.message_id == message_id, _m.c.direction == direction)  # fmt: skip
    return conn.execute(q).first()


def received(conn: Connection, message_ids: Iterable[str]) -> list[Any]:
    """The received messages among ``message_ids``."""
    ids = list(message_ids)
    if not ids:
        return []
    q = sa.select(
        _m.c.message_id, _m.c.peer, _m.c.channel, _m.c.precedence, _m.c.stored_at_us
    ).where(_m.c.message_id.in_(ids), _m.c.direction == "in")
    return list(conn.execute(q).all())


def notice_messages(conn: Connection) -> list[tuple[str, str, str]]:
    """(message id, peer, body JSON) of every received site or activity notice, in ledger
    order (to learn which message carried which notice at start)."""
    q = (
        sa.select(_m.c.message_id, _m.c.peer, _m.c.body)
        .where(_m.c.direction == "in", _m.c.type.in_(("site_notice", "activity_notice")))
        .order_by(_m.c.entry_idx)
    )
    return [(r[0], r[1], r[2]) for r in conn.execute(q).all()]


# --- notices awaiting dissemination (operational) -----------------------------------------


def replace_due(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Make ``dissemination_due`` hold exactly ``rows`` (no write when it already does)."""
    held = [dict(r._mapping) for r in conn.execute(sa.select(_due)).all()]
    key = operator.itemgetter("message_id")
    if sorted(held, key=key) == sorted(rows, key=key):
        return
    conn.execute(_due.delete())
    if rows:
        conn.execute(_due.insert(), rows)


def awaiting(conn: Connection, limit: int = 1000) -> list[Any]:
    """Due rows whose message has not been recorded as passed on, soonest first."""
    done = sa.select(_d.c.message_id).where(_d.c.direction == "out", _d.c.outcome == "recorded")
    q = (
        sa.select(_due)
        .where(_due.c.message_id.not_in(done))
        .order_by(_due.c.due_at_us, _due.c.message_id)
        .limit(limit)
    )
    return list(conn.execute(q).all())
