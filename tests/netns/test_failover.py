"""Failover with a real cut (the issue's "Real faults in tests", with the relay up):
alpha and bravo send on HTTPS first and on a NATS relay in its own namespace second; the
HTTPS path is black-holed mid-stream. Every message arrives exactly once, pending ones go
on the relay within 1 s of the HTTPS path going DOWN, and the DOWN alarm comes within two
link-test intervals of the cut.

hotline/netns.py (``relay_settings``, ``path_states``) is the one place that knows how
the relay's settings and the per-path state are named.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline import netns
from hotline.netns import Topology
from tests.conftest import IN_CI
from tests.integration.conftest import wait_until
from tests.netns.conftest import (
    BASE,
    INTERVAL_S,
    assert_exactly_once,
    received,
    require_netns,
    send,
    start_both,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture
def relay_topo(tmp_path: Path) -> Iterator[Topology]:
    require_netns()
    reason = netns.nats_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    with Topology(tmp_path) as t:
        yield t


def test_cut_mid_stream_fails_over_within_a_second_losing_and_doubling_nothing(
    relay_topo: Topology,
) -> None:
    topo = relay_topo
    a, b = netns.relay_pair(topo, BASE)
    start_both(a, b)
    netns.wait_paths_up(a, "bravo", netns.RELAY_PATHS)
    netns.wait_paths_up(b, "alpha", netns.RELAY_PATHS)

    out = netns.cut_mid_stream(topo, a, b, messages=150, every_s=0.02, cut_after=50)
    assert out["lost"] == 0
    assert out["duplicated"] == 0
    assert out["failover_s_max"] <= 1.0, out["failover_s_max"]
    assert out["carried_by"].get("nats", 0) > 0, out["carried_by"]

    alarm = wait_until(
        "the HTTPS path's DOWN alarm",
        lambda: netns.path_down_alarms(a, "bravo", "https"),
        timeout=6 * INTERVAL_S,
    )[0]
    after_s = alarm["raised_at_us"] / 1e6 - out["cut"]
    assert 0 < after_s <= 2 * INTERVAL_S, f"DOWN alarm {after_s:.2f}s after the cut"
    assert netns.path_states(a, "bravo")["nats"] == "UP"


def test_relay_carries_both_ways_while_https_is_black_holed_and_heal_doubles_nothing(
    relay_topo: Topology,
) -> None:
    topo = relay_topo
    a, b = netns.relay_pair(topo, BASE)
    start_both(a, b)
    netns.wait_paths_up(a, "bravo", netns.RELAY_PATHS)
    netns.wait_paths_up(b, "alpha", netns.RELAY_PATHS)

    topo.blackhole()
    to_b = [send(a, "bravo", f"a{i}") for i in range(20)]
    to_a = [send(b, "alpha", f"b{i}") for i in range(20)]
    assert_exactly_once(a, b, to_b)
    assert_exactly_once(b, a, to_a)
    topo.heal()
    netns.wait_paths_up(a, "bravo", netns.RELAY_PATHS)
    assert sorted(received(b, "alpha")) == sorted(to_b)
    assert sorted(received(a, "bravo")) == sorted(to_a)
