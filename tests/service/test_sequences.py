"""Sequence numbers from a peer (issue 7, the line, item 2): a bounded window ahead of
the highest contiguous one (``seq_window``), capped gap reports, and no old message id
on a new sequence number (``old_message_id``). Each refusal leaves the store unchanged.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hotline.errors import HotlineError, ReplayError, SequenceWindowError
from hotline.wire import batchreceipt
from hotline.wire.envelope import Kind
from hotline.wire.messages import AckPayload, LinkTestPayload
from tests.service import peerforge
from tests.service.conftest import Pair, snapshot

WINDOW = 8


async def store(p: Pair, raw: bytes) -> bytes | Exception:
    try:
        item = p.bravo.line.check_inbound(raw)
    except HotlineError as exc:
        return exc
    [result] = await p.bravo.line.store_inbound([item])
    return result


def missing(receipt: bytes) -> list[tuple[int, int]]:
    return list(batchreceipt.item_of(receipt).missing)


def test_a_sequence_number_beyond_the_window_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        assert isinstance(await store(p, peerforge.message(p, 1)), bytes)
        for seq in (1 + WINDOW + 1, 2**40, 2**63 - 1, 2**64 - 1):
            before = snapshot(p.bravo)
            err = await store(p, peerforge.message(p, seq))
            assert isinstance(err, SequenceWindowError), (seq, err)
            assert err.code == "seq_window"
            assert snapshot(p.bravo) == before
        at_edge = await store(p, peerforge.message(p, 1 + WINDOW))
        assert isinstance(at_edge, bytes)
        assert missing(at_edge) == [(2, WINDOW)]

    run_pair(scenario, max_sequence_ahead=WINDOW)


def test_the_default_window_is_4096(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        err = await store(p, peerforge.message(p, 4097))
        assert isinstance(err, HotlineError)
        assert err.code == "seq_window"
        assert isinstance(await store(p, peerforge.message(p, 4096)), bytes)

    run_pair(scenario)


def test_a_link_test_claiming_a_far_last_sequence_gets_a_capped_answer(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        assert isinstance(await store(p, peerforge.message(p, 1)), bytes)
        for last in (2**40, 2**63 - 1):
            test = LinkTestPayload(nonce="cd" * 16, t1_us=p.clock.now_us(), last_sequence=last)
            raw = peerforge.seal(
                p, Kind.LINK_TEST, test.to_bytes(), sequence=0, channel="link-test"
            )
            env, got = p.bravo.line.check_link_test(raw)
            reply = p.bravo.line.reply_link_test(env, got, p.clock.now_us(), {})
            answered = p.alpha.line.check_link_reply("bravo", test, reply)
            assert answered.missing == [(2, 1 + WINDOW)]

    run_pair(scenario, max_sequence_ahead=WINDOW)


def test_a_new_sequence_number_with_an_old_message_id_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        mid = uuid.uuid4()
        assert isinstance(await store(p, peerforge.message(p, 1, message_id=mid)), bytes)
        own = await p.send("from bravo", src=p.bravo, dst="alpha")
        ack = AckPayload(message_id=own.message_id, officer="K", acknowledged_at_us=1)
        cases = [
            peerforge.message(p, 2, "again", message_id=mid),  # alpha's own old id
            peerforge.message(p, 2, "mine", message_id=own.message_id),  # bravo's id
            peerforge.seal(p, Kind.ACK, ack.model_copy(
                update={"acknowledged_at_us": p.clock.now_us()}).to_bytes(),
                sequence=2, message_id=mid),  # an ACK under a message's id
        ]  # fmt: skip
        for raw in cases:
            before = snapshot(p.bravo)
            err = await store(p, raw)
            assert isinstance(err, ReplayError), err
            assert err.code == "old_message_id"
            assert snapshot(p.bravo) == before
        assert isinstance(await store(p, peerforge.message(p, 2, "new")), bytes)

    run_pair(scenario)


def test_any_sequence_number_is_stored_or_refused_with_its_code(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        @given(seq=st.one_of(st.integers(0, 2**64 - 1), st.integers(0, 3 * WINDOW)))
        @hsettings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def one(seq: int) -> None:
            if seq == 0 or seq > 2**63 - 1:
                with pytest.raises(HotlineError) as info:
                    p.bravo.line.check_inbound(peerforge.message(p, seq))
                assert info.value.code == ("bad_envelope" if seq == 0 else "seq_window")
                return
            item = p.bravo.line.check_inbound(peerforge.message(p, seq))
            # hypothesis runs in a thread; the writer answers on the scenario's loop
            fut = asyncio.run_coroutine_threadsafe(p.bravo.line.store_inbound([item]), running)
            [result] = fut.result(timeout=60)
            if isinstance(result, Exception):
                assert isinstance(result, HotlineError), result
                assert result.code in {"seq_window", "replay"}, result

        running = asyncio.get_running_loop()
        await asyncio.to_thread(one)

    run_pair(scenario, max_sequence_ahead=WINDOW)
