"""Channel agreement between two stations, and with a third as a neutral facilitator;
three-station delivery with per-recipient receipts and acknowledgements; rebuild equals
live (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from hotline.errors import InputError, NotFoundError
from hotline.service import actions, channels, sender
from hotline.service.roles import STATION, Principal, Role
from hotline.station import Station
from hotline.store import channels as store
from hotline.wire.channels import ChannelSpec
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.channels.conftest import Net, assert_rebuild_equals_live

COS = ChannelSpec(name="cos", level="chiefs_of_staff", members=["alpha", "bravo"])
TRIO = ChannelSpec(
    name="humanitarian",
    level="working",
    members=["alpha", "bravo", "charlie"],
    ack_deadlines_s={"FLASH": 120.0},
)


def state(net: Net, station: str, name: str) -> list[tuple[str, str, tuple[str, ...]]]:
    with net[station].read_engine.connect() as conn:
        rows = channels.states(conn, [])
    return [(r.state, r.proposer, r.accepted_by) for r in rows if r.name == name]


WATCH = Principal("wo1", "Watch Officer One", frozenset({Role.WATCH_OFFICER}))


def queue(net: Net, station: str, who: Principal) -> list[actions.ActionItem]:
    with net[station].read_engine.connect() as conn:
        items = actions.required(conn, who, net.clock.now_us(), station)
    return [i for i in items if i.kind == "channel"]


def test_two_stations_agree(run_net):
    async def scenario(net: Net) -> None:
        a, b = net["alpha"].line.ctx, net["bravo"].line.ctx
        out = await channels.propose(a, STATION, COS)
        assert out.version == 1
        assert set(out.message_ids) == {"bravo"}
        await net.flush()
        assert state(net, "bravo", "cos") == [("proposed", "alpha", ())]
        assert b.channels.get("cos") is None
        # bravo's action queue asks an officer who may answer channels to do so
        assert [(i.kind, i.ref, i.peer) for i in queue(net, "bravo", STATION)] == [
            ("channel", "cos", "alpha")]  # fmt: skip
        assert queue(net, "bravo", WATCH) == []  # a watch officer does not answer channels
        assert queue(net, "alpha", STATION) == []  # the proposer waits for no answer of its own
        with pytest.raises(InputError) as exc:  # not agreed yet: nothing is sent on it
            await sender.send_group(a, channel="cos", precedence=Precedence.ROUTINE,
                                    payload=MessagePayload(text="x"))  # fmt: skip
        assert exc.value.code == "unknown_channel"
        await channels.answer(b, STATION, "cos", accept=True)
        assert queue(net, "bravo", STATION) == []  # answered: off the queue
        await net.flush()
        for name in ("alpha", "bravo"):
            assert state(net, name, "cos") == [("agreed", "alpha", ("bravo",))]
            assert net[name].line.ctx.channels.require("cos") == COS
        assert net["charlie"].line.ctx.channels.get("cos") is None  # not a member
        sent = await sender.send_group(a, channel="cos", precedence=Precedence.ROUTINE,
                                       payload=MessagePayload(text="hello"))  # fmt: skip
        assert sent.group is None
        assert [s.peer for s in sent.sent] == ["bravo"]
        await net.flush()
        for name in ("alpha", "bravo"):
            await assert_rebuild_equals_live(net[name])

    run_net(scenario)


def test_decline_and_new_version(run_net):
    async def scenario(net: Net) -> None:
        a, b = net["alpha"].line.ctx, net["bravo"].line.ctx
        await channels.propose(a, STATION, COS)
        await net.flush()
        await channels.answer(b, STATION, "cos", accept=False, reason="not at this level")
        await net.flush()
        assert state(net, "alpha", "cos") == [("declined", "alpha", ())]
        assert a.channels.get("cos") is None
        with pytest.raises(NotFoundError):
            await channels.answer(b, STATION, "cos", accept=True)
        # a new proposal, version 2, agreed; then new terms (version 3) by bravo
        await net.agree(COS)
        assert a.channels.require("cos").brevity_words == 200
        terms = COS.model_copy(update={"brevity_words": 50})
        out = await channels.propose(b, STATION, terms)
        assert out.version == 3
        await net.flush()
        assert a.channels.require("cos").brevity_words == 200  # old terms until agreed
        await channels.answer(a, STATION, "cos", accept=True)
        await net.flush()
        for st in (a, b):
            assert st.channels.require("cos").brevity_words == 50
        with net["alpha"].read_engine.connect() as conn:
            assert [r.state for r in store.proposals(conn, "cos")] == [
                "declined", "superseded", "agreed",
            ]  # fmt: skip
        await assert_rebuild_equals_live(net["alpha"])

    run_net(scenario)


def test_three_stations_with_a_facilitator(run_net):
    async def scenario(net: Net) -> None:
        a, b, c = (net[n].line.ctx for n in ("alpha", "bravo", "charlie"))
        await channels.propose(a, STATION, TRIO)
        await net.flush()
        await channels.answer(b, STATION, TRIO.name, accept=True)
        # only bravo's acceptance to alpha arrives; charlie has not answered
        await net.flush()
        assert a.channels.get(TRIO.name) is None
        await channels.answer(c, STATION, TRIO.name, accept=True)
        # charlie's acceptance reaches alpha first; bravo's link from charlie is held
        await net.link("charlie", "alpha")
        assert a.channels.get(TRIO.name) == TRIO
        assert b.channels.get(TRIO.name) is None
        sent = await sender.send_group(a, channel=TRIO.name, precedence=Precedence.FLASH,
                                       payload=MessagePayload(text="convoy at km 12"))  # fmt: skip
        assert sent.group is not None
        assert sorted(s.peer for s in sent.sent) == ["bravo", "charlie"]
        assert len({s.message_id for s in sent.sent}) == 2
        # alpha's message overtakes charlie's acceptance at bravo: bravo accepted, so it
        # admits a member's message on the channel it is waiting for
        await net.link("alpha", "bravo")
        await net.flush()
        assert b.channels.get(TRIO.name) == TRIO
        with net["alpha"].read_engine.connect() as conn:
            rows = channels.group_state(conn, str(sent.group))
        assert [(r["peer"], r["delivered_at_us"] is not None) for r in rows] == [
            ("bravo", True), ("charlie", True),
        ]  # fmt: skip
        # the channel's own FLASH deadline: 120 s from sending
        assert all(r["ack_deadline_us"] - r["sent_at_us"] == 120_000_000 for r in rows)
        # each recipient acknowledges its own envelope
        for name in ("bravo", "charlie"):
            mid = next(x.message_id for x in sent.sent if x.peer == name)
            await net[name].line.acknowledge(str(mid), f"{name} duty officer")
        await net.flush()
        with net["alpha"].read_engine.connect() as conn:
            rows = channels.group_state(conn, str(sent.group))
        assert [(r["peer"], r["acknowledged_by"]) for r in rows] == [
            ("bravo", "bravo duty officer"), ("charlie", "charlie duty officer"),
        ]  # fmt: skip
        for name in ("alpha", "bravo", "charlie"):
            await assert_rebuild_equals_live(net[name])

    run_net(scenario)


def test_the_book_survives_a_restart_and_a_rollback(run_net):
    """The agreed channels are read from the store when a station starts, and again
    after a rolled-back unit (in memory they must equal what the store holds)."""

    async def scenario(net: Net) -> None:
        await net.agree(COS)
        alpha = net["alpha"]
        again = Station(alpha.settings, alpha.identity, net.clock)
        try:
            assert again.line.ctx.channels.require("cos") == COS
        finally:
            again.close()
        book = alpha.line.ctx.channels
        book.agree(COS.model_copy(update={"name": "ghost", "members": ["alpha", "bravo"]}))
        book.clear_agreed()
        [ext] = [e for e in alpha.line.extensions if isinstance(e, channels.ChannelsProjection)]
        ext.after_rollback(None)
        assert [s.name for s in book.all()] == ["cos", "deconfliction", "working"]

    run_net(scenario)


def test_events_carry_the_content(run_net):
    async def scenario(net: Net) -> None:
        seen: list[tuple[str, dict[str, object]]] = []
        bus = net["bravo"].line.ctx.events
        original = bus.publish

        def spy(kind: str, **data: object) -> None:
            seen.append((kind, data))
            original(kind, **data)

        bus.publish = spy  # type: ignore[method-assign]
        await net.agree(COS)
        kinds = {k: d for k, d in seen if k.startswith("channel.")}
        assert kinds["channel.proposed"]["proposer"] == "alpha"
        assert kinds["channel.agreed"]["terms"] == COS.model_dump(mode="json")

    run_net(scenario)
