"""The read side: threads with delivery state, channels, link status, alarms.

Owns the shapes operators read (plain dicts ready for JSON) and the rule that turns an
unacknowledged message past its deadline into an alarm. Times shown are our own recorded
times; a time a peer claims is shown beside them under a name that says so
(``ack_claimed_at_us``). Must not touch: writes.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from hotline.service.dissemination import record_json
from hotline.store import operational, reads, tree
from hotline.store import suspension as dissemination_db
from hotline.wire.envelope import Precedence

MAX_OVERDUE = 1000  #: overdue acknowledgements listed at most


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
    rows = reads.messages(
        conn,
        channel=channel,
        peer=peer,
        direction=direction,
        unacknowledged=unacknowledged,
        limit=limit,
    )
    return _with_disseminations(conn, [_message(r, now_us) for r in rows])


def get_message(conn: Connection, now_us: int, message_id: str) -> dict[str, Any] | None:
    row = reads.message(conn, message_id)
    return None if row is None else _with_disseminations(conn, [_message(row, now_us)])[0]


def _with_disseminations(conn: Connection, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each message with its dissemination records (service/dissemination.py), one read."""
    found = dissemination_db.disseminations_by_message(conn, [m["message_id"] for m in out])
    for m in out:
        m["disseminations"] = [record_json(r) for r in found.get(m["message_id"], [])]
    return out


def channels(conn: Connection) -> list[dict[str, Any]]:
    return [
        {"channel": c, "messages": n, "last_at_us": last} for c, n, last in reads.channels(conn)
    ]


def counts(conn: Connection) -> dict[str, int]:
    return {
        "entries": tree.ledger_size(conn),
        "sent": reads.message_count(conn, "out"),
        "received": reads.message_count(conn, "in"),
        "queued": reads.queued_count(conn),
    }


def link_status(conn: Connection, peers: list[str]) -> list[dict[str, Any]]:
    out = []
    for p in peers:
        h = operational.load_health(conn, p)
        out.append({"peer": p, **{k: getattr(h, k) for k in h.__dataclass_fields__}})
    return out


def alarms(conn: Connection, now_us: int) -> list[dict[str, Any]]:
    """Open alarms: stored ones (link down, ...) and every overdue acknowledgement."""
    out = [{**a, "source": "station"} for a in operational.open_alarms(conn)]
    for r in reads.overdue(conn, now_us, MAX_OVERDUE):
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
