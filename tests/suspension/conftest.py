"""Fixtures of the suspension and dissemination tests: the in-process pair of
tests/service (alpha and bravo, SQLite and PostgreSQL), officers built directly, and a
snapshot of this feature's tables for rebuild comparisons."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hotline.service.roles import Principal, Role
from hotline.station import Station
from hotline.store import schema
from tests.service.conftest import run_pair  # noqa: F401 - the fixture, used by the tests

SENIOR = Principal("maj.kovalenko", "Maj. Kovalenko", frozenset({Role.SENIOR_WATCH_OFFICER}))
WATCH = Principal("lt.shevchenko", "Lt. Shevchenko", frozenset({Role.WATCH_OFFICER}))
AUDITOR = Principal("ms.audit", "Ms. Audit", frozenset({Role.AUDITOR}))

FEATURE_TABLES = (schema.suspensions, schema.disseminations)


def feature_snapshot(station: Station) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the projections (the line's and this feature's) and of the ledger."""
    out = {}
    with station.read_engine.connect() as conn:
        for table in (*schema.PROJECTIONS, *FEATURE_TABLES, schema.entries):
            key = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*key))]
    return out


async def rebuilt_equals_live(station: Station) -> None:
    live = feature_snapshot(station)
    book = station.line.ctx.extensions
    before = [sorted(map(repr, e.book.all())) for e in book if hasattr(e, "book")]

    def rebuild(tx: Any) -> int:
        return int(station.line.rebuild_projections(tx.conn, chunk=3))

    await station.writer.submit(rebuild)
    assert feature_snapshot(station) == live
    after = [sorted(map(repr, e.book.all())) for e in book if hasattr(e, "book")]
    assert after == before
