"""Three real station processes: alpha, bravo and a neutral facilitator (icrc). A channel
is proposed by alpha (API), accepted by bravo (CLI) and icrc (API); a message on it
reaches both others, each with its own receipt and acknowledgement; ``hotline channel``
and ``hotline send`` show it. On SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from hotline import localnet
from hotline.localnet import LocalStation
from tests.integration.conftest import (
    FAST_LINE,
    Net,
    cli,
    cli_process,
    db,
    link_of,
    net,
    wait_until,
)

pytestmark = pytest.mark.integration

#: the integration fixtures (a station per process, on the store under test)
__all__ = ["db", "net"]


def channel(st: LocalStation, name: str) -> dict[str, Any]:
    rows = [c for c in st.api("GET", "/api/v1/channels") if c["name"] == name]
    return rows[-1] if rows else {"state": "absent"}


def test_a_channel_with_a_facilitator_across_three_processes(net: Net) -> None:
    a, b, c = (net.station(n, **FAST_LINE) for n in ("alpha", "bravo", "icrc"))
    for x, y in ((a, b), (a, c), (b, c)):
        localnet.pair(x, y)
    for st in (a, b, c):
        st.start()
    for st, peers in ((a, ("bravo", "icrc")), (b, ("alpha", "icrc")), (c, ("alpha", "bravo"))):
        for p in peers:
            wait_until(f"{st.station_id}-{p} UP", lambda st=st, p=p: link_of(st, p)["state"],
                       lambda s: s == "UP")  # fmt: skip
    terms = {"name": "humanitarian", "level": "working", "members": ["alpha", "bravo", "icrc"],
             "ack_deadlines_s": {"FLASH": 600}}  # fmt: skip
    proposed = a.api("POST", "/api/v1/channels", json=terms)
    assert sorted(proposed["message_ids"]) == ["bravo", "icrc"]
    for st in (b, c):
        wait_until(f"the proposal at {st.station_id}", lambda st=st: channel(st, "humanitarian"),
                   lambda ch: ch["state"] == "proposed")  # fmt: skip
    done = cli("channel", "accept", "humanitarian", "-d", b.data_dir)
    assert done.returncode == 0, done.stderr
    assert "accepted humanitarian v1" in done.stdout
    c.api("POST", "/api/v1/channels/humanitarian/accept")
    for st in (a, b, c):
        wait_until(f"agreement at {st.station_id}", lambda st=st: channel(st, "humanitarian"),
                   lambda ch: ch["state"] == "agreed")  # fmt: skip
    listed = cli_process("channel", "list", "-d", a.data_dir)
    assert "humanitarian" in listed.stdout
    assert "agreed" in listed.stdout
    # one message, one envelope per other member, tied by a group id
    out = cli("send", "bravo", "Convoy passes km 12 at 0400Z", "-c", "humanitarian", "-p",
              "FLASH", "-d", a.data_dir)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "to 2 members, group" in out.stdout
    group = out.stdout.split("group ")[1].split()[0]
    rows = wait_until(
        "delivery to both",
        lambda: a.api("GET", f"/api/v1/channels/groups/{group}")["recipients"],
        lambda rs: [r["state"] for r in rs] == ["delivered", "delivered"],
    )
    assert [r["peer"] for r in rows] == ["bravo", "icrc"]
    for st, r in zip((b, c), rows, strict=True):
        got = st.api("GET", f"/api/v1/messages/{r['message_id']}")
        assert got["body"]["group"] == group
        st.api("POST", f"/api/v1/messages/{r['message_id']}/ack",
               json={"note": f"{st.station_id} received"})  # fmt: skip
    rows = wait_until(
        "both acknowledgements",
        lambda: a.api("GET", f"/api/v1/channels/groups/{group}")["recipients"],
        lambda rs: [r["state"] for r in rs] == ["acknowledged", "acknowledged"],
    )
    # the record names the authenticated officer: here each station's bootstrap token
    assert [r["acknowledged_by"] for r in rows] == ["station", "station"]
    # an unknown channel: the CLI shows the list of channels
    bad = cli("send", "bravo", "x", "-c", "humanitarain", "-d", a.data_dir)
    assert bad.returncode == 1
    assert "unknown_channel" in bad.stderr
    assert "deconfliction, humanitarian, working" in bad.stderr
