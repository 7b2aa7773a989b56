"""Fixtures of the fault tests: a fresh topology of network namespaces per test
(hotline/netns.py), torn down even when the test fails; station logs in failure reports.

Without root or iproute2 these tests skip with the reason, except under CI=true, where
they fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hotline import netns
from hotline.netns import NsStation, Topology, path_states
from tests.conftest import IN_CI
from tests.integration.conftest import wait_until

#: every station of these tests: the API is not throttled, retries and link tests are
#: quick (the DOWN bound the tests assert is two of these intervals)
INTERVAL_S = 2.0
BASE: dict[str, Any] = {
    "api_rate_per_s": 100_000.0,
    "link_test_interval_s": INTERVAL_S,
    "retry_base_s": 0.2,
    "retry_max_s": 1.0,
    "peer_timeout_s": 5.0,
}


def require_netns() -> None:
    reason = netns.unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    require_netns()
    with Topology(tmp_path) as t:
        yield t


def start_both(*stations: NsStation) -> None:
    """Start the stations at once (each takes seconds to come up)."""
    with ThreadPoolExecutor(len(stations)) as pool:
        list(pool.map(lambda st: st.start(), stations))


# --- helpers the tests share ---------------------------------------------------------


def send(st: NsStation, peer: str, text: str) -> str:
    row: dict[str, Any] = st.api("POST", "/api/v1/messages", json={"peer": peer, "text": text})
    return str(row["message_id"])


def received(st: NsStation, peer: str) -> list[str]:
    rows = st.api("GET", "/api/v1/messages", params={"direction": "in", "peer": peer,
                                                      "limit": 1000})  # fmt: skip
    return [str(m["message_id"]) for m in rows]


def states(st: NsStation, ids: list[str]) -> dict[str, int]:
    want = set(ids)
    rows = st.api("GET", "/api/v1/messages", params={"direction": "out", "limit": 1000})
    return dict(Counter(str(m["state"]) for m in rows if m["message_id"] in want))


def assert_exactly_once(sender: NsStation, receiver: NsStation, ids: list[str]) -> None:
    """Every id arrived, none twice, nothing else arrived; the sender shows each delivered."""
    wait_until(
        "every message to arrive",
        lambda: received(receiver, sender.station_id),
        lambda got: set(ids) <= set(got),
        timeout=90,
    )
    got = Counter(received(receiver, sender.station_id))
    assert {i: n for i, n in got.items() if n > 1} == {}, "doubled"
    assert set(got) == set(ids)
    wait_until(
        "the sender to see every message delivered",
        lambda: states(sender, ids),
        lambda s: set(s) <= {"delivered", "acknowledged"} and sum(s.values()) == len(ids),
        timeout=60,
    )


def up(st: NsStation, peer: str) -> None:
    wait_until(
        f"{st.station_id}'s line to {peer} to be UP",
        lambda: path_states(st, peer).get("https"),
        lambda s: s == "UP",
        timeout=60,
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call" and rep.failed:
        funcargs = getattr(item, "funcargs", {})
        t = funcargs.get("topo") or funcargs.get("relay_topo")
        if isinstance(t, Topology):
            rep.sections.append(("faults", t.faults))
            for st in t.stations:
                log = st.data_dir / "station.log"
                if log.exists():
                    tail = log.read_text(errors="replace")[-3000:]
                    rep.sections.append((f"station.log of {st.station_id}", tail))
    return rep
