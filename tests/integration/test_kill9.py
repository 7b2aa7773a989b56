"""kill -9 in the middle of a stream: every accepted message arrives exactly once.

A stream of 2,000 sends goes through the sender's operator API on worker threads. One
station is killed with SIGKILL while the stream runs (the receiver in one variant, the
sender in the other) and started again. Afterwards both sides must agree exactly:
the sender's outbound messages carry sequence numbers 1..N without a gap, all have a
receipt, and the receiver holds exactly those N messages, once each, with the same ids,
sequence numbers and texts. Every send the API accepted (201) before the kill is among
them; sends that failed because the sender was dead are not counted (a send whose
answer was lost in the kill may or may not be there, and either way it must be once).

Messages alternate between two channels so that each channel holds at most 1,000
messages: the operator API lists at most 1,000 per call, so each side is read in two
calls, one per channel.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from hotline.localnet import LocalStation
from tests.integration.conftest import FAST_LINE, Net, counts, messages, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 2000
#: two streams on the line's two standing channels (any other channel must be agreed first)
CHANNELS = ("working", "deconfliction")
SETTINGS = {**FAST_LINE, "link_test_interval_s": 1.0, "link_down_after_failures": 3}


class Stream:
    """Sends ``n`` messages through ``station``'s API from worker threads.

    Each message is tried once. A send that does not come back 201 (the station is dead
    or dying) is counted as failed and never retried, so ``accepted`` holds exactly the
    sends the station confirmed.
    """

    def __init__(self, station: LocalStation, peer: str, n: int, workers: int = 8) -> None:
        self.station, self.peer, self.n = station, peer, n
        self.accepted: dict[str, dict[str, Any]] = {}
        self.texts: dict[int, str] = {}
        self.failed = 0
        self.attempted = 0
        self._next = 0
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"stream-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            pytest.fail(f"stream not finished after {timeout:.0f}s: {self.attempted}/{self.n}")
        if self._errors:
            raise self._errors[0]

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= self.n:
                return None
            i = self._next
            self._next += 1
            return i

    def _work(self) -> None:
        client: httpx.Client | None = None
        try:
            while (i := self._take()) is not None:
                text = f"stream message {i}"
                body = {"peer": self.peer, "channel": CHANNELS[i % 2], "text": text}
                try:
                    if client is None:
                        client = self.station.client(timeout=30)
                    r = client.post("/api/v1/messages", json=body)
                except httpx.HTTPError:
                    r = None
                with self._lock:
                    self.attempted += 1
                    if r is not None and r.status_code == 201:
                        self.accepted[r.json()["message_id"]] = {"i": i, "text": text}
                        continue
                    self.failed += 1
                if client is not None:
                    client.close()
                    client = None
                time.sleep(0.05)  # the station is down: do not spin
        except BaseException as exc:  # surfaced by join()
            self._errors.append(exc)
        finally:
            if client is not None:
                client.close()


def _both_channels(st: LocalStation, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for ch in CHANNELS:
        rows += messages(st, channel=ch, **params)  # at most N/2 = 1,000 each
    return rows


def _settled(sender: LocalStation, receiver: LocalStation) -> tuple[dict[str, int], ...]:
    return counts(sender), counts(receiver)


def _check_exactly_once(sender: LocalStation, receiver: LocalStation, stream: Stream) -> None:
    peer_of_sender, peer_of_receiver = receiver.station_id, sender.station_id
    wait_until(
        "every message sent to have a receipt and to be stored by the receiver",
        lambda: _settled(sender, receiver),
        lambda c: c[0]["queued"] == 0 and c[0]["sent"] == c[1]["received"],
        timeout=180,
        interval=0.5,
    )
    c_out, c_in = counts(sender), counts(receiver)
    out = _both_channels(sender, direction="out", peer=peer_of_sender)
    inn = _both_channels(receiver, direction="in", peer=peer_of_receiver)

    out_ids = [m["message_id"] for m in out]
    in_ids = [m["message_id"] for m in inn]
    assert len(set(out_ids)) == len(out_ids), "the sender lists a message twice"
    assert len(set(in_ids)) == len(in_ids), "the receiver holds a message twice"
    assert len(out_ids) == c_out["sent"], (len(out_ids), c_out)
    assert len(in_ids) == c_in["received"], (len(in_ids), c_in)

    # the sender: sequences 1..N without gap, every one receipted
    seqs = sorted(m["sequence"] for m in out)
    assert seqs == list(range(1, len(out) + 1)), "outbound sequence numbers have gaps"
    not_delivered = [m for m in out if m["state"] not in ("delivered", "acknowledged")]
    assert not not_delivered, f"{len(not_delivered)} not delivered, e.g. {not_delivered[:2]}"
    assert all(m["delivered_at_us"] is not None for m in out)

    # every accepted send is there; nothing is there that was not sent
    missing = set(stream.accepted) - set(out_ids)
    assert not missing, f"{len(missing)} accepted sends are not in the sender's record"
    assert len(out) >= len(stream.accepted)
    assert len(out) <= stream.n

    # the receiver holds exactly the same messages, with the same sequence and text
    by_id_out = {m["message_id"]: m for m in out}
    by_id_in = {m["message_id"]: m for m in inn}
    assert set(by_id_in) == set(by_id_out), (
        f"only on sender: {len(set(by_id_out) - set(by_id_in))}, "
        f"only on receiver: {len(set(by_id_in) - set(by_id_out))}"
    )
    for mid, m in by_id_out.items():
        r = by_id_in[mid]
        assert r["sequence"] == m["sequence"], (mid, m["sequence"], r["sequence"])
        assert r["body"]["text"] == m["body"]["text"], mid
        assert r["channel"] == m["channel"], mid
        if mid in stream.accepted:
            assert m["body"]["text"] == stream.accepted[mid]["text"], mid
    assert c_out["sent"] == c_in["received"] == len(out)


def test_kill9_receiver_mid_stream(net: Net) -> None:
    a, b = net.pair(SETTINGS, SETTINGS)
    a.start()
    b.start()
    stream = Stream(a, "bravo", N)
    stream.start()

    received = wait_until(
        "the receiver to hold a quarter of the stream",
        lambda: counts(b)["received"],
        lambda v: v >= N // 4,
        timeout=120,
    )
    b.kill()
    assert received < N, "the stream was over before the kill: the test proves nothing"
    accepted_at_kill = len(stream.accepted)
    wait_until(
        "the sender to accept more messages while the receiver is dead",
        lambda: len(stream.accepted),
        lambda v: v >= accepted_at_kill + 100 or stream.attempted >= N,
        timeout=60,
    )
    queued = counts(a)["queued"]
    assert queued > 0, "nothing queued while the receiver was dead"
    b.start()

    stream.join(timeout=240)
    assert stream.failed == 0, "the sender never died, yet sends failed"
    assert len(stream.accepted) == N
    _check_exactly_once(a, b, stream)


def test_kill9_sender_mid_stream(net: Net) -> None:
    a, b = net.pair(SETTINGS, SETTINGS)
    a.start()
    b.start()
    stream = Stream(a, "bravo", N)
    stream.start()

    wait_until(
        "the receiver to hold a quarter of the stream",
        lambda: counts(b)["received"],
        lambda v: v >= N // 4,
        timeout=120,
    )
    a.kill()
    accepted_at_kill = len(stream.accepted)
    assert accepted_at_kill < N, "the stream was over before the kill: the test proves nothing"
    wait_until("a send to fail while the sender is dead", lambda: stream.failed, timeout=30)
    a.start()

    stream.join(timeout=240)
    assert stream.failed > 0
    assert len(stream.accepted) + stream.failed == N
    _check_exactly_once(a, b, stream)
