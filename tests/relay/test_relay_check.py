"""What a station does with a frame from the relay before anything else: the checks of
``Relay.check`` on garbage and on altered genuine frames (no NATS needed), and the
relay settings a station refuses at start."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.clock import FakeClock
from hotline.crypto import primitives
from hotline.errors import ConfigError, HotlineError
from hotline.link import relayframe
from hotline.link.relay import Relay
from hotline.link.relayframe import Kind
from hotline.settings import Settings
from hotline.station import Station
from tests.service.conftest import make_identity

PREFIX = "hotline"


@pytest.fixture(scope="module")
def bravo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Station, bytes]]:
    """bravo (its Relay built, not connected) with alpha as a peer; alpha's signing seed."""
    tmp = tmp_path_factory.mktemp("check")
    alpha = make_identity("alpha")
    s = Settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'b.db'}",
        paths=["nats"],
        relay_url="nats://127.0.0.1:1",
        max_request_bytes=65536,
    )
    st_ = Station(s, make_identity("bravo"), FakeClock())
    _card, unit = st_.line.peer_add_unit(alpha.card().to_text(), "test")
    st_.writer.run_sync(unit)
    try:
        yield st_, alpha.signing_seed
    finally:
        st_.close()


def relay_of(station: Station) -> Relay:
    assert station.relay is not None
    return station.relay


SUBJECT = relayframe.inbound_subject(PREFIX, "bravo", "alpha")


def test_a_genuine_frame_checks(bravo: tuple[Station, bytes]) -> None:
    station, seed = bravo
    data = relayframe.encode(
        primitives.Signer(seed), Kind.LINK_TEST, "alpha", "bravo", bytes(16), b"env"
    )
    frame = relay_of(station).check(SUBJECT, data)
    assert (frame.sender, frame.kind, frame.body) == ("alpha", Kind.LINK_TEST, b"env")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=80), st.binary(max_size=600))
def test_garbage_from_the_relay_is_refused(
    bravo: tuple[Station, bytes], subject: str, data: bytes
) -> None:
    station, _seed = bravo
    with pytest.raises(HotlineError):
        relay_of(station).check(subject, data)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_an_altered_genuine_frame_is_refused(
    bravo: tuple[Station, bytes], at: int, flip: int
) -> None:
    station, seed = bravo
    data = bytearray(
        relayframe.encode(
            primitives.Signer(seed), Kind.BATCH, "alpha", "bravo", bytes(16), b"HTLB" + bytes(40)
        )
    )
    data[at % len(data)] ^= flip
    with pytest.raises(HotlineError):
        relay_of(station).check(SUBJECT, bytes(data))


def test_frames_of_strangers_and_for_others_are_refused(bravo: tuple[Station, bytes]) -> None:
    station, seed = bravo
    relay = relay_of(station)
    stranger = primitives.Signer(primitives.new_signing_key())
    cases = [
        (
            relayframe.inbound_subject(PREFIX, "bravo", "zulu"),
            stranger,
            "zulu",
            "bravo",
            "unknown_peer",
        ),
        (SUBJECT, primitives.Signer(seed), "alpha", "charlie", "misaddressed"),
        (
            relayframe.inbound_subject(PREFIX, "bravo", "x"),
            primitives.Signer(seed),
            "alpha",
            "bravo",
            "misaddressed",
        ),
        (SUBJECT, stranger, "alpha", "bravo", "bad_signature"),
    ]
    for subject, signer, sender, recipient, code in cases:
        data = relayframe.encode(signer, Kind.BATCH, sender, recipient, bytes(16), b"")
        with pytest.raises(HotlineError) as exc:
            relay.check(subject, data)
        assert exc.value.code == code, (sender, recipient, subject)


def test_the_nats_path_needs_a_relay_url(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'a.db'}", paths=["nats"])
    with pytest.raises(ConfigError, match="relay_url"):
        Station(s, make_identity("alpha"), FakeClock())


def test_credentials_readable_by_others_are_refused(tmp_path: Path) -> None:
    creds = tmp_path / "relay"
    creds.write_text("alpha:secret\n")
    os.chmod(creds, 0o644)
    s = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'a.db'}",
        paths=["nats"],
        relay_url="nats://127.0.0.1:1",
        relay_credentials_file=creds,
    )
    with pytest.raises(ConfigError, match="readable by others") as exc:
        Station(s, make_identity("alpha"), FakeClock())
    assert "secret" not in str(exc.value)
