"""No busywork: a concern step acknowledges the message it answers, so a closed concern
leaves no acknowledgement overdue on either side (before the fix, each side raised four
ack_overdue alarms 30 minutes after the concern was closed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hotline.deconfliction.models import Concern, ConcernAbout
from hotline.service import queries
from hotline.station import Station
from tests.service.conftest import ledger_actions
from tests.stages.conftest import Pair


def overdue(station: Station) -> list[dict[str, Any]]:
    with station.read_engine.connect() as conn:
        alarms = queries.alarms(conn, station.line.clock.now_us())
    return [a for a in alarms if a["kind"] == "ack_overdue"]


def test_closed_concern_raises_no_overdue_alarms(run_pair: Callable[..., None]) -> None:
    async def scenario(p: Pair) -> None:
        cid = "c-convoy-1"
        steps = [
            (p.alpha, Concern(concern_id=cid, step="raise", asked="Confirm the convoy route",
                              about=ConcernAbout(incident="shelling near the convoy route"))),
            (p.bravo, Concern(concern_id=cid, step="acknowledge")),
            (p.bravo, Concern(concern_id=cid, step="answer", text="Route changed to M-14")),
            (p.alpha, Concern(concern_id=cid, step="close")),
        ]  # fmt: skip
        for station, step in steps:
            peer = "bravo" if station is p.alpha else "alpha"
            await station.deconfliction.send(step, peer=peer, operator="wo.kim")
            p.clock.advance(60)
            await p.flush()
        p.clock.advance(31 * 60)
        assert overdue(p.alpha) == []
        assert overdue(p.bravo) == []
        # each acknowledgement is on the record, naming the officer who took the step
        assert [a["officer"] for a in ledger_actions(p.bravo, "ack")] == ["wo.kim"]
        assert [a["officer"] for a in ledger_actions(p.alpha, "ack")] == ["wo.kim"]

    run_pair(scenario)


def test_open_concern_still_waits_for_its_close(run_pair: Callable[..., None]) -> None:
    """The answer waits for the raiser: overdue until the raiser closes the concern."""

    async def scenario(p: Pair) -> None:
        cid = "c-convoy-2"
        await p.alpha.deconfliction.send(
            Concern(concern_id=cid, step="raise", asked="Confirm",
                    about=ConcernAbout(incident="x")), peer="bravo",
        )  # fmt: skip
        await p.flush()
        await p.bravo.deconfliction.send(Concern(concern_id=cid, step="acknowledge"), peer="alpha")
        await p.bravo.deconfliction.send(
            Concern(concern_id=cid, step="answer", text="Noted"), peer="alpha"
        )
        await p.flush()
        p.clock.advance(31 * 60)
        assert [a["peer"] for a in overdue(p.alpha)] == ["bravo"]  # the answer, ours to close
        assert [a["peer"] for a in overdue(p.bravo)] == ["alpha"]  # the peer has not yet

    run_pair(scenario)
