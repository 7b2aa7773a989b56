"""Two in-process stations, alpha and bravo, each on its own store of the kind under test
(SQLite and PostgreSQL), joined by handing envelopes from one to the other: the same
code paths as the peer endpoint, without sockets.

Tests are plain functions that call ``asyncio.run`` on a scenario taking a ``Pair``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.clock import FakeClock
from hotline.crypto.keys import StationIdentity
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import schema
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.conftest import migrated_pg_database, migrated_sqlite
from tests.crypto.helpers import new_identity


def make_identity(station_id: str) -> StationIdentity:
    """A fresh identity (new keys each time) named after the station."""
    return new_identity(station_id, station_id.capitalize())


@dataclass
class Pair:
    alpha: Station
    bravo: Station
    clock: FakeClock

    async def send(self, text: str = "hello", prec: Precedence = Precedence.ROUTINE,
                   src: Station | None = None, dst: str = "bravo") -> Any:  # fmt: skip
        src = src or self.alpha
        return await src.line.send(
            peer=dst, channel="working", precedence=prec, payload=MessagePayload(text=text)
        )

    def outbound(self, station: Station, peer: str) -> list[bytes]:
        """The envelopes ``station`` still has to deliver to ``peer``, in send order."""
        o, e = schema.outbox, schema.entries
        from hotline.ledger.entry import Entry

        with station.read_engine.connect() as conn:
            rows = conn.execute(
                sa.select(e.c.leaf)
                .join(o, o.c.entry_idx == e.c.idx)
                .where(o.c.peer == peer)
                .order_by(o.c.sequence)
            ).all()
        return [Entry.decode(bytes(r.leaf)).data for r in rows]

    async def deliver(self, src: Station, dst: Station, raws: list[bytes]) -> list[Any]:
        """What the peer endpoint does with a batch, then the sender records the receipts."""
        results = []
        for raw in raws:
            item = dst.line.check_inbound(raw)
            [receipt] = await dst.line.store_inbound([item])
            if isinstance(receipt, Exception):
                raise receipt
            await src.line.record_receipt(dst.line.station_id, receipt)
            results.append(receipt)
        return results

    async def flush(self) -> None:
        """Deliver everything queued both ways until nothing is left."""
        for _ in range(10):
            a = self.outbound(self.alpha, "bravo")
            b = self.outbound(self.bravo, "alpha")
            if not a and not b:
                return
            await self.deliver(self.alpha, self.bravo, a)
            await self.deliver(self.bravo, self.alpha, b)


def snapshot(station: Station) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection and of the ledger, for before/after comparisons."""
    out = {}
    with station.read_engine.connect() as conn:
        for table in (*schema.PROJECTIONS, schema.entries, schema.ledger_nodes):
            key = [c for c in table.primary_key.columns]
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*key))]
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def run_pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    """Run ``scenario(pair)`` with two fresh stations on the database under test."""
    kind = request.param
    urls = {}
    stack = contextlib.ExitStack()
    for name in ("alpha", "bravo"):
        if kind == "sqlite":
            urls[name] = migrated_sqlite(tmp_path / (name + ".db"))
        else:
            urls[name] = stack.enter_context(migrated_pg_database())

    def run(scenario: Callable[[Pair], Awaitable[None]], **settings: Any) -> None:
        clock = FakeClock()
        a, b = paired_stations(tmp_path, urls, clock, **settings)
        stations = [a, b]

        async def main() -> None:
            for st in stations:
                st.writer.start()
            try:
                await scenario(Pair(a, b, clock))
            finally:
                for st in stations:
                    st.close()

        asyncio.run(main())

    with stack:
        yield run


def new_id() -> str:
    return str(uuid.uuid4())


def station_with_bravo(root: Path) -> Station:
    """One SQLite station, alpha, with peer bravo and its writer running: for tests of
    claims and garbage that are not about the store kind. The caller closes it."""
    s = Settings(data_dir=root, database_url=migrated_sqlite(root / "alpha.db"))
    station = Station(s, make_identity("alpha"), FakeClock())
    _card, unit = station.line.peer_add_unit(make_identity("bravo").card().to_text(), "t")
    station.writer.run_sync(unit)
    station.writer.start()
    return station


def paired_stations(
    root: Path, urls: dict[str, str], clock: FakeClock, **settings: Any
) -> tuple[Station, Station]:
    """Alpha and bravo on the stores ``urls`` names, each the other's peer, writers not
    started (data directories under ``root``)."""
    stations = []
    for name in ("alpha", "bravo"):
        (root / name).mkdir(exist_ok=True)
        s = Settings(data_dir=root / name, database_url=urls[name], **settings)
        stations.append(Station(s, make_identity(name), clock))
    a, b = stations
    for me, other in ((a, b), (b, a)):
        _card, unit = me.line.peer_add_unit(other.line.card.to_text(), "test")
        me.writer.run_sync(unit)
    return a, b


def ledger_actions(station: Station, name: str) -> list[dict[str, Any]]:
    """The operator/system actions called ``name`` on ``station``'s ledger, in order."""
    from hotline.ledger.entry import Entry, EntryKind

    e = schema.entries
    with station.read_engine.connect() as conn:
        leaves = conn.execute(sa.select(e.c.leaf).order_by(e.c.idx)).scalars().all()
    out = []
    for leaf in leaves:
        entry = Entry.decode(bytes(leaf))
        if entry.kind is EntryKind.OPERATOR_ACTION:
            action: dict[str, Any] = json.loads(entry.data)
            if action.get("action") == name:
                out.append(action)
    return out
