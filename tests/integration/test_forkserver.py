"""A station forked from the test suite's fork server (hotline/forkserver.py) behaves as one
started as a new interpreter (``HOTLINE_TEST_FORK=0``): both are children of the test's
process with real PIDs, answer their APIs, talk TLS to each other, write their output to
station.log, exit 0 on SIGTERM and die on SIGKILL with a store that copes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from hotline import localnet
from hotline.forkserver import Forked
from hotline.localnet import LocalStation
from tests.integration.conftest import Net, counts, messages, send, wait_until

pytestmark = pytest.mark.integration


def _start(st: LocalStation, forked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(localnet, "_fork_wanted", forked)
        st.start()
    assert isinstance(st.proc, Forked if forked else subprocess.Popen)


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_a_forked_station_and_a_plain_one_behave_alike(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = net.pair()
    _start(a, True, monkeypatch)
    _start(b, False, monkeypatch)
    roles = []
    for st, peer in ((a, "bravo"), (b, "alpha")):
        assert st.proc is not None
        assert _parent(st.proc.pid) == os.getpid()
        with st.client() as c:
            health = c.get("/health")
        assert health.status_code == 200, health.text
        roles.append(health.json()["role"])
        assert st.api("POST", f"/api/v1/link/{peer}/test")["ok"]
        log = (st.data_dir / "station.log").read_text()
        assert f"station {st.station_id} up" in log
        assert f"api {st.api_url} peer" in log
    role = "single" if net.db == "sqlite" else "active"  # PostgreSQL: an election won
    assert roles == [role, role]
    sent = send(a, "bravo", "forked to plain")
    wait_until("bravo receives", lambda: counts(b)["received"], lambda n: n == 1, timeout=30)

    codes = []
    for st in (a, b):
        assert st.proc is not None
        proc = st.proc
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.01)
        proc.send_signal(signal.SIGTERM)
        codes.append(proc.wait(30))
        st.proc = None
    assert codes == [0, 0]

    _start(a, True, monkeypatch)
    _start(b, False, monkeypatch)
    killed = []
    for st in (a, b):
        assert st.proc is not None
        proc = st.proc
        st.kill()
        killed.append(proc.returncode)
        assert proc.poll() == -signal.SIGKILL
    assert killed == [-signal.SIGKILL, -signal.SIGKILL]

    _start(a, True, monkeypatch)
    _start(b, False, monkeypatch)
    assert [m["message_id"] for m in messages(a, direction="out")] == [sent["message_id"]]
    assert [m["message_id"] for m in messages(b, direction="in")] == [sent["message_id"]]
