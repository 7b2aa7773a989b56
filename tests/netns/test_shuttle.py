"""The userspace netem (hotline/netns.py ``Shuttle``) that makes the faults where the
kernel has no sch_netem: datagram socket pairs stand in for the two tun devices (both
keep packet boundaries), so this runs without root."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator

import pytest

from hotline.netns import Shuttle


class Wire:
    """Two hosts, ``a`` and ``b``, joined through a shuttle."""

    def __init__(self) -> None:
        self.a, a_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.b, b_side = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.shuttle = Shuttle(a_side.detach(), b_side.detach())
        self._sender = threading.Thread()

    def send(self, n: int) -> None:
        """Send packets 0 .. n-1 from a, from a thread (the socket buffers are small and
        the shuttle waits for room, as the receiver reads)."""

        def run() -> None:
            for i in range(n):
                self.a.send(i.to_bytes(4, "big"))

        self._sender = threading.Thread(target=run, daemon=True)
        self._sender.start()

    def receive(self, quiet_s: float = 0.5) -> list[int]:
        """Packets b got, until none came for ``quiet_s``."""
        out: list[int] = []
        while select.select([self.b], [], [], quiet_s)[0]:
            out.append(int.from_bytes(self.b.recv(64), "big"))
        self._sender.join(10)
        return out

    def close(self) -> None:
        self.shuttle.close()
        self.a.close()
        self.b.close()


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire()
    try:
        yield w
    finally:
        w.close()


def test_a_clean_wire_passes_everything_in_order_both_ways(wire: Wire) -> None:
    wire.send(200)
    assert wire.receive() == list(range(200))
    wire.b.send(b"back")
    assert select.select([wire.a], [], [], 5)[0]
    assert wire.a.recv(64) == b"back"


def test_a_black_hole_passes_nothing_and_heal_passes_again(wire: Wire) -> None:
    wire.shuttle.set(loss=1.0)
    wire.send(100)
    assert wire.receive() == []
    wire.shuttle.set()
    wire.send(10)
    assert wire.receive() == list(range(10))


def test_loss_drops_about_its_share(wire: Wire) -> None:
    wire.shuttle.set(loss=0.3)
    wire.send(1000)
    got = wire.receive()
    assert 600 <= len(got) <= 800  # 700 expected; outside is a > 6 sigma event
    assert got == sorted(got)  # loss alone does not reorder
    assert len(set(got)) == len(got)


def test_reordering_sends_some_ahead_of_delayed_ones_and_loses_none(wire: Wire) -> None:
    wire.shuttle.set(delay_s=0.05, jitter_s=0.01, reorder=0.25)
    wire.send(300)
    got = wire.receive()
    assert sorted(got) == list(range(300))
    assert got != sorted(got)
