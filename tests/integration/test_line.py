"""The line between two running stations: outage and recovery, FLASH ahead of a
backlog, acknowledgement deadlines. Each on SQLite and on PostgreSQL."""

from __future__ import annotations

import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from hotline.localnet import LocalStation
from tests.integration.conftest import (
    FAST_LINE,
    HOTLINE,
    Net,
    alarms,
    cli_process,
    counts,
    link_of,
    message,
    messages,
    send,
    send_many,
    stop_station,
    wait_until,
)

pytestmark = pytest.mark.integration


def _link_down_alarms(rows: list[dict[str, object]], peer: str) -> list[dict[str, object]]:
    return [a for a in rows if a["kind"] == "link_down" and a["peer"] == peer]


def test_peer_outage_queues_raises_link_down_and_recovers(net: Net) -> None:
    a, b = net.pair(FAST_LINE, FAST_LINE)
    a.start()
    b.start()
    wait_until("the line to be UP", lambda: link_of(a, "bravo")["state"], lambda s: s == "UP")
    assert not _link_down_alarms(alarms(a), "bravo")

    stop_station(b)
    sent = [send(a, "bravo", f"during the outage {i}", precedence="PRIORITY") for i in range(20)]
    assert [m["state"] for m in sent] == ["queued"] * 20
    assert counts(a)["queued"] >= 20

    down = wait_until(
        "the line to go DOWN", lambda: link_of(a, "bravo"), lambda ln: ln["state"] == "DOWN"
    )
    assert down["failures"] >= 2
    assert down["last_error"]
    raised = wait_until(
        "a link_down alarm", lambda: _link_down_alarms(alarms(a), "bravo"), timeout=30
    )
    assert len(raised) == 1, raised
    assert raised[0]["severity"] == "HIGH"
    assert raised[0]["cleared_at_us"] is None
    # delivery was tried and failed: the attempts are shown, and nothing has left the
    # station, so every message is still "queued" (docs/cli.md: "sent" = transmitted)
    tried = wait_until(
        "failed delivery attempts to be recorded",
        lambda: [message(a, m["message_id"]) for m in sent],
        lambda rows: all(r["attempts"] >= 1 for r in rows),
        timeout=30,
    )
    assert {r["last_error"] for r in tried} == {"peer_unreachable"}
    states_during_outage = {r["state"] for r in tried}  # asserted last, see below

    b.start()
    wait_until(
        "every queued message to be delivered",
        lambda: [message(a, m["message_id"])["state"] for m in sent],
        lambda states: set(states) == {"delivered"},
    )
    wait_until("the queue to drain", lambda: counts(a)["queued"], lambda q: q == 0)
    wait_until("the line to be UP again", lambda: link_of(a, "bravo")["state"], lambda s: s == "UP")
    wait_until(
        "the link_down alarm to clear",
        lambda: _link_down_alarms(alarms(a), "bravo"),
        lambda rows: not rows,
        timeout=30,
    )
    got = messages(b, direction="in", peer="alpha")
    assert sorted(m["message_id"] for m in got) == sorted(m["message_id"] for m in sent)
    assert sorted(m["sequence"] for m in got) == list(range(1, 21))
    assert counts(b)["received"] == 20
    assert states_during_outage == {"queued"}, (
        f"messages to a stopped peer showed {states_during_outage}: a refused connection "
        "transmits nothing, so they are queued, not sent"
    )


def test_flash_is_not_held_behind_a_routine_backlog(net: Net) -> None:
    """What the outbox guarantees: FLASH and IMMEDIATE travel in their own lane, so a
    FLASH goes out in that lane's first delivery once the line is back, whatever the
    backlog of ROUTINE; the ROUTINE lane sends at most ``max_batch_envelopes`` per
    request, one request after another.

    So the test controls when both lanes start (a long retry backoff keeps both idle
    until the operator's link test forgets the backoff of both at once) and then asserts
    that the FLASH is delivered before the routine backlog is half through, and not
    after the last routine message. It does not claim the FLASH is first of all: a
    routine batch already in flight may land before it.
    """
    sender = {
        "retry_base_s": 30.0,
        "retry_max_s": 60.0,
        "link_test_interval_s": 3600.0,
        "max_batch_envelopes": 16,
    }
    a, b = net.pair(sender, {"link_test_interval_s": 3600.0})
    a.start()  # bravo is not running: everything queues
    routine = send_many(
        a, [{"peer": "bravo", "text": f"routine {i}", "precedence": "ROUTINE"} for i in range(300)]
    )
    flash = send(a, "bravo", "FLASH: confirm intentions now", precedence="FLASH")
    assert counts(a)["queued"] == 301
    assert flash["sequence"] == 301

    b.start()
    test = a.api("POST", "/api/v1/link/bravo/test")  # on success: retry every lane now
    assert test["ok"], test
    wait_until("the queue to drain", lambda: counts(a)["queued"], lambda q: q == 0, timeout=90)

    f = message(a, flash["message_id"])
    out = {m["message_id"]: m for m in messages(a, direction="out", peer="bravo")}
    assert len(out) == 301
    r_times = sorted(out[m["message_id"]]["delivered_at_us"] for m in routine)
    assert all(t is not None for t in r_times)
    assert f["state"] == "delivered"
    assert f["delivered_at_us"] <= statistics.median(r_times), (
        f"FLASH delivered after {sum(t < f['delivered_at_us'] for t in r_times)} of 300 routine"
    )
    assert f["delivered_at_us"] <= r_times[-1]
    inbound = messages(b, direction="in", peer="alpha")
    assert len(inbound) == 301
    assert len({m["message_id"] for m in inbound}) == 301


def _overdue(rows: list[dict[str, object]], message_id: str) -> list[dict[str, object]]:
    return [r for r in rows if r["kind"] == "ack_overdue" and r["ref"] == message_id]


def test_ack_deadline_raises_alarm_on_both_sides_until_acknowledged(net: Net) -> None:
    deadline = {"ack_deadline_flash_s": 1.0, "link_test_interval_s": 3600.0}
    a, b = net.pair(deadline, deadline)
    a.start()
    b.start()
    assert HOTLINE.exists()
    m = send(a, "bravo", "FLASH: air activity near the plant", precedence="FLASH")
    mid = m["message_id"]
    wait_until("delivery", lambda: message(a, mid)["state"], lambda s: s == "delivered")
    # each side holds the deadline its settings give, from its own time: the sender from
    # when it sent, the recipient from when it received (the sent time is the peer's claim)
    row = message(a, mid)
    assert row["ack_deadline_us"] == row["sent_at_us"] + 1_000_000
    row = message(b, mid)
    assert row["ack_deadline_us"] == row["delivered_at_us"] + 1_000_000

    for st in (a, b):
        rows = wait_until(
            f"an ack_overdue alarm on {st.station_id}",
            lambda st=st: _overdue(alarms(st), mid),  # type: ignore[misc]
            timeout=30,
        )
        assert len(rows) == 1
        assert rows[0]["severity"] == "HIGH"
        assert rows[0]["peer"] == ("bravo" if st is a else "alpha")
        assert message(st, mid)["ack_overdue"] is True
    for shown in _alarms_cli(a, b):
        assert shown.returncode == 0, shown.stderr
        assert "ack_overdue" in shown.stdout
        assert mid in shown.stdout, shown.stdout

    acked = b.api("POST", f"/api/v1/messages/{mid}/ack", json={})
    assert acked["state"] == "acknowledged"
    assert not _overdue(alarms(b), mid)
    wait_until(
        "the acknowledgement to reach the sender",
        lambda: message(a, mid),
        lambda row: row["state"] == "acknowledged",
    )
    assert message(a, mid)["acknowledged_by"] == "station"
    assert message(a, mid)["ack_overdue"] is False
    assert not _overdue(alarms(a), mid)
    for shown in _alarms_cli(a, b):
        assert shown.returncode == 0, shown.stderr
        assert mid not in shown.stdout
        assert "ack_overdue" not in shown.stdout


def _alarms_cli(*stations: LocalStation) -> list[subprocess.CompletedProcess[str]]:
    """``hotline alarms -d DIR`` of each station, run at the same time."""
    with ThreadPoolExecutor(len(stations)) as pool:
        return list(pool.map(lambda st: cli_process("alarms", "-d", st.data_dir), stations))
