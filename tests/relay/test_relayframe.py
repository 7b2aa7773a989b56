"""Relay frames: round trip, signature, and garbage (the relay is hostile)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives
from hotline.errors import EnvelopeError, SignatureError
from hotline.link import relayframe
from hotline.link.relayframe import Kind

SEED = bytes(range(32))
SIGNER = primitives.Signer(SEED)
OTHER = primitives.Signer(bytes(range(1, 33)))
CORR = bytes(16)


def _frame(body: bytes = b"body", kind: Kind = Kind.BATCH) -> bytes:
    return relayframe.encode(SIGNER, kind, "alpha", "bravo", CORR, body)


def _decoded(data: bytes, max_bytes: int) -> relayframe.Frame | str:
    """The frame, or the code it was refused with."""
    try:
        return relayframe.decode(data, max_bytes=max_bytes)
    except EnvelopeError as exc:
        return exc.code


def test_round_trip_and_signature() -> None:
    data = _frame(b"x" * 100, Kind.LINK_TEST)
    f = relayframe.decode(data, max_bytes=1000)
    assert (f.kind, f.sender, f.recipient, f.correlation, f.body) == (
        Kind.LINK_TEST,
        "alpha",
        "bravo",
        CORR,
        b"x" * 100,
    )
    relayframe.verify(f, SIGNER.public_key)
    with pytest.raises(SignatureError):
        relayframe.verify(f, OTHER.public_key)


def test_size_is_checked_before_parsing() -> None:
    data = _frame(b"x" * 100)
    with pytest.raises(EnvelopeError) as exc:
        relayframe.decode(data, max_bytes=len(data) - 1)
    assert exc.value.code == "too_large"
    with pytest.raises(EnvelopeError) as exc:
        relayframe.decode(b"\xff" * 10_000, max_bytes=100)
    assert exc.value.code == "too_large"


@pytest.mark.parametrize("pos", [0, 4, 5, 7, 13, 20, 30, 40, -1, -70])
def test_every_altered_byte_is_refused(pos: int) -> None:
    data = bytearray(_frame(b"some envelope bytes"))
    data[pos] ^= 0x01
    try:
        f = relayframe.decode(bytes(data), max_bytes=10_000)
    except EnvelopeError:
        return
    with pytest.raises(SignatureError):
        relayframe.verify(f, SIGNER.public_key)


def test_signature_is_domain_separated() -> None:
    """A signature the station makes for anything else (same key, other context) is no
    frame signature."""
    data = _frame()
    f = relayframe.decode(data, max_bytes=10_000)
    forged = f.signed + primitives.sign(SEED, b"hotline/other\x00", f.signed)
    with pytest.raises(SignatureError):
        relayframe.verify(relayframe.decode(forged, max_bytes=10_000), SIGNER.public_key)


def test_names() -> None:
    assert relayframe.inbound_subject("hotline", "bravo", "alpha") == "hotline.bravo.in.alpha"
    assert relayframe.stream_subjects("hotline", "bravo") == "hotline.bravo.in.>"
    assert relayframe.stream_name("hotline", "a-1") == "HOTLINE_A-1"
    with pytest.raises(ValueError, match="prefix"):
        relayframe.check_prefix("a.b")
    with pytest.raises(ValueError, match="station id"):
        relayframe.encode(SIGNER, Kind.BATCH, "Alpha.>", "bravo", CORR, b"")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_is_refused_or_fails_the_signature(data: bytes) -> None:
    got = _decoded(data, 300)
    if isinstance(got, str):
        assert got in {"bad_frame", "too_large"}
        return
    with pytest.raises(SignatureError):
        relayframe.verify(got, SIGNER.public_key)


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200),
    st.integers(min_value=0, max_value=10_000),
    st.binary(min_size=1, max_size=8),
)
def test_mutated_frames_never_verify(body: bytes, at: int, junk: bytes) -> None:
    data = _frame(body)
    at %= len(data)
    mutated = data[:at] + junk + data[at + len(junk) :]
    if mutated == data:
        return
    try:
        f = relayframe.decode(mutated, max_bytes=10_000)
    except EnvelopeError:
        return
    with pytest.raises(SignatureError):
        relayframe.verify(f, SIGNER.public_key)


def test_the_relay_url_is_shown_without_its_password() -> None:
    from hotline.link.relay import shown_url

    assert shown_url("nats://alpha:s3cret@10.0.0.1:4222") == "nats://10.0.0.1:4222"
    assert shown_url("tls://relay.example") == "tls://relay.example"
    assert "s3cret" not in shown_url("nats://u:s3cret@[::1]:4222")
