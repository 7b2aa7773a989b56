"""Two in-process stations with no reachable endpoint, joined only by bundle files."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hotline.link.bundles import Bundles
from hotline.station import Station
from hotline.store import schema
from tests.service.conftest import Pair, run_pair, snapshot

__all__ = ["Pair", "bundles_of", "run_pair", "state", "station_rows"]

_BY_STATION: dict[int, Bundles] = {}


def bundles_of(station: Station) -> Bundles:
    """One ``Bundles`` per station (its import lock is per station)."""
    return _BY_STATION.setdefault(id(station), Bundles(station.line))


def station_rows(station: Station, table: sa.Table) -> list[tuple[Any, ...]]:
    key = list(table.primary_key.columns)
    with station.read_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(*key))]


def state(station: Station) -> dict[str, list[tuple[Any, ...]]]:
    """The ledger, every projection and the operational tables a bundle could touch."""
    out = snapshot(station)
    for table in (schema.bundles, schema.deliveries, schema.voids):
        out[table.name] = station_rows(station, table)
    return out
