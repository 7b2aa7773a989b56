"""After a restore from backup the station learns from its peer where its sequence
numbers stand, resumes above them on the record, re-issues what the peer refused as a
replay, and raises an alarm naming the gap (SQLite and PostgreSQL).

The restored station is alpha's identity on a fresh store: a backup taken before alpha
sent anything. tests/integration/test_restore.py runs a real backup and restore.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.api.peer import create_peer_app
from hotline.errors import ReplayError
from hotline.service.resync import MAX_RESUME_JUMP
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import operational, schema
from hotline.wire.envelope import Precedence
from hotline.wire.messages import LinkTestReplyPayload, MessagePayload
from tests.conftest import fresh_pg_database
from tests.service.conftest import Pair, snapshot


@contextlib.asynccontextmanager
async def restored(pair: Pair, who: str = "alpha") -> AsyncIterator[Station]:
    """alpha (or bravo) again, on a store restored from a backup taken before it sent
    anything."""
    me, other = (pair.alpha, pair.bravo) if who == "alpha" else (pair.bravo, pair.alpha)
    with contextlib.ExitStack() as stack:
        a = me.settings
        if a.store_url.startswith("sqlite"):
            url = f"sqlite:///{a.data_dir / 'restored.db'}"
        else:
            url = stack.enter_context(fresh_pg_database())
        s = Settings(data_dir=a.data_dir, database_url=url)
        station = Station(s, me.identity, pair.clock)
        _card, unit = station.line.peer_add_unit(other.line.card.to_text(), "restore")
        station.writer.run_sync(unit)
        station.writer.start()
        try:
            yield station
        finally:
            station.close()


async def link_test(asker: Station, answerer: Station) -> LinkTestReplyPayload:
    """One link test through the answerer's real peer endpoint (in process)."""
    env, sent = asker.line.make_link_test(answerer.line.station_id)
    app = create_peer_app(answerer.line, answerer.witnessing)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://peer"
    ) as c:
        r = await c.post("/peer/v1/link-test", content=env.raw)
    assert r.status_code == 200, r.headers
    return asker.line.check_link_reply(answerer.line.station_id, sent, r.content)


def open_alarms(station: Station, kind: str) -> list[dict[str, Any]]:
    with station.read_engine.connect() as conn:
        return [a for a in operational.open_alarms(conn) if a["kind"] == kind]


def next_seq(station: Station, peer: str = "bravo") -> int:
    p = schema.peers
    with station.read_engine.connect() as conn:
        return int(
            conn.execute(sa.select(p.c.next_out_seq).where(p.c.station_id == peer)).scalar_one()
        )


async def sent_before_backup_was_lost(pair: Pair, n: int = 3) -> None:
    for i in range(n):
        await pair.send(f"before the crash {i}")
    await pair.flush()


def test_the_link_test_reply_says_what_the_peer_holds(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        reply = await link_test(pair.alpha, pair.bravo)
        assert (reply.held_contiguous, reply.held_highest) == (0, 0)
        await sent_before_backup_was_lost(pair)
        reply = await link_test(pair.alpha, pair.bravo)
        assert (reply.held_contiguous, reply.held_highest) == (3, 3)
        # nothing to resume: our ledger has every number the peer holds
        assert await pair.alpha.resync.on_reply("bravo", 3, 3) is None
        assert open_alarms(pair.alpha, "sequence_gap") == []

    run_pair(scenario)


def test_a_restored_station_resumes_above_what_the_peer_holds(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        await sent_before_backup_was_lost(pair)
        async with restored(pair) as r:
            reply = await link_test(r, pair.bravo)
            assert reply.held_highest == 3
            resumed = await r.resync.on_reply("bravo", reply.held_contiguous or 0, 3)
            assert resumed is not None
            assert (resumed.old_next, resumed.new_next, resumed.gap) == (1, 4, (1, 3))
            [alarm] = open_alarms(r, "sequence_gap")
            assert alarm["peer"] == "bravo"
            assert "1..3" in alarm["detail"]
            assert await r.resync.on_reply("bravo", 3, 3) is None  # once
            assert len(open_alarms(r, "sequence_gap")) == 1
            sent = await r.line.send(
                peer="bravo", channel="working", precedence=Precedence.ROUTINE,
                payload=MessagePayload(text="after the restore"),
            )  # fmt: skip
            assert sent.sequence == 4
            await pair.deliver(r, pair.bravo, pair.outbound(r, "bravo"))
            assert pair.outbound(r, "bravo") == []  # receipted: the message arrived
            # the resumption is on the record: a rebuild keeps the sequence numbers
            live = snapshot(r)
            await r.writer.submit(lambda tx: r.line.rebuild_projections(tx.conn))
            assert snapshot(r) == live
            assert next_seq(r) == 5

    run_pair(scenario)


def test_a_queued_envelope_refused_as_replay_is_reissued_above(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        await sent_before_backup_was_lost(pair)
        async with restored(pair) as r:
            first = await r.line.send(
                peer="bravo", channel="working", precedence=Precedence.FLASH,
                payload=MessagePayload(text="sent before the station knew"),
            )  # fmt: skip
            assert first.sequence == 1
            [raw] = pair.outbound(r, "bravo")
            item = pair.bravo.line.check_inbound(raw)
            [refused] = await pair.bravo.line.store_inbound([item])
            assert isinstance(refused, ReplayError)
            assert refused.code == "replay"
            untouched = snapshot(r)
            assert await r.resync.reissue("bravo", first.entry_idx) is None  # no claim yet
            assert snapshot(r) == untouched
            resumed = await r.resync.on_reply("bravo", 3, 3)
            assert resumed is not None
            assert resumed.gap == (2, 3)
            new_idx = await r.resync.reissue("bravo", first.entry_idx)
            assert new_idx is not None
            assert await r.resync.reissue("bravo", first.entry_idx) is None  # once
            [again] = pair.outbound(r, "bravo")
            await pair.deliver(r, pair.bravo, [again])
            m = schema.messages
            with r.read_engine.connect() as conn:
                row = conn.execute(
                    sa.select(m.c.sequence, m.c.entry_idx, m.c.delivered_at_us).where(
                        m.c.message_id == str(first.message_id)
                    )
                ).one()
            assert row.sequence == 4
            assert row.entry_idx == new_idx
            assert row.delivered_at_us is not None
            with pair.bravo.read_engine.connect() as conn:
                got = conn.execute(
                    sa.select(m.c.sequence, m.c.body).where(m.c.message_id == str(first.message_id))
                ).one()
            assert got.sequence == 4
            assert "sent before the station knew" in got.body
            live = snapshot(r)
            await r.writer.submit(lambda tx: r.line.rebuild_projections(tx.conn))
            assert snapshot(r) == live

    run_pair(scenario)


def test_a_refused_acknowledgement_is_reissued_too(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        await sent_before_backup_was_lost(pair, 2)
        async with restored(pair) as r:
            sent = await pair.send("please ack", src=pair.bravo, dst="alpha")
            await pair.deliver(pair.bravo, r, pair.outbound(pair.bravo, "alpha"))
            await r.line.acknowledge(str(sent.message_id), "officer")
            [ack] = pair.outbound(r, "bravo")
            [refused] = await pair.bravo.line.store_inbound([pair.bravo.line.check_inbound(ack)])
            assert isinstance(refused, ReplayError)
            await r.resync.on_reply("bravo", 2, 2)
            e, o = schema.entries, schema.outbox
            with r.read_engine.connect() as conn:
                idx = conn.execute(sa.select(o.c.entry_idx)).scalar_one()
                assert conn.execute(sa.select(e.c.idx).where(e.c.idx == idx)).scalar_one() == idx
            assert await r.resync.reissue("bravo", int(idx)) is not None
            await pair.deliver(r, pair.bravo, pair.outbound(r, "bravo"))
            m = schema.messages
            with pair.bravo.read_engine.connect() as conn:
                by = conn.execute(
                    sa.select(m.c.acknowledged_by).where(m.c.message_id == str(sent.message_id))
                ).scalar_one()
            assert by == "officer"

    run_pair(scenario)


def test_a_claim_far_beyond_our_ledger_moves_nothing_and_raises_an_alarm(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        before = snapshot(pair.alpha)
        got = await pair.alpha.resync.on_reply("bravo", 0, MAX_RESUME_JUMP + 5)
        assert got is None
        assert snapshot(pair.alpha) == before
        [alarm] = open_alarms(pair.alpha, "resync_refused")
        assert alarm["peer"] == "bravo"

    run_pair(scenario)


GARBAGE = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def lone(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One SQLite station with peer bravo (garbage claims are not about the store kind)."""
    from tests.service.conftest import station_with_bravo

    station = station_with_bravo(tmp_path_factory.mktemp("lone"))
    yield station
    station.close()


@GARBAGE
@given(contiguous=st.integers(0, 2**63 - 1), highest=st.integers(0, 2**63 - 1))
def test_any_claim_of_the_peer_is_bounded(lone: Station, contiguous: int, highest: int) -> None:
    import asyncio

    before = next_seq(lone)
    asyncio.run(lone.resync.on_reply("bravo", contiguous, highest))
    after = next_seq(lone)
    assert before <= after <= before + MAX_RESUME_JUMP
    assert after == before or after == highest + 1


def test_the_station_wires_replies_and_replay_refusals_to_resync(run_pair: Any) -> None:
    """What station.py does with the link tester's replies and the outbox's refusals
    (hooks the link layer calls; here called as it would)."""

    async def scenario(pair: Pair) -> None:
        import asyncio

        await sent_before_backup_was_lost(pair)
        async with restored(pair) as r:
            first = await r.line.send(
                peer="bravo", channel="working", precedence=Precedence.ROUTINE,
                payload=MessagePayload(text="queued too early"),
            )  # fmt: skip
            reply = await link_test(r, pair.bravo)
            async with asyncio.TaskGroup() as tg:
                r._tg = tg
                r._on_reply("bravo", reply)
                r._on_refused("bravo", "bad_payload", first.entry_idx)  # not a replay: kept
            assert next_seq(r) == 4
            assert [len(pair.outbound(r, "bravo"))] == [1]
            with r.read_engine.connect() as conn:
                seq = conn.execute(sa.select(schema.outbox.c.sequence)).scalar_one()
            assert seq == 1
            async with asyncio.TaskGroup() as tg:
                r._tg = tg
                r._on_refused("bravo", "replay", first.entry_idx)
            r._tg = None
            with r.read_engine.connect() as conn:
                seq = conn.execute(sa.select(schema.outbox.c.sequence)).scalar_one()
            assert seq == 4
            await pair.deliver(r, pair.bravo, pair.outbound(r, "bravo"))

    run_pair(scenario)


def test_a_peer_that_lost_what_it_had_receipted_is_named_in_an_alarm(run_pair: Any) -> None:
    async def scenario(pair: Pair) -> None:
        await sent_before_backup_was_lost(pair)
        await pair.send("still queued")  # sequence 4: no receipt, so not "lost"
        async with restored(pair, "bravo") as b:
            reply = await link_test(pair.alpha, b)
            assert reply.missing == [(1, 4)]
            lost = await pair.alpha.resync.on_missing("bravo", reply.missing)
            assert lost == [1, 2, 3]
            [alarm] = open_alarms(pair.alpha, "peer_lost")
            assert alarm["ref"] == "1..3"
            assert await pair.alpha.resync.on_missing("bravo", [(4, 4)]) == []
            assert await pair.alpha.resync.on_missing("bravo", [(5, 2), (0, 0)]) == []
            assert len(open_alarms(pair.alpha, "peer_lost")) == 1

    run_pair(scenario)
