"""The third-party witness's (arbiter's) own SQLite store: its tables and statements.

Owns the arbiter's ``witness.db``, which is not a station's database: its two tables
(``witness_state``: per log origin the newest checkpoint it cosigned; ``fork_evidence``:
both signed notes and the proof of a fork), created on open (no Alembic: nothing else
ever reads this file), and the engine whose transactions start with ``BEGIN IMMEDIATE``
so that two requests for one origin cannot both read the old state. Every function takes
the caller's connection (``hotline.arbiter.handle`` holds one transaction per request)
and never opens or commits one. Must not touch: a station's store or schema
(``hotline.store.schema``), the witness's decision (``hotline.ledger.witness``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()
state_table = sa.Table(
    "witness_state",
    metadata,
    sa.Column("origin", sa.String(255), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)
evidence_table = sa.Table(
    "fork_evidence",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("cosigned_note", sa.Text, nullable=False),
    sa.Column("offered_note", sa.Text, nullable=False),
    sa.Column("proof", sa.Text, nullable=False),  #: hex hashes, one a line
    sa.Column("at", sa.BigInteger, nullable=False),
)

_st = state_table
_STATE = sa.select(_st.c.size, _st.c.root, _st.c.note).where(
    _st.c.origin == sa.bindparam("b_origin")
)


def open_store(url: str) -> sa.Engine:
    """A SQLite engine whose transactions start with BEGIN IMMEDIATE; tables created."""
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    metadata.create_all(engine)
    return engine


def state(conn: Connection, origin: str) -> tuple[int, bytes, str] | None:
    """The newest checkpoint of ``origin`` cosigned: (size, root, note), or None."""
    row = conn.execute(_STATE, {"b_origin": origin}).first()
    return None if row is None else (int(row.size), bytes(row.root), str(row.note))


def put_state(
    conn: Connection, origin: str, size: int, root: bytes, note: str, at: int, *, new: bool
) -> None:
    """Store what was now cosigned for ``origin`` (``new``: no state was held)."""
    values = {"size": size, "root": root, "note": note, "updated_at": at}
    if new:
        conn.execute(_st.insert().values(origin=origin, **values))
    else:
        conn.execute(_st.update().where(_st.c.origin == origin).values(**values))


def keep_evidence(
    conn: Connection,
    origin: str,
    detail: str,
    cosigned_note: str,
    offered_note: str,
    proof: list[bytes],
    at: int,
) -> None:
    """Keep the evidence of a fork in ``origin``'s log: both signed notes and the proof."""
    conn.execute(
        evidence_table.insert().values(
            origin=origin,
            detail=detail,
            cosigned_note=cosigned_note,
            offered_note=offered_note,
            proof="\n".join(h.hex() for h in proof),
            at=at,
        )
    )
