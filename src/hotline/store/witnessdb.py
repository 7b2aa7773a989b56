"""The SQL of witnessing: our signed checkpoints, cosignatures, witness state, receipt proofs.

Owns the statements over ``checkpoints`` (what we signed of our ledger), ``cosignatures``
(peers' and arbiters' lines on them), ``witness_state`` (the newest checkpoint of each
peer's log we cosigned) and ``receipt_proofs`` (peers' receipts proved in their logs),
and the reads of ``receipts`` and ``entries`` the proofs are checked against. Statements
are built once with bind parameters. Invariants: every function takes the caller's
connection (a writer unit's for writes, a reader's for reads) and never opens or commits
a transaction; an insert is only ever called after the caller checked the row is absent
in the same connection. Must not touch: signing and verification (``hotline.ledger``,
``service/witnessing``, ``service/arbitration``), the ledger's append, alarms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.ledger.entry import EntryKind
from hotline.store import schema

_c, _co, _ws = schema.checkpoints, schema.cosignatures, schema.witness_state
_r, _rp, _e = schema.receipts, schema.receipt_proofs, schema.entries

_NOTE_AT = sa.select(_c.c.note).where(_c.c.size == sa.bindparam("b_size"))
_NEWEST = sa.select(_c.c.size, _c.c.note).order_by(_c.c.size.desc()).limit(1)
_NEWEST_COSIGNED = (
    sa.select(_c.c.size, _c.c.note)
    .where(sa.exists().where(_co.c.size == _c.c.size))
    .order_by(_c.c.size.desc())
    .limit(1)
)
_COSIGNED_SIZE = sa.select(sa.func.max(_co.c.size)).where(_co.c.peer == sa.bindparam("b_peer"))
_COSIGNATURE = sa.select(_co.c.line).where(
    _co.c.peer == sa.bindparam("b_peer"), _co.c.size == sa.bindparam("b_size")
)
_LINES_AT = (
    sa.select(_co.c.peer, _co.c.line)
    .where(_co.c.size == sa.bindparam("b_size"))
    .order_by(_co.c.peer)
)
_STATE = sa.select(_ws.c.size, _ws.c.root, _ws.c.note).where(_ws.c.peer == sa.bindparam("b_peer"))
_UNPROVED = (
    sa.select(_r.c.leaf_index)
    .outerjoin(_rp, sa.and_(_rp.c.peer == _r.c.peer, _rp.c.sequence == _r.c.sequence))
    .where(
        _r.c.peer == sa.bindparam("b_peer"),
        _r.c.leaf_index < sa.bindparam("b_below"),
        _rp.c.sequence.is_(None),
    )
    .order_by(_r.c.leaf_index)
    .limit(sa.bindparam("b_limit"))
)
_PROVED = sa.select(_rp.c.sequence).where(
    _rp.c.peer == sa.bindparam("b_peer"),
    _rp.c.sequence.in_(sa.bindparam("b_seqs", expanding=True)),
)
_RECEIPTED = (
    sa.select(_r.c.sequence, _r.c.leaf_index, _r.c.stored_at_us, _r.c.envelope_hash, _e.c.leaf)
    .join(
        _e,
        sa.and_(
            _e.c.envelope_hash == _r.c.envelope_hash,
            _e.c.kind == int(EntryKind.ENVELOPE_OUT),
        ),
    )
    .where(
        _r.c.peer == sa.bindparam("b_peer"),
        _r.c.leaf_index.in_(sa.bindparam("b_leaves", expanding=True)),
    )
)


# --- our checkpoints --------------------------------------------------------------------


def checkpoint_note(conn: Connection, size: int) -> str | None:
    """The signed note of our checkpoint at ``size``, or None: not signed yet."""
    note = conn.execute(_NOTE_AT, {"b_size": size}).scalar()
    return None if note is None else str(note)


def add_checkpoint(conn: Connection, size: int, root: bytes, note: str, issued_at_us: int) -> None:
    """Keep a checkpoint we signed (the caller saw none at ``size``)."""
    conn.execute(_c.insert().values(size=size, root=root, note=note, issued_at_us=issued_at_us))


def newest_checkpoint(conn: Connection) -> tuple[int, str] | None:
    """Our newest signed checkpoint: (size, note), or None."""
    row = conn.execute(_NEWEST).first()
    return None if row is None else (int(row.size), str(row.note))


def newest_cosigned_checkpoint(conn: Connection) -> tuple[int, str] | None:
    """Our newest checkpoint that someone cosigned: (size, note), or None."""
    row = conn.execute(_NEWEST_COSIGNED).first()
    return None if row is None else (int(row.size), str(row.note))


# --- cosignatures of our checkpoints -----------------------------------------------------


def cosigned_size(conn: Connection, peer: str) -> int | None:
    """The newest size of our log that ``peer`` (or an arbiter's name) cosigned; None: never."""
    got = conn.execute(_COSIGNED_SIZE, {"b_peer": peer}).scalar()
    return None if got is None else int(got)


def has_cosignature(conn: Connection, peer: str, size: int) -> bool:
    """Whether ``peer``'s cosignature of our checkpoint at ``size`` is held."""
    return conn.execute(_COSIGNATURE, {"b_peer": peer, "b_size": size}).scalar() is not None


def add_cosignature(conn: Connection, peer: str, size: int, line: str, received_at_us: int) -> None:
    """Keep a verified cosignature line (the caller saw none for ``peer`` at ``size``)."""
    conn.execute(
        _co.insert().values(peer=peer, size=size, line=line, received_at_us=received_at_us)
    )


def cosignature_lines(conn: Connection, size: int) -> list[tuple[str, str]]:
    """Every (cosigner, line) held for our checkpoint at ``size``, by cosigner."""
    return [(str(r.peer), str(r.line)) for r in conn.execute(_LINES_AT, {"b_size": size}).all()]


# --- as a witness of peers' logs -------------------------------------------------------------


def witness_state(conn: Connection, peer: str) -> tuple[int, bytes, str] | None:
    """The newest checkpoint of ``peer``'s log we cosigned: (size, root, note), or None."""
    row = conn.execute(_STATE, {"b_peer": peer}).first()
    return None if row is None else (int(row.size), bytes(row.root), str(row.note))


def put_witness_state(
    conn: Connection, peer: str, size: int, root: bytes, note: str, now_us: int, *, new: bool
) -> None:
    """Store what we now cosigned of ``peer``'s log (``new``: no state was held)."""
    values = {"size": size, "root": root, "note": note, "updated_at_us": now_us}
    if new:
        conn.execute(_ws.insert().values(peer=peer, **values))
    else:
        conn.execute(_ws.update().where(_ws.c.peer == peer).values(**values))


# --- receipts proved in the peer's log ------------------------------------------------------


def unproved_receipts(conn: Connection, peer: str, below: int, limit: int) -> list[int]:
    """Leaf indexes (in the peer's log) of its receipts not yet proved, under ``below``."""
    params = {"b_peer": peer, "b_below": below, "b_limit": limit}
    return [int(i) for i in conn.execute(_UNPROVED, params).scalars()]


def receipted_envelopes(conn: Connection, peer: str, leaf_indexes: Iterable[int]) -> list[Any]:
    """Our envelopes ``peer`` receipted at these leaf indexes of its log: rows of
    (sequence, leaf_index, stored_at_us, envelope_hash, leaf) where leaf is our entry."""
    params = {"b_peer": peer, "b_leaves": list(leaf_indexes)}
    return list(conn.execute(_RECEIPTED, params).all())


def proved_sequences(conn: Connection, peer: str, sequences: Iterable[int]) -> set[int]:
    """Which of these sequence numbers' receipts from ``peer`` are already proved."""
    params = {"b_peer": peer, "b_seqs": list(sequences)}
    return {int(s) for s in conn.execute(_PROVED, params).scalars()}


def add_receipt_proof(
    conn: Connection, peer: str, sequence: int, tree_size: int, proved_at_us: int
) -> None:
    """Record that ``peer``'s receipt for ``sequence`` is proved in its log at ``tree_size``."""
    conn.execute(
        _rp.insert().values(
            peer=peer, sequence=sequence, tree_size=tree_size, proved_at_us=proved_at_us
        )
    )
