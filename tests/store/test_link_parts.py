"""Parts of the link: batch framing and limits, link health and timing (pure), the
limits a link-test reply carries (wire), and the SQL of delivery (store.outbox)."""

from __future__ import annotations

import contextlib
import json

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from hotline.errors import EnvelopeError
from hotline.ledger.entry import Entry, EntryKind
from hotline.link import framing, health
from hotline.store import database, schema
from hotline.store import outbox as store
from hotline.wire.envelope import Kind
from hotline.wire.messages import parse_payload

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


# --- batches cut to the receiver's limits (framing.take) ----------------------------


@settings(max_examples=300)
@given(
    st.lists(st.integers(min_value=0, max_value=5000), max_size=40),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=1, max_value=20_000),
    st.integers(min_value=1, max_value=6000),
)
def test_take_fits_the_limits(sizes: list[int], count: int, request: int, envelope: int) -> None:
    limits = framing.Limits(count, request, envelope)
    n = framing.take(sizes, limits)
    assert (n >= 1) == bool(sizes)  # never stuck while anything is queued
    assert n <= count
    if n > 1:  # anything that does not fit goes alone, so the peer refuses only that one
        assert framing.request_bytes(sizes[:n]) <= request
        assert max(sizes[:n]) <= envelope
    if n < min(len(sizes), count):  # it stopped because the next would not fit
        nxt = sizes[: n + 1]
        assert framing.request_bytes(nxt) > request or max(nxt) > envelope


def test_take_examples() -> None:
    lim = framing.Limits(max_batch_envelopes=3, max_request_bytes=100, max_envelope_bytes=50)
    assert framing.take([], lim) == 0
    assert framing.take([10, 10, 10, 10], lim) == 3  # by count
    assert framing.take([40, 40, 40], lim) == 2  # 8 + 2 x 44 = 96; a third is over
    assert framing.take([500, 1], lim) == 1  # too large: alone
    assert framing.take([1, 500], lim) == 1  # the large one waits for a batch of its own
    assert framing.request_bytes([1, 2]) == len(framing.encode_batch([b"a", b"bb"]))


def test_limits_within_takes_the_tighter_of_each() -> None:
    a = framing.Limits(10, 1000, 50)
    b = framing.Limits(5, 2000, 60)
    assert a.within(b) == framing.Limits(5, 1000, 50)


# --- refusals in health, and the link's timing rule ---------------------------------


def test_refusals_are_counted_without_changing_the_state() -> None:
    h = health.after_success(health.Health(), 5, 1, 10, T)
    h = health.after_refusals(h, 3, "too_large")
    h = health.after_refusals(h, 1, "replay")
    assert (h.state, h.refused, h.last_refused, h.failures) == ("UP", 4, "replay", 0)
    assert health.after_failure(h, "peer_timeout", 11, T).refused == 4


@settings(max_examples=500)
@given(
    st.floats(min_value=0.05, max_value=86_400, allow_nan=False),
    st.integers(min_value=1, max_value=20),
    st.floats(min_value=0.01, max_value=600, allow_nan=False),
)
def test_a_hung_peer_is_down_within_two_intervals(
    interval: float, down_after: int, peer_timeout: float
) -> None:
    """Whatever the settings: a whole interval until the next test, then ``down_after``
    tests that each wait out their bound, with the pauses between them, end before two
    intervals are over."""
    t = health.Timing(interval, down_after, peer_timeout)
    assert t.worst_time_to_down_s() < 2 * interval
    assert 0 < t.test_timeout_s < t.test_bound_s <= peer_timeout
    assert t.delivery_timeout_s > peer_timeout  # the transport's own timeout fires first
    assert t.wait_after(0) == interval


def test_after_down_the_tests_back_off_to_the_interval() -> None:
    t = health.Timing(60.0, 3, 10.0)
    assert t.test_bound_s == 10.0  # 0.8 x 60 / 3 = 16: the peer timeout is the smaller
    assert [t.wait_after(f) for f in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    fast = health.Timing(5.0, 3, 10.0)  # today: 3 x 10 s + 1 + 2 = 33 s to DOWN
    assert fast.test_bound_s == pytest.approx(4 / 3)
    assert fast.wait_after(1) == fast.wait_after(2) == pytest.approx(1 / 3)
    assert fast.worst_time_to_down_s() == pytest.approx(5 + 4 + 2 / 3)


# --- the limits a link-test reply advertises (wire) ------------------------------------


def reply_json(limits: object) -> bytes:
    doc = {"nonce": "0" * 32, "t1_us": 1, "t2_us": 2, "t3_us": 3, "limits": limits}
    return json.dumps(doc).encode()


@settings(max_examples=300)
@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=10),
        st.dictionaries(
            st.sampled_from(
                ["max_batch_envelopes", "max_request_bytes", "max_envelope_bytes", "x"]
            ),
            st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=5), st.none()),
        ),
    )
)
def test_garbage_limits_in_a_reply_only_raise_envelope_errors(limits: object) -> None:
    code = None
    try:
        reply = parse_payload(Kind.LINK_TEST_REPLY, reply_json(limits))
    except EnvelopeError as exc:
        code = exc.code
    if code is not None:
        assert code == "bad_payload"
    elif reply.limits is not None:
        for v in reply.limits.model_dump().values():
            assert 1 <= v <= 2**53


def test_a_reply_without_limits_is_still_read() -> None:
    doc = {"nonce": "0" * 32, "t1_us": 1, "t2_us": 2, "t3_us": 3}
    assert parse_payload(Kind.LINK_TEST_REPLY, json.dumps(doc).encode()).limits is None
    with pytest.raises(EnvelopeError):
        parse_payload(Kind.LINK_TEST_REPLY, reply_json({"max_batch_envelopes": 0}))


# --- the SQL of delivery (store.outbox), on SQLite and PostgreSQL ----------------------


def queue(conn: Connection, n: int, peer: str = "bravo", size: int = 10) -> list[int]:
    """``n`` envelopes (opaque bytes of ``size``) queued for ``peer``, as the projections
    would leave them; their entry indices."""
    out = []
    for i in range(n):
        data = bytes([i % 256]) * size
        idx = i + 1000 * (peer != "bravo")
        entry = Entry(EntryKind.ENVELOPE_OUT, peer, i + 1, bytes([i]) * 32, i, data)
        conn.execute(
            schema.entries.insert().values(
                idx=idx, kind=int(entry.kind), peer=peer, peer_seq=i + 1,
                envelope_hash=entry.envelope_hash, recorded_at_us=i, leaf=entry.encode(),
                leaf_hash=bytes(32),
            )
        )  # fmt: skip
        conn.execute(
            schema.outbox.insert().values(
                entry_idx=idx, peer=peer, sequence=i + 1, precedence=3,
                envelope_hash=bytes([i]) * 31 + peer[:1].encode(),
            )
        )  # fmt: skip
        out.append(idx)
    return out


def test_parked_envelopes_are_skipped_and_unparked_by_code(store_url: str) -> None:
    eng = database.create(store_url, writer=True)
    database.migrate(eng)
    try:
        with eng.begin() as conn:
            idx = queue(conn, 5)
            queue(conn, 2, peer="charlie")
            store.note_attempts(
                conn,
                [
                    store.Attempt(idx[0]),
                    store.Attempt(idx[1], error="too_large", refused="too_large"),
                    store.Attempt(idx[2], error="replay", refused="replay"),
                    store.Attempt(idx[3], error="peer_unreachable", sent=False),
                ],
                now_us=7,
            )
            got = store.candidates(conn, "bravo", [3], limit=10)
            assert [i for i, _ in got] == [idx[0], idx[3], idx[4]]
            assert all(size > 10 for _, size in got)  # the leaf: a bound on the envelope
            assert store.parked(conn, "bravo") == [(idx[1], "too_large"), (idx[2], "replay")]
            assert [i for i, _ in store.envelopes(conn, [idx[4], idx[0]])] == [idx[4], idx[0]]
            assert store.envelopes(conn, [idx[0]])[0][1] == bytes([0]) * 10
            d = schema.deliveries
            rows = {
                r.entry_idx: r
                for r in conn.execute(sa.select(d).where(d.c.entry_idx.in_(idx))).all()
            }
            assert rows[idx[1]].refused_at_us == 7
            assert rows[idx[3]].first_sent_us is None
            assert rows[idx[0]].first_sent_us == 7
            # a second attempt counts, keeps the first time on the wire, and unparks nothing
            store.note_attempts(conn, [store.Attempt(idx[0], error="peer_timeout")], now_us=9)
            row = conn.execute(sa.select(d).where(d.c.entry_idx == idx[0])).one()
            assert (row.attempts, row.first_sent_us, row.last_error) == (2, 7, "peer_timeout")
            assert store.unpark(conn, "charlie") == 0
            assert store.unpark(conn, "bravo", {"too_large"}, max_bytes=5) == 0  # too big
            assert store.unpark(conn, "bravo", {"too_large"}) == 1
            assert store.parked(conn, "bravo") == [(idx[2], "replay")]
            assert store.unpark(conn, "bravo") == 1
            assert store.parked(conn, "bravo") == []
    finally:
        eng.dispose()


def test_an_attempt_after_the_receipt_keeps_the_path_that_carried_it(store_url: str) -> None:
    """A bundle's receipt marks its envelope carried by ``bundle`` and takes it off the
    queue; an attempt on another path that ends after that (a relay request timing out)
    is counted but does not say the relay carried it (``hotline demo --paths`` once showed
    "nats" for a message the bundle carried)."""
    eng = database.create(store_url, writer=True)
    database.migrate(eng)
    try:
        with eng.begin() as conn:
            idx = queue(conn, 2)
            first = [store.Attempt(i, error="peer_unreachable", path="https") for i in idx]
            store.note_attempts(conn, first, now_us=5)
            row = conn.execute(
                sa.select(schema.outbox.c.envelope_hash).where(schema.outbox.c.entry_idx == idx[0])
            ).one()
            store.note_carried(conn, bytes(row.envelope_hash), "bundle", now_us=6)
            conn.execute(schema.outbox.delete().where(schema.outbox.c.entry_idx == idx[0]))
            late = [store.Attempt(i, error="peer_timeout", path="nats") for i in idx]
            store.note_attempts(conn, late, now_us=7)
            d = schema.deliveries
            rows = {
                r.entry_idx: r for r in conn.execute(sa.select(d).where(d.c.entry_idx.in_(idx)))
            }
            assert (rows[idx[0]].path, rows[idx[0]].attempts) == ("bundle", 2)
            assert (rows[idx[1]].path, rows[idx[1]].attempts) == ("nats", 2)  # still queued
    finally:
        eng.dispose()
