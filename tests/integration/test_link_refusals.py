"""Batches and refusals between two running stations: long messages go in batches that
fit the receiver's limits, and a message the receiver refuses shows ``refused`` with the
code, raises ``peer_refused``, stays parked, and goes again when the operator tests the
link. Each on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.integration.conftest import (
    FAST_LINE,
    Net,
    alarms,
    counts,
    link_of,
    message,
    send,
    send_many,
    wait_until,
)

pytestmark = pytest.mark.integration

#: 20,000 Cyrillic characters: 40,000 bytes of UTF-8 in each message
CYRILLIC = ("Щоб не було непорозумінь на лінії. " * 600)[:20_000]


def test_256_long_cyrillic_messages_are_delivered(net: Net) -> None:
    """Today: one batch of more than 8 MiB, refused whole as too_large, again and again;
    every message "sent", none delivered, no alarm."""
    a, b = net.pair(FAST_LINE, FAST_LINE)
    a.start()
    b.start()
    sent = send_many(a, [{"peer": "bravo", "text": CYRILLIC} for _ in range(256)])
    wait_until("the queue to drain", lambda: counts(a)["queued"], lambda q: q == 0, timeout=120)
    states = {message(a, m["message_id"])["state"] for m in sent}
    assert states == {"delivered"}
    assert counts(b)["received"] == 256
    assert not [x for x in alarms(a) if x["kind"] == "peer_refused"]


def test_a_refused_message_is_parked_alarmed_and_sent_again_on_request(net: Net) -> None:
    a, b = net.pair(FAST_LINE, {**FAST_LINE, "max_envelope_bytes": 8192})
    a.start()
    b.start()
    wait_until("the line to be UP", lambda: link_of(a, "bravo")["state"], lambda s: s == "UP")
    big = send(a, "bravo", "Щ" * 10_000)
    small = [send(a, "bravo", f"short {i}") for i in range(3)]
    wait_until(
        "the short ones to be delivered",
        lambda: {message(a, m["message_id"])["state"] for m in small},
        lambda states: states == {"delivered"},
    )
    refused = wait_until(
        "the long one to be refused",
        lambda: message(a, big["message_id"]),
        lambda m: m["state"] == "refused",
    )
    assert refused["refused"] == "too_large"
    [alarm] = [x for x in alarms(a) if x["kind"] == "peer_refused"]
    assert (alarm["peer"], alarm["ref"]) == ("bravo", "too_large")
    assert link_of(a, "bravo")["refused"] == 1
    assert link_of(a, "bravo")["state"] == "UP"  # a refusal is an answer
    tries = refused["attempts"]
    # scheduled link tests (every 0.5 s) do not send it again
    for _ in range(2):
        seen = link_of(a, "bravo")["last_test_at_us"]
        wait_until("a link test", lambda: link_of(a, "bravo")["last_test_at_us"],
                   lambda t, seen=seen: t > seen)  # fmt: skip
    assert message(a, big["message_id"])["attempts"] == tries
    # the operator asks: it goes again, and bravo (limits unchanged) refuses it again
    assert a.api("POST", "/api/v1/link/bravo/test")["ok"] is True
    wait_until(
        "another attempt",
        lambda: message(a, big["message_id"]),
        lambda m: m["attempts"] == tries + 1 and m["state"] == "refused",
    )
    assert link_of(a, "bravo")["refused"] == 2
