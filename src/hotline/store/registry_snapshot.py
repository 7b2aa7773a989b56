"""The SQL of the registry snapshot: the deconfliction registry's state as of one ledger
index, so that a start replays only the notices after it.

Owns the ``registry_snapshot`` (one head row) and ``registry_snapshot_parts`` tables
(migration 0019): writing a snapshot in place of the previous one, reading its head and
its parts in order, and the reads a start needs to check it (the ledger entry's leaf
hash) and to replay after it (typed messages after an index, the acknowledgements).
Bytes in, bytes out: what a part means, and whether a snapshot may be used, belong to
``service/registry.py``.
Every function takes the caller's connection (a writer unit's for writes). Must not
touch: the ledger, the ``messages`` projection (read only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_h = schema.registry_snapshot
_p = schema.registry_snapshot_parts
_m = schema.messages
_e = schema.entries


@dataclass(frozen=True, slots=True)
class SnapshotHead:
    format: int
    fingerprint: str
    valid_to_idx: int
    leaf_hash: bytes
    parts: int
    digest: bytes
    written_at_us: int


def write(conn: Connection, head: SnapshotHead, bodies: Iterable[bytes]) -> None:
    """Replace the snapshot by ``head`` and its parts (numbered from 0, in order)."""
    clear(conn)
    batch: list[dict[str, Any]] = []
    for i, body in enumerate(bodies):
        batch.append({"part": i, "body": body})
        if len(batch) >= 16:
            conn.execute(_p.insert(), batch)
            batch = []
    if batch:
        conn.execute(_p.insert(), batch)
    conn.execute(
        _h.insert(),
        {
            "id": 1,
            "format": head.format,
            "fingerprint": head.fingerprint,
            "valid_to_idx": head.valid_to_idx,
            "leaf_hash": head.leaf_hash,
            "parts": head.parts,
            "digest": head.digest,
            "written_at_us": head.written_at_us,
        },
    )


def clear(conn: Connection) -> None:
    """Drop the snapshot (the next start replays the whole ledger)."""
    conn.execute(_h.delete())
    conn.execute(_p.delete())


def head(conn: Connection) -> SnapshotHead | None:
    row = conn.execute(sa.select(_h).where(_h.c.id == 1)).first()
    if row is None:
        return None
    return SnapshotHead(
        int(row.format),
        str(row.fingerprint),
        int(row.valid_to_idx),
        bytes(row.leaf_hash),
        int(row.parts),
        bytes(row.digest),
        int(row.written_at_us),
    )


def parts(conn: Connection) -> Iterator[tuple[int, bytes]]:
    """(part number, body) of every part, in order, one at a time."""
    last = -1
    while True:  # one part per query: a part can be large, the whole snapshot larger
        row = conn.execute(
            sa.select(_p.c.part, _p.c.body).where(_p.c.part > last).order_by(_p.c.part).limit(1)
        ).first()
        if row is None:
            return
        last = int(row.part)
        yield last, bytes(row.body)


def leaf_hash(conn: Connection, idx: int) -> bytes | None:
    """The leaf hash of ledger entry ``idx``, or None: no such entry."""
    got = conn.execute(sa.select(_e.c.leaf_hash).where(_e.c.idx == idx)).scalar()
    return None if got is None else bytes(got)


def ledger_head(conn: Connection) -> int:
    """The index of the newest ledger entry (-1: empty)."""
    got = conn.execute(sa.select(sa.func.max(_e.c.idx))).scalar()
    return -1 if got is None else int(got)


def typed_messages_after(conn: Connection, idx: int) -> list[Any]:
    """Every message that is not plain text whose entry is after ``idx``, in ledger order
    (whole rows, as ``reads.typed_messages``)."""
    q = sa.select(_m).where(_m.c.type != "text", _m.c.entry_idx > idx).order_by(_m.c.entry_idx)
    return list(conn.execute(q).all())


def acknowledged(conn: Connection, station_id: str, types: Sequence[str]) -> list[Any]:
    """(message_id, acknowledging station, acknowledged_at_us) of every message of one
    of ``types`` that has been acknowledged: by the peer for an outgoing message, by
    ``station_id`` for an incoming one (rows that unpack as tuples)."""
    by = sa.case((_m.c.direction == "out", _m.c.peer), else_=sa.literal(station_id))
    q = sa.select(_m.c.message_id, by, _m.c.acknowledged_at_us).where(
        _m.c.type.in_(list(types)), _m.c.acknowledged_at_us.is_not(None)
    )
    return list(conn.execute(q).all())
