"""Three in-process stations, alpha, bravo and charlie, each the others' peer, on
stores of the kind under test (SQLite and PostgreSQL), joined by handing envelopes from
one to another: the peer endpoint's code paths without sockets. Charlie plays the
neutral facilitator (a humanitarian organisation) on three-member channels.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hotline.clock import FakeClock
from hotline.errors import HotlineError
from hotline.service import channels
from hotline.service.roles import STATION
from hotline.settings import Settings
from hotline.station import Station
from hotline.wire.channels import ChannelSpec
from tests.conftest import migrated_pg_database, migrated_sqlite
from tests.service.conftest import Pair, make_identity, snapshot

NAMES = ("alpha", "bravo", "charlie")


@dataclass
class Net:
    stations: dict[str, Station]
    clock: FakeClock
    #: envelopes a station refused (never delivered again): (sender, recipient, code)
    refused: list[tuple[str, str, str]] = field(default_factory=list)
    _dead: set[bytes] = field(default_factory=set)

    def __getitem__(self, name: str) -> Station:
        return self.stations[name]

    async def flush(self) -> None:
        """Deliver everything queued between every pair until nothing is left (an
        envelope refused is kept in ``refused`` and not offered again)."""
        for _ in range(20):
            moved = False
            for src in self.stations:
                for dst in self.stations:
                    if src != dst and await self.link(src, dst, quiet=True):
                        moved = True
            if not moved:
                return

    async def link(self, src: str, dst: str, *, quiet: bool = False) -> int:
        """Deliver what ``src`` queued for ``dst`` only (one link, the others held); a
        refusal raises unless ``quiet``. Returns how many were stored."""
        a, b = self.stations[src], self.stations[dst]
        pair = Pair(a, b, self.clock)
        done = 0
        for raw in pair.outbound(a, dst):
            if raw in self._dead:
                continue
            try:
                await pair.deliver(a, b, [raw])
            except HotlineError as exc:
                self._dead.add(raw)
                self.refused.append((src, dst, exc.code))
                if not quiet:
                    raise
                continue
            done += 1
        return done

    async def agree(self, spec: ChannelSpec, proposer: str = "alpha") -> None:
        """Propose ``spec`` from ``proposer``; every other member accepts."""
        await channels.propose(self[proposer].line.ctx, STATION, spec)
        await self.flush()
        for m in spec.members:
            if m != proposer:
                await channels.answer(self[m].line.ctx, STATION, spec.name, accept=True)
        await self.flush()


def three_stations(root: Path, urls: dict[str, str], clock: FakeClock, **settings: Any) -> Net:
    stations = {}
    for name in NAMES:
        (root / name).mkdir(exist_ok=True)
        s = Settings(data_dir=root / name, database_url=urls[name], **settings)
        stations[name] = Station(s, make_identity(name), clock)
    for me in stations.values():
        for other in stations.values():
            if me is not other:
                _card, unit = me.line.peer_add_unit(other.line.card.to_text(), "test")
                me.writer.run_sync(unit)
    return Net(stations, clock)


@pytest.fixture(params=["sqlite", "postgresql"])
def run_net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    """Run ``scenario(net)`` with three fresh stations on the database under test."""
    stack = contextlib.ExitStack()
    urls = {}
    for name in NAMES:
        if request.param == "sqlite":
            urls[name] = migrated_sqlite(tmp_path / (name + ".db"))
        else:
            urls[name] = stack.enter_context(migrated_pg_database())

    def run(scenario: Callable[[Net], Awaitable[None]], **settings: Any) -> None:
        net = three_stations(tmp_path, urls, FakeClock(), **settings)

        async def main() -> None:
            for st in net.stations.values():
                st.writer.start()
            try:
                await scenario(net)
            finally:
                for st in net.stations.values():
                    st.close()

        asyncio.run(main())

    with stack:
        yield run


async def assert_rebuild_equals_live(station: Station) -> None:
    """Rebuild every projection from the ledger: the channel tables, the messages and the
    channel book equal the live ones."""
    from hotline.store import schema

    tables = (*schema.PROJECTIONS, schema.channel_proposals, schema.channel_votes,
              schema.channel_groups)  # fmt: skip
    before = snapshot_tables(station, tables)
    book_before = station.line.ctx.channels.all()

    def unit(tx: Any) -> int:
        return int(station.line.rebuild_projections(tx.conn, chunk=3))

    await station.writer.submit(unit)
    assert snapshot_tables(station, tables) == before
    assert station.line.ctx.channels.all() == book_before


def snapshot_tables(station: Station, tables: Any) -> dict[str, list[tuple[Any, ...]]]:
    import sqlalchemy as sa

    out = {}
    with station.read_engine.connect() as conn:
        for table in tables:
            key = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*key))]
    return out


__all__ = ["Net", "snapshot"]
