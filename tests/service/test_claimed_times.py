"""Times a peer claims (issue 7, the line, item 1): bounded and checked against the
envelope's sent time and our receive time, refused as ``bad_time`` before anything is
stored; deadlines and displays run on our own recorded times, the claim kept beside them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hotline.crypto import primitives
from hotline.errors import BadTimeError
from hotline.service import queries
from hotline.wire.envelope import Kind, Precedence
from hotline.wire.messages import (
    MIN_TIME_US,
    AckPayload,
    LinkTestPayload,
    LinkTestReplyPayload,
    ReceiptPayload,
)
from tests.service import peerforge
from tests.service.conftest import Pair, snapshot

SKEW_US = 300 * 1_000_000
HUGE = [2**62, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63), -1, 0]


def _message(st_: Any, mid: Any) -> dict[str, Any]:
    with st_.read_engine.connect() as conn:
        found = queries.get_message(conn, st_.clock.now_us(), str(mid))
    assert found is not None
    return found


def _ack(p: Pair, mid: uuid.UUID, at: int) -> bytes:
    """bravo acknowledges alpha's ``mid`` claiming time ``at`` (a validly signed ACK)."""
    body = AckPayload(message_id=mid, officer="Maj. K", acknowledged_at_us=at).to_bytes()
    seq = peerforge.next_seq(p, p.bravo, "alpha")
    return peerforge.seal(p, Kind.ACK, body, src="bravo", sequence=seq)


def out_of_range(now: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from(HUGE),
        st.integers(max_value=MIN_TIME_US - 1, min_value=-(2**70)),
        st.integers(min_value=now + SKEW_US + 1, max_value=2**70),
    )


def test_an_acknowledgement_with_an_out_of_range_time_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send()
        await p.flush()
        before = snapshot(p.alpha)

        @given(at=out_of_range(p.clock.now_us()))
        @hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        def refused(at: int) -> None:
            with pytest.raises(BadTimeError) as info:
                p.alpha.line.check_inbound(_ack(p, sent.message_id, at))
            assert info.value.code == "bad_time"

        refused()
        assert snapshot(p.alpha) == before

    run_pair(scenario)


def test_an_acknowledgement_dated_before_its_message_is_refused_and_changes_nothing(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send()
        await p.flush()
        sent_at = _message(p.alpha, sent.message_id)["sent_at_us"]
        p.clock.advance(60)
        item = p.alpha.line.check_inbound(_ack(p, sent.message_id, sent_at - 1_000_000))
        before = snapshot(p.alpha)
        [err] = await p.alpha.line.store_inbound([item])
        assert isinstance(err, BadTimeError)
        assert err.code == "bad_time"
        assert snapshot(p.alpha) == before
        assert _message(p.alpha, sent.message_id)["acknowledged_at_us"] is None

    run_pair(scenario)


def test_the_acknowledgement_time_shown_is_ours_and_the_claim_is_kept_beside_it(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("status?", Precedence.FLASH)
        await p.flush()
        acked_at = p.clock.now_us()
        await p.bravo.line.acknowledge(str(sent.message_id), "Maj. Ivanova")
        p.clock.advance(30)  # the ACK reaches alpha 30 s later
        await p.flush()
        got = _message(p.alpha, sent.message_id)
        assert got["state"] == "acknowledged"
        assert got["acknowledged_at_us"] == p.clock.now_us()  # ours: when it arrived
        assert got["ack_claimed_at_us"] == acked_at  # the peer's claim, named as such
        mine = _message(p.bravo, sent.message_id)
        assert mine["acknowledged_at_us"] == acked_at
        assert mine["ack_claimed_at_us"] is None  # our own acknowledgement claims nothing

    run_pair(scenario)


def test_a_received_message_deadline_runs_from_our_receive_time(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        hour_ago = p.clock.now_us() - 3600 * 1_000_000
        raw = peerforge.seal(
            p, Kind.MESSAGE, b'{"type":"text","text":"old news"}', sequence=1,
            precedence=Precedence.FLASH, sent_at_us=hour_ago,
        )  # fmt: skip
        [receipt] = await p.bravo.line.store_inbound([p.bravo.line.check_inbound(raw)])
        assert isinstance(receipt, bytes)
        mid = peerforge.wire.decode(raw, max_bytes=1 << 20).header.message_id
        got = _message(p.bravo, mid)
        assert got["ack_deadline_us"] == p.clock.now_us() + 600 * 1_000_000
        assert got["ack_overdue"] is False
        with p.bravo.read_engine.connect() as conn:
            kinds = [a["kind"] for a in queries.alarms(conn, p.clock.now_us())]
        assert "ack_overdue" not in kinds

    run_pair(scenario)


def test_delivered_is_our_receive_time_of_the_receipt(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send()
        [raw] = p.outbound(p.alpha, "bravo")
        [receipt] = await p.bravo.line.store_inbound([p.bravo.line.check_inbound(raw)])
        assert isinstance(receipt, bytes)
        stored_at = p.clock.now_us()
        p.clock.advance(7)
        assert await p.alpha.line.record_receipt("bravo", receipt)
        got = _message(p.alpha, sent.message_id)
        assert got["delivered_at_us"] == p.clock.now_us() != stored_at

    run_pair(scenario)


def _receipt(p: Pair, raw: bytes, stored_at: int) -> bytes:
    """bravo's signed receipt for alpha's ``raw`` claiming ``stored_at``."""
    h = peerforge.wire.decode(raw, max_bytes=1 << 20).header
    body = ReceiptPayload(
        envelope_hash=primitives.sha256(raw).hex(), sender="alpha", sequence=h.sequence,
        message_id=h.message_id, stored_at_us=stored_at, leaf_index=3, tree_size=4,
    ).to_bytes()  # fmt: skip
    return peerforge.seal(p, Kind.RECEIPT, body, src="bravo", sequence=0, message_id=h.message_id)


def test_a_receipt_with_an_out_of_range_time_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send()
        [raw] = p.outbound(p.alpha, "bravo")
        before = snapshot(p.alpha)

        @given(at=out_of_range(p.clock.now_us()))
        @hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def refused(at: int) -> None:
            with pytest.raises(BadTimeError):
                p.alpha.line.check_receipt("bravo", _receipt(p, raw, at))

        refused()
        with pytest.raises(BadTimeError):
            await p.alpha.line.record_receipt("bravo", _receipt(p, raw, 2**62))
        assert snapshot(p.alpha) == before
        assert await p.alpha.line.record_receipt("bravo", _receipt(p, raw, p.clock.now_us()))

    run_pair(scenario)


def test_link_test_times_out_of_range_are_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        now = p.clock.now_us()
        test = LinkTestPayload(nonce="ab" * 16, t1_us=2**62)
        raw = peerforge.seal(p, Kind.LINK_TEST, test.to_bytes(), sequence=0, channel="link-test")
        with pytest.raises(BadTimeError):
            p.bravo.line.check_link_test(raw)

        env, sent = p.alpha.line.make_link_test("bravo")

        def reply(**times: int) -> bytes:
            body = LinkTestReplyPayload(
                nonce=sent.nonce, **{"t1_us": sent.t1_us, "t2_us": now, "t3_us": now, **times}
            ).to_bytes()
            return peerforge.seal(
                p, Kind.LINK_TEST_REPLY, body, src="bravo", sequence=0,
                channel="link-test", message_id=env.header.message_id,
            )  # fmt: skip

        assert p.alpha.line.check_link_reply("bravo", sent, reply()).t2_us == now
        for times in (
            {"t2_us": 2**62},
            {"t3_us": 2**64},
            {"t2_us": 0},
            {"t2_us": now + 10, "t3_us": now},  # answered before it was received
            {"t1_us": sent.t1_us - 1},  # echoes another test's time
        ):
            with pytest.raises(BadTimeError) as info:
                p.alpha.line.check_link_reply("bravo", sent, reply(**times))
            assert info.value.code == "bad_time"

    run_pair(scenario)


def test_an_envelope_dated_before_2020_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        raw = peerforge.message(p, 1, sent_at_us=MIN_TIME_US - 1)
        with pytest.raises(BadTimeError):
            p.bravo.line.check_inbound(raw)

    run_pair(scenario)
