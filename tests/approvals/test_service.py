"""The two-person rule as use cases, on SQLite and PostgreSQL, with a FakeClock: request,
approve (sent once, in the grant's unit), refuse, withdraw, expire (alarm, event), the
same officer refused, a closed request refused, roles, the "action required" source, and
the approvals table rebuilt from the ledger equal to the live one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.errors import HotlineError, PermissionDeniedError
from hotline.ledger.entry import EntryKind
from hotline.service import actions, approvals
from hotline.service.approvals import Requested
from hotline.service.events import Event
from hotline.service.roles import STATION
from hotline.service.sender import Sent
from hotline.station import Station
from hotline.store import approvals as store
from hotline.store import operational, schema
from hotline.wire.channels import ChannelSpec
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.approvals.conftest import (
    ALICE,
    AUDREY,
    BOB,
    CAROL,
    CHANNEL,
    Pair,
    approvals_rows,
    ledger_actions,
    messages,
    snapshot,
    two_person,
)
from tests.service.conftest import make_identity

Run = Callable[..., None]


async def ask(st: Station, text: str = "hold fire at grid 4", **kw: Any) -> Requested:
    result = await approvals.send_or_request(
        st.line.ctx,
        kw.pop("who", ALICE),
        peer="bravo",
        channel=kw.pop("channel", CHANNEL),
        precedence=kw.pop("precedence", Precedence.IMMEDIATE),
        payload=MessagePayload(text=text),
    )
    assert isinstance(result, Requested)
    return result


def row(st: Station, approval_id: str) -> dict[str, Any]:
    with st.read_engine.connect() as conn:
        found = store.get(conn, approval_id)
    assert found is not None
    return found


def drain(q: asyncio.Queue[Event]) -> list[Event]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


async def refused(code: str, coro: Any) -> HotlineError:
    with pytest.raises(HotlineError) as info:
        await coro
    assert info.value.code == code, info.value
    return info.value


def test_a_request_records_everything_and_sends_nothing(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        async with p.alpha.events.subscribe() as q:
            req = await ask(p.alpha)
            [event] = drain(q)
        assert req.peers == ["bravo"]
        assert req.requester == "alice"
        assert req.deadline_us == p.clock.now_us() + 600_000_000
        assert messages(p.alpha) == []
        assert p.outbound(p.alpha, "bravo") == []
        [action] = ledger_actions(p.alpha, "approval_request")
        assert action["requested_by"] == "alice"
        assert action["channel"] == CHANNEL
        assert action["peers"] == ["bravo"]
        assert action["precedence"] == 1
        assert action["payload"]["text"] == "hold fire at grid 4"
        r = row(p.alpha, req.approval_id)
        assert (r["state"], r["requester"], r["decided_by"]) == ("pending", "alice", None)
        assert event.type == "approval_requested"
        assert event.data["text"] == "hold fire at grid 4"
        assert event.data["requester"] == "alice"
        assert event.data["precedence"] == "IMMEDIATE"

    run_pair(scenario)


def test_approval_sends_once_in_the_grants_unit_and_the_peer_gets_it(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        two_person(p.bravo)  # the peer holds the terms too (else it refuses the channel)
        req = await ask(p.alpha)
        async with p.alpha.events.subscribe() as q:
            decided = await approvals.approve(p.alpha.line.ctx, BOB, req.approval_id)
            events = drain(q)
        assert decided["state"] == "approved"
        assert decided["decided_by"] == "bob"
        [sent] = messages(p.alpha)
        assert decided["message_ids"] == [sent["message_id"]]
        assert sent["operator"] == "alice"
        assert sent["channel"] == CHANNEL
        [grant] = ledger_actions(p.alpha, "approval_grant")
        assert grant["approved_by"] == "bob"
        assert grant["requested_by"] == "alice"
        assert grant["message_ids"] == [sent["message_id"]]
        # the grant is the entry right after the message's envelope: one unit
        assert _kinds_after(p.alpha, sent["entry_idx"]) == [EntryKind.OPERATOR_ACTION]
        assert {e.type for e in events} >= {"approval_decided", "message.queued"}
        [ev] = [e for e in events if e.type == "approval_decided"]
        assert ev.data["state"] == "approved"
        assert ev.data["decided_by"] == "bob"
        assert ev.data["message_ids"] == [sent["message_id"]]
        # a second approval (by anyone) is refused and sends nothing more
        await refused(
            "approval_closed", approvals.approve(p.alpha.line.ctx, CAROL, req.approval_id)
        )
        assert len(messages(p.alpha)) == 1
        await p.flush()
        [got] = messages(p.bravo, "in")
        assert got["message_id"] == sent["message_id"]
        assert "grid 4" in got["body"]

    run_pair(scenario)


def _kinds_after(st: Station, idx: int) -> list[EntryKind]:
    e = schema.entries
    with st.read_engine.connect() as conn:
        kinds = conn.execute(sa.select(e.c.kind).where(e.c.idx > idx).order_by(e.c.idx)).all()
    return [EntryKind(k) for (k,) in kinds]


def test_concurrent_approvals_send_once(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        req = await ask(p.alpha)
        ctx = p.alpha.line.ctx
        results = await asyncio.gather(
            approvals.approve(ctx, BOB, req.approval_id),
            approvals.approve(ctx, CAROL, req.approval_id),
            return_exceptions=True,
        )
        ok = [r for r in results if isinstance(r, dict)]
        bad = [r for r in results if isinstance(r, HotlineError)]
        assert len(ok) == 1
        assert [b.code for b in bad] == ["approval_closed"]
        assert len(messages(p.alpha)) == 1
        assert len(ledger_actions(p.alpha, "approval_grant")) == 1

    run_pair(scenario)


def test_the_requester_may_not_approve_or_refuse_their_own(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha, who=BOB)
        before = snapshot(p.alpha)
        err = await refused("same_officer", approvals.approve(ctx, BOB, req.approval_id))
        assert isinstance(err, PermissionDeniedError)
        assert "second officer" in err.hint
        await refused("same_officer", approvals.refuse(ctx, BOB, req.approval_id, "no"))
        assert snapshot(p.alpha) == before
        assert row(p.alpha, req.approval_id)["state"] == "pending"

    run_pair(scenario)


def test_refusal_names_the_officer_and_reason_and_closes_it(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha)
        for bad in ("", "   ", "x" * 2001):
            await refused("bad_reason", approvals.refuse(ctx, BOB, req.approval_id, bad))
        async with p.alpha.events.subscribe() as q:
            done = await approvals.refuse(ctx, BOB, req.approval_id, "wrong grid")
            [ev] = drain(q)
        assert (done["state"], done["decided_by"], done["reason"]) == (
            "refused",
            "bob",
            "wrong grid",
        )
        assert ev.type == "approval_decided"
        assert ev.data["reason"] == "wrong grid"
        [action] = ledger_actions(p.alpha, "approval_refuse")
        assert action["refused_by"] == "bob"
        assert action["reason"] == "wrong grid"
        await refused("approval_closed", approvals.approve(ctx, CAROL, req.approval_id))
        await refused("approval_closed", approvals.withdraw(ctx, ALICE, req.approval_id))
        assert messages(p.alpha) == []

    run_pair(scenario)


def test_only_the_requester_withdraws(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha)
        await refused("not_requester", approvals.withdraw(ctx, BOB, req.approval_id))
        done = await approvals.withdraw(ctx, ALICE, req.approval_id)
        assert (done["state"], done["decided_by"]) == ("withdrawn", "alice")
        [action] = ledger_actions(p.alpha, "approval_withdraw")
        assert action["withdrawn_by"] == "alice"
        await refused("approval_closed", approvals.approve(ctx, BOB, req.approval_id))
        await refused("approval_closed", approvals.withdraw(ctx, ALICE, req.approval_id))
        assert messages(p.alpha) == []

    run_pair(scenario)


def test_past_its_deadline_a_request_expires_with_an_alarm_and_an_event(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha, deadline_s=60)
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha)
        p.clock.advance(59)
        assert await approvals.expire_due(ctx) == []
        p.clock.advance(1)
        async with p.alpha.events.subscribe() as q:
            assert await approvals.expire_due(ctx) == [req.approval_id]
            [ev] = drain(q)
        assert await approvals.expire_due(ctx) == []  # once
        assert row(p.alpha, req.approval_id)["state"] == "expired"
        [action] = ledger_actions(p.alpha, "approval_expired")
        assert action["approval_id"] == req.approval_id
        assert ev.type == "approval_expired"
        assert ev.data["requester"] == "alice"
        with p.alpha.read_engine.connect() as conn:
            [alarm] = [a for a in operational.open_alarms(conn) if a["kind"] == "approval_expired"]
        assert alarm["ref"] == req.approval_id
        assert "alice" in alarm["detail"]
        await refused("approval_closed", approvals.approve(ctx, BOB, req.approval_id))
        assert messages(p.alpha) == []

    run_pair(scenario)


def test_an_approval_after_the_deadline_is_refused_and_records_the_expiry(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha, deadline_s=60)
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha)
        p.clock.advance(61)  # the background check has not run yet
        err = await refused("approval_closed", approvals.approve(ctx, BOB, req.approval_id))
        assert "expired" in err.message
        assert row(p.alpha, req.approval_id)["state"] == "expired"
        assert len(ledger_actions(p.alpha, "approval_expired")) == 1
        assert messages(p.alpha) == []
        assert ledger_actions(p.alpha, "approval_grant") == []

    run_pair(scenario)


def test_roles_who_may_approve(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha, who=CAROL)
        for who in (AUDREY, ALICE):  # an auditor, a watch officer: no approve role
            err = await refused("forbidden", approvals.approve(ctx, who, req.approval_id))
            assert "senior_watch_officer" in err.message
            await refused("forbidden", approvals.refuse(ctx, who, req.approval_id, "no"))
        await refused("forbidden", ask(p.alpha, who=AUDREY))  # an auditor cannot send
        # the station's bootstrap token holds every role, and is a different officer
        assert (await approvals.approve(ctx, STATION, req.approval_id))["state"] == "approved"

    run_pair(scenario)


def test_action_required_lists_what_the_officer_may_approve(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha, deadline_s=60)
        req = await ask(p.alpha, "first")
        await ask(p.alpha, "second", who=BOB, precedence=Precedence.FLASH)
        now = p.clock.now_us()
        with p.alpha.read_engine.connect() as conn:
            for_bob = actions.required(conn, BOB, now)
            for_carol = actions.required(conn, CAROL, now)
            for_alice = actions.required(conn, ALICE, now)
            for_audrey = actions.required(conn, AUDREY, now)
        assert [(i.kind, i.ref) for i in for_bob] == [("approve", req.approval_id)]
        assert [i.summary for i in for_carol] == [
            "approve bob's FLASH message: second",
            "approve alice's IMMEDIATE message: first",
        ]
        assert for_carol[1].due_at_us == req.deadline_us
        assert for_carol[1].channel == CHANNEL
        assert for_alice == []
        assert for_audrey == []
        p.clock.advance(61)
        with p.alpha.read_engine.connect() as conn:
            assert actions.required(conn, CAROL, p.clock.now_us()) == []

    run_pair(scenario)


def test_a_failed_send_records_no_grant(run_pair: Run) -> None:
    """Approval and message commit together or not at all: a message too large for the
    envelope limit is refused at approval, and the request stays pending, ungranted."""

    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha, "x" * 1500)
        before = snapshot(p.alpha)
        await refused("too_large", approvals.approve(ctx, BOB, req.approval_id))
        assert snapshot(p.alpha) == before
        assert row(p.alpha, req.approval_id)["state"] == "pending"
        assert ledger_actions(p.alpha, "approval_grant") == []

    run_pair(scenario, max_envelope_bytes=1024)


def test_a_request_is_checked_before_it_is_recorded(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        before = snapshot(p.alpha)
        await refused("empty_message", ask(p.alpha, "   "))
        await refused("text_too_long", ask(p.alpha, "y" * 101))
        assert snapshot(p.alpha) == before
        assert approvals_rows(p.alpha) == []
        await refused("not_found", approvals.approve(p.alpha.line.ctx, BOB, "no-such-id"))

    run_pair(scenario, max_text_chars=100)


def test_a_standing_channel_named_in_two_person_channels_needs_approval(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        ctx = p.alpha.line.ctx
        req = await ask(p.alpha, channel="working")
        assert req.peers == ["bravo"]
        assert messages(p.alpha) == []
        sent = await approvals.send_or_request(
            ctx, ALICE, peer="bravo", channel="deconfliction", precedence=Precedence.ROUTINE,
            payload=MessagePayload(text="no approval needed"),
        )  # fmt: skip
        assert isinstance(sent, Sent)
        await approvals.approve(ctx, BOB, req.approval_id)
        assert sorted(m["channel"] for m in messages(p.alpha)) == ["deconfliction", "working"]

    run_pair(scenario, two_person_channels=["working"])


def test_the_approvals_table_rebuilt_from_the_ledger_equals_the_live_one(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha, deadline_s=60)
        ctx = p.alpha.line.ctx
        approved = await ask(p.alpha, "one")
        refused_ = await ask(p.alpha, "two")
        withdrawn = await ask(p.alpha, "three")
        await ask(p.alpha, "four")  # will expire
        await approvals.approve(ctx, BOB, approved.approval_id)
        await approvals.refuse(ctx, CAROL, refused_.approval_id, "not now")
        await approvals.withdraw(ctx, ALICE, withdrawn.approval_id)
        p.clock.advance(30)
        pending = await ask(p.alpha, "five")
        p.clock.advance(31)
        await approvals.expire_due(ctx)
        live = approvals_rows(p.alpha)
        states = sorted(r["state"] for r in _listing(p.alpha))
        assert states == ["approved", "expired", "pending", "refused", "withdrawn"]
        before = snapshot(p.alpha)
        await p.alpha.writer.submit(lambda tx: p.alpha.line.rebuild_projections(tx.conn))
        assert approvals_rows(p.alpha) == live
        assert snapshot(p.alpha) == before
        assert row(p.alpha, pending.approval_id)["state"] == "pending"

    run_pair(scenario)


def _listing(st: Station) -> list[dict[str, Any]]:
    with st.read_engine.connect() as conn:
        rows: list[dict[str, Any]] = approvals.listing(conn)
    return rows


def test_listing_shows_pending_first_and_filters_by_state(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha, deadline_s=60)
        ctx = p.alpha.line.ctx
        first = await ask(p.alpha, "a")
        p.clock.advance(1)
        second = await ask(p.alpha, "b")
        p.clock.advance(1)
        third = await ask(p.alpha, "c")
        await approvals.withdraw(ctx, ALICE, first.approval_id)
        ids = [r["id"] for r in _listing(p.alpha)]
        assert ids == [second.approval_id, third.approval_id, first.approval_id]
        with p.alpha.read_engine.connect() as conn:
            only = approvals.listing(conn, state="withdrawn")
            assert [r["id"] for r in only] == [first.approval_id]

    run_pair(scenario)


def test_the_background_check_expires_what_is_due(run_pair: Run) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha, deadline_s=60)
        req = await ask(p.alpha)
        task = asyncio.create_task(approvals.run_expiry(p.alpha.line.ctx))
        try:
            p.clock.advance(60)
            for _ in range(500):  # the loop checks every approval_check_interval_s
                if row(p.alpha, req.approval_id)["state"] == "expired":
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
        assert row(p.alpha, req.approval_id)["state"] == "expired"
        assert len(ledger_actions(p.alpha, "approval_expired")) == 1

    run_pair(scenario, approval_check_interval_s=0.01)


def test_a_request_to_several_members_sends_to_each_and_names_every_message(
    run_pair: Run,
) -> None:
    """A channel with a third member (charlie: a peer of alpha that never answers here):
    the grant goes with the first message, an ``approval_sent`` with the other."""

    async def scenario(p: Pair) -> None:
        _card, unit = p.alpha.line.peer_add_unit(make_identity("charlie").card().to_text(), "t")
        await p.alpha.writer.submit(unit)
        ctx = p.alpha.line.ctx
        ctx.channels.agree(
            ChannelSpec(name="trio", level="ministers", members=["alpha", "bravo", "charlie"],
                        two_person=True)
        )  # fmt: skip
        req = await ask(p.alpha, channel="trio")
        assert req.peers == ["bravo", "charlie"]
        done = await approvals.approve(ctx, BOB, req.approval_id)
        sent = {m["peer"]: m["message_id"] for m in messages(p.alpha)}
        assert set(sent) == {"bravo", "charlie"}
        assert done["message_ids"] == [sent["bravo"], sent["charlie"]]
        [grant] = ledger_actions(p.alpha, "approval_grant")
        assert grant["message_ids"] == [sent["bravo"]]
        [also] = ledger_actions(p.alpha, "approval_sent")
        assert (also["peer"], also["message_id"]) == ("charlie", sent["charlie"])
        live = approvals_rows(p.alpha)
        await p.alpha.writer.submit(lambda tx: p.alpha.line.rebuild_projections(tx.conn))
        assert approvals_rows(p.alpha) == live

    run_pair(scenario)
