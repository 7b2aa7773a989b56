"""localnet's ports: a station's port is picked below the kernel's ephemeral range, where
no outgoing connection can take it between the pick and the station's bind (the suite
once lost ``test_cli_end_to_end`` to "Address already in use" on a busy machine)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hotline import localnet


def test_a_port_is_free_and_below_the_ephemeral_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranges = tmp_path / "range"
    ranges.write_text("32768\t60999\n")
    monkeypatch.setattr(localnet, "EPHEMERAL_RANGE", ranges)
    ports = {localnet.free_port() for _ in range(50)}
    assert all(localnet.LOW_PORT <= p < 32768 for p in ports)
    assert len(ports) > 40  # random: processes picking at once rarely agree
    for p in list(ports)[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


def test_a_taken_port_is_not_picked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ranges = tmp_path / "range"
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        # a range that leaves room for exactly the taken port and one more
        monkeypatch.setattr(localnet, "LOW_PORT", taken)
        ranges.write_text(f"{taken + 1000}\t60999\n")
        monkeypatch.setattr(localnet, "EPHEMERAL_RANGE", ranges)
        held.listen()
        assert all(localnet.free_port() != taken for _ in range(30))


@pytest.mark.parametrize("content", [None, "garbage"])
def test_an_unreadable_range_is_linuxs_default(
    content: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranges = tmp_path / "range"
    if content is not None:
        ranges.write_text(content)
    monkeypatch.setattr(localnet, "EPHEMERAL_RANGE", ranges)
    assert localnet.LOW_PORT <= localnet.free_port() < 32768


def test_without_room_below_the_range_the_kernel_picks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranges = tmp_path / "range"
    ranges.write_text("1500 60999")
    monkeypatch.setattr(localnet, "EPHEMERAL_RANGE", ranges)
    port = localnet.free_port()
    assert port >= 1024
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
