"""The live events carry what an operator's screen shows, not only ids: subscribed in
process while two stations exchange a message, a receipt and acknowledgements, and while
a line goes down and comes back."""

from __future__ import annotations

from typing import Any

from hotline.api.openapi import EVENT_TYPES
from hotline.link.linktest import HealthRecorder
from hotline.service.events import MAX_EVENT_TEXT, Event
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.search.conftest import Pair

LONG = "Конвой " * 200  # longer than an event carries


def drain(q: Any) -> list[Event]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def one(events: list[Event], type_: str) -> dict[str, Any]:
    found = [e.data for e in events if e.type == type_]
    assert len(found) == 1, (type_, [e.type for e in events])
    return found[0]


def test_message_events_carry_their_content(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        async with p.alpha.line.events.subscribe() as qa, p.bravo.line.events.subscribe() as qb:
            sent = await p.alpha.line.send(
                peer="bravo", channel="deconfliction", precedence=Precedence.FLASH,
                payload=MessagePayload(text=LONG), operator="Maj. Ivanova",
            )  # fmt: skip
            await p.flush()
            p.clock.advance(30)
            await p.bravo.line.acknowledge(str(sent.message_id), "Lt. Shevchenko", "on it")
            await p.flush()
            a, b = drain(qa), drain(qb)
        mid = str(sent.message_id)
        queued = one(a, "message.queued")
        assert queued["message_id"] == mid
        assert queued["peer"] == "bravo"
        assert queued["channel"] == "deconfliction"
        assert queued["precedence"] == "FLASH"
        assert queued["type"] == "text"
        assert queued["text"] == LONG[:MAX_EVENT_TEXT]
        assert queued["text_truncated"] is True
        assert queued["operator"] == "Maj. Ivanova"
        assert queued["sequence"] == sent.sequence
        assert queued["queued_at_us"] > 0

        received = one(b, "message.received")
        assert received["message_id"] == mid
        assert received["peer"] == "alpha"
        assert received["channel"] == "deconfliction"
        assert received["precedence"] == "FLASH"
        assert received["text"] == LONG[:MAX_EVENT_TEXT]
        assert received["claimed_sent_at_us"] == queued["queued_at_us"]
        assert received["received_at_us"] >= received["claimed_sent_at_us"]

        delivered = one(a, "message.delivered")
        assert delivered["message_id"] == mid
        assert delivered["sequence"] == sent.sequence
        assert delivered["delivered_at_us"] > 0
        assert delivered["claimed_stored_at_us"] == received["received_at_us"]

        acked = one(b, "message.acknowledged")
        assert acked["message_id"] == mid
        assert acked["officer"] == "Lt. Shevchenko"
        assert acked["note"] == "on it"
        assert acked["channel"] == "deconfliction"
        assert acked["acknowledged_at_us"] == received["received_at_us"] + 30_000_000

        ack = one(a, "ack.received")
        assert ack["message_id"] == mid
        assert ack["peer"] == "bravo"
        assert ack["officer"] == "Lt. Shevchenko"
        assert ack["note"] == "on it"
        assert ack["claimed_acknowledged_at_us"] == acked["acknowledged_at_us"]
        assert ack["acknowledged_at_us"] >= ack["claimed_acknowledged_at_us"]
        for e in a + b:
            assert e.type in EVENT_TYPES

    run_pair(scenario)


def test_link_state_and_alarm_events_carry_their_content(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        recorder = HealthRecorder(p.alpha.line)
        async with p.alpha.line.events.subscribe() as q:
            await recorder.success("bravo", 12.0, 0.0)
            for _ in range(p.alpha.line.settings.link_down_after_failures):
                await recorder.failure("bravo", "peer_unreachable")
            events = drain(q)
            await recorder.failure("bravo", "peer_unreachable")  # still down: no new alarm
            assert not [e for e in drain(q) if e.type == "alarm.raised"]
        states = [e.data for e in events if e.type == "link.state"]
        assert states[0]["state"] == "UP"
        assert states[-1]["state"] == "DOWN"
        down = states[-1]
        assert down["peer"] == "bravo"
        assert down["last_error"] == "peer_unreachable"
        assert down["failures"] >= 1
        assert down["old_state"] != "DOWN"
        alarm = one(events, "alarm.raised")
        assert alarm["kind"] == "link_down"
        assert alarm["severity"] == "HIGH"
        assert alarm["peer"] == "bravo"
        assert "DOWN" in alarm["detail"]
        assert alarm["raised_at_us"] == p.clock.now_us()
        assert set(alarm) == {"kind", "severity", "peer", "ref", "detail", "raised_at_us"}

    run_pair(scenario)


def test_a_conflict_alarm_reaches_the_event_stream_with_its_content(run_pair: Any) -> None:
    """A conflict alarm is opened inside the projection (the registry, in the writer's
    unit): it is published as ``alarm.raised`` once the unit is durable, on both
    stations, and a rebuild publishes nothing again."""
    from hotline.store.writer import WriteTx
    from tests.service.test_registry_service import activity_notice, with_znpp

    async def scenario(p: Any) -> None:
        await with_znpp(p)
        async with p.alpha.line.events.subscribe() as qa, p.bravo.line.events.subscribe() as qb:
            await p.alpha.deconfliction.send_data(activity_notice("near"))
            await p.flush()
            for q in (qa, qb):
                raised = [e.data for e in drain(q) if e.type == "alarm.raised"]
                [conflict] = [d for d in raised if d["kind"] == "conflict"]
                assert conflict["ref"] == "ZNPP|near"
                assert conflict["severity"] in ("HIGH", "CRITICAL")
                assert "ZNPP" in conflict["detail"]
                assert conflict["raised_at_us"] > 0

            def rebuild(tx: WriteTx) -> None:
                p.bravo.line.rebuild_projections(tx.conn)

            await p.bravo.writer.submit(rebuild)
            assert [e for e in drain(qb) if e.type == "alarm.raised"] == []

    run_pair(scenario)
