"""``hotline peer remove`` and ``hotline peer rekey`` with real processes and stores.

A removed peer is told ``unknown_peer`` by the live endpoint (its link tests show it),
nothing it sends is stored, the station keeps serving; added again, the line resumes
where its sequence numbers stood. A re-key asks for the safety number like ``peer add``.
"""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import (
    FAST_LINE,
    Net,
    cli,
    cli_process,
    link_of,
    message,
    messages,
    send,
    wait_until,
)


def test_remove_rekey_and_add_again(net: Net, tmp_path: Path) -> None:
    a, b = net.pair(FAST_LINE, FAST_LINE)
    removed = cli("peer", "remove", "bravo", "--yes", "--operator", "duty", "-d", a.data_dir)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    again = cli("peer", "remove", "bravo", "--yes", "-d", a.data_dir)
    assert again.returncode != 0
    assert "unknown_peer" in again.stdout + again.stderr
    a.start()
    b.start()
    assert a.api("GET", "/api/v1/peers") == []
    sent = send(b, "alpha", "are you there?")
    wait_until(
        "bravo told unknown_peer by alpha",
        lambda: link_of(b, "alpha"),
        lambda ln: ln.get("last_error") == "unknown_peer",
        timeout=60,
    )
    assert messages(a, direction="in") == []
    # a re-key needs the safety number confirmed
    card = tmp_path / "alpha.card"
    assert cli("card", "-d", a.data_dir, "--out", card).returncode == 0
    refused = cli_process("peer", "rekey", card, "-d", b.data_dir, input_text="n\n")
    assert refused.returncode != 0
    assert "not_confirmed" in refused.stdout + refused.stderr
    rekeyed = cli("peer", "rekey", card, "--yes", "-d", b.data_dir)
    assert rekeyed.returncode == 0, rekeyed.stdout + rekeyed.stderr
    # alpha adds bravo again: what bravo queued arrives
    bcard = tmp_path / "bravo.card"
    assert cli("card", "-d", b.data_dir, "--out", bcard).returncode == 0
    added = cli("peer", "add", bcard, "--yes", "-d", a.data_dir)
    assert added.returncode == 0, added.stdout + added.stderr
    wait_until(
        "bravo's message delivered after alpha added it again",
        lambda: message(b, sent["message_id"]),
        lambda m: m["delivered_at_us"] is not None,
        timeout=60,
    )


def test_a_peer_added_while_running_is_trusted_by_the_live_endpoint(
    net: Net, tmp_path: Path
) -> None:
    """The endpoint's TLS trust follows the peer book (added, re-keyed) without restart."""
    a, _b = net.pair(FAST_LINE, FAST_LINE)
    c = net.station("charlie", **FAST_LINE)
    a.start()
    acard, ccard = tmp_path / "alpha.card", tmp_path / "charlie.card"
    assert cli("card", "-d", a.data_dir, "--out", acard).returncode == 0
    assert cli("card", "-d", c.data_dir, "--out", ccard).returncode == 0
    assert cli("peer", "add", acard, "--yes", "-d", c.data_dir).returncode == 0
    added = cli("peer", "add", ccard, "--yes", "-d", a.data_dir)  # alpha runs: via its API
    assert added.returncode == 0, added.stdout + added.stderr
    c.start()
    sent = send(c, "alpha", "new here")
    wait_until(
        "charlie's message delivered to the running alpha",
        lambda: message(c, sent["message_id"]),
        lambda m: m["delivered_at_us"] is not None,
        timeout=60,
    )
