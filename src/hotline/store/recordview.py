"""The SQL the console's record view reads: our newest checkpoints with their cosigners,
the ledger's witness entries about a peer, and alarms about forks and refusals.

Owns read-only statements over ``checkpoints``, ``cosignatures``, ``entries`` (kind
WITNESS only) and ``alarms``. Every function takes the caller's connection and never
opens or commits a transaction. Must not touch: writes, signing, verification.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.ledger.entry import EntryKind
from hotline.store import schema

_c, _co, _e, _a = schema.checkpoints, schema.cosignatures, schema.entries, schema.alarms

#: alarm kinds the record shows as red rows
RECORD_ALARMS = ("fork", "peer_refused")


def checkpoints(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Our newest ``limit`` signed checkpoints, newest first, each with its cosigners
    (peer, received_at_us)."""
    rows = conn.execute(
        sa.select(_c.c.size, _c.c.root, _c.c.issued_at_us).order_by(_c.c.size.desc()).limit(limit)
    ).all()
    sizes = [int(r.size) for r in rows]
    by_size: dict[int, list[tuple[str, int]]] = {}
    if sizes:
        q = (
            sa.select(_co.c.size, _co.c.peer, _co.c.received_at_us)
            .where(_co.c.size.in_(sizes))
            .order_by(_co.c.peer)
        )
        for r in conn.execute(q).all():
            by_size.setdefault(int(r.size), []).append((str(r.peer), int(r.received_at_us)))
    return [
        {
            "size": int(r.size),
            "root": bytes(r.root).hex(),
            "issued_at_us": int(r.issued_at_us),
            "cosigned_by": by_size.get(int(r.size), []),
        }
        for r in rows
    ]


def witness_entries(conn: Connection, peer: str, limit: int) -> list[tuple[int, int, bytes]]:
    """The newest ``limit`` WITNESS entries about ``peer``: (idx, recorded_at_us, leaf),
    newest first."""
    q = (
        sa.select(_e.c.idx, _e.c.recorded_at_us, _e.c.leaf)
        .where(_e.c.kind == int(EntryKind.WITNESS), _e.c.peer == peer)
        .order_by(_e.c.idx.desc())
        .limit(limit)
    )
    return [(int(r.idx), int(r.recorded_at_us), bytes(r.leaf)) for r in conn.execute(q).all()]


def record_alarms(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` alarms about forks and refusals, open or cleared, newest first."""
    q = (
        sa.select(_a)
        .where(_a.c.kind.in_(RECORD_ALARMS))
        .order_by(_a.c.raised_at_us.desc(), _a.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in conn.execute(q).all()]
