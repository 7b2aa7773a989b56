"""Real faults on the HTTPS path between two stations in their own network namespaces
(the issue's "Real faults in tests"): a black-holed link raises the DOWN alarm within two
link-test intervals and heals without loss; a lossy, slow, reordering link still carries
every message exactly once."""

from __future__ import annotations

import time

import pytest

from hotline.netns import Topology, path_down_alarms, path_states
from tests.integration.conftest import wait_until
from tests.netns.conftest import (
    BASE,
    INTERVAL_S,
    assert_exactly_once,
    received,
    send,
    start_both,
    up,
)

pytestmark = pytest.mark.integration


def test_black_hole_raises_down_within_two_intervals_and_heals_without_loss(
    topo: Topology,
) -> None:
    a, b = topo.pair(BASE)
    start_both(a, b)
    up(a, "bravo")
    before = [send(a, "bravo", f"before the cut {i}") for i in range(5)]
    assert_exactly_once(a, b, before)
    assert path_down_alarms(a, "bravo") == []

    cut = time.time()
    topo.blackhole()
    alarm = wait_until(
        "the DOWN alarm", lambda: path_down_alarms(a, "bravo"), timeout=6 * INTERVAL_S
    )[0]
    after_s = alarm["raised_at_us"] / 1e6 - cut
    assert 0 < after_s <= 2 * INTERVAL_S, f"DOWN alarm {after_s:.2f}s after the cut"
    assert path_states(a, "bravo")["https"] == "DOWN"

    during = [send(a, "bravo", f"during the cut {i}") for i in range(20)]
    time.sleep(INTERVAL_S)  # the cut lasts a while: retries meet silence, nothing leaks
    assert set(received(b, "alpha")) == set(before)

    topo.heal()
    up(a, "bravo")
    assert_exactly_once(a, b, before + during)
    wait_until("the DOWN alarm to clear", lambda: path_down_alarms(a, "bravo"), lambda r: r == [])


def test_loss_delay_and_reordering_deliver_every_message_exactly_once(topo: Topology) -> None:
    a, b = topo.pair(BASE)
    start_both(a, b)
    up(a, "bravo")
    up(b, "alpha")

    topo.impair(drop_pct=30, delay_ms=40, jitter_ms=20, reorder_pct=25)
    to_b: list[str] = []
    to_a: list[str] = []
    for i in range(40):  # both ways at once, while the link is lossy and reordering
        to_b.append(send(a, "bravo", f"alpha to bravo {i} · Привет"))
        if i % 2 == 0:
            to_a.append(send(b, "alpha", f"bravo to alpha {i} · ответ"))
    assert_exactly_once(a, b, to_b)
    assert_exactly_once(b, a, to_a)
