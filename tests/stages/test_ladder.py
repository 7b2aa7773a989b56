"""The stage ladder end to end between two in-process stations: send → receipt → read by
an officer → acknowledged → answered; the sender sees each stage with who and when."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hotline.service import queries, sender, stages
from hotline.station import Station
from hotline.store import schema
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import ledger_actions
from tests.stages.conftest import KIM, LEE, Pair


def view(station: Station, mid: str) -> dict[str, Any]:
    with station.read_engine.connect() as conn:
        found = queries.message_with_stages(conn, station.line.clock.now_us(), mid)
    assert found is not None
    return found


def stage_of(station: Station, mid: str) -> dict[str, Any]:
    rec: dict[str, Any] = view(station, mid)["recipients"][0]
    return rec


def rows(station: Station, table: sa.Table) -> list[tuple[Any, ...]]:
    key = list(table.primary_key.columns)
    with station.read_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table).order_by(*key))]


async def rebuilt_equals_live(station: Station) -> None:
    tables = (schema.message_reads, schema.message_answers, schema.messages)
    live = {t.name: rows(station, t) for t in tables}

    def rebuild(tx: Any) -> int:
        return int(station.line.rebuild_projections(tx.conn))

    await station.writer.submit(rebuild)
    assert {t.name: rows(station, t) for t in tables} == live


def test_ladder_end_to_end(run_pair: Callable[..., None]) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("Convoy at grid 37U DQ 12345 67890", Precedence.IMMEDIATE)
        mid = str(sent.message_id)
        s = stage_of(p.alpha, mid)
        assert (s["stage"], s["summary"]) == ("queued", "queued")
        p.clock.advance(1)
        await p.flush()
        assert stage_of(p.alpha, mid)["stage"] == "delivered"
        assert stage_of(p.bravo, mid)["summary"] == "received, not answered"

        # an officer of bravo opens it: recorded once per officer, the sender told
        p.clock.advance(2)
        assert await stages.mark_read(p.bravo.line.ctx, KIM, mid) is True
        assert await stages.mark_read(p.bravo.line.ctx, KIM, mid) is False
        assert [a["officer"] for a in ledger_actions(p.bravo, "read")] == ["wo.kim"]
        read_at = p.clock.now_us()
        p.clock.advance(3)
        async with p.alpha.line.events.subscribe() as q:
            await p.flush()
            got = []
            while not q.empty():
                got.append(q.get_nowait())
        # the sender's event stream says who read it, with our time and the peer's claim
        [ev] = [e.data for e in got if e.type == "message_read"]
        assert (ev["message_id"], ev["officer"], ev["station"]) == (mid, "wo.kim", "bravo")
        assert (ev["read_at_us"], ev["claimed_read_at_us"]) == (p.clock.now_us(), read_at)
        assert [e.data["stage"] for e in got if e.type == "stage"] == ["read"]
        s = stage_of(p.alpha, mid)
        assert s["stage"] == "read"
        [read] = [x for x in s["stages"] if x["stage"] == "read"]
        assert (read["by"], read["ref"]) == ("wo.kim", "bravo")
        assert read["at_us"] == p.clock.now_us()  # our receive time
        assert read["claimed_at_us"] == read_at  # the peer's claim, beside it
        assert stage_of(p.bravo, mid)["stage"] == "read"

        # a second officer reads: both are shown, the stage stays "read"
        await stages.mark_read(p.bravo.line.ctx, LEE, mid)
        await p.flush()
        reads = [x["by"] for x in stage_of(p.alpha, mid)["stages"] if x["stage"] == "read"]
        assert reads == ["wo.kim", "swo.lee"]

        # acknowledged, by whom
        await sender.acknowledge(p.bravo.line.ctx, mid, KIM.username)
        await p.flush()
        s = stage_of(p.alpha, mid)
        assert (s["stage"], s["summary"]) == ("acknowledged", "acknowledged, not answered")
        [ack] = [x for x in s["stages"] if x["stage"] == "acknowledged"]
        assert ack["by"] == "wo.kim"

        # answered: a reply with in_reply_to, both sides
        reply = await p.bravo.line.send(
            peer="alpha", channel="working", precedence=Precedence.IMMEDIATE,
            payload=MessagePayload(text="Received; convoy noted", in_reply_to=sent.message_id),
        )  # fmt: skip
        await p.flush()
        for st, who in ((p.alpha, "bravo"), (p.bravo, "us")):
            s = stage_of(st, mid)
            assert (s["stage"], s["not_answered"]) == ("answered", False)
            [ans] = [x for x in s["stages"] if x["stage"] == "answered"]
            assert (ans["by"], ans["ref"]) == (who, str(reply.message_id))
        thread = [m["message_id"] for m in view(p.alpha, mid)["thread"]]
        assert thread == [mid, str(reply.message_id)]
        assert [m["message_id"] for m in view(p.alpha, str(reply.message_id))["thread"]] == thread

        # the read notices are control messages: no acknowledgement asked, none overdue
        p.clock.advance(24 * 3600)
        with p.alpha.read_engine.connect() as conn:
            overdue = [a for a in queries.alarms(conn, p.clock.now_us())
                       if a["kind"] == "ack_overdue"]  # fmt: skip
        assert [a["ref"] for a in overdue] == [str(reply.message_id)]

        for st in (p.alpha, p.bravo):
            await rebuilt_equals_live(st)

    run_pair(scenario)


def test_reading_our_own_message_records_nothing(run_pair: Callable[..., None]) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("hello")
        assert await stages.mark_read(p.alpha.line.ctx, KIM, str(sent.message_id)) is False
        assert ledger_actions(p.alpha, "read") == []

    run_pair(scenario)
