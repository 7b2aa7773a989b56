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
    assert len(ports) == 50  # in turn: none handed out twice
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


def test_a_slice_keeps_a_process_to_its_share_of_the_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two xdist workers (slices 0/2 and 1/2) can never pick the same port: the suite
    once lost a test to a port one worker picked while the other's station, set up with
    it, had not started yet."""
    ranges = tmp_path / "range"
    ranges.write_text("32768\t60999\n")
    monkeypatch.setattr(localnet, "EPHEMERAL_RANGE", ranges)
    half = (32768 - localnet.LOW_PORT) // 2
    monkeypatch.setenv(localnet.PORT_SLICE_ENV, "0/2")
    first = [localnet.free_port() for _ in range(30)]
    monkeypatch.setenv(localnet.PORT_SLICE_ENV, "1/2")
    second = [localnet.free_port() for _ in range(30)]
    assert all(localnet.LOW_PORT <= p < localnet.LOW_PORT + half for p in first)
    assert all(localnet.LOW_PORT + half <= p < localnet.LOW_PORT + 2 * half for p in second)
    assert len(set(first)) == len(set(second)) == 30


@pytest.mark.parametrize("raw", ["", "garbage", "3/2", "-1/2", "1/0", "a/b"])
def test_a_malformed_slice_is_the_whole_range(
    raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(localnet.PORT_SLICE_ENV, raw)
    assert localnet._slice(10_000, 32768) == (10_000, 32768)
    assert localnet.LOW_PORT <= localnet.free_port() < 32768


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
