"""Fixtures of the fault tests: a fresh topology of network namespaces per test
(hotline/netns.py), torn down even when the test fails; station logs in failure reports.

Without root or iproute2 these tests skip with the reason, except under CI=true, where
they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hotline import netns
from hotline.netns import NsStation, Topology
from tests.conftest import IN_CI

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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    rep = yield
    if rep.when == "call" and rep.failed:
        t = item.funcargs.get("topo") if hasattr(item, "funcargs") else None
        if isinstance(t, Topology):
            rep.sections.append(("faults", t.faults))
            for st in t.stations:
                log = st.data_dir / "station.log"
                if log.exists():
                    tail = log.read_text(errors="replace")[-3000:]
                    rep.sections.append((f"station.log of {st.station_id}", tail))
    return rep
