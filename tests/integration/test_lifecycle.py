"""A station's process life and its operator API's limits, as an operator meets them."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Net, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def sqlite_net(tmp_path: Path) -> Iterator[Net]:
    """These tests are about processes and HTTP, not the store: SQLite only."""
    n = Net(tmp_path, "sqlite")
    try:
        yield n
    finally:
        n.close()


def test_sigterm_stops_a_station_cleanly_while_its_peer_is_up(sqlite_net: Net) -> None:
    """SIGTERM (what systemd and LocalStation.stop send) must end the process soon and
    cleanly, also while the peer keeps an idle TLS connection to our peer endpoint."""
    a, b = sqlite_net.pair()
    a.start()
    b.start()
    for st, peer in ((a, "bravo"), (b, "alpha")):  # each side now holds a connection
        wait_until(
            f"a good link test from {st.station_id} to {peer}",
            lambda st=st, peer=peer: st.api("POST", f"/api/v1/link/{peer}/test"),  # type: ignore[misc]
            lambda r: r["ok"],
            timeout=30,
        )
    assert a.proc is not None
    proc = a.proc
    proc.send_signal(signal.SIGTERM)
    wait_until(
        "alpha to exit after SIGTERM while bravo is up",
        proc.poll,
        lambda rc: rc is not None,
        timeout=15,
    )
    assert proc.returncode == 0, f"exit status {proc.returncode}"
    assert not (a.data_dir / "run.json").exists(), "a clean stop removes the run file"
    a.proc = None

    a.start()  # and it comes back to a working line
    wait_until(
        "alpha's link to bravo to be UP after the restart",
        lambda: a.api("POST", "/api/v1/link/bravo/test"),
        lambda r: r["ok"] and r["state"] == "UP",
        timeout=30,
    )


def test_rate_limited_operator_requests_get_429(sqlite_net: Net) -> None:
    """Too many requests is the client's doing: 429 with the code, never a 500."""
    a = sqlite_net.station("alpha", api_rate_per_s=1.0)
    a.start()
    with a.client() as c:
        answers = [c.get("/api/v1/status") for _ in range(10)]
    statuses = [r.status_code for r in answers]
    limited = [r for r in answers if r.status_code != 200]
    assert limited, "ten requests at once against a limit of one a second all passed"
    assert {r.status_code for r in limited} == {429}, statuses
    assert all(r.json()["error"]["code"] == "rate_limited" for r in limited)
