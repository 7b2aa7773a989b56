"""Batch framing and link health: pure parts of the link."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import EnvelopeError
from hotline.link import framing, health

T = health.Thresholds(degraded_rtt_ms=100, max_skew_ms=1000, down_after=3)


@given(st.lists(st.binary(max_size=50), max_size=20))
def test_batch_round_trip(items: list[bytes]) -> None:
    body = framing.encode_batch(items)
    assert framing.decode_batch(body, max_items=20, max_item_bytes=50) == items


def test_results_round_trip() -> None:
    rs = [framing.Result(receipt=b"r1"), framing.Result(refused="replay")]
    assert framing.decode_results(framing.encode_results(rs), expected=2) == rs


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "bad_batch"),
        (b"HTLX\x00\x00\x00\x00", "bad_batch"),
        (framing.encode_batch([b"a"] * 3), "bad_batch"),  # more than max_items=2
        (framing.encode_batch([b"a" * 11]), "too_large"),
        (framing.encode_batch([b"abc"])[:-1], "bad_batch"),
        (framing.encode_batch([b"abc"]) + b"!", "bad_batch"),
    ],
)
def test_bad_batches(body: bytes, code: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        framing.decode_batch(body, max_items=2, max_item_bytes=10)
    assert info.value.code == code


def test_results_count_must_match() -> None:
    with pytest.raises(EnvelopeError):
        framing.decode_results(framing.encode_results([framing.Result(receipt=b"")]), expected=2)


@settings(max_examples=300)
@given(st.binary(max_size=100))
def test_garbage_batches_only_raise_envelope_errors(body: bytes) -> None:
    for decode in (
        lambda: framing.decode_batch(body, max_items=10, max_item_bytes=100),
        lambda: framing.decode_results(body, expected=2),
    ):
        with contextlib.suppress(EnvelopeError):
            decode()


def test_health_transitions() -> None:
    h = health.Health()
    assert h.state == "UNTESTED"
    h = health.after_success(h, 5, 1, 10, T)
    assert (h.state, h.failures, h.rtt_ms) == ("UP", 0, 5)
    h = health.after_success(h, 500, 1, 11, T)
    assert h.state == "DEGRADED"
    h = health.after_success(h, 5, 5000, 12, T)
    assert h.state == "DEGRADED"  # clock skew too large
    for expected in ("DEGRADED", "DEGRADED", "DOWN", "DOWN"):
        h = health.after_failure(h, "peer_unreachable", 13, T)
        assert h.state == expected
    assert h.last_ok_at_us == 12
    assert h.last_error == "peer_unreachable"
    assert health.after_success(h, 5, 0, 14, T).state == "UP"


def test_measure_rtt_and_skew() -> None:
    # peer clock 1 s ahead; 10 ms each way; peer holds it 2 ms
    t1, t2, t3, t4 = 0, 1_010_000, 1_012_000, 22_000
    rtt, skew = health.measure(t1, t2, t3, t4)
    assert rtt == pytest.approx(20.0)
    assert skew == pytest.approx(1000.0)
