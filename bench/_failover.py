"""Failover time with a real cut: for bench/paths.py (and nothing else in bench).

Owns one measurement: two stations in their own network namespaces sending on HTTPS and
on a NATS relay (hotline/netns.py builds the namespaces, the relay and the faults), a
stream from alpha to bravo, the HTTPS path black-holed mid-stream. Must not touch:
station internals (it reads the operator API only), anything outside its namespaces.
Needs root, iproute2, /usr/sbin/nats-server and a build with the relay path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hotline import netns
from hotline.errors import ConfigError

#: the stations' settings: quick retries, a 2 s link-test interval
SETTINGS: dict[str, Any] = {
    "api_rate_per_s": 100_000.0,
    "link_test_interval_s": 2.0,
    "retry_base_s": 0.2,
    "retry_max_s": 1.0,
    "peer_timeout_s": 5.0,
}


def measure_failover(
    *, messages: int = 300, every_s: float = 0.01, cut_after: int = 100, root: Path | None = None
) -> dict[str, Any]:
    """{"failover_s_max", "lost", "duplicated"} of one cut (plus "faults": how the cut
    was made, netem or the userspace shuttle). Raises ``ConfigError``
    with the reason when namespaces or the relay path are unavailable here."""
    for reason in (netns.unavailable(), netns.nats_unavailable()):
        if reason is not None:
            raise ConfigError(reason)
    with (
        tempfile.TemporaryDirectory(prefix="hotline-failover-", dir=root) as tmp,
        netns.Topology(Path(tmp)) as topo,
    ):
        a, b = netns.relay_pair(topo, SETTINGS)
        for st in (a, b):
            st.start()
        for st, peer in ((a, "bravo"), (b, "alpha")):
            netns.wait_paths_up(st, peer, netns.RELAY_PATHS, timeout=60)
        out = netns.cut_mid_stream(
            topo, a, b, messages=messages, every_s=every_s, cut_after=cut_after
        )
        return {
            "failover_s_max": out["failover_s_max"],
            "lost": out["lost"],
            "duplicated": out["duplicated"],
            "faults": topo.faults,
        }
