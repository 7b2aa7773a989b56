"""The SQL of search over messages and of the printable log of a period.

Owns the full-text match on each backend (SQLite FTS5 ``message_fts``, PostgreSQL
``to_tsvector('simple', doc)`` under its GIN index, both over ``message_search``, which
triggers keep in step with ``messages``: migration 0011), the filters, keyset paging by
ledger index (newest first), and the reads behind the printable log (messages, alarms and
peers of a period, the record's size and root). Every user value is a bound parameter;
the terms arrive already tokenised by ``service/search.py`` (letters and digits only)
and are quoted again here for FTS5. Invariants: reads only; every function takes the
caller's connection and never opens or commits a transaction. Must not touch: writes,
what a row means to an operator (service/search.py, service/printlog.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.store import schema, tree

_m, _s, _d, _v = schema.messages, schema.message_search, schema.deliveries, schema.voids
_a, _p = schema.alarms, schema.peers

#: the FTS5 table (a virtual table: declared here, created by migration 0011)
_FTS = sa.table("message_fts", sa.column("rowid", sa.Integer))
_FTS_MATCH = sa.literal_column("message_fts").op("MATCH")
#: the text-search configuration (a constant: the GIN index is on this exact expression)
_SIMPLE: Any = sa.literal_column("'simple'::regconfig")

TermKind = Literal["word", "prefix", "phrase"]
State = Literal["unacknowledged", "acknowledged", "answered", "unanswered", "overdue"]


@dataclass(frozen=True, slots=True)
class Term:
    """One part of a query: a word, a word's prefix, or a phrase (tokens in order).
    Tokens are letters and digits only (service/search.py tokenises)."""

    kind: TermKind
    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Filters:
    channel: str | None = None
    peer: str | None = None
    precedence: int | None = None
    direction: str | None = None
    state: State | None = None
    #: our stored time, from (inclusive) and to (exclusive), microseconds
    from_us: int | None = None
    to_us: int | None = None


def _quoted(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def fts5_query(terms: Sequence[Term]) -> str:
    """The FTS5 MATCH text for ``terms``: every term quoted (so no user syntax reaches
    FTS5), all of them required."""
    parts = []
    for t in terms:
        if t.kind == "phrase":
            parts.append(_quoted(" ".join(t.tokens)))
        elif t.kind == "prefix":
            parts.append(_quoted(t.tokens[0]) + "*")
        else:
            parts.append(_quoted(t.tokens[0]))
    return " AND ".join(parts)


def _pg_query(terms: Sequence[Term]) -> Any:
    query: Any = None
    for t in terms:
        if t.kind == "phrase":
            part = sa.func.phraseto_tsquery(_SIMPLE, " ".join(t.tokens))
        elif t.kind == "prefix":
            # a quoted lexeme with the prefix mark; the token holds no quote (letters and
            # digits only), doubled anyway
            lexeme = "'" + t.tokens[0].replace("'", "''") + "':*"
            part = sa.func.to_tsquery(_SIMPLE, lexeme)
        else:
            part = sa.func.plainto_tsquery(_SIMPLE, t.tokens[0])
        query = part if query is None else query.op("&&")(part)
    return query


def _answered() -> Any:
    reply = _s.alias("reply")
    return sa.exists().where(reply.c.in_reply_to == _m.c.message_id)


def _filtered(q: Any, f: Filters, now_us: int) -> Any:
    if f.channel is not None:
        q = q.where(_m.c.channel == f.channel)
    if f.peer is not None:
        q = q.where(_m.c.peer == f.peer)
    if f.precedence is not None:
        q = q.where(_m.c.precedence == f.precedence)
    if f.direction is not None:
        q = q.where(_m.c.direction == f.direction)
    if f.from_us is not None:
        q = q.where(_m.c.stored_at_us >= f.from_us)
    if f.to_us is not None:
        q = q.where(_m.c.stored_at_us < f.to_us)
    unacked = sa.and_(_m.c.ack_required.is_(True), _m.c.acknowledged_at_us.is_(None))
    if f.state == "unacknowledged":
        q = q.where(unacked)
    elif f.state == "acknowledged":
        q = q.where(_m.c.acknowledged_at_us.is_not(None))
    elif f.state == "answered":
        q = q.where(_answered())
    elif f.state == "unanswered":
        q = q.where(~_answered())
    elif f.state == "overdue":
        q = q.where(unacked, _m.c.ack_deadline_us < now_us)
    return q


def _hits() -> Any:
    return (
        sa.select(
            _m,
            _s.c.in_reply_to,
            _d.c.first_sent_us,
            _d.c.refused,
            _v.c.sequence.label("void_sequence"),
            _answered().label("answered"),
        )
        .join(_s, _s.c.message_id == _m.c.message_id)
        .outerjoin(_d, _d.c.entry_idx == _m.c.entry_idx)
        .outerjoin(
            _v,
            sa.and_(
                _v.c.peer == _m.c.peer,
                _v.c.direction == _m.c.direction,
                _v.c.sequence == _m.c.sequence,
            ),
        )
    )


def search(
    conn: Connection,
    terms: Sequence[Term],
    filters: Filters,
    *,
    now_us: int,
    before_idx: int | None,
    limit: int,
) -> list[Any]:
    """Messages matching every term and filter, newest first (by ledger index), those
    below ``before_idx`` only (the keyset cursor); at most ``limit`` rows. No terms: the
    filters alone. A backend's refusal of a query raises ``sa.exc.DBAPIError``."""
    q = _filtered(_hits(), filters, now_us)
    if terms:
        if conn.dialect.name == "sqlite":
            matched = sa.select(_FTS.c.rowid).where(_FTS_MATCH(fts5_query(terms)))
            q = q.where(_s.c.doc_id.in_(matched))
        else:
            q = q.where(sa.func.to_tsvector(_SIMPLE, _s.c.doc).op("@@")(_pg_query(terms)))
    if before_idx is not None:
        q = q.where(_m.c.entry_idx < before_idx)
    q = q.order_by(_m.c.entry_idx.desc()).limit(limit)
    return list(conn.execute(q).all())


# --- the printable log ------------------------------------------------------------------


def period_messages(
    conn: Connection, from_us: int, to_us: int, channel: str | None, limit: int
) -> list[Any]:
    """Messages stored in [from_us, to_us) (on ``channel`` when given), in ledger order,
    at most ``limit``."""
    q = _filtered(_hits(), Filters(channel=channel, from_us=from_us, to_us=to_us), 0)
    return list(conn.execute(q.order_by(_m.c.entry_idx).limit(limit)).all())


def period_alarms(conn: Connection, from_us: int, to_us: int, limit: int) -> list[Any]:
    """Alarms raised or cleared in [from_us, to_us), by when they were raised."""
    raised = sa.and_(_a.c.raised_at_us >= from_us, _a.c.raised_at_us < to_us)
    cleared = sa.and_(_a.c.cleared_at_us >= from_us, _a.c.cleared_at_us < to_us)
    q = sa.select(_a).where(sa.or_(raised, cleared)).order_by(_a.c.raised_at_us, _a.c.id)
    return list(conn.execute(q.limit(limit)).all())


def overdue_in(conn: Connection, from_us: int, to_us: int, limit: int) -> list[Any]:
    """Messages whose acknowledgement deadline fell in [from_us, to_us) and that were not
    acknowledged by it (then or still), by deadline."""
    q = (
        sa.select(_m)
        .where(
            _m.c.ack_required.is_(True),
            _m.c.ack_deadline_us >= from_us,
            _m.c.ack_deadline_us < to_us,
            sa.or_(
                _m.c.acknowledged_at_us.is_(None), _m.c.acknowledged_at_us > _m.c.ack_deadline_us
            ),
        )
        .order_by(_m.c.ack_deadline_us)
        .limit(limit)
    )
    return list(conn.execute(q).all())


def peers(conn: Connection) -> list[Any]:
    """Every peer row: (station_id, card, added_at_us, removed_at_us), by id."""
    q = sa.select(_p.c.station_id, _p.c.card, _p.c.added_at_us, _p.c.removed_at_us)
    return list(conn.execute(q.order_by(_p.c.station_id)).all())


def record_state(conn: Connection) -> tuple[int, bytes | None]:
    """The ledger's size and root hash as this connection sees it (None: empty)."""
    size = tree.ledger_size(conn)
    return size, (tree.root_at(conn, size, size) if size else None)


def fts_integrity(conn: Connection) -> None:
    """Raise (``sa.exc.DBAPIError``) unless the FTS5 index matches its content table
    (SQLite; a no-op on PostgreSQL, whose index is maintained by the database)."""
    if conn.dialect.name == "sqlite":
        conn.execute(sa.text("INSERT INTO message_fts(message_fts) VALUES ('integrity-check')"))
