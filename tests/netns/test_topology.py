"""The fault tests' network itself (hotline/netns.py): who can reach whom, that a black
hole is silent and heals, and that nothing is left behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hotline import netns
from hotline.netns import AB, AR, BR, NATS_PORT, Topology
from tests.conftest import IN_CI
from tests.netns.conftest import require_netns

pytestmark = pytest.mark.integration


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def reach(topo: Topology, ns: netns.Netns, host: str, port: int) -> bool:
    return ns.call(netns._port_open, host, port)


def test_relay_is_reachable_from_both_stations_and_the_namespaces_go_away(
    tmp_path: Path,
) -> None:
    require_netns()
    reason = netns.nats_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    with Topology(tmp_path) as topo:
        mine = {topo.a.name, topo.b.name, topo.r.name}
        assert mine <= namespaces()
        topo.start_relay({"alpha": "pa", "bravo": "pb"})
        assert reach(topo, topo.a, AR[1], NATS_PORT)
        assert reach(topo, topo.b, BR[1], NATS_PORT)
        # the relay is in R only: not on A's loopback, not across the HTTPS path
        assert not reach(topo, topo.a, "127.0.0.1", NATS_PORT)
        assert not reach(topo, topo.b, AB[0], NATS_PORT)
        nats = topo.nats
    assert nats is not None
    assert nats.poll() is not None
    assert not mine & namespaces()


def test_namespaces_are_deleted_when_the_body_fails(tmp_path: Path) -> None:
    require_netns()
    names: set[str] = set()

    def failing_test() -> None:
        with Topology(tmp_path) as topo:
            names.update({topo.a.name, topo.b.name, topo.r.name})
            assert names <= namespaces()
            raise RuntimeError("a failing test")

    with pytest.raises(RuntimeError, match="a failing test"):
        failing_test()
    assert len(names) == 3
    assert not names & namespaces()
