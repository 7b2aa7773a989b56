"""Idempotency keys of the operator API: the first result of a send, kept for a while.

Owns reads and writes of ``idempotency_keys``. A key is recorded by ``record`` inside the
very writer unit that sends the message, so the message and its key commit together or
not at all: a retry after any crash either finds the key (and the first result) or finds
neither (and nothing was sent). Invariants: at most one live row per key; a row past its
``expires_at_us`` is treated as absent and is purged by the next ``record``; nothing here
is part of the ledger (a key is operational state, like alarms).

Must not touch: the ledger, messages; the API decides what a key means.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema

_T = schema.idempotency_keys
#: rows purged by one ``record`` at most (the rest go with the next ones)
PURGE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Stored:
    """The first result of a request made with a key."""

    key: str
    request_hash: bytes
    status: int
    response: str
    created_at_us: int


class KeyTaken(Exception):
    """Raised inside a writer unit when the key already has a live result (the unit, and
    so the send it belongs to, is rolled back)."""

    def __init__(self, stored: Stored) -> None:
        super().__init__(f"idempotency key {stored.key!r} is already used")
        self.stored = stored


def find(conn: Connection, key: str, now_us: int) -> Stored | None:
    """The live result recorded under ``key``, or None."""
    row = conn.execute(sa.select(_T).where(_T.c.key == key, _T.c.expires_at_us > now_us)).first()
    if row is None:
        return None
    return Stored(
        key=str(row.key),
        request_hash=bytes(row.request_hash),
        status=int(row.status),
        response=str(row.response),
        created_at_us=int(row.created_at_us),
    )


def record(
    conn: Connection,
    *,
    key: str,
    request_hash: bytes,
    status: int,
    response: str,
    now_us: int,
    ttl_us: int,
) -> None:
    """Record the first result under ``key`` (run inside the unit that made it).

    Raises ``KeyTaken`` when the key already has a live result. Purges expired rows.
    """
    held = find(conn, key, now_us)
    if held is not None:
        raise KeyTaken(held)
    expired = (
        sa.select(_T.c.key)
        .where(_T.c.expires_at_us <= now_us)
        .order_by(_T.c.expires_at_us)
        .limit(PURGE_BATCH)
    )
    keys = [key, *conn.execute(expired).scalars()]  # this key too, when it has expired
    conn.execute(_T.delete().where(_T.c.key.in_(keys), _T.c.expires_at_us <= now_us))
    conn.execute(
        _T.insert().values(
            key=key,
            request_hash=request_hash,
            status=status,
            response=response,
            created_at_us=now_us,
            expires_at_us=now_us + ttl_us,
        )
    )


def count(conn: Connection) -> int:
    """Rows held, live or not yet purged (for tests and status)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(_T)).scalar_one())
