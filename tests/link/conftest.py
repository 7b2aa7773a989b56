"""Two in-process stations, alpha and bravo, joined through the link's transport seam:
alpha's outbox and link tester speak to a ``PeerClient`` whose httpx transport is an
``httpx.ASGITransport`` on bravo's real peer app (``create_peer_app``), so every byte
goes through the peer endpoint's code, without sockets. Each station on its own store of
the kind under test (SQLite and PostgreSQL), with its own settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hotline.api.peer import create_peer_app
from hotline.clock import FakeClock
from hotline.link import framing
from hotline.link.client import PeerClient
from hotline.link.limits import PeerLimits, own_limits
from hotline.link.linktest import HealthRecorder, LinkTester
from hotline.link.outbox import Outbox
from hotline.service import queries
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import operational, schema
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.conftest import migrated_pg_database, migrated_sqlite
from tests.service.conftest import make_identity


class PeerApp:
    """Bravo's peer app behind a switch: ``rebuild`` makes a new app from bravo's current
    settings (as a restart with new settings would), the transport stays the same."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.rebuild()

    def rebuild(self, **settings: Any) -> None:
        line = self.station.line
        if settings:
            line.ctx.settings = line.settings.model_copy(update=settings)
        self.app = create_peer_app(line, self.station.witnessing)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class Recording:
    """A Transport that passes everything to ``inner`` and remembers the batch sizes (in
    envelopes and in request bytes) it carried."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.peer: str = inner.peer
        self.path: str = getattr(inner, "path", "https")
        self.batches: list[tuple[int, int]] = []
        self.link_tests = 0

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        size = framing.request_bytes([len(e) for e in envelopes])
        self.batches.append((len(envelopes), size))
        result: list[framing.Result] = await self.inner.deliver(envelopes)
        return result

    async def link_test(self, envelope: bytes) -> bytes:
        self.link_tests += 1
        reply: bytes = await self.inner.link_test(envelope)
        return reply

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Link:
    """Alpha's side of the line to bravo, through the seam."""

    alpha: Station
    bravo: Station
    clock: FakeClock
    peer_app: PeerApp
    transport: Recording
    limits: PeerLimits
    recorder: HealthRecorder
    outbox: Outbox
    tester: LinkTester
    refusals: list[tuple[str, str, int]] = field(default_factory=list)

    async def send(self, text: str = "hello", prec: Precedence = Precedence.ROUTINE) -> Any:
        return await self.alpha.line.send(
            peer="bravo", channel="working", precedence=prec, payload=MessagePayload(text=text)
        )

    def queued(self) -> int:
        with self.alpha.read_engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(schema.outbox)).scalar_one()
        return int(n)

    async def round(self, prec: Precedence = Precedence.ROUTINE) -> None:
        """One round of the lane that carries ``prec`` (only call with work queued: an idle
        lane waits for work)."""
        lane = next(x for x in self.outbox.lanes if int(prec) in x.precedences)
        await self.outbox._lane_round(lane)

    async def drain(self, rounds: int = 50) -> int:
        """Rounds of the normal lane while it has work it may send now; how many ran."""
        loop = asyncio.get_running_loop()
        lane = self.outbox.lanes[1]
        for n in range(rounds):
            waiting = {i for i, t in lane.retry_at.items() if t > loop.time()}
            limits_changed = self.limits.version != self.outbox._limits_seen
            if self.sendable(waiting) == 0 and not limits_changed:
                return n
            await self.round()
        return rounds

    def sendable(self, waiting: set[int]) -> int:
        o, d = schema.outbox, schema.deliveries
        with self.alpha.read_engine.connect() as conn:
            rows = conn.execute(
                sa.select(o.c.entry_idx)
                .outerjoin(d, d.c.entry_idx == o.c.entry_idx)
                .where(d.c.refused.is_(None))
            ).scalars()
            return len([i for i in rows if i not in waiting])

    def message(self, message_id: Any) -> dict[str, Any]:
        with self.alpha.read_engine.connect() as conn:
            got = queries.get_message(conn, self.clock.now_us(), str(message_id))
        assert got is not None
        return got

    def messages(self) -> list[dict[str, Any]]:
        with self.alpha.read_engine.connect() as conn:
            return queries.list_messages(conn, self.clock.now_us(), direction="out", limit=10_000)

    def alarms(self) -> list[dict[str, Any]]:
        with self.alpha.read_engine.connect() as conn:
            return operational.open_alarms(conn)

    def health(self) -> Any:
        with self.alpha.read_engine.connect() as conn:
            return operational.load_health(conn, "bravo")


@pytest.fixture(params=["sqlite", "postgresql"])
def run_link(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., None]]:
    """Run ``scenario(link)`` with alpha and bravo on fresh stores of the kind under test;
    ``alpha=`` and ``bravo=`` give each station's own settings, the rest both."""
    kind = request.param
    stack = contextlib.ExitStack()
    urls = {}
    for name in ("alpha", "bravo"):
        if kind == "sqlite":
            urls[name] = migrated_sqlite(tmp_path / (name + ".db"))
        else:
            urls[name] = stack.enter_context(migrated_pg_database())

    def run(
        scenario: Callable[[Link], Awaitable[None]],
        *,
        alpha: dict[str, Any] | None = None,
        bravo: dict[str, Any] | None = None,
        wrap: Callable[[Any], Any] | None = None,
        **common: Any,
    ) -> None:
        clock = FakeClock()
        stations = []
        for name, own in (("alpha", alpha), ("bravo", bravo)):
            (tmp_path / name).mkdir(exist_ok=True)
            s = Settings(data_dir=tmp_path / name, database_url=urls[name], **common, **(own or {}))
            stations.append(Station(s, make_identity(name), clock))
        a, b = stations
        for me, other in ((a, b), (b, a)):
            _card, unit = me.line.peer_add_unit(other.line.card.to_text(), "test")
            me.writer.run_sync(unit)

        async def main() -> None:
            for st in stations:
                st.writer.start()
            peer_app = PeerApp(b)
            client = PeerClient(
                a.identity,
                b.line.card,
                timeout_s=a.settings.peer_timeout_s,
                transport=httpx.ASGITransport(app=peer_app),
            )
            inner = wrap(client) if wrap is not None else client
            transport = Recording(inner)
            limits = PeerLimits(own_limits(a.settings))
            recorder = HealthRecorder(a.line)
            refusals: list[tuple[str, str, int]] = []
            box = Outbox(
                a.line,
                transport,
                recorder,
                rng=random.Random(7),
                limits=limits,
                on_refused=lambda *args: refusals.append(args),
            )
            tester = LinkTester(
                a.line, transport, recorder, a.settings.link_test_interval_s, limits=limits
            )
            link = Link(a, b, clock, peer_app, transport, limits, recorder, box, tester, refusals)
            try:
                await scenario(link)
            finally:
                await client.aclose()
                for st in stations:
                    st.close()

        asyncio.run(main())

    with stack:
        yield run
