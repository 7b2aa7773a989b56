"""The duty rota: entries on the record, who is on watch at the boundaries of
overlapping shifts, and the watch's work routed to whoever is on watch."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.errors import InputError, NotFoundError, PermissionDeniedError
from hotline.service import actions, rota
from hotline.service.escalation import Escalator
from hotline.service.roles import Role
from hotline.store import schema
from tests.service.conftest import ledger_actions
from tests.watch.conftest import ROUTINE_S, Pair, officer, rebuilt_equals_live, rows

H = 3600 * 1_000_000
SENIOR = officer("sasha", Role.SENIOR_WATCH_OFFICER)
WATCH = officer("wanda", Role.WATCH_OFFICER)


def test_overlapping_shifts_and_boundaries(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        ctx = p.alpha.line.ctx
        t0 = p.clock.now_us()
        await rota.set_entry(ctx, SENIOR, "day", username="olena", role="watch_officer",
                             from_us=t0, to_us=t0 + 12 * H)  # fmt: skip
        await rota.set_entry(ctx, SENIOR, "night", username="taras", role="watch_officer",
                             from_us=t0 + 11 * H, to_us=t0 + 24 * H)  # fmt: skip
        await rota.set_entry(ctx, SENIOR, "chief", username="sasha", role="senior_watch_officer",
                             from_us=t0, to_us=t0 + 24 * H)  # fmt: skip
        with p.alpha.read_engine.connect() as conn:
            assert rota.on_watch(conn, "watch_officer", t0 - 1) == []
            assert rota.on_watch(conn, "watch_officer", t0) == ["olena"]  # start inclusive
            assert rota.on_watch(conn, "watch_officer", t0 + 11 * H) == ["olena", "taras"]
            assert rota.on_watch(conn, "watch_officer", t0 + 12 * H) == ["taras"]  # end exclusive
            assert rota.on_watch(conn, "watch_officer", t0 + 24 * H) == []
            now = rota.now_on_watch(conn, t0 + 11 * H)
        assert now["senior_watch_officer"] == ["sasha"]
        assert now["principal"] == []
        # replace an entry, clear another: both on the record naming the officer
        await rota.set_entry(ctx, SENIOR, "day", username="oksana", role="watch_officer",
                             from_us=t0, to_us=t0 + 12 * H)  # fmt: skip
        await rota.clear_entry(ctx, SENIOR, "night")
        with pytest.raises(NotFoundError):
            await rota.clear_entry(ctx, SENIOR, "night")
        with p.alpha.read_engine.connect() as conn:
            assert rota.on_watch(conn, "watch_officer", t0 + 11 * H) == ["oksana"]
        assert [a["officer"] for a in ledger_actions(p.alpha, "rota_set")] == ["sasha"] * 4
        assert [a["entry_id"] for a in ledger_actions(p.alpha, "rota_clear")] == ["night"]
        assert {r["entry_id"] for r in rows(p.alpha, schema.rota)} == {"day", "chief"}
        await rebuilt_equals_live(p)

    run_pair(scenario)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"entry_id": "bad id!"}, "bad_rota"),
        ({"username": ""}, "bad_rota"),
        ({"username": "x" * 65}, "bad_rota"),
        ({"role": "captain"}, "bad_role"),
        ({"from_us": 2, "to_us": 1}, "bad_rota"),
        ({"from_us": 1, "to_us": 2}, "bad_rota"),  # before 2020
        ({"to_us": 1_767_225_600_000_000 + 32 * 86400 * 1_000_000}, "bad_rota"),
    ],
)
def test_malformed_entries_are_refused(change: dict[str, Any], code: str) -> None:
    good = {"entry_id": "e1", "username": "olena", "role": "watch_officer",
            "from_us": 1_767_225_600_000_000, "to_us": 1_767_225_600_000_000 + H}  # fmt: skip
    with pytest.raises(InputError) as err:
        rota.check_entry(**(good | change))
    assert err.value.code == code


def test_the_rota_needs_its_role(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        t0 = p.clock.now_us()
        with pytest.raises(PermissionDeniedError) as err:
            await rota.set_entry(p.alpha.line.ctx, WATCH, "x", username="wanda",
                                 role="watch_officer", from_us=t0, to_us=t0 + H)  # fmt: skip
        assert "senior_watch_officer" in err.value.message
        assert ledger_actions(p.alpha, "rota_set") == []

    run_pair(scenario)


def test_escalations_go_to_whoever_is_on_watch(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        ctx = p.alpha.line.ctx
        sent = await p.send("escalate me")
        await p.flush()
        p.clock.advance(ROUTINE_S + 1)
        await Escalator(ctx).check()
        now = p.clock.now_us()
        on, off = (
            officer("sasha", Role.SENIOR_WATCH_OFFICER),
            officer("semen", Role.SENIOR_WATCH_OFFICER),
        )

        def required(who: Any) -> list[actions.ActionItem]:
            with p.alpha.read_engine.connect() as conn:
                return [i for i in actions.required(conn, who, now) if i.kind == "escalation"]

        # no rota for the role: every senior watch officer gets it; a watch officer not
        assert [i.ref for i in required(on)] == [str(sent.message_id)]
        assert [i.ref for i in required(off)] == [str(sent.message_id)]
        assert required(WATCH) == []
        await rota.set_entry(ctx, SENIOR, "s1", username="sasha", role="senior_watch_officer",
                             from_us=now - H, to_us=now + H)  # fmt: skip
        assert [i.summary.startswith("escalation step 1") for i in required(on)] == [True]
        assert required(off) == []

    run_pair(scenario, ack_deadline_routine_s=ROUTINE_S)


def test_a_handover_goes_to_the_incoming_officer_on_watch(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        from hotline.service import handover

        ctx = p.alpha.line.ctx
        h = await handover.write(ctx, WATCH, "all quiet")
        now = p.clock.now_us()
        willa, wes = officer("willa"), officer("wes")

        def kinds(who: Any) -> list[str]:
            with p.alpha.read_engine.connect() as conn:
                return [i.ref for i in actions.required(conn, who, now) if i.kind == "handover"]

        assert kinds(WATCH) == []  # its writer
        assert kinds(willa) == [h["handover_id"]]
        assert kinds(wes) == [h["handover_id"]]
        await rota.set_entry(ctx, SENIOR, "w", username="willa", role="watch_officer",
                             from_us=now, to_us=now + H)  # fmt: skip
        assert kinds(willa) == [h["handover_id"]]
        assert kinds(wes) == []  # not on watch
        await handover.acknowledge(ctx, willa, h["handover_id"])
        assert kinds(willa) == []

    run_pair(scenario)
