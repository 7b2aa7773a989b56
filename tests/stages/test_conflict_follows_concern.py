"""A conflict's alarm follows its concern: closing the conflict's draft concern clears
the alarm on both stations (also after a rebuild); the conflict opened again (its
activity notified anew) raises it again. Raising the concern acknowledges the peer's
notice it is about."""

from __future__ import annotations

from typing import Any

from hotline.deconfliction.models import Concern
from hotline.service import queries
from hotline.store.writer import WriteTx
from tests.service.conftest import ledger_actions
from tests.service.test_registry_service import activity_notice, alarms, draft_of, with_znpp
from tests.stages.conftest import Pair


def test_closing_the_concern_clears_the_conflict_alarm(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        await p.alpha.deconfliction.send_data(activity_notice("near"))
        await p.flush()
        key = ("ZNPP", "near")
        cid = draft_of(p.bravo, key)
        for s in (p.alpha, p.bravo):
            assert [a["ref"] for a in alarms(s, "conflict")] == ["ZNPP|near"]
        await p.bravo.deconfliction.raise_draft(cid, peer="alpha", operator="wo.kim")
        await p.flush()
        # raising the concern acknowledged alpha's activity notice it is about
        assert [a["officer"] for a in ledger_actions(p.bravo, "ack")] == ["wo.kim"]
        steps = [
            (p.alpha, Concern(concern_id=cid, step="acknowledge")),
            (p.alpha, Concern(concern_id=cid, step="answer", text="Moved 40 km north")),
        ]
        for s, step in steps:
            await s.deconfliction.send(step, peer="bravo")
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert len(alarms(s, "conflict")) == 1  # still open: not closed yet
        await p.bravo.deconfliction.send(Concern(concern_id=cid, step="close"), peer="alpha")
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert alarms(s, "conflict") == [], s.line.station_id

            def rebuild(tx: WriteTx, st: Any = s) -> None:
                st.line.rebuild_projections(tx.conn)

            await s.writer.submit(rebuild)
            assert alarms(s, "conflict") == [], s.line.station_id
        p.clock.advance(31 * 60)
        for s in (p.alpha, p.bravo):
            with s.read_engine.connect() as conn:
                late = [a for a in queries.alarms(conn, p.clock.now_us())
                        if a["kind"] == "ack_overdue"]  # fmt: skip
            # only the site and activity notices wait (PRIORITY: 3 h), nothing of the concern
            assert late == [], late

        # the conflict opens again (the activity notified anew): its alarm is back
        await p.alpha.deconfliction.send_data(activity_notice("near", action="cancel"))
        await p.flush()
        await p.alpha.deconfliction.send_data(activity_notice("near"))
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert [a["ref"] for a in alarms(s, "conflict")] == ["ZNPP|near"]
            assert draft_of(s, key) != cid

    run_pair(scenario)
