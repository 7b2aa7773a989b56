"""The SQL of link health history: the last link tests of each peer, as a bounded ring.

Owns ``link_history``: one row per link test (state after it, round trip and clock skew
when it was answered, the error code when not). Every ``add`` prunes the peer's rows
beyond ``keep`` in the same connection, so the table never holds more than ``keep`` rows
per peer. Invariants: every function takes the caller's connection (a writer unit's for
writes, a reader's for reads) and never opens or commits a transaction. Must not touch:
``link_status`` (store/operational.py), alarms, the health rules (link/health.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_h = schema.link_history


@dataclass(frozen=True, slots=True)
class LinkTest:
    """One link test as the history keeps it."""

    at_us: int
    state: str
    ok: bool
    rtt_ms: int | None
    skew_ms: int | None
    error: str | None
    #: the path the test went on
    path: str = "https"


def add(conn: Connection, peer: str, test: LinkTest, keep: int) -> None:
    """Keep ``test`` for ``peer`` and drop the peer's rows older than the newest ``keep``."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    conn.execute(
        _h.insert().values(
            peer=peer, at_us=test.at_us, state=test.state, ok=test.ok, rtt_ms=test.rtt_ms,
            skew_ms=test.skew_ms, error=None if test.error is None else test.error[:64],
            path=test.path,
        )
    )  # fmt: skip
    oldest_kept = conn.execute(
        sa.select(_h.c.id)
        .where(_h.c.peer == peer)
        .order_by(_h.c.id.desc())
        .offset(keep - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is not None:
        conn.execute(_h.delete().where(_h.c.peer == peer, _h.c.id < oldest_kept))


def recent(conn: Connection, peer: str, limit: int) -> list[LinkTest]:
    """The newest ``limit`` tests of ``peer``, oldest first."""
    rows = conn.execute(
        sa.select(_h).where(_h.c.peer == peer).order_by(_h.c.id.desc()).limit(limit)
    ).all()
    return [
        LinkTest(
            int(r.at_us), str(r.state), bool(r.ok), r.rtt_ms, r.skew_ms, r.error, r.path or "https"
        )
        for r in reversed(rows)
    ]


def count(conn: Connection, peer: str) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(_h).where(_h.c.peer == peer)).scalar()
        or 0
    )


def last_good(conn: Connection, peer: str) -> LinkTest | None:
    """The newest answered test of ``peer`` still in the ring, or None."""
    r = conn.execute(
        sa.select(_h).where(_h.c.peer == peer, _h.c.ok.is_(True)).order_by(_h.c.id.desc()).limit(1)
    ).first()
    if r is None:
        return None
    return LinkTest(
        int(r.at_us), str(r.state), True, r.rtt_ms, r.skew_ms, r.error, r.path or "https"
    )
