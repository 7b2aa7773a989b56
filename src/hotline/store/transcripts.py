"""The reads behind a transcript export, and whether a witness has cosigned before.

Owns the SQL that gathers a station's record for ``hotline export``: every ledger entry
in leaf order, the signed checkpoints and the cosignatures held for them, the peers'
cards; and :func:`first_cosignature_by` (whether a witness has cosigned for us before).
Invariant of a :class:`StoredRecord`: nothing in it is newer than its entries, so a
checkpoint or cosignature written while the export reads is left out rather than
named with entries the export does not hold. Must not touch: signing, verification,
the transcript format (``hotline.ledger.transcript``, ``hotline.service.transcripts``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

READ_BATCH = 4096


@dataclass(frozen=True, slots=True)
class StoredRecord:
    leaves: list[bytes]  #: entry bytes in leaf order
    notes: list[tuple[int, str]]  #: (size, signed checkpoint note), by size
    cosignatures: list[tuple[str, int, str]]  #: (peer or witness name, size, line)
    peer_cards: dict[str, str]  #: station id -> card text, as the peers table holds it


def read_record(conn: Connection, progress: Callable[[int], None] | None = None) -> StoredRecord:
    """Everything an export needs, read in one transaction, entries first."""
    e, c, co, p = schema.entries, schema.checkpoints, schema.cosignatures, schema.peers
    leaves: list[bytes] = []
    for row in conn.execute(sa.select(e.c.leaf).order_by(e.c.idx)).yield_per(READ_BATCH):
        leaves.append(bytes(row.leaf))
        if progress is not None and len(leaves) % READ_BATCH == 0:
            progress(len(leaves))
    n = len(leaves)
    notes = conn.execute(sa.select(c.c.size, c.c.note).where(c.c.size <= n).order_by(c.c.size))
    cosigs = conn.execute(
        sa.select(co.c.peer, co.c.size, co.c.line)
        .where(co.c.size <= n)
        .order_by(co.c.size, co.c.peer)
    )
    cards = conn.execute(sa.select(p.c.station_id, p.c.card))
    return StoredRecord(
        leaves=leaves,
        notes=[(int(r.size), str(r.note)) for r in notes],
        cosignatures=[(str(r.peer), int(r.size), str(r.line)) for r in cosigs],
        peer_cards={str(r.station_id): str(r.card) for r in cards},
    )


def first_cosignature_by(conn: Connection, name: str) -> bool:
    """True when no cosignature by ``name`` (a peer or ``@witness``) is stored yet."""
    co = schema.cosignatures
    held = conn.execute(sa.select(co.c.size).where(co.c.peer == name).limit(1)).first()
    return held is None
