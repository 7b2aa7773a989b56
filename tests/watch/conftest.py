"""Fixtures of the watch tests (escalation, rota, handover): the in-process pair of
stations from tests/service (SQLite and PostgreSQL), and helpers to read the watch."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hotline.service.roles import Principal, Role
from hotline.station import Station
from hotline.store import operational, schema
from tests.integration.conftest import db, net  # noqa: F401 - fixtures of test_integration
from tests.service.conftest import Pair, run_pair, snapshot  # noqa: F401 - the fixture

ROUTINE_S = 60.0


def officer(name: str, *roles: Role) -> Principal:
    return Principal(name, name.capitalize(), frozenset(roles or (Role.WATCH_OFFICER,)))


def alarms(station: Station, kind: str = "escalation") -> list[dict[str, Any]]:
    with station.read_engine.connect() as conn:
        return [a for a in operational.open_alarms(conn) if a["kind"] == kind]


def rows(station: Station, table: sa.Table) -> list[dict[str, Any]]:
    key = list(table.primary_key.columns)
    with station.read_engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*key))]


def watch_snapshot(station: Station) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection, the ledger and the watch's tables."""
    out = snapshot(station)
    for table in schema.WATCH_TABLES:
        out[table.name] = [tuple(r.values()) for r in rows(station, table)]
    return out


async def rebuilt_equals_live(p: Pair) -> None:
    for station in (p.alpha, p.bravo):
        live = watch_snapshot(station)

        def rebuild(tx: Any, st: Station = station) -> int:
            return int(st.line.rebuild_projections(tx.conn, chunk=3))

        await station.writer.submit(rebuild)
        assert watch_snapshot(station) == live
