"""The two-person rule between two real station processes (hotline.localnet), on SQLite
and PostgreSQL: the working line of alpha requires a second officer
(``two_person_channels``). A send through the CLI is held; the station token cannot
approve its own request; a request made by officer alice is approved by the station's
token (a second officer), and the message arrives at bravo.

Officer accounts are not built yet, so alice's request is recorded while alpha is
stopped, by the same use case the API calls, with alice as its principal.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from hotline.localnet import LocalStation
from hotline.service import approvals
from hotline.settings import CONFIG_FILE_NAME
from hotline.station import Station, station_lock
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.approvals.conftest import ALICE
from tests.integration.conftest import (
    FAST_LINE,
    Net,
    cli,
    cli_process,
    db,
    link_of,
    messages,
    net,
    wait_until,
)

pytestmark = pytest.mark.integration
__all__ = ["db", "net"]


def request_offline(st: LocalStation, text: str) -> str:
    """Alice's request on alpha's working line, recorded while alpha is stopped."""
    with station_lock(st.data_dir):
        station = Station(st.settings())

        async def go() -> str:
            station.writer.start()
            held = await approvals.send_or_request(
                station.line.ctx, ALICE, peer="bravo", channel="working",
                precedence=Precedence.IMMEDIATE, payload=MessagePayload(text=text),
            )  # fmt: skip
            assert isinstance(held, approvals.Requested)
            return held.approval_id

        try:
            return asyncio.run(go())
        finally:
            station.close()


def test_an_approved_message_arrives_at_the_peer(net: Net) -> None:
    a, b = net.pair(FAST_LINE, FAST_LINE)
    with (a.data_dir / CONFIG_FILE_NAME).open("a") as f:
        f.write('two_person_channels = ["working"]\n')
    approval_id = request_offline(a, "Hold fire on grid 37U DQ 12345 67890")
    a.start()
    b.start()
    wait_until("the line to be UP", lambda: link_of(a, "bravo")["state"], lambda s: s == "UP")

    # a send on the working line is held, and the station token may not approve its own
    held = cli("send", "bravo", "second request", "-p", "FLASH", "-d", a.data_dir)
    assert held.returncode == 0, held.stderr
    assert "held for approval" in held.stdout
    own = next(r for r in a.api("GET", "/api/v1/approvals") if r["requester"] == "station")
    refused = cli("approve", own["id"][:8], "-d", a.data_dir)
    assert refused.returncode == 1
    assert "same_officer" in refused.stderr
    listed = cli("approvals", "--state", "pending", "-d", a.data_dir)
    assert listed.returncode == 0, listed.stderr
    assert approval_id[:8] in listed.stdout
    assert own["id"][:8] in listed.stdout
    withdrawn = cli("withdraw", own["id"][:8], "-d", a.data_dir)
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert "withdrawn" in withdrawn.stdout
    assert messages(a) == []

    # alice's request, approved by a second officer (the station token)
    approved = cli_process("approve", approval_id[:8], "-d", a.data_dir)
    assert approved.returncode == 0, approved.stderr
    decided = a.api("GET", f"/api/v1/approvals/{approval_id}")
    assert decided["state"] == "approved"
    assert decided["decided_by"] == "station"
    assert decided["requester"] == "alice"
    [mid] = decided["message_ids"]
    got = wait_until(
        "the approved message at bravo",
        lambda: [m for m in messages(b, direction="in") if m["message_id"] == mid],
    )
    assert "Hold fire on grid" in json.dumps(got[0]["body"])
    assert got[0]["precedence"] == "IMMEDIATE"
    wait_until(
        "bravo's receipt at alpha",
        lambda: next(m for m in messages(a) if m["message_id"] == mid)["state"],
        lambda s: s in ("delivered", "acknowledged"),
    )
    again = cli("approve", approval_id[:8], "-d", a.data_dir)
    assert again.returncode == 1
    assert "approval_closed" in again.stderr
