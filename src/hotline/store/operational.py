"""Operational state that needs no proof: link health and alarms.

Owns reads and writes of ``link_status``, ``path_status`` and ``alarms``. Writes run as writer units
(``Connection`` handed in), so there is still one writer. Must not touch: ``entries``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.link.health import Health
from hotline.store import schema


def load_health(conn: Connection, peer: str) -> Health:
    row = conn.execute(
        sa.select(schema.link_status).where(schema.link_status.c.peer == peer)
    ).first()
    if row is None:
        return Health()
    m = row._mapping
    return Health(**{f.name: m[f.name] for f in dataclasses.fields(Health)})


def save_health(conn: Connection, peer: str, h: Health) -> None:
    t = schema.link_status
    values = dataclasses.asdict(h)
    done = conn.execute(t.update().where(t.c.peer == peer).values(**values)).rowcount
    if not done:
        conn.execute(t.insert().values(peer=peer, **values))


#: the per-path fields (a path's health counts no refusals: those belong to the line)
_PATH_FIELDS = tuple(
    f.name for f in dataclasses.fields(Health) if f.name not in ("refused", "last_refused")
)


def load_path_health(conn: Connection, peer: str) -> dict[str, Health]:
    """The health of each path to ``peer`` that has been used, by path name."""
    t = schema.path_status
    rows = conn.execute(sa.select(t).where(t.c.peer == peer).order_by(t.c.path)).all()
    return {str(r.path): Health(**{name: r._mapping[name] for name in _PATH_FIELDS}) for r in rows}


def save_path_health(conn: Connection, peer: str, path: str, h: Health) -> None:
    t = schema.path_status
    values = {name: getattr(h, name) for name in _PATH_FIELDS}
    done = conn.execute(
        t.update().where(t.c.peer == peer, t.c.path == path).values(**values)
    ).rowcount
    if not done:
        conn.execute(t.insert().values(peer=peer, path=path, **values))


def raise_alarm(
    conn: Connection,
    *,
    kind: str,
    severity: str,
    peer: str | None,
    ref: str | None,
    detail: str,
    now_us: int,
    role: str | None = None,
) -> bool:
    """Open an alarm unless the same one (for the same ``role``, when given: the role an
    escalation step alarms) is already open; True when it is new."""
    a = schema.alarms
    same = [a.c.kind == kind, a.c.peer == peer, a.c.ref == ref, a.c.cleared_at_us.is_(None)]
    if role is not None:
        same.append(a.c.role == role)
    if conn.execute(sa.select(a.c.id).where(*same)).first() is not None:
        return False
    conn.execute(
        a.insert().values(
            kind=kind, severity=severity, peer=peer, ref=ref, detail=detail, raised_at_us=now_us,
            role=role,
        )
    )  # fmt: skip
    return True


def clear_alarm(
    conn: Connection, *, kind: str, peer: str | None, now_us: int, ref: str | None = None
) -> int:
    """Clear the open alarms of ``kind`` for ``peer`` (and ``ref``, when given)."""
    a = schema.alarms
    q = a.update().where(a.c.kind == kind, a.c.peer == peer, a.c.cleared_at_us.is_(None))
    if ref is not None:
        q = q.where(a.c.ref == ref)
    return int(conn.execute(q.values(cleared_at_us=now_us)).rowcount)


def clear_ref(conn: Connection, *, kind: str, ref: str, now_us: int) -> int:
    """Clear the open alarms of ``kind`` about ``ref`` (whatever their peer and role)."""
    a = schema.alarms
    q = a.update().where(a.c.kind == kind, a.c.ref == ref, a.c.cleared_at_us.is_(None))
    return int(conn.execute(q.values(cleared_at_us=now_us)).rowcount)


def open_alarms(conn: Connection) -> list[dict[str, Any]]:
    a = schema.alarms
    rows = conn.execute(
        sa.select(a).where(a.c.cleared_at_us.is_(None)).order_by(a.c.raised_at_us)
    ).all()
    return [dict(r._mapping) for r in rows]
