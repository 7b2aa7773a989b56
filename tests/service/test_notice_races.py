"""Notices under concurrency and size pressure, between two in-process stations (SQLite
and PostgreSQL):

- two sends started together cannot both pass the check (the same site twice, an
  activity and a conflicting change), and an import is all or nothing also while
  another import runs;
- a peer's notice that lands between the check and the send refuses the send inside the
  writer's unit: nothing of it is stored;
- parsing, geometry checks, prechecks and imports run off the event loop;
- an over-limit polygon (from the operator, or inside a peer's envelope) is refused with
  code ``geometry_too_large`` without shapely or pyproj ever looking at it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.deconfliction import geometry
from hotline.errors import GeometryError, HotlineError, ImportFileError, InputError
from hotline.service import registry as registry_module
from hotline.station import Station
from hotline.store import schema
from tests.deconfliction.test_limits import Tripwire
from tests.service.conftest import Pair, snapshot
from tests.service.test_registry_service import (
    _collection,
    _feature,
    _forge_typed,
    activity_notice,
    alarms,
    site_notice,
)


def sent_types(s: Station) -> list[str]:
    m = schema.messages
    with s.read_engine.connect() as conn:
        return [
            r.type
            for r in conn.execute(
                sa.select(m.c.type).where(m.c.direction == "out").order_by(m.c.entry_idx)
            )
        ]


async def settled(p: Pair) -> None:
    """Everything delivered; neither registry refused anything, no notice_refused alarm."""
    await p.flush()
    for s in (p.alpha, p.bravo):
        assert s.registry.refused == [], s.line.station_id
        assert alarms(s, "notice_refused") == [], s.line.station_id


def outcomes(results: list[Any]) -> tuple[int, list[BaseException]]:
    failed = [r for r in results if isinstance(r, BaseException)]
    return len(results) - len(failed), failed


# --- races ----------------------------------------------------------------------------------


def test_two_sends_of_one_new_site_send_it_once(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        results = await asyncio.gather(
            p.alpha.deconfliction.send_data(site_notice("TWICE")),
            p.alpha.deconfliction.send_data(site_notice("TWICE")),
            return_exceptions=True,
        )
        ok, failed = outcomes(results)
        assert ok == 1
        assert [type(e) for e in failed] == [InputError]
        assert sent_types(p.alpha) == ["site_notice"]
        await settled(p)
        for s in (p.alpha, p.bravo):
            with s.registry.lock:
                assert len(s.registry.registry.site("TWICE").versions) == 1

    run_pair(scenario)


def test_an_activity_and_a_conflicting_change_do_not_both_pass(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.alpha.deconfliction.send_data(activity_notice("A"))
        results = await asyncio.gather(
            p.alpha.deconfliction.send_data(activity_notice("A", action="cancel")),
            p.alpha.deconfliction.send_data(activity_notice("A", action="modify", hours=8.0)),
            return_exceptions=True,
        )
        ok, failed = outcomes(results)
        assert ok == 1
        assert len(failed) == 1
        assert isinstance(failed[0], HotlineError)
        assert sent_types(p.alpha) == ["activity_notice", "activity_notice"]
        await settled(p)

    run_pair(scenario)


def test_two_steps_of_one_concern_at_once_send_one(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        raised = {
            "type": "concern",
            "concern_id": "c-race",
            "step": "raise",
            "about": {"incident": "Shelling near the substation."},
            "asked": "Confirm?",
        }
        await p.bravo.deconfliction.send_data(raised)
        await p.flush()
        ack = {"type": "concern", "concern_id": "c-race", "step": "acknowledge"}
        results = await asyncio.gather(
            p.alpha.deconfliction.send_data(ack),
            p.alpha.deconfliction.send_data(ack),
            return_exceptions=True,
        )
        ok, failed = outcomes(results)
        assert ok == 1
        assert [type(e) for e in failed] == [InputError]
        assert sent_types(p.alpha) == ["concern"]
        await settled(p)
        for s in (p.alpha, p.bravo):
            with s.registry.lock:
                assert s.registry.concerns.get("c-race").state == "acknowledged"

    run_pair(scenario)


def test_two_imports_at_once_are_each_all_or_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        first = _collection(*(_feature(f"H-{i}", [30.0 + i / 10, 50.4]) for i in range(1, 6)))
        second = _collection(_feature("H-9", [31.5, 50.4]), _feature("H-5", [31.6, 50.4]))
        results = await asyncio.gather(
            p.alpha.deconfliction.import_file(first, prefix="first"),
            p.alpha.deconfliction.import_file(second, prefix="second"),
            return_exceptions=True,
        )
        assert [n.site_id for n in results[0]] == [f"H-{i}" for i in range(1, 6)]  # type: ignore[union-attr]
        assert isinstance(results[1], ImportFileError)
        assert "H-5" in results[1].message
        await settled(p)
        for s in (p.alpha, p.bravo):
            with s.registry.lock:
                ids = {r.id for r in s.registry.registry.sites()}
            assert ids == {f"H-{i}" for i in range(1, 6)}, s.line.station_id

    run_pair(scenario)


def test_a_peers_notice_between_the_check_and_the_send_refuses_the_send(run_pair: Any) -> None:
    """bravo's 'add X' reaches alpha after alpha checked its own 'add X' and before the
    writer runs it: alpha's send fails inside the unit and nothing of it is stored."""

    async def scenario(p: Pair) -> None:
        await p.bravo.deconfliction.send_data(site_notice("X", coords=[30.0, 50.0]))
        real_send = p.alpha.line.send

        async def send_after_the_peer(**kw: Any) -> Any:
            await p.deliver(p.bravo, p.alpha, p.outbound(p.bravo, "alpha"))
            return await real_send(**kw)

        p.alpha.line.send = send_after_the_peer  # type: ignore[method-assign]
        with pytest.raises(InputError, match="already notified"):
            await p.alpha.deconfliction.send_data(site_notice("X", coords=[31.0, 50.0]))
        p.alpha.line.send = real_send  # type: ignore[method-assign]
        assert sent_types(p.alpha) == []
        with p.alpha.registry.lock:
            assert p.alpha.registry.registry.site("X").owner == "bravo"
        await settled(p)

    run_pair(scenario)


# --- off the loop -----------------------------------------------------------------------


def test_parsing_checks_and_imports_run_off_the_event_loop(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(p: Pair) -> None:
        loop_thread = threading.get_ident()
        seen: list[tuple[str, int]] = []

        def on(name: str, fn: Any) -> Any:
            def wrapped(*a: Any, **kw: Any) -> Any:
                seen.append((name, threading.get_ident()))
                return fn(*a, **kw)

            return wrapped

        a = p.alpha.registry
        monkeypatch.setattr(
            registry_module, "parse_payload", on("parse", registry_module.parse_payload)
        )
        monkeypatch.setattr(a, "precheck", on("precheck", a.precheck))
        monkeypatch.setattr(a, "import_notices", on("import", a.import_notices))
        await p.alpha.deconfliction.send_data(site_notice("P", coords=[30.0, 50.0]))
        await p.alpha.deconfliction.import_file(_collection(_feature("H-1", [30.5, 50.4])))
        await p.alpha.deconfliction.send_data(activity_notice("A"))
        names = {n for n, _ in seen}
        assert {"parse", "precheck", "import"} <= names
        on_loop = [n for n, t in seen if t == loop_thread]
        assert on_loop == []

    run_pair(scenario)


# --- geometry limits ----------------------------------------------------------------------


def _big_polygon_site(n: int) -> dict[str, Any]:
    notice = site_notice("BIG")
    del notice["site"]["protection_radius_m"]
    notice["site"]["geometry"] = {"type": "Polygon", "coordinates": [[[30, 50]] * n]}
    return notice


def test_a_million_vertex_polygon_from_an_operator_is_refused_unvalidated(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(p: Pair) -> None:
        before = snapshot(p.alpha), snapshot(p.bravo)
        monkeypatch.setattr(geometry, "shapely", Tripwire("shapely"))
        monkeypatch.setattr(geometry, "GEOD", Tripwire("pyproj.Geod"))
        with pytest.raises(GeometryError) as info:
            await p.alpha.deconfliction.send_data(_big_polygon_site(1_000_000))
        assert info.value.code == "geometry_too_large"
        monkeypatch.undo()
        await settled(p)
        assert (snapshot(p.alpha), snapshot(p.bravo)) == before
        # and the station goes on answering
        await p.alpha.deconfliction.send_data(site_notice("SMALL"))

    run_pair(scenario)


def test_an_over_limit_polygon_from_a_peer_is_refused_with_its_code(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(p: Pair) -> None:
        before = snapshot(p.bravo)
        monkeypatch.setattr(geometry, "shapely", Tripwire("shapely"))
        monkeypatch.setattr(geometry, "GEOD", Tripwire("pyproj.Geod"))
        # over the vertex limit (10,000), under the count of JSON values taken before the
        # parse: refused by the notice's size check, with its own code; 100,000 vertices
        # are over that count and refused unparsed (bad_payload)
        for vertices, code in ((20_000, "geometry_too_large"), (100_000, "bad_payload")):
            body = json.dumps(
                {"type": "site_notice", "text": "x", "data": _big_polygon_site(vertices)}
            ).encode()
            raw = _forge_typed(p, body)
            assert len(raw) <= p.bravo.settings.max_envelope_bytes
            with pytest.raises(HotlineError) as info:
                p.bravo.line.check_inbound(raw)
            assert info.value.code == code, vertices
        assert snapshot(p.bravo) == before

    run_pair(scenario)
