"""What a send on a channel must pass before anything is appended: a known channel (the
error lists them), members, the roles the channel's terms let send here, brevity of
FLASH and IMMEDIATE texts; per-channel acknowledgement deadlines; reads filtered by the
terms' read roles (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from hotline.errors import EnvelopeError, InputError, PermissionDeniedError
from hotline.service import actions, channels, search, sender
from hotline.service.roles import STATION, Principal, Role
from hotline.wire.channels import ChannelSpec, StationRoles
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.channels.conftest import Net
from tests.service.conftest import snapshot

WATCH = Principal("wo1", "Watch Officer One", frozenset({Role.WATCH_OFFICER}))
SENIOR = Principal("swo1", "Senior One", frozenset({Role.SENIOR_WATCH_OFFICER}))
AUDITOR = Principal("aud1", "Auditor One", frozenset({Role.AUDITOR}))
CHIEFS = ChannelSpec(
    name="chiefs",
    level="chiefs_of_staff",
    members=["alpha", "bravo"],
    roles={"alpha": StationRoles(read=["senior_watch_officer"], send=["senior_watch_officer"])},
    brevity_words=5,
    ack_deadlines_s={"ROUTINE": 60.0},
)


def text(words: int) -> MessagePayload:
    return MessagePayload(text=" ".join(["word"] * words))


def test_refusals_before_anything_is_appended(run_net):
    async def scenario(net: Net) -> None:
        await net.agree(CHIEFS)
        a = net["alpha"].line.ctx
        before = snapshot(net["alpha"])

        async def refused(exc_type: type[Exception], **kw: object) -> Exception:
            args = {"channel": "working", "precedence": Precedence.ROUTINE, "payload": text(1),
                    "peer": "bravo", **kw}  # fmt: skip
            with pytest.raises(exc_type) as exc:
                await sender.send_group(a, **args)  # type: ignore[arg-type]
            with pytest.raises(exc_type):  # send() itself refuses the same
                await sender.send(a, **args)  # type: ignore[arg-type]
            return exc.value

        # an unknown channel: the error lists the channels
        err = await refused(InputError, channel="chiefz")
        assert err.code == "unknown_channel"
        assert "chiefs, deconfliction, working" in err.hint
        # brevity: FLASH and IMMEDIATE at most 200 words by default, 5 on "chiefs"
        for prec in (Precedence.FLASH, Precedence.IMMEDIATE):
            err = await refused(InputError, precedence=prec, payload=text(201))
            assert err.code == "too_long"
            assert "at most 200 words" in err.message
            assert "has 201" in err.message
            err = await refused(InputError, channel="chiefs", precedence=prec, payload=text(6),
                                principal=SENIOR)  # fmt: skip
            assert "at most 5 words" in err.message
        # not a member: charlie is not on "chiefs"
        err = await refused(InputError, channel="chiefs", peer="charlie")
        assert err.code == "not_a_member"
        # roles per channel: only a senior watch officer sends on "chiefs" at alpha
        err = await refused(PermissionDeniedError, channel="chiefs", principal=WATCH)
        assert "senior_watch_officer" in err.message
        assert snapshot(net["alpha"]) == before
        # what passes: 200 words at FLASH on working, 201 at PRIORITY, a senior on chiefs
        await sender.send(a, peer="bravo", channel="working", precedence=Precedence.FLASH,
                          payload=text(200), principal=WATCH)  # fmt: skip
        await sender.send(a, peer="bravo", channel="working", precedence=Precedence.PRIORITY,
                          payload=text(201))  # fmt: skip
        out = await sender.send_group(a, channel="chiefs", precedence=Precedence.ROUTINE,
                                      payload=text(5), principal=SENIOR)  # fmt: skip
        await net.flush()
        # the channel's ROUTINE deadline (60 s) on both sides; the station's on working
        with net["alpha"].read_engine.connect() as conn:
            from hotline.store import reads

            row = reads.message(conn, str(out.sent[0].message_id))
            assert row.ack_deadline_us - row.sent_at_us == 60_000_000
        with net["bravo"].read_engine.connect() as conn:
            row = reads.message(conn, str(out.sent[0].message_id))
            assert row.ack_deadline_us - row.stored_at_us == 60_000_000
        # reads: at alpha, a watch officer and an auditor do not read "chiefs"
        assert "chiefs" not in channels.readable(a, WATCH)
        assert "chiefs" not in channels.readable(a, AUDITOR)
        assert "chiefs" in channels.readable(a, SENIOR)
        assert "working" in channels.readable(a, AUDITOR)
        # at bravo the terms name no roles for bravo: the defaults
        assert "chiefs" in channels.readable(net["bravo"].line.ctx, WATCH)
        # search (and the printable log) leave out what the officer may not read here
        found = search.search_sync(net["alpha"].read_engine, net.clock.now_us(),
                                   search.prepare(search.SearchRequest(q="word")))  # fmt: skip
        assert {h["channel"] for h in found["items"]} == {"chiefs", "working"}
        assert {h["channel"] for h in channels.visible(a, WATCH, found["items"])} == {"working"}
        assert {h["channel"] for h in channels.visible(a, SENIOR, found["items"])} == {
            "chiefs", "working"}  # fmt: skip
        # the action queue (API and console) leaves out what the officer may not read: a
        # message from bravo on "chiefs" asks alpha's seniors only for an acknowledgement
        got = await sender.send(net["bravo"].line.ctx, peer="alpha", channel="chiefs",
                                precedence=Precedence.ROUTINE, payload=text(3))  # fmt: skip
        await net.flush()
        ref = str(got.message_id)
        with net["alpha"].read_engine.connect() as conn:
            now = net.clock.now_us()
            every = {i.ref for i in actions.required(conn, WATCH, now, "alpha")}
            assert ref in every  # the source itself does not know the channel's terms
            assert ref not in {i.ref for i in channels.required(conn, a, WATCH, now)}
            assert ref in {i.ref for i in channels.required(conn, a, SENIOR, now)}

    run_net(scenario)


def test_deadline_rule_old_signature_and_per_channel():
    from hotline.service.channelbook import ChannelBook
    from hotline.settings import Settings

    class Ctx:
        settings = Settings()
        channels = ChannelBook()

    from hotline.service.context import LineContext

    ctx = Ctx()
    ctx.channels.agree(CHIEFS)
    rule = LineContext.deadline_us
    routine = int(Settings().ack_deadline_routine_s * 1e6)
    assert rule(ctx, 3, 1000) == 1000 + routine  # type: ignore[arg-type]
    assert rule(ctx, 3, 1000, "working") == 1000 + routine  # type: ignore[arg-type]
    assert rule(ctx, 3, 1000, "chiefs") == 1000 + 60_000_000  # type: ignore[arg-type]
    # FLASH is not named by the terms: the station's setting
    flash = int(Settings().ack_deadline_flash_s * 1e6)
    assert rule(ctx, 0, 1000, "chiefs") == 1000 + flash  # type: ignore[arg-type]


def test_propose_refusals_name_the_code(run_net):
    async def scenario(net: Net) -> None:
        a = net["alpha"].line.ctx
        before = snapshot(net["alpha"])
        cases = [
            (ChannelSpec(name="x", level="emperors", members=["alpha", "bravo"]), "bad_level"),
            (ChannelSpec(name="x", level="working", members=["bravo", "charlie"]),
             "proposer_not_member"),
            (ChannelSpec(name="x", level="working", members=["alpha", "zulu"]), "unknown_member"),
            (ChannelSpec(name="working", level="working", members=["alpha", "bravo"]),
             "channel_conflict"),
        ]  # fmt: skip
        for spec, code in cases:
            with pytest.raises(InputError) as exc:
                await channels.propose(a, STATION, spec)
            assert exc.value.code == code
        with pytest.raises(PermissionDeniedError) as denied:
            await channels.propose(a, WATCH, CHIEFS)
        assert "principal" in denied.value.message
        assert snapshot(net["alpha"]) == before
        # a channel agreed between alpha and bravo: charlie does not know it (it is not a
        # member), so it may propose the name; alpha refuses that proposal at its inbox
        await net.agree(CHIEFS)
        taken = CHIEFS.model_copy(update={"members": ["alpha", "charlie"]})
        await channels.propose(net["charlie"].line.ctx, STATION, taken)
        with pytest.raises(EnvelopeError) as refused:
            await net.link("charlie", "alpha")
        assert refused.value.code == "channel_conflict"
        # answering twice, or as the proposer
        await channels.propose(a, STATION, CHIEFS.model_copy(update={"brevity_words": 9}))
        await net.flush()
        with pytest.raises(InputError) as exc:
            await channels.answer(a, STATION, "chiefs", accept=True)
        assert exc.value.code == "not_a_member"
        await channels.answer(net["bravo"].line.ctx, STATION, "chiefs", accept=True)
        await net.flush()
        assert a.channels.require("chiefs").brevity_words == 9

    run_net(scenario)
