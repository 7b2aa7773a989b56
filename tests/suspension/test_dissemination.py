"""Dissemination between two in-process stations (SQLite and PostgreSQL): the receiving
side records to whom and when it passed a message on; the record travels back as its
own signed message and shows in the sender's thread; a peer's conflict notice not passed
on in time raises not_disseminated (fake clock), and recording it clears the alarm; a
hostile peer's records are kept as claims; rebuilt equals live."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.errors import InputError, NotFoundError, PermissionDeniedError
from hotline.service import actions, dissemination, queries
from hotline.service.dissemination_watch import DisseminationWatch
from hotline.station import Station
from hotline.store import operational
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import Pair, ledger_actions
from tests.service.test_registry_service import activity_notice, away, site_notice
from tests.suspension.conftest import AUDITOR, WATCH, rebuilt_equals_live

MINUTE_US = 60_000_000


def records(st: Station, mid: str) -> list[dict[str, Any]]:
    with st.read_engine.connect() as conn:
        return dissemination.records(conn, mid)


def open_alarms(st: Station, kind: str) -> list[dict[str, Any]]:
    with st.read_engine.connect() as conn:
        return [a for a in operational.open_alarms(conn) if a["kind"] == kind]


def thread(st: Station) -> list[dict[str, Any]]:
    with st.read_engine.connect() as conn:
        return queries.list_messages(conn, st.clock.now_us(), channel="working", limit=100)


def action_items(st: Station) -> list[actions.ActionItem]:
    with st.read_engine.connect() as conn:
        return [
            i for i in actions.required(conn, WATCH, st.clock.now_us()) if i.kind == "disseminate"
        ]


async def forge_record(p: Pair, data: dict[str, Any]) -> None:
    """bravo sends a dissemination message with any data (the check of our own records
    is bypassed: this is what a hostile peer can put on the wire)."""
    ctx = p.bravo.line.ctx
    saved = ctx.validators["dissemination"]
    ctx.validators["dissemination"] = lambda _d: None
    try:
        await p.bravo.line.send(
            peer="alpha", channel="working", precedence=Precedence.ROUTINE,
            payload=MessagePayload(type="dissemination", text="x", data=data, ack_required=False),
        )  # fmt: skip
    finally:
        ctx.validators["dissemination"] = saved
    await p.flush()


def test_a_dissemination_record_travels_back_and_shows_in_the_thread(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("strike corridor closed 14:00-16:00", Precedence.IMMEDIATE)
        mid = str(sent.message_id)
        await p.flush()
        p.clock.advance(120)
        at = p.clock.now_us() - MINUTE_US
        done = await dissemination.disseminate(
            p.bravo.line.ctx, WATCH, mid, to="3rd brigade operations cell", at_us=at,
            note="by phone",
        )  # fmt: skip
        assert (done["officer"], done["passed_at_us"], done["direction"]) == (
            "lt.shevchenko", at, "out",
        )  # fmt: skip
        [action] = ledger_actions(p.bravo, "disseminate")
        assert (action["officer"], action["to"], action["peer"]) == (
            "lt.shevchenko", "3rd brigade operations cell", "alpha",
        )  # fmt: skip
        await p.flush()
        [ours] = records(p.bravo, mid)
        [theirs] = records(p.alpha, mid)
        assert ours["direction"] == "out"
        assert theirs["direction"] == "in"
        assert theirs["outcome"] == "recorded"
        for key in ("to", "passed_at_us", "officer", "note", "message_id"):
            assert theirs[key] == ours[key]
        assert theirs["record_id"] == done["record_id"]
        # the sender's thread shows it, typed, as a reply to the message; no ack needed
        [shown] = [m for m in thread(p.alpha) if m["type"] == "dissemination"]
        assert shown["direction"] == "in"
        assert shown["body"]["in_reply_to"] == mid
        assert shown["body"]["data"]["to"] == "3rd brigade operations cell"
        assert shown["precedence"] == "IMMEDIATE"
        assert shown["ack_required"] is False
        # and the message itself carries its records (typed) in the thread
        [original] = [m for m in thread(p.alpha) if m["message_id"] == mid]
        assert [(d["direction"], d["to"]) for d in original["disseminations"]] == [
            ("in", "3rd brigade operations cell"),
        ]  # fmt: skip
        # recorded twice is two records (passed to two units)
        await dissemination.disseminate(p.bravo.line.ctx, WATCH, mid, to="artillery HQ")
        await p.flush()
        assert [r["to"] for r in records(p.alpha, mid)] == [
            "3rd brigade operations cell", "artillery HQ",
        ]  # fmt: skip
        await rebuilt_equals_live(p.alpha)
        await rebuilt_equals_live(p.bravo)

    run_pair(scenario)


def test_dissemination_refusals(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send("hello")
        mid = str(sent.message_id)
        await p.flush()
        b = p.bravo.line.ctx

        async def code(coro: Any) -> str:
            with pytest.raises((InputError, NotFoundError, PermissionDeniedError)) as exc:
                await coro
            return str(exc.value.code)

        now = p.clock.now_us()
        assert await code(dissemination.disseminate(b, AUDITOR, mid, to="x")) == "forbidden"
        assert await code(dissemination.disseminate(b, WATCH, mid, to="  ")) == "bad_input"
        assert await code(dissemination.disseminate(b, WATCH, mid, to="x", note="n" * 2001)) == (
            "bad_input"
        )
        assert await code(dissemination.disseminate(b, WATCH, "not-a-uuid", to="x")) == (
            "not_found"
        )
        # our own message is not ours to pass on: only a received one
        assert await code(dissemination.disseminate(p.alpha.line.ctx, WATCH, mid, to="x")) == (
            "not_found"
        )
        future = now + 3_600_000_000
        assert await code(dissemination.disseminate(b, WATCH, mid, to="x", at_us=future)) == (
            "bad_time"
        )
        before = now - 3_600_000_000
        assert await code(dissemination.disseminate(b, WATCH, mid, to="x", at_us=before)) == (
            "bad_time"
        )
        assert ledger_actions(p.bravo, "disseminate") == []

    run_pair(scenario)


def test_a_hostile_peers_records_are_kept_as_claims(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        to_bravo = await p.send("to bravo")
        await p.flush()
        p.clock.advance(600)
        now = p.clock.now_us()
        base = {"to": "x", "at_us": now, "officer": "Col. Lie"}
        never = "00000000-0000-4000-8000-000000000000"
        bravos_own = await p.send("from bravo", src=p.bravo, dst="alpha")
        cases = [
            ({**base, "message_id": never}, "unknown_message"),
            # a message bravo sent us is not one we sent bravo
            ({**base, "message_id": str(bravos_own.message_id)}, "unknown_message"),
            # passed on long before the message existed
            ({**base, "message_id": str(to_bravo.message_id), "at_us": now - 3_600_000_000},
             "bad_time"),
        ]  # fmt: skip
        for data, outcome in cases:
            await forge_record(p, data)
            [row] = records(p.alpha, data["message_id"])[-1:]
            assert row["outcome"] == outcome
        claims = open_alarms(p.alpha, "dissemination_claim")
        assert len(claims) == 3
        assert all(a["peer"] == "bravo" for a in claims)
        # a time in the future (beyond the envelope and the skew) is refused at the inbox
        ctx = p.bravo.line.ctx
        ctx.validators["dissemination"] = lambda _d: None
        far = {**base, "message_id": str(to_bravo.message_id), "at_us": now + 3_600_000_000}
        await p.bravo.line.send(
            peer="alpha", channel="working", precedence=Precedence.ROUTINE,
            payload=MessagePayload(type="dissemination", text="x", data=far, ack_required=False),
        )  # fmt: skip
        [raw] = p.outbound(p.bravo, "alpha")
        with pytest.raises(Exception, match="bad_time"):
            p.alpha.line.check_inbound(raw)
        await rebuilt_equals_live(p.alpha)

    run_pair(scenario)


async def hospital_conflict(p: Pair) -> str:
    """bravo notifies a hospital, alpha an artillery activity near it: a conflict on both
    sides. Returns the id of the message that carried bravo's notice to alpha."""
    await p.bravo.deconfliction.send_data(
        site_notice("HOSP-1", category="hospital", radius_m=1_000.0)
    )
    await p.alpha.deconfliction.send_data(activity_notice("a1", point=away(1.2)))
    await p.flush()
    [mid] = [m["message_id"] for m in thread_all(p.alpha) if m["type"] == "site_notice"]
    return str(mid)


def thread_all(st: Station) -> list[dict[str, Any]]:
    with st.read_engine.connect() as conn:
        return queries.list_messages(conn, st.clock.now_us(), direction="in", limit=100)


def test_a_conflict_notice_not_passed_on_in_time_raises_an_alarm(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        mid = await hospital_conflict(p)
        watch = DisseminationWatch(p.alpha.line.ctx, p.alpha.registry)
        events: list[Any] = []
        async with p.alpha.events.subscribe() as q:
            assert await watch.check_once() == []
            [item] = action_items(p.alpha)
            assert (item.ref, item.peer) == (mid, "bravo")
            assert "HOSP-1" in item.summary
            deadline = item.due_at_us
            assert deadline == p.clock.now_us() + 1800 * 1_000_000
            p.clock.advance(1799)
            assert await watch.check_once() == []
            p.clock.advance(2)
            [raised] = await watch.check_once()
            assert raised["message_id"] == mid
            [alarm] = open_alarms(p.alpha, "not_disseminated")
            assert (alarm["ref"], alarm["peer"], alarm["severity"]) == (mid, "bravo", "HIGH")
            assert await watch.check_once() == []  # raised once
            await dissemination.disseminate(
                p.alpha.line.ctx, WATCH, mid, to="1st artillery battalion fire control"
            )
            assert open_alarms(p.alpha, "not_disseminated") == []
            assert action_items(p.alpha) == []
            assert await watch.check_once() == []
            assert open_alarms(p.alpha, "not_disseminated") == []
            while not q.empty():
                events.append(q.get_nowait())
        kinds = [e.type for e in events]
        assert "not_disseminated" in kinds
        assert "dissemination" in kinds
        [nd] = [e for e in events if e.type == "not_disseminated"]
        assert nd.data["message_id"] == mid
        assert "HOSP-1" in nd.data["detail"]
        await p.flush()
        # bravo, the notifying side, sees that its hospital notice reached a firing unit
        [back] = records(p.bravo, mid)
        assert back["to"] == "1st artillery battalion fire control"
        assert back["outcome"] == "recorded"

    run_pair(scenario)


def test_the_alarm_clears_when_the_conflict_ends(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await hospital_conflict(p)
        watch = DisseminationWatch(p.alpha.line.ctx, p.alpha.registry)
        p.clock.advance(600)
        assert len(await watch.check_once()) == 1
        await p.alpha.deconfliction.send_data(activity_notice("a1", action="cancel"))
        await p.flush()
        assert await watch.check_once() == []
        assert open_alarms(p.alpha, "not_disseminated") == []
        assert action_items(p.alpha) == []
        # bravo had alpha's activity in the conflict too; the deadline is a setting
        bravo = DisseminationWatch(p.bravo.line.ctx, p.bravo.registry)
        assert await bravo.check_once() == []

    run_pair(scenario, dissemination_deadline_s=300.0)


def test_the_watch_sees_notices_learnt_before_a_restart(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        mid = await hospital_conflict(p)
        ext = dissemination.projection_of(p.alpha.line.ctx)
        known = dict(ext.notices)
        ext.notices.clear()
        with p.alpha.read_engine.connect() as conn:
            ext.load(conn)
        assert ext.notices == known
        assert mid in ext.notices.values()

    run_pair(scenario)
