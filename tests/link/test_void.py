"""A parked envelope no longer leaves a hole (issue 7): alpha declares the number of an
envelope bravo refused for good void, on the record; its next link test carries the
declaration signed; bravo records it and its contiguous mark passes the hole, so later
messages are delivered, link tests stop reporting it missing and the sequence window
never closes. Through the transport seam, against bravo's real peer app."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.errors import InputError, NotFoundError
from hotline.service import linkproto
from hotline.station import Station
from hotline.store import schema
from tests.link.conftest import Link
from tests.link.test_outbox import Refusing, queued_raw
from tests.service.conftest import ledger_actions, snapshot


def contiguous(station: Station, peer: str) -> int:
    p = schema.peers
    with station.read_engine.connect() as conn:
        q = sa.select(p.c.in_contiguous).where(p.c.station_id == peer)
        return int(conn.execute(q).scalar_one())


def actions(station: Station, name: str) -> list[dict[str, Any]]:
    return ledger_actions(station, name)


async def rebuilt_equals_live(station: Station) -> None:
    live = snapshot(station)

    def rebuild(tx: Any) -> int:
        return int(station.line.rebuild_projections(tx.conn, chunk=3))

    await station.writer.submit(rebuild)
    assert snapshot(station) == live


def refusing_wrap(refusing: list[Refusing]) -> Any:
    def wrap(inner: Any) -> Refusing:
        refusing.append(Refusing(inner))
        return refusing[0]

    return wrap


def test_a_refused_number_is_voided_and_the_line_goes_on(run_link: Any) -> None:
    refusing: list[Refusing] = []

    async def scenario(link: Link) -> None:
        a, b = link.alpha, link.bravo
        msgs = [await link.send(f"m{i}") for i in range(4)]  # sequence numbers 1..4
        refusing[0].codes[queued_raw(link, msgs[1].entry_idx)] = "bad_payload"
        await link.drain()
        hole = link.message(msgs[1].message_id)
        assert (hole["state"], hole["refused"], hole["void"]) == ("refused", "bad_payload", True)
        assert [link.message(m.message_id)["void"] for m in (msgs[0], msgs[2])] == [False] * 2
        assert link.queued() == 0  # the voided envelope left the queue
        [void] = actions(a, "void")
        assert (void["peer"], void["sequence"], void["code"]) == ("bravo", 2, "bad_payload")
        assert void["entry_idx"] == msgs[1].entry_idx
        [alarm] = link.alarms()
        assert alarm["ref"] == "bad_payload"
        assert "void" in alarm["detail"]
        # bravo still misses 2: its mark is stuck at 1
        assert contiguous(b, "alpha") == 1
        assert linkproto.missing_upto(b.line.ctx, "alpha", 4) == [(2, 2)]
        result = await link.tester.test_once()
        assert result["ok"]
        assert result["void"] == [[2, 2]]
        assert result["missing"] == []  # the reply no longer reports the hole
        assert contiguous(b, "alpha") == 4
        [recorded] = actions(b, "peer_void")
        assert (recorded["peer"], recorded["void"]) == ("alpha", [[2, 2]])
        # the next test declares nothing more (bravo said it holds up to 4)
        again = await link.tester.test_once()
        assert "void" not in again
        assert again["missing"] == []
        assert len(actions(b, "peer_void")) == 1
        # later messages are delivered and bravo's mark follows
        later = await link.send("after")
        await link.drain()
        assert link.message(later.message_id)["state"] == "delivered"
        assert contiguous(b, "alpha") == 5
        await rebuilt_equals_live(a)
        await rebuilt_equals_live(b)

    run_link(scenario, wrap=refusing_wrap(refusing))


def test_messages_long_after_a_hole_are_not_refused_seq_window(run_link: Any) -> None:
    """With bravo's window at 8, the 12 messages after a hole at 2 reach past it: those
    beyond are refused seq_window (not parked); after the void travels in a link test,
    every one is delivered (as the 4,200 after a hole at the default 4,096)."""
    refusing: list[Refusing] = []

    async def scenario(link: Link) -> None:
        first = [await link.send(f"m{i}") for i in range(2)]
        refusing[0].codes[queued_raw(link, first[1].entry_idx)] = "geometry_too_large"
        await link.drain()
        rest = [await link.send(f"n{i}") for i in range(12)]  # sequence numbers 3..14
        await link.drain()
        states = [link.message(m.message_id) for m in rest]
        assert {s["last_error"] for s in states if s["state"] != "delivered"} == {"seq_window"}
        assert contiguous(link.bravo, "alpha") == 1
        await link.tester.test_once()
        link.outbox.retry_now()
        await link.drain()
        assert [link.message(m.message_id)["state"] for m in rest] == ["delivered"] * 12
        assert contiguous(link.bravo, "alpha") == 14

    run_link(scenario, wrap=refusing_wrap(refusing), bravo={"max_sequence_ahead": 8})


def test_a_refusal_that_keeps_the_number_is_not_voided(run_link: Any) -> None:
    """replay (bravo holds the number) and the size codes (they go again when the limits
    change) park without voiding."""
    refusing: list[Refusing] = []

    async def scenario(link: Link) -> None:
        msgs = [await link.send(f"m{i}") for i in range(3)]
        refusing[0].codes[queued_raw(link, msgs[1].entry_idx)] = "replay"
        await link.drain()
        got = link.message(msgs[1].message_id)
        assert (got["state"], got["void"]) == ("refused", False)
        assert actions(link.alpha, "void") == []
        assert link.queued() == 1
        result = await link.tester.test_once()
        assert "void" not in result

    run_link(scenario, wrap=refusing_wrap(refusing))


def test_the_operator_voids_a_message_parked_for_its_size(run_link: Any) -> None:
    """too_large keeps its number (it goes again if bravo's limits grow); the operator
    may give up on it instead: void on the record, the alarm cleared, the hole passed."""

    async def scenario(link: Link) -> None:
        a, b = link.alpha, link.bravo
        small = await link.send("short")
        big = await link.send("Щ" * 10_000)  # 20 kB: over bravo's 8 KiB
        await link.drain()
        got = link.message(big.message_id)
        assert (got["state"], got["refused"], got["void"]) == ("refused", "too_large", False)
        assert actions(a, "void") == []
        before = snapshot(a)
        with pytest.raises(NotFoundError):  # delivered, not parked: nothing to void
            await a.line.void_message(str(small.message_id))
        with pytest.raises(NotFoundError):
            await a.line.void_message(str(uuid.uuid4()))
        assert snapshot(a) == before
        assert await a.line.void_message(str(big.message_id)) == "bravo"
        got = link.message(big.message_id)
        assert (got["state"], got["void"]) == ("refused", True)
        [void] = actions(a, "void")
        assert (void["by"], void["sequence"], void["code"]) == ("operator", 2, "too_large")
        assert link.alarms() == []
        assert link.queued() == 0
        with pytest.raises(NotFoundError):  # once only
            await a.line.void_message(str(big.message_id))
        later = await link.send("corrected")
        await link.drain()
        assert contiguous(b, "alpha") == 1
        await link.tester.test_once()
        assert contiguous(b, "alpha") == 3
        assert link.message(later.message_id)["state"] == "delivered"
        await rebuilt_equals_live(a)
        await rebuilt_equals_live(b)

    run_link(scenario, bravo={"max_envelope_bytes": 8192})


def test_a_replay_refusal_cannot_be_voided(run_link: Any) -> None:
    refusing: list[Refusing] = []

    async def scenario(link: Link) -> None:
        msgs = [await link.send(f"m{i}") for i in range(2)]
        refusing[0].codes[queued_raw(link, msgs[1].entry_idx)] = "replay"
        await link.drain()
        before = snapshot(link.alpha)
        with pytest.raises(InputError) as info:
            await link.alpha.line.void_message(str(msgs[1].message_id))
        assert info.value.code == "cannot_void"
        assert snapshot(link.alpha) == before

    run_link(scenario, wrap=refusing_wrap(refusing))
