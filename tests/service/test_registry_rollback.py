"""Refusals are cheap for the registry: a rolled-back writer unit (or a whole rolled-back
batch) is undone from the journal, without replaying every notice, at a station holding
2,000 sites; the registry then equals one rebuilt from the database. Only a failed
commit (the database may or may not hold the batch) reloads, once. SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.deconfliction.registry import Registry
from hotline.errors import InputError, StoreError
from hotline.service.registry import RegistryProjection, concern_json, conflict_json
from hotline.station import Station
from hotline.store import schema
from hotline.store.projections import MessageEvent
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import Pair
from tests.service.test_registry_service import T0, activity_notice, site_notice

SITES = 2_000


def grid_site(i: int) -> dict[str, Any]:
    """Site i of a 50 x 40 grid round 30E 48N, 1 km radius, about 20 km apart."""
    lon, lat = 28.0 + (i % 50) * 0.25, 46.0 + (i // 50) * 0.2
    return site_notice(f"S{i}", coords=[lon, lat], radius_m=1_000.0, category="hospital")


async def notify_sites(s: Station, n: int) -> None:
    """n typed site notices from ``s`` to bravo, sent at once (group commit)."""

    async def one(i: int) -> Any:
        return await s.line.send(
            peer="bravo",
            channel="deconfliction",
            precedence=Precedence.PRIORITY,
            payload=MessagePayload(type="site_notice", text=f"site {i}", data=grid_site(i)),
        )

    for start in range(0, n, 500):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 500))))


def view(proj: RegistryProjection) -> dict[str, Any]:
    with proj.lock:
        return {
            "registry": proj.registry.snapshot(),
            "volumes": sorted((v.id, v.station, v.reach_m) for v in proj.registry.site_volumes()),
            "conflicts": {k: conflict_json(oc) for k, oc in sorted(proj.open_conflicts.items())},
            "concerns": [concern_json(t) for t in proj.concerns.all()],
            "refused": list(proj.refused),
        }


def rebuilt(s: Station) -> dict[str, Any]:
    """The registry as a fresh projection reloads it from the database."""
    fresh = RegistryProjection(s.identity.station_id, s.settings)
    with s.read_engine.connect() as conn:
        fresh.reload(conn)
    return view(fresh)


def alarm_rows(s: Station) -> list[tuple[Any, ...]]:
    a = schema.alarms
    with s.read_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(a).order_by(a.c.id))]


def count_reloads(s: Station) -> list[int]:
    calls: list[int] = []
    real = s.registry._reload

    def counting(conn: Any, **kw: Any) -> int:
        calls.append(1)
        return real(conn, **kw)

    s.registry._reload = counting  # type: ignore[method-assign]
    return calls


def incoming(activity: dict[str, Any], idx: int) -> MessageEvent:
    """bravo's activity notice as the projector hands it on (never stored here)."""
    now = int(T0.timestamp() * 1_000_000)
    return MessageEvent(
        idx=idx, direction="in", peer="bravo", sender="bravo", message_id=f"m-{idx}",
        channel="deconfliction", precedence=2, sent_at_us=now, recorded_at_us=now,
        body=MessagePayload(type="activity_notice", text="x", data=activity),
    )  # fmt: skip


def test_a_rolled_back_unit_is_undone_without_a_reload(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        a = p.alpha
        await notify_sites(a, SITES)
        # a conflict and a concern already held, so that undoing must keep them
        await a.line.send(
            peer="bravo", channel="deconfliction", precedence=Precedence.PRIORITY,
            payload=MessagePayload(type="activity_notice", text="x",
                                   data=activity_notice("held", point=[28.0, 46.0])),
        )  # fmt: skip
        with a.registry.lock:
            assert len(a.registry.registry.sites()) == SITES
            assert set(a.registry.open_conflicts) == {("S0", "held")}
        before, alarms_before = view(a.registry), alarm_rows(a)
        reloads = count_reloads(a)

        def changes_then_fails(n: int) -> Any:
            def unit(tx: WriteTx) -> None:
                # an activity of bravo's that conflicts with sites S1 and S2: conflicts
                # open, alarms are written, then the unit fails
                act = activity_notice(f"gone-{n}", point=[28.125, 46.0], radius_m=20_000.0)
                a.registry.on_message(tx.conn, incoming(act, 10**6 + n))
                with a.registry.lock:
                    assert ("S1", f"gone-{n}") in a.registry.open_conflicts
                raise InputError("refused inside the unit")

            return unit

        # alone (one unit, one transaction), and between good units in one batch (the
        # batch runs again, a savepoint per unit)
        with pytest.raises(InputError):
            await a.writer.submit(changes_then_fails(0))
        results = await asyncio.gather(
            a.deconfliction.send_data(activity_notice("kept", point=[45.0, 46.0])),
            a.writer.submit(changes_then_fails(1)),
            a.writer.submit(changes_then_fails(2)),
            a.deconfliction.send_data(site_notice("S-new", coords=[41.0, 46.0])),
            return_exceptions=True,
        )
        assert [type(r) for r in results][1:3] == [InputError, InputError]
        assert not isinstance(results[0], Exception)
        assert not isinstance(results[3], Exception)

        assert reloads == []
        after = view(a.registry)
        assert after == rebuilt(a)
        assert set(after["conflicts"]) == {("S0", "held")}
        assert alarm_rows(a) == alarms_before
        with a.registry.lock:
            assert len(a.registry.registry.sites()) == SITES + 1
            assert a.registry.registry.activity("kept").live
        assert len(a.registry.journal) == 0  # committed: nothing left to undo
        assert after["registry"]["sites"].keys() - before["registry"]["sites"].keys() == {"S-new"}

    run_pair(scenario)


@pytest.mark.parametrize("committed", [False, True], ids=["lost-before", "lost-after"])
def test_a_failed_commit_reloads_once_and_matches_the_database(
    run_pair: Any, committed: bool
) -> None:
    """COMMIT raises: the database may not hold the batch (lost before) or may hold it
    (a connection lost after COMMIT); either way the registry is reloaded, once, and
    equals what the database holds."""

    async def scenario(p: Pair) -> None:
        a = p.alpha
        await notify_sites(a, 50)
        reloads = count_reloads(a)
        dialect = a.write_engine.dialect
        real_commit = dialect.do_commit
        failures: list[int] = []

        def lost(dbapi_conn: Any) -> None:
            if failures:
                return real_commit(dbapi_conn)
            failures.append(1)
            if committed:
                real_commit(dbapi_conn)
            else:
                dbapi_conn.rollback()
            raise RuntimeError("connection lost at COMMIT")

        dialect.do_commit = lost  # type: ignore[method-assign]
        try:
            with pytest.raises(StoreError):
                await a.deconfliction.send_data(site_notice("LOST", coords=[40.0, 46.0]))
        finally:
            dialect.do_commit = real_commit  # type: ignore[method-assign]
        assert reloads == [1]
        assert view(a.registry) == rebuilt(a)
        with a.registry.lock:
            held = "LOST" in {r.id for r in a.registry.registry.sites()}
        assert held == committed
        if committed:
            return  # the writer's own ledger state after this is item 7's (writer.py)
        # and the station goes on
        await a.deconfliction.send_data(site_notice("NEXT", coords=[40.0, 46.5]))
        assert view(a.registry) == rebuilt(a)
        assert reloads == [1]

    run_pair(scenario)


def test_a_change_that_fails_half_way_reloads_once(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in the middle of applying a notice (after the record and the
    index changed, before the conflicts did): the journal cannot vouch for the state, so
    the rollback reloads, once, and the registry equals the database."""

    async def scenario(p: Pair) -> None:
        a = p.alpha
        await notify_sites(a, 20)
        reloads = count_reloads(a)
        real_replace = Registry._replace
        boom: list[int] = []

        def half_way(self: Registry, *args: Any, **kw: Any) -> Any:
            if not boom:
                boom.append(1)
                raise RuntimeError("bug in the middle of apply")
            return real_replace(self, *args, **kw)

        monkeypatch.setattr(Registry, "_replace", half_way)
        with pytest.raises(RuntimeError):
            await a.deconfliction.send_data(activity_notice("mid", point=[28.0, 46.0]))
        assert reloads == [1]
        assert view(a.registry) == rebuilt(a)
        await a.deconfliction.send_data(activity_notice("mid", point=[28.0, 46.0]))
        with a.registry.lock:
            assert ("S0", "mid") in a.registry.open_conflicts
        assert reloads == [1]

    run_pair(scenario)


def test_a_rebuild_rolled_back_restores_the_registry_as_it_was(run_pair: Any) -> None:
    """A rebuild replays the ledger inside one unit; if that unit fails, the registry
    held before it comes back whole (the reset is journalled as one change)."""

    async def scenario(p: Pair) -> None:
        a = p.alpha
        await notify_sites(a, 20)
        await a.deconfliction.send_data(activity_notice("near", point=[28.0, 46.0]))
        before = view(a.registry)
        reloads = count_reloads(a)

        def unit(tx: WriteTx) -> None:
            a.line.rebuild_projections(tx.conn)
            raise InputError("rebuild refused at the end")

        with pytest.raises(InputError):
            await a.writer.submit(unit)
        assert reloads == []
        assert view(a.registry) == before == rebuilt(a)
        await a.deconfliction.send_data(site_notice("after", coords=[28.0, 46.01]))
        with a.registry.lock:
            assert ("after", "near") in a.registry.open_conflicts

    run_pair(scenario)
