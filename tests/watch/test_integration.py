"""Escalation between two real station processes (SQLite and PostgreSQL): a short
acknowledgement deadline is missed, the sender's ladder alarms its senior watch officer
and then its principal, the escalation reaches the peer and raises its alarm there, the
acknowledgement clears both sides; the rota, a handover and the CLI against a running
station. No sleeps: ``wait_until`` polls with a timeout."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.localnet import LocalStation
from tests.integration.conftest import FAST_LINE, Net, alarms, cli, cli_process, send, wait_until

pytestmark = pytest.mark.integration

SHORT = {**FAST_LINE, "ack_deadline_routine_s": 1.0, "escalation_check_interval_s": 0.2}


def escalation_roles(st: LocalStation, mid: str) -> set[str]:
    return {a["role"] for a in alarms(st) if a["kind"] == "escalation" and a["ref"] == mid}


def test_an_escalation_reaches_the_peer(net: Net) -> None:
    a, b = net.pair(SHORT, SHORT)
    a.start()
    b.start()
    mid = send(a, "bravo", "confirm the corridor is open")["message_id"]
    both = {"senior_watch_officer", "principal"}
    wait_until("alpha's ladder to reach the principal", lambda: escalation_roles(a, mid),
               lambda roles: roles == both)  # fmt: skip
    wait_until("bravo to raise the peer's steps", lambda: escalation_roles(b, mid),
               lambda roles: roles == both)  # fmt: skip
    steps: list[dict[str, Any]] = b.api("GET", "/api/v1/escalations",
                                        params={"message_id": mid})  # fmt: skip
    assert sorted((s["origin"], s["step"], s["status"]) for s in steps) == [
        ("peer", 1, "raised"), ("peer", 2, "raised"),
    ]  # fmt: skip
    out = cli("escalations", "-d", b.data_dir)
    assert out.returncode == 0, out.stderr
    assert mid in out.stdout
    assert "from alpha" in out.stdout
    b.api("POST", f"/api/v1/messages/{mid}/ack", json={"note": "received"})
    wait_until("alpha's escalation alarms to clear", lambda: escalation_roles(a, mid),
               lambda roles: not roles)  # fmt: skip
    assert escalation_roles(b, mid) == set()
    # a handover written on bravo now shows the acknowledged message no more
    out = cli("handover", "write", "corridor confirmed; quiet", "-d", b.data_dir)
    assert out.returncode == 0, out.stderr
    assert "unacknowledged" in out.stdout
    listed = b.api("GET", "/api/v1/handovers")
    assert listed[0]["summary"]["unacknowledged"]["count"] == 0
    assert listed[0]["summary"]["links"][0]["peer"] == "alpha"
    # the rota through the CLI
    out = cli("rota", "set", "olena", "watch_officer", "--from", "2026-01-01T00:00Z",
              "--to", "2026-01-02T00:00Z", "--id", "day1", "-d", b.data_dir)  # fmt: skip
    assert out.returncode == 0, out.stderr
    out = cli_process("rota", "show", "--at", "2026-01-01T12:00Z", "-d", b.data_dir)
    assert "olena" in out.stdout
    assert "day1" in out.stdout
