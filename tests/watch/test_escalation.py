"""Escalation with a fake clock: a missed deadline climbs the ladder, once per step,
on both sides where the ladder says so; an acknowledgement stops it; a restart repeats
nothing; the rebuilt projections equal the live ones."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.service import escalation
from hotline.service.escalation import Escalator, Step, due_steps, ladder
from hotline.settings import Settings
from hotline.store import schema
from hotline.wire.channels import ChannelSpec, EscalationStep
from hotline.wire.envelope import Precedence
from tests.service.conftest import ledger_actions
from tests.watch.conftest import ROUTINE_S, Pair, alarms, rebuilt_equals_live, rows

SHORT = {"ack_deadline_routine_s": ROUTINE_S}


def test_default_ladder_counts_in_deadlines() -> None:
    steps = ladder(None, Settings(), 600.0)
    assert steps == [
        Step(1, 0.0, "senior_watch_officer", True),
        Step(2, 600.0, "principal", True),
    ]
    assert due_steps(steps, 1_000, 999, set()) == []
    assert due_steps(steps, 1_000, 1_000, set()) == steps[:1]
    assert due_steps(steps, 1_000, 1_000 + 600_000_000, {1}) == steps[1:]


def test_agreed_channel_uses_its_own_ladder() -> None:
    spec = ChannelSpec(
        name="chiefs", level="chiefs_of_staff", members=["alpha", "bravo"],
        escalation=[EscalationStep(after_s=30, role="principal")],
    )  # fmt: skip
    assert ladder(spec, Settings(), 600.0) == [Step(1, 30.0, "principal", False)]
    none = ChannelSpec(name="quiet", level="working", members=["alpha", "bravo"])
    assert ladder(none, Settings(), 600.0) == []


def test_missed_deadline_climbs_the_ladder_on_both_sides(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("report the convoy position")
        mid = str(sent.message_id)
        await p.flush()
        events: list[Any] = []
        esc = Escalator(p.alpha.line.ctx)
        async with p.alpha.events.subscribe() as q:
            assert await esc.check() == []  # not yet overdue
            p.clock.advance(ROUTINE_S + 1)
            taken = await esc.check()
            while not q.empty():
                events.append(q.get_nowait())
        assert [t.step.number for t in taken] == [1]
        [a] = alarms(p.alpha)
        assert (a["role"], a["ref"], a["peer"]) == ("senior_watch_officer", mid, "bravo")
        [ev] = [e for e in events if e.type == "escalation"]
        assert ev.data["text"] == "report the convoy position"
        assert ev.data["role"] == "senior_watch_officer"
        assert ev.data["step"] == 1
        [action] = ledger_actions(p.alpha, "escalation")
        assert (action["message_id"], action["step"], action["role"]) == (
            mid, 1, "senior_watch_officer",
        )  # fmt: skip
        # both sides: the peer records it and raises its own alarm for that role
        await p.flush()
        [b] = alarms(p.bravo)
        assert (b["role"], b["ref"], b["peer"]) == ("senior_watch_officer", mid, "alpha")
        [row] = rows(p.bravo, schema.escalations)
        assert (row["origin"], row["status"], row["step"]) == ("peer", "raised", 1)
        # nothing more until the next step is due
        assert await esc.check() == []
        p.clock.advance(ROUTINE_S)
        assert [t.step.role for t in await esc.check()] == ["principal"]
        assert {a["role"] for a in alarms(p.alpha)} == {"senior_watch_officer", "principal"}
        await p.flush()
        assert {a["role"] for a in alarms(p.bravo)} == {"senior_watch_officer", "principal"}
        # a restart (a new check on the same record) repeats no step
        p.clock.advance(10 * ROUTINE_S)
        assert await Escalator(p.alpha.line.ctx).check() == []
        assert len(ledger_actions(p.alpha, "escalation")) == 2
        # the acknowledgement clears the escalation alarms on both sides
        await p.bravo.line.acknowledge(mid, "Lt. Shevchenko")
        await p.flush()
        assert alarms(p.alpha) == []
        assert alarms(p.bravo) == []
        await rebuilt_equals_live(p)

    run_pair(scenario, **SHORT)


def test_acknowledgement_stops_further_steps(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("hold fire", Precedence.ROUTINE)
        await p.flush()
        esc = Escalator(p.alpha.line.ctx)
        p.clock.advance(ROUTINE_S + 1)
        assert len(await esc.check()) == 1
        await p.bravo.line.acknowledge(str(sent.message_id), "Lt. Shevchenko")
        await p.flush()
        p.clock.advance(5 * ROUTINE_S)
        assert await esc.check() == []
        assert len(ledger_actions(p.alpha, "escalation")) == 1
        assert alarms(p.alpha) == []

    run_pair(scenario, **SHORT)


def test_step_without_both_sides_stays_here(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        spec = ChannelSpec(
            name="working", level="working", members=["alpha", "bravo"],
            escalation=[EscalationStep(after_s=0, role="senior_watch_officer")],
        )  # fmt: skip
        p.alpha.line.ctx.channels.agree(spec)
        await p.send("quiet step")
        await p.flush()
        p.clock.advance(ROUTINE_S + 1)
        assert len(await Escalator(p.alpha.line.ctx).check()) == 1
        assert p.outbound(p.alpha, "bravo") == []  # nothing told to the peer
        assert len(alarms(p.alpha)) == 1

    run_pair(scenario, **SHORT)


def test_peer_step_for_a_message_acknowledged_meanwhile_is_ignored(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("crossing at dawn")
        mid = str(sent.message_id)
        await p.flush()
        p.clock.advance(ROUTINE_S + 1)
        assert len(await Escalator(p.alpha.line.ctx).check()) == 1
        await p.bravo.line.acknowledge(mid, "Lt. Shevchenko")  # before the step arrives
        await p.flush()
        [row] = rows(p.bravo, schema.escalations)
        assert (row["status"], row["code"]) == ("ignored", "already_acknowledged")
        assert alarms(p.bravo) == []
        assert alarms(p.alpha) == []  # the acknowledgement cleared alpha's step
        await rebuilt_equals_live(p)

    run_pair(scenario, **SHORT)


def test_a_rebuild_clears_alarms_of_messages_acknowledged(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("report")
        await p.flush()
        p.clock.advance(ROUTINE_S + 1)
        await Escalator(p.alpha.line.ctx).check()
        await p.flush()
        assert len(alarms(p.alpha)) == 1
        ext = next(e for e in p.alpha.line.extensions if hasattr(e, "rebuild_finished")
                   and e.tables == schema.WATCH_TABLES)  # fmt: skip
        ext.reset()  # an acknowledgement that arrives while alarms are left alone
        await p.bravo.line.acknowledge(str(sent.message_id), "Lt. Shevchenko")
        await p.flush()
        assert len(alarms(p.alpha)) == 1

        def rebuild(tx: Any) -> int:
            return int(p.alpha.line.rebuild_projections(tx.conn))

        await p.alpha.writer.submit(rebuild)
        assert alarms(p.alpha) == []

    run_pair(scenario, **SHORT)


def test_the_peers_steps_become_events_with_their_content(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        watch_b = Escalator(p.bravo.line.ctx)
        sent = await p.send("the peer must hear of this")
        await p.flush()
        p.clock.advance(ROUTINE_S + 1)
        await Escalator(p.alpha.line.ctx).check()
        async with p.bravo.events.subscribe() as q:
            await p.flush()  # bravo stores alpha's step: published once it is durable
            await watch_b.check()
            await watch_b.check()  # published once
            events = [q.get_nowait() for _ in range(q.qsize())]
        [ev] = [e for e in events if e.type == "escalation"]
        assert ev.data["origin"] == "peer"
        assert ev.data["message_id"] == str(sent.message_id)
        assert (ev.data["peer"], ev.data["role"], ev.data["step"]) == (
            "alpha", "senior_watch_officer", 1,
        )  # fmt: skip

    run_pair(scenario, **SHORT)


def test_every_overdue_message_is_reached_page_by_page(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(escalation, "PAGE", 2)

    async def scenario(p: Pair) -> None:
        sent = [await p.send(f"m{i}") for i in range(5)]
        await p.flush()
        p.clock.advance(ROUTINE_S + 1)
        taken = await Escalator(p.alpha.line.ctx).check()
        assert sorted(t.message_id for t in taken) == sorted(str(s.message_id) for s in sent)

    run_pair(scenario, **SHORT)
