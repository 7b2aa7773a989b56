"""The read side: threads with delivery state, channels, link status, alarms.

Owns the shapes operators read (plain dicts ready for JSON) and the rule that turns an
unacknowledged message past its deadline into an alarm. Times shown are our own recorded
times; a time a peer claims is shown beside them under a name that says so
(``ack_claimed_at_us``). Must not touch: writes.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import operational, schema, tree
from hotline.wire.envelope import Precedence


def message_state(row: Any, now_us: int) -> str:
    if row.acknowledged_at_us is not None:
        return "acknowledged"
    if row.direction == "out":
        if row.delivered_at_us is not None:
            return "delivered"
        if row.refused is not None:
            return "refused"
        return "sent" if row.first_sent_us is not None else "queued"
    return "received"


def _message(row: Any, now_us: int) -> dict[str, Any]:
    overdue = (
        row.ack_required
        and row.acknowledged_at_us is None
        and row.ack_deadline_us is not None
        and row.ack_deadline_us < now_us
    )
    return {
        "message_id": row.message_id,
        "direction": row.direction,
        "peer": row.peer,
        "channel": row.channel,
        "precedence": Precedence(row.precedence).name,
        "sequence": row.sequence,
        "type": row.type,
        "body": json.loads(row.body),
        "operator": row.operator,
        "state": message_state(row, now_us),
        "queued_at_us": row.stored_at_us if row.direction == "out" else None,
        "sent_at_us": row.sent_at_us,
        "first_sent_us": row.first_sent_us,
        "attempts": row.attempts or 0,
        "last_error": row.last_error,
        "refused": row.refused,
        # its sequence number was declared void (we did, after the peer refused it)
        "void": row.void_sequence is not None,
        "delivered_at_us": row.delivered_at_us,
        "ack_required": row.ack_required,
        "ack_deadline_us": row.ack_deadline_us,
        # our own time: when we recorded the acknowledgement
        "acknowledged_at_us": row.acknowledged_at_us,
        # the peer's claim of when it acknowledged (None for our own acknowledgements)
        "ack_claimed_at_us": row.ack_claimed_at_us,
        "acknowledged_by": row.acknowledged_by,
        "ack_note": row.ack_note,
        "ack_overdue": bool(overdue),
        "entry_idx": row.entry_idx,
    }


def _with_deliveries() -> sa.Select[Any]:
    m, d, v = schema.messages, schema.deliveries, schema.voids
    return (
        sa.select(
            m,
            d.c.first_sent_us,
            d.c.attempts,
            d.c.last_error,
            d.c.refused,
            v.c.sequence.label("void_sequence"),
        )
        .outerjoin(d, d.c.entry_idx == m.c.entry_idx)
        .outerjoin(
            v,
            sa.and_(
                v.c.peer == m.c.peer, v.c.direction == m.c.direction, v.c.sequence == m.c.sequence
            ),
        )
    )


def list_messages(
    conn: Connection,
    now_us: int,
    *,
    channel: str | None = None,
    peer: str | None = None,
    direction: str | None = None,
    unacknowledged: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    m = schema.messages
    q = _with_deliveries()
    if channel:
        q = q.where(m.c.channel == channel)
    if peer:
        q = q.where(m.c.peer == peer)
    if direction:
        q = q.where(m.c.direction == direction)
    if unacknowledged:
        q = q.where(m.c.ack_required.is_(True), m.c.acknowledged_at_us.is_(None))
    q = q.order_by(m.c.stored_at_us.desc(), m.c.entry_idx.desc()).limit(limit)
    return [_message(r, now_us) for r in conn.execute(q).all()]


def get_message(conn: Connection, now_us: int, message_id: str) -> dict[str, Any] | None:
    m = schema.messages
    row = conn.execute(_with_deliveries().where(m.c.message_id == message_id)).first()
    return None if row is None else _message(row, now_us)


def channels(conn: Connection) -> list[dict[str, Any]]:
    m = schema.messages
    rows = conn.execute(
        sa.select(m.c.channel, sa.func.count(), sa.func.max(m.c.stored_at_us))
        .group_by(m.c.channel)
        .order_by(m.c.channel)
    ).all()
    return [{"channel": c, "messages": n, "last_at_us": last} for c, n, last in rows]


def counts(conn: Connection) -> dict[str, int]:
    m, o = schema.messages, schema.outbox
    total = tree.ledger_size(conn)
    sent = conn.execute(sa.select(sa.func.count()).where(m.c.direction == "out")).scalar_one()
    recv = conn.execute(sa.select(sa.func.count()).where(m.c.direction == "in")).scalar_one()
    queued = conn.execute(sa.select(sa.func.count()).select_from(o)).scalar_one()
    return {"entries": total, "sent": sent, "received": recv, "queued": queued}


def link_status(conn: Connection, peers: list[str]) -> list[dict[str, Any]]:
    out = []
    for p in peers:
        h = operational.load_health(conn, p)
        out.append({"peer": p, **{k: getattr(h, k) for k in h.__dataclass_fields__}})
    return out


def alarms(conn: Connection, now_us: int) -> list[dict[str, Any]]:
    """Open alarms: stored ones (link down, ...) and every overdue acknowledgement."""
    out = [{**a, "source": "station"} for a in operational.open_alarms(conn)]
    m = schema.messages
    rows = conn.execute(
        sa.select(m)
        .where(
            m.c.ack_required.is_(True),
            m.c.acknowledged_at_us.is_(None),
            m.c.ack_deadline_us < now_us,
        )
        .order_by(m.c.ack_deadline_us)
        .limit(1000)
    ).all()
    for r in rows:
        who = "the peer has not" if r.direction == "out" else "we have not"
        out.append(
            {
                "kind": "ack_overdue",
                "severity": "HIGH" if r.precedence <= Precedence.IMMEDIATE else "MEDIUM",
                "peer": r.peer,
                "ref": r.message_id,
                "detail": f"{Precedence(r.precedence).name} message {r.message_id} on "
                f"{r.channel}: {who} acknowledged it by its deadline",
                "raised_at_us": r.ack_deadline_us,
                "cleared_at_us": None,
                "source": "deadline",
            }
        )
    return out
