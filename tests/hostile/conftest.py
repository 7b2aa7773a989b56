"""Targets for the hostile-peer harness: a station under attack and the peer attacking it.

``run_in_process`` builds a real station (alpha) on the store under test (SQLite and
PostgreSQL, the ``store_url`` fixture) with two peers, ``mallory`` (the scripted hostile
peer, whose card alpha holds) and ``bravo`` (an honest peer that stays offline), and
joins mallory to alpha's real peer app and operator app through ``httpx.ASGITransport``.
``live`` starts alpha as a real process, creates mallory's identity as a station,
adds mallory's card to the running alpha with ``hotline peer add`` and starts mallory
too (so that alpha's own link tests and deliveries to mallory succeed and its store is
quiet between attacks); the scripted peer then speaks as mallory, with mallory's keys
and TLS certificate, over pinned mutual TLS. Must not touch: the stations' internals
beyond building them and reading their stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hotline.api.operator import create_operator_app
from hotline.api.peer import create_peer_app
from hotline.clock import FakeClock
from hotline.crypto import tls
from hotline.crypto.card import parse_card
from hotline.crypto.keys import load_station
from hotline.localnet import LocalStation
from hotline.settings import Settings
from hotline.station import Station
from tests.crypto.helpers import new_identity
from tests.hostile.attacks import Attack
from tests.hostile.peer import HostilePeer
from tests.hostile.target import Target
from tests.integration.conftest import (  # noqa: F401 - fixtures used by test_live.py
    Net,
    cli,
    counts,
    link_of,
    module_net,
    wait_until,
)

#: the target's limits: large enough for a 10^6-vertex polygon to reach the geometry
#: check (6 MB of JSON), so that it is refused there and not as a too-large envelope
LIMITS: dict[str, Any] = {
    "max_envelope_bytes": 8 * 1024 * 1024,
    "max_request_bytes": 12 * 1024 * 1024,
}
TOKEN = "hostile-harness-operator-token"


@contextlib.asynccontextmanager
async def in_process_target(station: Station, peer: HostilePeer) -> AsyncIterator[Target]:
    peer_app = create_peer_app(station.line, station.witnessing)
    op_app = create_operator_app(station.line, TOKEN, deconfliction=station.deconfliction)
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=peer_app), base_url="http://alpha", timeout=60
        ) as peer_http,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=op_app),
            base_url="http://alpha",
            headers={"authorization": f"Bearer {TOKEN}"},
            timeout=60,
        ) as op_http,
    ):
        yield Target(
            peer=peer,
            peer_http=peer_http,
            operator_http=op_http,
            store=station.read_engine,
            now_us=station.clock.now_us,
            limits=station.settings.model_dump(),
            other_peer="bravo",
        )


def build_station(tmp_path: Path, store_url: str, **settings: Any) -> tuple[Station, HostilePeer]:
    """alpha on ``store_url``, holding the cards of mallory (hostile) and bravo."""
    (tmp_path / "alpha").mkdir(exist_ok=True)
    s = Settings(data_dir=tmp_path / "alpha", database_url=store_url, **{**LIMITS, **settings})
    station = Station(s, new_identity("alpha", "Alpha"), FakeClock())
    mallory = new_identity("mallory", "Mallory")
    for card in (mallory.card(), new_identity("bravo", "Bravo").card()):
        _card, unit = station.line.peer_add_unit(card.to_text(), "test")
        station.writer.run_sync(unit)
    return station, HostilePeer(mallory, station.line.card)


@pytest.fixture
def run_in_process(tmp_path: Path, store_url: str) -> Iterator[Callable[..., None]]:
    """``run(attack, **settings)``: the attack against a fresh in-process alpha."""
    stations: list[Station] = []

    def run(attack: Attack, **settings: Any) -> None:
        station, peer = build_station(tmp_path, store_url, **settings)
        stations.append(station)

        async def main() -> None:
            station.writer.start()
            async with in_process_target(station, peer) as target:
                await attack(target)

        asyncio.run(main())

    try:
        yield run
    finally:
        for st in stations:
            st.close()


# --- a live station ---------------------------------------------------------------------

#: link tests once an hour after the first, so that nothing appends between attacks
QUIET: dict[str, Any] = {"link_test_interval_s": 3600.0, "api_rate_per_s": 100_000.0, **LIMITS}


@dataclass
class LiveRig:
    alpha: LocalStation
    mallory: LocalStation
    peer: HostilePeer
    store: sa.Engine

    @contextlib.asynccontextmanager
    async def target(self) -> AsyncIterator[Target]:
        ident = self.peer.identity
        ctx = tls.client_context(
            ident.tls_cert_pem, ident.tls_key_pem, self.peer.target.card.tls_cert_der
        )
        token = (self.alpha.data_dir / "api-token").read_text().strip()
        async with (
            httpx.AsyncClient(
                verify=ctx,
                base_url=f"https://127.0.0.1:{self.alpha.peer_port}",
                timeout=60,
                trust_env=False,
            ) as peer_http,
            httpx.AsyncClient(
                base_url=self.alpha.api_url,
                headers={"authorization": f"Bearer {token}"},
                timeout=60,
                trust_env=False,
            ) as op_http,
        ):
            target = Target(
                peer=self.peer,
                peer_http=peer_http,
                operator_http=op_http,
                store=self.store,
                now_us=lambda: time.time_ns() // 1000,
                limits=dict(QUIET),
                other_peer=None,
                wait_delivered=True,
            )
            target.resync()
            yield target


def _quiet(st: LocalStation) -> None:
    """Wait until the station's ledger stops growing on its own (start-up link tests)."""
    seen = [-1]

    def probe() -> bool:
        before, seen[0] = seen[0], counts(st)["entries"]
        # deliberate: "quiet" is a second with no new entry (what a real station appends
        # on its own has no end state to wait for); bounded by wait_until's 60 s
        time.sleep(1.0)
        return before == seen[0]

    wait_until(f"{st.station_id}'s ledger to stop growing", probe, timeout=60)


@pytest.fixture(scope="module")
def live(module_net: Net) -> Iterator[LiveRig]:  # noqa: F811 - the imported fixture
    alpha = module_net.station("alpha", **QUIET)
    mallory = module_net.station("mallory", **QUIET)  # the peer identity: a new station
    alpha.start()
    card_file = module_net.root / "mallory.card"
    r = cli("card", "--data-dir", mallory.data_dir, "--out", card_file)
    assert r.returncode == 0, r.stderr
    r = cli("peer", "add", card_file, "--yes", "--data-dir", alpha.data_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    alpha_card = module_net.root / "alpha.card"
    r = cli("card", "--data-dir", alpha.data_dir, "--out", alpha_card)
    assert r.returncode == 0, r.stderr
    r = cli("peer", "add", alpha_card, "--yes", "--data-dir", mallory.data_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    mallory.start()
    for st, other in ((alpha, "mallory"), (mallory, "alpha")):
        wait_until(
            f"{st.station_id}'s line to {other} to be UP",
            lambda st=st, other=other: link_of(st, other)["state"],  # type: ignore[misc]
            lambda state: state == "UP",
            timeout=60,
        )
    _quiet(alpha)
    target_card = parse_card(alpha.api("GET", "/api/v1/card")["card"])
    peer = HostilePeer(load_station(mallory.data_dir), target_card)
    store = sa.create_engine(alpha.settings().store_url)
    try:
        yield LiveRig(alpha, mallory, peer, store)
    finally:
        store.dispose()
