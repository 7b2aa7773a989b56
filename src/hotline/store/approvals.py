"""The ``approvals`` projection of the two-person rule: its writes (from the projector,
inside the writer's transaction) and its reads (the API, the CLI's queue, the expiry
check, the "action required" source).

Owns the SQL of ``schema.approvals``. Every function takes the caller's connection and
opens no transaction. Must not touch: ``entries`` (service/approvals.py appends the
actions this table is built from), business rules (who may decide, deadlines).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_A = schema.approvals
PENDING = "pending"
#: the states a request ends in; ``pending`` is the only open one
CLOSED = ("approved", "refused", "withdrawn", "expired")


def insert_request(
    conn: Connection,
    *,
    approval_id: str,
    request: dict[str, Any],
    requested_at_us: int,
    entry_idx: int,
) -> None:
    conn.execute(
        _A.insert().values(
            id=approval_id,
            channel=request["channel"],
            requester=request["requested_by"],
            state=PENDING,
            precedence=int(request["precedence"]),
            requested_at_us=requested_at_us,
            deadline_us=int(request["deadline_us"]),
            decided_by=None,
            decided_at_us=None,
            reason=None,
            request=json.dumps(request, sort_keys=True, separators=(",", ":")),
            message_ids=None,
            entry_idx=entry_idx,
        )
    )


def decide(
    conn: Connection,
    approval_id: str,
    *,
    state: str,
    by: str | None,
    at_us: int,
    reason: str | None = None,
    message_ids: list[str] | None = None,
) -> None:
    """Close a pending request (a request already closed is left as it is)."""
    conn.execute(
        _A.update()
        .where(_A.c.id == approval_id, _A.c.state == PENDING)
        .values(
            state=state,
            decided_by=by,
            decided_at_us=at_us,
            reason=reason,
            message_ids=None if message_ids is None else json.dumps(message_ids),
        )
    )


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    out["request"] = json.loads(out["request"])
    out["message_ids"] = json.loads(out["message_ids"]) if out["message_ids"] else []
    return out


def get(conn: Connection, approval_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(_A).where(_A.c.id == approval_id)).first()
    return None if row is None else _row(row)


def listing(
    conn: Connection, *, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Requests, pending first (earliest deadline first), then the rest newest first."""
    q = sa.select(_A)
    if state is not None:
        q = q.where(_A.c.state == state)
    open_first = sa.case((_A.c.state == PENDING, 0), else_=1)
    q = q.order_by(
        open_first,
        sa.case((_A.c.state == PENDING, _A.c.deadline_us), else_=-_A.c.requested_at_us),
        _A.c.id,
    ).limit(limit)
    return [_row(r) for r in conn.execute(q)]


def due(conn: Connection, now_us: int, limit: int = 500) -> list[str]:
    """Pending requests whose deadline has passed, earliest first."""
    q = (
        sa.select(_A.c.id)
        .where(_A.c.state == PENDING, _A.c.deadline_us <= now_us)
        .order_by(_A.c.deadline_us, _A.c.id)
        .limit(limit)
    )
    return [str(i) for i in conn.execute(q).scalars()]


def pending_not_by(conn: Connection, username: str, now_us: int) -> list[dict[str, Any]]:
    """Pending requests still within their deadline that ``username`` did not make."""
    q = (
        sa.select(_A)
        .where(_A.c.state == PENDING, _A.c.deadline_us > now_us, _A.c.requester != username)
        .order_by(_A.c.deadline_us, _A.c.id)
    )
    return [_row(r) for r in conn.execute(q)]


def add_message(conn: Connection, approval_id: str, message_id: str) -> None:
    """One more message an approved request sent (to another member of its channel)."""
    row = conn.execute(sa.select(_A.c.message_ids).where(_A.c.id == approval_id)).first()
    if row is None:
        return
    ids = json.loads(row.message_ids) if row.message_ids else []
    ids.append(message_id)
    conn.execute(_A.update().where(_A.c.id == approval_id).values(message_ids=json.dumps(ids)))
