"""The SQL of the console's threads tab: per channel, how many received texts an officer
has not opened, and how many acknowledgements are past their deadline.

Owns two counting statements over ``messages`` and ``message_reads``. Rows are returned
as the database gave them; what they mean is decided by service/threadview.py.
Invariants: reads only; every function takes the caller's connection and never opens or
commits a transaction. Must not touch: writes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_m, _r = schema.messages, schema.message_reads


def unread_by_channel(conn: Connection, station: str, officer: str) -> dict[str, int]:
    """Per channel: received text messages ``officer`` of ``station`` has no read of."""
    read = sa.select(_r.c.message_id).where(_r.c.station == station, _r.c.officer == officer)
    q = (
        sa.select(_m.c.channel, sa.func.count())
        .where(_m.c.direction == "in", _m.c.type == "text", _m.c.message_id.not_in(read))
        .group_by(_m.c.channel)
    )
    return {str(c): int(n) for c, n in conn.execute(q).all()}


def overdue_by_channel(conn: Connection, now_us: int) -> dict[str, int]:
    """Per channel: messages (either way) whose acknowledgement deadline has passed."""
    q = (
        sa.select(_m.c.channel, sa.func.count())
        .where(
            _m.c.ack_required.is_(True),
            _m.c.acknowledged_at_us.is_(None),
            _m.c.ack_deadline_us < now_us,
        )
        .group_by(_m.c.channel)
    )
    return {str(c): int(n) for c, n in conn.execute(q).all()}


def channels_with_messages(conn: Connection) -> list[str]:
    """Every channel name that has a message on the record."""
    q = sa.select(_m.c.channel).distinct()
    return sorted(str(c) for (c,) in conn.execute(q).all())
