"""SQL of channel agreement: proposals, members' answers, and message groups.

Owns reads and writes of ``channel_proposals``, ``channel_votes`` and ``channel_groups``
(projections: written only by service/channels.py's extension, inside the writer's
transaction, live and on rebuild). Must not touch: agreement rules (which answer counts,
when a channel is agreed: service/channels.py), other tables except reading
``messages`` for a group's per-recipient state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from hotline.store import schema

_P, _V, _G = schema.channel_proposals, schema.channel_votes, schema.channel_groups


def insert_proposal(conn: Connection, **row: Any) -> None:
    conn.execute(_P.insert().values(**row))


def proposal(conn: Connection, proposal_id: str) -> Row[Any] | None:
    return conn.execute(sa.select(_P).where(_P.c.proposal_id == proposal_id)).first()


def proposals(conn: Connection, name: str | None = None) -> Sequence[Row[Any]]:
    """Every proposal (or those for ``name``), oldest first."""
    q = sa.select(_P).order_by(_P.c.entry_idx)
    if name is not None:
        q = q.where(_P.c.name == name)
    return conn.execute(q).all()


def with_state(conn: Connection, name: str, state: str) -> Sequence[Row[Any]]:
    q = sa.select(_P).where(_P.c.name == name, _P.c.state == state).order_by(_P.c.entry_idx)
    return conn.execute(q).all()


def awaiting_answer(conn: Connection, station: str) -> Sequence[Row[Any]]:
    """Proposals still ``proposed`` that ``station`` did not make and has not answered
    (whether it is a member is the caller's to check, from the terms), oldest first."""
    answered = sa.select(_V.c.proposal_id).where(_V.c.station == station)
    q = (
        sa.select(_P)
        .where(
            _P.c.state == "proposed",
            _P.c.proposer != station,
            _P.c.proposal_id.not_in(answered),
        )
        .order_by(_P.c.entry_idx)
    )
    return conn.execute(q).all()


def highest_version(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(sa.func.max(_P.c.version)).where(_P.c.name == name)).scalar()
    return int(found or 0)


def set_state(
    conn: Connection, proposal_id: str, state: str, at_us: int, reason: str | None = None
) -> None:
    conn.execute(
        _P.update()
        .where(_P.c.proposal_id == proposal_id)
        .values(state=state, decided_at_us=at_us, reason=reason)
    )


def add_vote(conn: Connection, **row: Any) -> bool:
    """Record a station's answer; the first answer counts (later ones stay on the ledger).
    Returns whether it was recorded."""
    exists = conn.execute(
        sa.select(_V.c.vote).where(
            _V.c.proposal_id == row["proposal_id"], _V.c.station == row["station"]
        )
    ).first()
    if exists is not None:
        return False
    conn.execute(_V.insert().values(**row))
    return True


def votes(conn: Connection, proposal_id: str | None = None) -> Sequence[Row[Any]]:
    q = sa.select(_V).order_by(_V.c.entry_idx)
    if proposal_id is not None:
        q = q.where(_V.c.proposal_id == proposal_id)
    return conn.execute(q).all()


def add_group_member(conn: Connection, message_id: str, group_id: str, entry_idx: int) -> None:
    conn.execute(_G.insert().values(message_id=message_id, group_id=group_id, entry_idx=entry_idx))


def group(conn: Connection, group_id: str) -> Sequence[Any]:
    """Each recipient's envelope of a group with its delivery and acknowledgement."""
    m = schema.messages
    q = (
        sa.select(
            _G.c.group_id,
            m.c.channel,
            m.c.message_id,
            m.c.peer,
            m.c.sequence,
            m.c.precedence,
            m.c.sent_at_us,
            m.c.delivered_at_us,
            m.c.acknowledged_at_us,
            m.c.acknowledged_by,
            m.c.ack_deadline_us,
        )
        .join(m, sa.and_(m.c.message_id == _G.c.message_id, m.c.direction == "out"))
        .where(_G.c.group_id == group_id)
        .order_by(m.c.peer)
    )
    return conn.execute(q).all()
