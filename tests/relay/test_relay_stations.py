"""Real station processes whose only path is the NATS relay (paths = ["nats"]): messages
both ways delivered exactly once, link tests over the relay, three stations over one
relay. Each test has its own subject prefix (its own streams)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from hotline import localnet
from hotline.localnet import LocalStation
from tests.integration.conftest import (
    FAST_LINE,
    Net,
    link_of,
    message,
    messages,
    send_many,
    wait_until,
)
from tests.relay.conftest import NATS_URL

pytestmark = pytest.mark.integration


def relay_settings(prefix: str) -> dict[str, Any]:
    return {"paths": ["nats"], "relay_url": NATS_URL, "relay_prefix": prefix, **FAST_LINE}


def exchange(a: LocalStation, b: LocalStation, n: int) -> None:
    """``n`` messages from a to b; each delivered, and received at b exactly once."""
    bodies = [
        {"peer": b.station_id, "text": f"{a.station_id} to {b.station_id} {i}"} for i in range(n)
    ]
    sent = send_many(a, bodies, workers=4)
    wait_until(
        f"{a.station_id}'s messages to {b.station_id} delivered",
        lambda: [message(a, m["message_id"])["state"] for m in sent],
        lambda states: set(states) == {"delivered"},
    )
    got = messages(b, direction="in", peer=a.station_id)
    assert sorted(m["message_id"] for m in got) == sorted(m["message_id"] for m in sent)
    assert sorted(m["sequence"] for m in got) == list(range(1, n + 1))


def test_two_stations_over_the_relay(net: Net, nats_url: str, prefix: str) -> None:
    a, b = net.pair(relay_settings(prefix), relay_settings(prefix))
    a.start()
    b.start()
    for st, peer in ((a, "bravo"), (b, "alpha")):
        wait_until(
            f"{st.station_id}'s line UP over the relay",
            lambda st=st, peer=peer: link_of(st, peer)["state"],
            lambda s: s == "UP",
        )
    exchange(a, b, 30)
    exchange(b, a, 30)
    test = a.api("POST", "/api/v1/link/bravo/test")
    assert test["ok"], test
    assert link_of(a, "bravo")["state"] == "UP"


def test_three_stations_over_one_relay(net: Net, nats_url: str, prefix: str) -> None:
    stations = [
        net.station(name, **relay_settings(prefix)) for name in ("alpha", "bravo", "charlie")
    ]
    for x, y in itertools.combinations(stations, 2):
        localnet.pair(x, y)
    for st in stations:
        st.start()
    for x, y in itertools.permutations(stations, 2):
        exchange(x, y, 5)
