"""Suspension between two in-process stations (SQLite and PostgreSQL): declared on the
record, shown and enforced on both sides, link tests going on, resumed by the party that
suspended it only; a hostile peer's claims kept as claims; rebuilt equals live."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.errors import InputError, NotFoundError, PermissionDeniedError
from hotline.service import suspension
from hotline.service.suspension import MAX_ACTIVE_PER_PEER
from hotline.station import Station
from hotline.store import schema
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import Pair, ledger_actions
from tests.suspension.conftest import AUDITOR, SENIOR, WATCH, rebuilt_equals_live


def active(st: Station) -> list[dict[str, Any]]:
    return suspension.state(st.line.ctx)


def history(st: Station) -> list[Any]:
    with st.read_engine.connect() as conn:
        return list(conn.execute(sa.select(schema.suspensions).order_by("entry_idx")).all())


async def refused_code(coro: Any) -> str:
    with pytest.raises((InputError, NotFoundError, PermissionDeniedError)) as exc:
        await coro
    return str(exc.value.code)


async def link_test(p: Pair) -> None:
    """alpha tests the line to bravo, in-process, and records the result (UP)."""
    env, sent = p.alpha.line.make_link_test("bravo")
    got, test = p.bravo.line.check_link_test(env.raw)
    raw = p.bravo.line.reply_link_test(got, test, p.clock.now_us(), {})
    p.alpha.line.check_link_reply("bravo", sent, raw)
    h = await p.alpha.recorder.success("bravo", 3.0, 0.0)
    assert h.state == "UP"


async def peer_says(p: Pair, data: dict[str, Any], src: Station | None = None) -> None:
    """bravo (or ``src``) sends a suspension message with any data, delivered."""
    st = src or p.bravo
    await st.line.send(
        peer="alpha", channel="working", precedence=Precedence.FLASH,
        payload=MessagePayload(type="suspension", text="x", data=data, ack_required=False),
    )  # fmt: skip
    await p.flush()


def test_a_suspended_line_shows_on_both_sides_and_only_flash_goes(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await link_test(p)
        done = await suspension.suspend(
            p.alpha.line.ctx, SENIOR, peer="bravo", channel=None, reason="ceasefire talks"
        )
        assert (done[0]["side"], done[0]["officer"]) == ("ours", "maj.kovalenko")
        await p.flush()
        [ours] = active(p.alpha)
        [theirs] = active(p.bravo)
        assert (ours["side"], ours["scope"], ours["declared_by"]) == ("ours", "line", "alpha")
        assert (theirs["side"], theirs["peer"], theirs["reason"]) == (
            "theirs", "alpha", "ceasefire talks",
        )  # fmt: skip
        # the record: the action names the officer; the peer got a FLASH typed message
        [action] = ledger_actions(p.alpha, "suspend")
        assert (action["officer"], action["peers"]) == ("maj.kovalenko", ["bravo"])
        # both sides enforce it: ROUTINE refused with who, when, why; FLASH goes
        for src, dst in ((p.alpha, "bravo"), (p.bravo, "alpha")):
            with pytest.raises(InputError) as exc:
                await p.send("routine", Precedence.ROUTINE, src=src, dst=dst)
            assert exc.value.code == "suspended"
            who = "this station (maj.kovalenko)" if src is p.alpha else "suspended by alpha"
            for said in ("ceasefire talks", "FLASH", who, "2026-01-01 00:00:00Z"):
                assert said in exc.value.hint
            await p.send("flash", Precedence.FLASH, src=src, dst=dst)
        await p.flush()
        # link tests and the record go on
        await link_test(p)
        await rebuilt_equals_live(p.alpha)
        await rebuilt_equals_live(p.bravo)
        assert active(p.alpha) == [ours]

    run_pair(scenario)


def test_a_channel_suspension_binds_that_channel_only(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await suspension.suspend(
            p.bravo.line.ctx, SENIOR, peer="alpha", channel="deconfliction", reason="audit"
        )
        await p.flush()
        [theirs] = active(p.alpha)
        assert (theirs["scope"], theirs["channel"]) == ("channel", "deconfliction")
        await p.send("on working", Precedence.ROUTINE)  # another channel: goes
        with pytest.raises(InputError, match="deconfliction"):
            await p.alpha.line.send(
                peer="bravo", channel="deconfliction", precedence=Precedence.PRIORITY,
                payload=MessagePayload(text="held"),
            )  # fmt: skip

    run_pair(scenario)


def test_what_may_be_sent_while_suspended_is_a_setting_on_standing_channels(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        await suspension.suspend(p.alpha.line.ctx, SENIOR, peer="bravo", channel=None, reason="r")
        await p.send("immediate", Precedence.IMMEDIATE)
        with pytest.raises(InputError, match="PRIORITY"):
            await p.send("priority", Precedence.PRIORITY)

    run_pair(scenario, suspended_allow=["FLASH", "IMMEDIATE"])


def test_resumption_by_the_declaring_party_only(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        a, b = p.alpha.line.ctx, p.bravo.line.ctx
        await suspension.suspend(a, SENIOR, peer="bravo", channel=None, reason="talks")
        await p.flush()
        # bravo may not resume alpha's suspension, nor alpha twice-suspend it
        assert await refused_code(suspension.resume(b, SENIOR, peer="alpha", channel=None)) == (
            "not_yours"
        )
        assert (
            await refused_code(
                suspension.suspend(a, SENIOR, peer="bravo", channel=None, reason="again")
            )
            == "already_suspended"
        )
        assert (
            await refused_code(suspension.resume(a, SENIOR, peer="bravo", channel="working"))
            == "not_suspended"
        )
        # a watch officer and an auditor may not suspend; the refusal names the roles
        for who in (WATCH, AUDITOR):
            with pytest.raises(PermissionDeniedError, match="senior_watch_officer"):
                await suspension.suspend(a, who, peer="bravo", channel=None, reason="x")
        assert (
            await refused_code(
                suspension.suspend(a, SENIOR, peer="nobody", channel=None, reason="x")
            )
            == "not_found"
        )
        assert (
            await refused_code(
                suspension.suspend(a, SENIOR, peer="bravo", channel="nope", reason="x")
            )
            == "unknown_channel"
        )
        assert (
            await refused_code(
                suspension.suspend(a, SENIOR, peer="bravo", channel=None, reason="  ")
            )
            == "bad_input"
        )
        assert (
            await refused_code(
                suspension.suspend(a, SENIOR, peer=None, channel="working", reason="x")
            )
            == "bad_input"
        )
        assert (
            await refused_code(suspension.suspend(a, SENIOR, peer=None, channel=None, reason="x"))
            == "bad_input"
        )
        assert await suspension.resume(a, SENIOR, peer="bravo", channel=None) == ["bravo"]
        await p.flush()
        assert active(p.alpha) == active(p.bravo) == []
        await p.send("routine again", Precedence.ROUTINE)
        await p.send("routine back", Precedence.ROUTINE, src=p.bravo, dst="alpha")
        states = [(r.declared_by, r.state, r.outcome) for r in history(p.bravo)]
        assert states == [("alpha", "suspended", "applied"), ("alpha", "resumed", "applied")]
        await rebuilt_equals_live(p.bravo)

    run_pair(scenario)


def test_a_peer_resuming_our_suspension_is_kept_as_a_claim(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await suspension.suspend(
            p.alpha.line.ctx, SENIOR, peer="bravo", channel=None, reason="talks"
        )
        await p.flush()
        await peer_says(p, {"scope": "line", "state": "resumed", "reason": "we say so"})
        [still] = active(p.alpha)
        assert still["side"] == "ours"
        last = history(p.alpha)[-1]
        assert (last.declared_by, last.state, last.outcome) == ("bravo", "resumed", "not_theirs")
        with pytest.raises(InputError):
            await p.send("still held", Precedence.ROUTINE)
        # resuming what nobody suspended changes nothing either
        await peer_says(p, {"scope": "channel", "channel": "x", "state": "resumed", "reason": "r"})
        assert history(p.alpha)[-1].outcome == "no_effect"
        await rebuilt_equals_live(p.alpha)

    run_pair(scenario)


def test_a_flood_of_suspensions_is_bounded(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(MAX_ACTIVE_PER_PEER + 3):
            data = {"scope": "channel", "channel": f"c{i}", "state": "suspended", "reason": "f"}
            await p.bravo.line.send(
                peer="alpha", channel="working", precedence=Precedence.FLASH,
                payload=MessagePayload(type="suspension", text="x", data=data, ack_required=False),
            )  # fmt: skip
        await p.flush()
        assert len(active(p.alpha)) == MAX_ACTIVE_PER_PEER
        outcomes = [r.outcome for r in history(p.alpha)]
        assert outcomes.count("too_many") == 3
        # the same again is no effect, and the line itself can still be suspended by us
        await peer_says(p, {"scope": "channel", "channel": "c0", "state": "suspended",
                            "reason": "f"})  # fmt: skip
        assert history(p.alpha)[-1].outcome == "no_effect"
        await suspension.suspend(p.alpha.line.ctx, SENIOR, peer="bravo", channel=None,
                                 reason="ours")  # fmt: skip
        assert len(active(p.alpha)) == MAX_ACTIVE_PER_PEER + 1
        await rebuilt_equals_live(p.alpha)

    run_pair(scenario)


def test_the_state_survives_a_restart(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await suspension.suspend(
            p.alpha.line.ctx, SENIOR, peer="bravo", channel="working", reason="r"
        )
        await p.flush()
        ext = suspension.projection_of(p.bravo.line.ctx)
        before = ext.book.all()
        ext.book.clear()
        with p.bravo.read_engine.connect() as conn:
            ext.load(conn)
        assert ext.book.all() == before

    run_pair(scenario)


def test_a_rolled_back_unit_leaves_no_suspension_in_memory(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        from hotline.service.appending import append_action

        ctx = p.alpha.line.ctx
        action = {"action": "suspend", "state": "suspended", "peers": ["bravo"],
                  "channel": "", "reason": "r", "officer": "x"}  # fmt: skip

        def unit(tx: Any) -> None:
            append_action(ctx, tx, action)
            assert active(p.alpha)  # applied in memory inside the transaction
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await p.alpha.writer.submit(unit)
        assert active(p.alpha) == []
        await p.send("goes", Precedence.ROUTINE)

    run_pair(scenario)


def test_the_suspension_message_on_the_wire(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await suspension.suspend(p.alpha.line.ctx, SENIOR, peer="bravo", channel=None, reason="why")
        [raw] = p.outbound(p.alpha, "bravo")
        item = p.bravo.line.check_inbound(raw)
        assert item.envelope.header.precedence is Precedence.FLASH
        body = item.payload
        assert (body.type, body.ack_required) == ("suspension", False)
        assert body.data == {"scope": "line", "state": "suspended", "reason": "why"}
        assert json.loads(body.to_bytes())["type"] == "suspension"

    run_pair(scenario)


def test_events_carry_the_content_on_both_sides(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        async with p.alpha.events.subscribe() as a_q, p.bravo.events.subscribe() as b_q:
            await suspension.suspend(
                p.bravo.line.ctx, SENIOR, peer="alpha", channel="working", reason="drill"
            )
            await p.flush()
            ours = [e for e in drain(b_q) if e.type == "suspension"]
            theirs = [e for e in drain(a_q) if e.type == "suspension"]
            [b_event] = ours
            assert b_event.data["side"] == "ours"
            assert b_event.data["officer"] == "maj.kovalenko"
            assert (b_event.data["state"], b_event.data["reason"]) == ("suspended", "drill")
            # the peer's declaration is published by alpha once it is stored, and once
            [a_event] = theirs
            assert (a_event.data["side"], a_event.data["declared_by"]) == ("theirs", "bravo")
            assert (a_event.data["channel"], a_event.data["outcome"]) == ("working", "applied")
            await p.flush()
            assert [e for e in drain(a_q) if e.type == "suspension"] == []

    run_pair(scenario)


def drain(q: Any) -> list[Any]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out
