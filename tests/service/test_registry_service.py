"""The deconfliction registry on the line, between two in-process stations (SQLite and
PostgreSQL): sites and activities notified as typed messages, conflicts and their
alarms on both sides, concerns, the checks made before anything is sent, refused
notices, acknowledgements, rebuild, and import.

Notification is information, never permission: these tests check what the registry
records and raises, never that anything is "allowed".
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import json
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod

from hotline.crypto import primitives
from hotline.errors import (
    EnvelopeError,
    HotlineError,
    ImportFileError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from hotline.service import registry as service_registry
from hotline.service.registry import concern_json, conflict_json, record_json
from hotline.station import Station
from hotline.store import operational, registry_snapshot, schema
from hotline.store.writer import WriteTx
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from hotline.wire.messages import MessagePayload
from tests.service.conftest import Pair, snapshot

ED318 = Path(__file__).resolve().parent.parent / "vectors" / "data" / "ed318-examples"

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  #: FakeClock's start
ZNPP = (34.5863, 47.5119)  #: lon, lat
GEOD = Geod(ellps="WGS84")


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def away(km: float, azimuth: float = 180.0, origin: tuple[float, float] = ZNPP) -> list[float]:
    """[lon, lat] of the point ``km`` from ``origin`` on a geodesic."""
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], azimuth, km * 1000.0)
    return [lon, lat]


def nid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def site_notice(
    site_id: str = "ZNPP",
    *,
    action: str = "add",
    radius_m: float = 30_000.0,
    category: str = "nuclear_power_plant",
    coords: tuple[float, float] | list[float] = ZNPP,
    valid_from: dt.datetime = T0,
    valid_until: dt.datetime = T0 + dt.timedelta(days=30),
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "site_notice",
        "notice_id": nid(f"{site_id}-{action}"),
        "action": action,
        "site_id": site_id,
    }
    if action == "withdraw":
        return base
    base["site"] = {
        "names": {"en": "Zaporizhzhia NPP", "uk": "Запорізька АЕС"},
        "category": category,
        "geometry": {"type": "Point", "coordinates": list(coords)},
        "protection_radius_m": radius_m,
        "valid_from": iso(valid_from),
        "valid_until": iso(valid_until),
        "reconfirm_by": iso(T0 + dt.timedelta(days=60)),
    }
    return base


def activity_notice(
    activity_id: str,
    *,
    action: str = "add",
    point: list[float] | None = None,
    radius_m: float = 500.0,
    start: dt.datetime = T0 + dt.timedelta(days=1),
    hours: float = 4.0,
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "activity_notice",
        "notice_id": nid(f"{activity_id}-{action}"),
        "action": action,
        "activity_id": activity_id,
    }
    if action == "cancel":
        return base
    base["activity"] = {
        "kind": "artillery",
        "geometry": {"type": "Point", "coordinates": point or away(5.0)},
        "radius_m": radius_m,
        "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
        "window": {"start": iso(start), "end": iso(start + dt.timedelta(hours=hours))},
    }
    return base


def step(concern_id: str, name: str, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "concern", "concern_id": concern_id, "step": name}
    if text is not None:
        out["text"] = text
    return out


# --- reading a station ------------------------------------------------------------------


def conflicts(s: Station) -> set[tuple[str, str]]:
    with s.registry.lock:
        return set(s.registry.open_conflicts)


def alarms(s: Station, kind: str) -> list[dict[str, Any]]:
    with s.read_engine.connect() as conn:
        return [a for a in operational.open_alarms(conn) if a["kind"] == kind]


def all_alarm_rows(s: Station) -> list[tuple[Any, ...]]:
    a = schema.alarms
    with s.read_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(a).order_by(a.c.id))]


def state(s: Station, concern_id: str) -> str | None:
    with s.registry.lock:
        try:
            return s.registry.concerns.get(concern_id).state
        except NotFoundError:
            return None


def site_record(s: Station, site_id: str) -> dict[str, Any]:
    with s.registry.lock:
        return record_json(s.registry.registry.site(site_id), s.registry.registry, T0)


def draft_of(s: Station, key: tuple[str, str]) -> str:
    with s.registry.lock:
        return s.registry.open_conflicts[key].draft.concern_id


def messages_in(s: Station) -> list[Any]:
    m = schema.messages
    with s.read_engine.connect() as conn:
        return list(conn.execute(sa.select(m).where(m.c.direction == "in")).all())


async def refused_without_sending(
    p: Pair, s: Station, notice: dict[str, Any], error: type[HotlineError]
) -> HotlineError:
    """``notice`` is refused by ``s`` before sending: nothing changes on either station."""
    before = snapshot(p.alpha), snapshot(p.bravo)
    with pytest.raises(error) as info:
        await s.deconfliction.send_data(notice)
    await p.flush()
    assert (snapshot(p.alpha), snapshot(p.bravo)) == before
    return info.value


async def with_znpp(p: Pair) -> None:
    """bravo notifies the Zaporizhzhia NPP (30 km protection radius) to alpha."""
    await p.bravo.deconfliction.send_data(site_notice())
    await p.flush()


# --- conflicts ---------------------------------------------------------------------------


def test_conflict_opens_on_both_stations_and_ends_with_the_activity(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        for s in (p.alpha, p.bravo):
            rec = site_record(s, "ZNPP")
            assert rec["owner"] == "bravo"
            assert rec["live"]
            assert rec["current"]["category"] == "nuclear_power_plant"

        await p.alpha.deconfliction.send_data(activity_notice("near"))  # 5 km: inside 30 km
        await p.alpha.deconfliction.send_data(activity_notice("far", point=away(40.0)))
        late = T0 + dt.timedelta(days=45)  # inside the zone, after valid_until
        await p.alpha.deconfliction.send_data(activity_notice("late", start=late))
        await p.flush()

        for s in (p.alpha, p.bravo):
            assert conflicts(s) == {("ZNPP", "near")}, s.line.station_id
            [alarm] = alarms(s, "conflict")
            assert alarm["severity"] == "CRITICAL"
            assert alarm["ref"] == "ZNPP|near"
            assert "near" in alarm["detail"]
            assert "ZNPP" in alarm["detail"]
            oc = s.registry.open_conflicts[("ZNPP", "near")]
            assert oc.conflict.site_station == "bravo"
            assert oc.conflict.activity_station == "alpha"
            assert 4_900 < oc.conflict.distance_m < 5_100
            assert oc.draft.template == "iaea_five_principles"
            assert draft_of(s, ("ZNPP", "near")) in alarm["detail"]

        await p.alpha.deconfliction.send_data(activity_notice("near", action="cancel"))
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert conflicts(s) == set()
            assert alarms(s, "conflict") == []
            with s.registry.lock:
                assert not s.registry.registry.activity("near").live

    run_pair(scenario)


def test_conflict_with_a_site_that_is_not_nuclear_is_high(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        hospital = site_notice("HOSP-1", category="hospital", radius_m=1_000.0)
        await p.bravo.deconfliction.send_data(hospital)
        await p.alpha.deconfliction.send_data(activity_notice("a1", point=away(1.2)))
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert conflicts(s) == {("HOSP-1", "a1")}
            [alarm] = alarms(s, "conflict")
            assert alarm["severity"] == "HIGH"
            assert s.registry.open_conflicts[("HOSP-1", "a1")].draft.template is None

    run_pair(scenario)


def test_a_site_notified_after_the_activity_opens_the_conflict_too(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.alpha.deconfliction.send_data(activity_notice("early"))
        await p.flush()
        assert conflicts(p.alpha) == conflicts(p.bravo) == set()
        await with_znpp(p)
        for s in (p.alpha, p.bravo):
            assert conflicts(s) == {("ZNPP", "early")}
            assert len(alarms(s, "conflict")) == 1
        # bravo withdraws its site: the conflict ends on both sides
        await p.bravo.deconfliction.send_data(site_notice(action="withdraw"))
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert conflicts(s) == set()
            assert alarms(s, "conflict") == []

    run_pair(scenario)


def test_reference_data_conflicts_with_the_demo_activity(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        notices = await p.bravo.deconfliction.load_reference()
        await p.flush()
        assert len(notices) == 38
        with p.alpha.registry.lock:
            sites = p.alpha.registry.registry.sites()
            assert len(sites) == 38
            assert {r.owner for r in sites} == {"bravo"}
        # the demo's artillery point, 4.9 km south of the plant (reference radius 5 km)
        await p.alpha.deconfliction.send_data(
            activity_notice("demo", point=[34.585, 47.467], radius_m=500.0)
        )
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert ("UA-NPP-ZNPP", "demo") in conflicts(s)
            assert {a["severity"] for a in alarms(s, "conflict")} == {"CRITICAL"}
        # notifying the reference data again is refused whole, before anything is sent
        before = snapshot(p.bravo)
        with pytest.raises(InputError):
            await p.bravo.deconfliction.load_reference()
        assert snapshot(p.bravo) == before

    run_pair(scenario)


# --- concerns ---------------------------------------------------------------------------


async def _conflict_and_draft(p: Pair) -> str:
    await with_znpp(p)
    await p.alpha.deconfliction.send_data(activity_notice("near"))
    await p.flush()
    return draft_of(p.bravo, ("ZNPP", "near"))


def test_concern_runs_raised_acknowledged_answered_closed_on_both(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        cid = await _conflict_and_draft(p)
        assert state(p.alpha, cid) is None
        assert state(p.bravo, cid) is None

        # illegal before it is raised: refused before sending, nothing sent
        for name in ("acknowledge", "close"):
            await refused_without_sending(p, p.alpha, step(cid, name), InputError)
        await refused_without_sending(p, p.alpha, step(cid, "answer", "x"), InputError)

        await p.bravo.deconfliction.raise_draft(cid)
        await p.flush()
        assert state(p.alpha, cid) == state(p.bravo, cid) == "raised"
        with p.alpha.registry.lock:
            raised = concern_json(p.alpha.registry.concerns.get(cid))
        assert raised["raised_by"] == "bravo"
        assert raised["raised"]["template"] == "iaea_five_principles"
        assert raised["raised"]["about"] == {"site_ids": ["ZNPP"], "activity_ids": ["near"]}

        # raising it again, or answering before acknowledging: refused
        await refused_without_sending(p, p.bravo, step(cid, "answer", "x"), InputError)
        with pytest.raises(InputError):
            await p.bravo.deconfliction.raise_draft(cid)

        await p.alpha.deconfliction.send_data(step(cid, "acknowledge"))
        await p.flush()
        assert state(p.alpha, cid) == state(p.bravo, cid) == "acknowledged"
        await refused_without_sending(p, p.alpha, step(cid, "close"), InputError)

        await p.alpha.deconfliction.send_data(step(cid, "answer", "Moved 25 km east."))
        await p.flush()
        assert state(p.alpha, cid) == state(p.bravo, cid) == "answered"

        await p.bravo.deconfliction.send_data(step(cid, "close"))
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert state(s, cid) == "closed"
            with s.registry.lock:
                t = concern_json(s.registry.concerns.get(cid))
                assert s.registry.concerns.open() == []
            assert [(x["step"], x["by"]) for x in t["steps"]] == [
                ("raise", "bravo"),
                ("acknowledge", "alpha"),
                ("answer", "alpha"),
                ("close", "bravo"),
            ]
            assert t["steps"][2]["text"] == "Moved 25 km east."
            assert s.registry.refused == []
        await refused_without_sending(p, p.bravo, step(cid, "close"), InputError)

    run_pair(scenario)


def test_concern_steps_by_the_wrong_side_are_refused_before_sending(run_pair: Any) -> None:
    """Only the other side acknowledges and answers; only the raiser closes. The registry
    refuses these on both stations, so the check before sending must refuse them too
    (otherwise the step is sent, refused by both registries, and raises notice_refused
    at the peer)."""

    async def scenario(p: Pair) -> None:
        cid = await _conflict_and_draft(p)
        await p.bravo.deconfliction.raise_draft(cid)
        await p.flush()
        # bravo raised it: bravo acknowledging its own concern must be refused
        await refused_without_sending(p, p.bravo, step(cid, "acknowledge"), InputError)
        await p.alpha.deconfliction.send_data(step(cid, "acknowledge"))
        await p.alpha.deconfliction.send_data(step(cid, "answer", "Moved."))
        await p.flush()
        # alpha did not raise it: alpha closing it must be refused
        await refused_without_sending(p, p.alpha, step(cid, "close"), InputError)
        assert alarms(p.bravo, "notice_refused") == []

    run_pair(scenario)


def test_concern_raised_by_hand_without_a_conflict(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        raise_step = {
            "type": "concern",
            "concern_id": "c-hand-1",
            "step": "raise",
            "about": {"incident": "Shelling reported near the substation at 0400Z."},
            "asked": "Please confirm whether your forces were active there.",
        }
        await p.alpha.deconfliction.send_data(raise_step)
        await p.flush()
        assert state(p.alpha, "c-hand-1") == state(p.bravo, "c-hand-1") == "raised"
        # an unknown draft id is NotFound, nothing sent
        before = snapshot(p.alpha)
        with pytest.raises(NotFoundError):
            await p.alpha.deconfliction.raise_draft("c-000000000000")
        assert snapshot(p.alpha) == before

    run_pair(scenario)


# --- checks before sending ----------------------------------------------------------------


def test_notices_the_registry_would_refuse_are_not_sent(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        await p.alpha.deconfliction.send_data(activity_notice("mine"))
        await p.flush()

        # adding an id that is live: on the owner and on the other side
        err = await refused_without_sending(p, p.bravo, site_notice(), InputError)
        assert "already notified" in err.message
        await refused_without_sending(p, p.alpha, site_notice(), InputError)
        # changing another station's site or activity
        for notice in (site_notice(action="modify"), site_notice(action="withdraw")):
            err = await refused_without_sending(p, p.alpha, notice, PermissionDeniedError)
            assert "bravo" in err.message
        await refused_without_sending(
            p, p.bravo, activity_notice("mine", action="cancel"), PermissionDeniedError
        )
        # changing what does not exist
        await refused_without_sending(
            p, p.alpha, activity_notice("nope", action="modify"), NotFoundError
        )
        # the same notice id twice
        again = activity_notice("other")
        await p.alpha.deconfliction.send_data(again)
        await p.flush()
        await refused_without_sending(p, p.alpha, {**again, "activity_id": "other2"}, InputError)
        # bad data never reaches the registry: refused by the model
        bad = site_notice()
        bad["site"]["protection_radius_m"] = -1
        await refused_without_sending(p, p.bravo, bad, InputError)
        await refused_without_sending(p, p.bravo, {"type": "nope"}, InputError)
        # a peer that does not exist
        with pytest.raises(HotlineError):
            await p.alpha.deconfliction.send_data(activity_notice("x"), peer="charlie")
        for s in (p.alpha, p.bravo):
            assert s.registry.refused == []
            assert alarms(s, "notice_refused") == []

    run_pair(scenario)


def test_re_adding_an_id_another_station_withdrew_is_refused_before_sending(
    run_pair: Any,
) -> None:
    """The registry refuses an 'add' of an ended id owned by another station
    (PermissionDeniedError); the check before sending only looks at live records."""

    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        await p.bravo.deconfliction.send_data(site_notice(action="withdraw"))
        await p.flush()
        await refused_without_sending(p, p.alpha, site_notice(), PermissionDeniedError)
        assert alarms(p.bravo, "notice_refused") == []

    run_pair(scenario)


# --- what a peer sends that the registry refuses ---------------------------------------


async def _raw_modify_of_bravos_site(p: Pair) -> str:
    """alpha sends a typed message changing bravo's site, past Deconfliction's checks."""
    data = site_notice(action="modify", radius_m=1.0)
    sent = await p.alpha.line.send(
        peer="bravo",
        channel="deconfliction",
        precedence=Precedence.PRIORITY,
        payload=MessagePayload(type="site_notice", text="forged modify", data=data),
    )
    await p.flush()
    return str(sent.message_id)


def test_a_peers_notice_the_registry_refuses_is_stored_not_applied(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        before = {s.line.station_id: site_record(s, "ZNPP") for s in (p.alpha, p.bravo)}
        mid = await _raw_modify_of_bravos_site(p)

        # on the ledger and in bravo's messages, delivered
        assert [r.message_id for r in messages_in(p.bravo) if r.type == "site_notice"][-1] == mid
        for s in (p.alpha, p.bravo):
            assert site_record(s, "ZNPP") == before[s.line.station_id]
            assert site_record(s, "ZNPP")["current"]["protection_radius_m"] == 30_000.0
            [refused] = s.registry.refused
            assert refused["message_id"] == mid
            assert refused["code"] == "forbidden"
        [alarm] = alarms(p.bravo, "notice_refused")
        assert alarm["severity"] == "MEDIUM"
        assert alarm["peer"] == "alpha"
        assert mid in alarm["detail"]
        assert alarms(p.alpha, "notice_refused") == []  # its own message: no alarm

    run_pair(scenario)


def test_a_refused_notice_can_still_be_acknowledged(run_pair: Any) -> None:
    """Acknowledging a message is the line's business: a notice the registry did not apply
    must not make the acknowledgement fail."""

    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        mid = await _raw_modify_of_bravos_site(p)
        await p.bravo.line.acknowledge(mid, "Duty officer Bravo")
        await p.flush()
        m = schema.messages
        with p.alpha.read_engine.connect() as conn:
            by = conn.execute(
                sa.select(m.c.acknowledged_by).where(m.c.message_id == mid)
            ).scalar_one()
        assert by == "Duty officer Bravo"

    run_pair(scenario)


def test_a_peers_notice_reusing_an_applied_notice_id_is_reported(run_pair: Any) -> None:
    """A notice id already applied is skipped silently (meant for our own notice sent to
    several peers); a peer's notice reusing it is not applied and must be reported."""

    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        act = activity_notice("mine")
        await p.alpha.deconfliction.send_data(act)
        await p.flush()
        reuse = {**site_notice("OTHER", coords=away(300.0)), "notice_id": act["notice_id"]}
        await p.bravo.line.send(
            peer="alpha",
            channel="deconfliction",
            precedence=Precedence.PRIORITY,
            payload=MessagePayload(type="site_notice", text="reused id", data=reuse),
        )
        await p.flush()
        with p.alpha.registry.lock:
            assert "OTHER" not in {r.id for r in p.alpha.registry.registry.sites()}
        assert len(alarms(p.alpha, "notice_refused")) == 1

    run_pair(scenario)


# --- acknowledgements -----------------------------------------------------------------------


def test_acknowledging_a_site_notice_is_recorded_per_recipient(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        [msg] = [r for r in messages_in(p.alpha) if r.type == "site_notice"]
        for s in (p.alpha, p.bravo):
            assert site_record(s, "ZNPP")["versions"][0]["acknowledged_by"] == {}
        p.clock.advance(60)
        await p.alpha.line.acknowledge(msg.message_id, "Duty officer Alpha")
        await p.flush()
        when = iso(T0 + dt.timedelta(seconds=60)).replace("Z", "+00:00")
        for s in (p.alpha, p.bravo):
            [version] = site_record(s, "ZNPP")["versions"]
            assert version["acknowledged_by"] == {"alpha": when}, s.line.station_id
            assert version["notified_by"] == "bravo"

    run_pair(scenario)


# --- rebuild ---------------------------------------------------------------------------------


async def _busy_history(p: Pair) -> str:
    """Sites, activities, a conflict opened and one ended, a concern, a refused notice,
    an acknowledgement: everything the registry projects."""
    await with_znpp(p)
    hospital = site_notice("HOSP", category="hospital", radius_m=2_000.0, coords=away(200.0))
    await p.bravo.deconfliction.send_data(hospital)
    await p.alpha.deconfliction.send_data(activity_notice("near"))
    await p.alpha.deconfliction.send_data(activity_notice("gone", point=away(10.0, 90.0)))
    await p.flush()
    await p.alpha.deconfliction.send_data(activity_notice("gone", action="cancel"))
    cid = draft_of(p.bravo, ("ZNPP", "near"))
    await p.bravo.deconfliction.raise_draft(cid)
    await p.flush()
    await p.alpha.deconfliction.send_data(step(cid, "acknowledge"))
    [msg] = [r for r in messages_in(p.alpha) if r.type == "site_notice"][:1]
    await p.alpha.line.acknowledge(msg.message_id, "Duty officer Alpha")
    await _raw_modify_of_bravos_site(p)
    await p.flush()
    return cid


def _registry_view(s: Station) -> dict[str, Any]:
    with s.registry.lock:
        conflicts_ = {}
        for key, oc in s.registry.open_conflicts.items():
            doc = conflict_json(oc)
            doc["draft_concern"] = {
                k: v for k, v in doc["draft_concern"].items() if k != "concern_id"
            }
            conflicts_[key] = doc
        return {
            "registry": s.registry.registry.snapshot(),
            "conflicts": conflicts_,
            "concerns": [concern_json(t) for t in s.registry.concerns.all()],
            "refused": list(s.registry.refused),
        }


def _semantic(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """``snapshot`` with each message body parsed (key order aside)."""
    col = [c.name for c in schema.messages.columns].index("body")
    out = dict(rows)
    out["messages"] = [(*r[:col], json.loads(r[col]), *r[col + 1 :]) for r in rows["messages"]]
    return out


async def _rebuild(s: Station) -> None:
    def unit(tx: WriteTx) -> int:
        return s.line.rebuild_projections(tx.conn)

    await s.writer.submit(unit)


def test_rebuild_and_reload_give_the_same_registry(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        cid = await _busy_history(p)
        for s in (p.alpha, p.bravo):
            before, rows, open_ = _registry_view(s), snapshot(s), alarms(s, "conflict")
            assert before["conflicts"]
            assert before["concerns"]
            assert before["refused"]
            assert state(s, cid) == "acknowledged"
            await _rebuild(s)
            assert _registry_view(s) == before, s.line.station_id
            assert _semantic(snapshot(s)) == _semantic(rows)
            assert alarms(s, "conflict") == open_
            with s.read_engine.connect() as conn:
                s.registry.reload(conn)
            assert _registry_view(s) == before, s.line.station_id

    run_pair(scenario)


def test_rebuild_does_not_add_alarm_history(run_pair: Any) -> None:
    """Replaying the ledger re-raises and re-clears every conflict that ever ended: the
    alarms table (not a projection, never wiped) gains a copy of each one."""

    async def scenario(p: Pair) -> None:
        await _busy_history(p)
        for s in (p.alpha, p.bravo):
            before = all_alarm_rows(s)
            await _rebuild(s)
            assert all_alarm_rows(s) == before, s.line.station_id

    run_pair(scenario)


def test_rebuilt_message_bodies_are_byte_identical(run_pair: Any) -> None:
    """A rebuilt store equals the live one (store/projections.py). The body of a typed
    message we sent is stored live from the send action's dict (the caller's key order)
    and on rebuild from the action's canonical bytes (sorted keys): the JSON differs."""

    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        rows = snapshot(p.bravo)
        await _rebuild(p.bravo)
        assert snapshot(p.bravo) == rows

    run_pair(scenario)


def test_draft_concern_ids_survive_a_reload(run_pair: Any) -> None:
    """The id of a draft concern is shown to operators (`hotline conflicts`, the alarm's
    detail) and sent back by them (`hotline concern raise --draft ID`); a reload (start,
    or any rolled-back unit) must not change it."""

    async def scenario(p: Pair) -> None:
        cid = await _conflict_and_draft(p)
        with p.bravo.read_engine.connect() as conn:
            p.bravo.registry.reload(conn)
        assert draft_of(p.bravo, ("ZNPP", "near")) == cid
        await p.bravo.deconfliction.raise_draft(cid)

    run_pair(scenario)


def test_a_rolled_back_unit_keeps_the_registry(run_pair: Any) -> None:
    """The writer reloads the registry after a rolled-back unit; what it held remains."""

    async def scenario(p: Pair) -> None:
        await _conflict_and_draft(p)
        [msg] = [r for r in messages_in(p.alpha) if r.type == "site_notice"]
        await p.alpha.line.acknowledge(msg.message_id, "Duty officer Alpha")
        before = _registry_view(p.alpha)

        def failing(tx: WriteTx) -> None:
            raise InputError("refused inside the unit")

        with pytest.raises(InputError):
            await p.alpha.writer.submit(failing)
        assert _registry_view(p.alpha) == before

    run_pair(scenario)


# --- typed messages with bad data from a peer ------------------------------------------------


def _forge_typed(p: Pair, body: bytes) -> bytes:
    header = Header(
        Kind.MESSAGE, Precedence.PRIORITY, wire.DEFAULT_SUITE, "alpha", "bravo",
        "deconfliction", 1, uuid.uuid4(), p.clock.now_us(),
    )  # fmt: skip
    return wire.seal_envelope(
        header,
        body,
        primitives.Signer(p.alpha.identity.signing_seed),
        p.bravo.line.card.card.encryption_key,
    ).raw


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
NEAR_VALID = st.sampled_from(
    [
        site_notice(),
        activity_notice("x"),
        step("c-1", "answer", "t"),
        {**step("c-1", "raise"), "about": {"site_ids": ["A"]}, "asked": "?"},
    ]
)


def _mutated(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(base))
    target = out.get("site") or out.get("activity") or out
    target[key] = value
    return out


def test_typed_messages_with_bad_data_are_refused_on_receipt(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        before = snapshot(p.bravo), _registry_view(p.bravo)

        def refused(kind: str, data: Any) -> None:
            body = json.dumps({"type": kind, "text": "x", "data": data}).encode()
            with pytest.raises(EnvelopeError) as info:
                p.bravo.line.check_inbound(_forge_typed(p, body))
            assert info.value.code == "bad_payload", info.value

        for kind in ("site_notice", "activity_notice", "concern"):
            refused(kind, {"garbage": True})
            refused(kind, {})
        refused("site_notice", activity_notice("x"))  # data of another type
        bad_geometry = site_notice()
        bad_geometry["site"]["geometry"] = {"type": "Point", "coordinates": [200.0, 95.0]}
        refused("site_notice", bad_geometry)
        no_data = json.dumps({"type": "site_notice", "text": "x"}).encode()
        with pytest.raises(EnvelopeError, match="needs data"):
            p.bravo.line.check_inbound(_forge_typed(p, no_data))

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            kind=st.sampled_from(["site_notice", "activity_notice", "concern"]),
            data=st.dictionaries(st.text(max_size=12), JSON, max_size=6)
            | st.builds(_mutated, NEAR_VALID, st.sampled_from(
                ["geometry", "window", "names", "radius_m", "altitude", "step", "about",
                 "coordinates", "category", "protection_radius_m"]), JSON),
        )  # fmt: skip
        def garbage(kind: str, data: dict[str, Any]) -> None:
            body = json.dumps({"type": kind, "text": "x", "data": data}).encode()
            raw = _forge_typed(p, body)
            try:
                p.bravo.line.check_inbound(raw)
            except EnvelopeError as exc:
                code = exc.code
            else:
                code = "accepted"  # a mutation that left the data valid
            assert code in ("bad_payload", "geometry_too_large", "accepted")

        garbage()
        assert (snapshot(p.bravo), _registry_view(p.bravo)) == before

    run_pair(scenario)


# --- import -----------------------------------------------------------------------------------


def _feature(site_id: str, coords: list[float] | Any, **props: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": coords},
        "properties": {"site_id": site_id, "name": site_id, "category": "hospital",
                       "protection_radius_m": 1_000.0, **props},
    }  # fmt: skip


def _collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def test_import_is_all_or_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        before = snapshot(p.alpha), snapshot(p.bravo)
        bad_files = {
            "feature 1 (H-BAD)": _collection(
                _feature("H-1", [30.5, 50.4]),
                _feature("H-BAD", [30.5, 95.0]),  # latitude beyond the pole
                _feature("H-3", [30.6, 50.4]),
            ),
            "feature 2 (H-NEG)": _collection(
                _feature("H-1", [30.5, 50.4]),
                _feature("H-2", [30.6, 50.4]),
                _feature("H-NEG", [30.7, 50.4], protection_radius_m=-5),
            ),
            "feature 1 (ZNPP)": _collection(  # live already, notified by bravo
                _feature("H-1", [30.5, 50.4]), _feature("ZNPP", [34.5, 47.5])
            ),
            "feature 1 (H-1)": _collection(  # twice in the file
                _feature("H-1", [30.5, 50.4]), _feature("H-1", [30.6, 50.4])
            ),
            "not a JSON file": b"\xff\x00garbage",
            "no features": _collection(),
        }
        for named, raw in bad_files.items():
            for s in (p.alpha, p.bravo):
                with pytest.raises(ImportFileError) as info:
                    await s.deconfliction.import_file(raw)
                assert named in info.value.message, info.value.message
            await p.flush()
            assert (snapshot(p.alpha), snapshot(p.bravo)) == before

        good = _collection(_feature("H-1", [30.5, 50.4]), _feature("H-2", [30.6, 50.4]))
        done: list[tuple[int, int]] = []
        imported = await p.alpha.deconfliction.import_file(
            good, prefix="alpha-hosp", progress=lambda i, n: done.append((i, n))
        )
        assert [n.site_id for n in imported] == ["H-1", "H-2"]
        assert done == [(1, 2), (2, 2)]
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert site_record(s, "H-2")["owner"] == "alpha"

    run_pair(scenario)


def test_ed318_files_import(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        ids: list[str] = []
        for path in sorted(ED318.glob("*.json")):
            ids += [n.site_id for n in await p.bravo.deconfliction.import_file(path.read_bytes())]
            p.clock.advance(1)  # the default notice prefix counts seconds: see the next test
        await p.flush()
        assert ids
        for s in (p.alpha, p.bravo):
            with s.registry.lock:
                got = {r.id: r for r in s.registry.registry.sites()}
            assert set(ids) <= set(got)
            assert {got[i].owner for i in ids} == {"bravo"}
        circle = site_record(p.alpha, "ABC1234")["current"]
        assert circle["protection_radius_m"] == 3500
        assert circle["altitude"] == {"lower_m": 50.0, "upper_m": 150.0, "reference": "AGL"}

    run_pair(scenario)


def test_two_files_imported_in_the_same_second_both_import(run_pair: Any) -> None:
    """The default notice prefix is '<station>-import-<UTC second>': a second file
    imported within the same second gets the same notice ids, and is refused as
    'already sent' naming its first feature (which has nothing wrong with it)."""

    async def scenario(p: Pair) -> None:
        first = _collection(_feature("H-1", [30.5, 50.4]))
        second = _collection(_feature("H-2", [30.6, 50.4]))
        await p.alpha.deconfliction.import_file(first)
        await p.alpha.deconfliction.import_file(second)
        await p.flush()
        for s in (p.alpha, p.bravo):
            assert site_record(s, "H-2")["owner"] == "alpha"

    run_pair(scenario)


def test_import_too_large_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        raw = _collection(_feature("H-1", [30.5, 50.4]))
        assert len(raw) < 1024
        before = snapshot(p.alpha)
        with pytest.raises(ImportFileError, match="larger than"):
            await p.alpha.deconfliction.import_file(raw + b" " * 1024)
        assert snapshot(p.alpha) == before
        await p.alpha.deconfliction.import_file(raw)

    run_pair(scenario, import_max_bytes=1024)


# --- the registry snapshot ---------------------------------------------------------------------


def _full_view(s: Station) -> dict[str, Any]:
    """Everything the projection holds, draft concern ids and its own maps included."""
    with s.registry.lock:
        r = s.registry
        return {
            "registry": r.registry.snapshot(),
            "conflicts": {k: conflict_json(oc) for k, oc in r.open_conflicts.items()},
            "order": list(r.open_conflicts),
            "concerns": [concern_json(t) for t in r.concerns.all()],
            "refused": list(r.refused),
            "applied": dict(r._applied),
            "messages": dict(r._notice_of_message),
            "site_volumes": sorted(
                (v.id, v.station, v.reach_m, v.start, v.end, v.shape.kind)
                for v in r.registry.site_volumes()
            ),
        }


def _reload(s: Station, *, use_snapshot: bool) -> int:
    with s.read_engine.connect() as conn:
        return s.registry.reload(conn, use_snapshot=use_snapshot)


async def _store_snapshot(s: Station) -> int | None:
    _reload(s, use_snapshot=False)
    return await s.writer.submit(lambda tx: s.registry.save_snapshot(tx.conn, 1))


def _typed(s: Station) -> int:
    m = schema.messages
    with s.read_engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(m.c.type != "text")).scalar_one())


def test_a_registry_loaded_from_its_snapshot_equals_the_replayed_one(run_pair: Any) -> None:
    """Snapshot taken mid-history; more notices, a conflict, an ended one and an
    acknowledgement after it: snapshot + the messages after it == every message."""

    async def scenario(p: Pair) -> None:
        await _busy_history(p)
        for s in (p.alpha, p.bravo):
            assert await _store_snapshot(s) is not None
        await p.alpha.deconfliction.send_data(activity_notice("late", point=away(3.0, 45.0)))
        await p.alpha.deconfliction.send_data(activity_notice("near", action="cancel"))
        await p.bravo.deconfliction.send_data(
            site_notice("H2", category="hospital", radius_m=4_000.0, coords=away(201.0))
        )
        await p.flush()
        [msg] = [r for r in messages_in(p.bravo) if r.type == "activity_notice"][-1:]
        await p.bravo.line.acknowledge(msg.message_id, "Duty officer Bravo")
        await p.flush()
        for s in (p.alpha, p.bravo):
            live = _full_view(s)
            assert ("ZNPP", "late") in live["conflicts"]
            total = _reload(s, use_snapshot=False)
            replayed = _full_view(s)
            assert replayed == live
            after = _reload(s, use_snapshot=True)
            assert 0 < after < total == _typed(s)  # the snapshot was used
            assert gc.get_freeze_count() == 0  # the load's objects promoted, none frozen
            assert _full_view(s) == replayed, s.line.station_id
            _reload(s, use_snapshot=True)  # the saved records stay undecoded until read
            records = s.registry.registry.sites(include_ended=True)
            assert any(not r.decoded for r in records)
        # and it goes on alike: one more notice gives the same conflict on both
        await p.alpha.deconfliction.send_data(activity_notice("later", point=away(4.0, 0.0)))
        await p.flush()
        for s in (p.alpha, p.bravo):
            live = _full_view(s)
            _reload(s, use_snapshot=False)
            assert ("ZNPP", "later") in live["conflicts"]
            assert _full_view(s) == live

    run_pair(scenario)


@pytest.mark.parametrize("damage", ["body", "leaf_hash", "digest", "fingerprint", "part_gone"])
def test_a_snapshot_that_does_not_match_falls_back_to_replay(run_pair: Any, damage: str) -> None:
    async def scenario(p: Pair) -> None:
        await _busy_history(p)
        s = p.bravo
        await _store_snapshot(s)
        await s.deconfliction.send_data(site_notice("H3", category="hospital", coords=away(5.0)))
        await p.flush()
        total = _reload(s, use_snapshot=False)
        replayed = _full_view(s)
        h, parts = schema.registry_snapshot, schema.registry_snapshot_parts

        def spoil(tx: WriteTx) -> None:
            if damage == "body":
                tx.conn.execute(parts.update().values(body=b"\x78\x9c garbage"))
            elif damage == "leaf_hash":
                tx.conn.execute(h.update().values(leaf_hash=b"\x00" * 32))
            elif damage == "digest":
                tx.conn.execute(h.update().values(digest=b"\x01" * 32))
            elif damage == "fingerprint":
                tx.conn.execute(h.update().values(fingerprint="0" * 64))
            else:
                tx.conn.execute(parts.delete())

        await s.writer.submit(spoil)
        assert _reload(s, use_snapshot=True) == total  # every message replayed
        assert _full_view(s) == replayed

    run_pair(scenario)


@pytest.mark.parametrize("label", [1, 2, service_registry.SNAPSHOT_FORMAT])
def test_a_snapshot_of_format_1_is_refused_and_the_registry_replayed(
    run_pair: Any, label: int
) -> None:
    """A station that stored a snapshot of format 1 (one eager item per record, one
    zlib stream a part) replays every message at its next start, whatever format its
    head says (refused by its format and fingerprint, or it does not decode)."""

    async def scenario(p: Pair) -> None:
        await _busy_history(p)
        s = p.bravo
        total = _reload(s, use_snapshot=False)
        replayed = _full_view(s)
        lim = s.registry.limits
        facts = [label, s.line.station_id, lim.max_vertices, lim.max_rings, lim.max_bytes]
        versions = [[1, "n-old", "add", "ua", "2025-06-01T00:00:00+00:00", None, None]]
        items = [["S", "OLD", "ua", versions, None]]
        header = json.dumps(items, separators=(",", ":")).encode()
        bodies = [zlib.compress(len(header).to_bytes(8, "big") + header, 1)]

        def store(tx: WriteTx) -> None:
            idx = registry_snapshot.ledger_head(tx.conn)
            leaf = registry_snapshot.leaf_hash(tx.conn, idx)
            assert leaf is not None
            fingerprint = hashlib.sha256(json.dumps(facts).encode()).hexdigest()
            head = registry_snapshot.SnapshotHead(
                label, fingerprint, idx, leaf, 1, service_registry._digest(bodies), 1
            )
            registry_snapshot.write(tx.conn, head, bodies)

        await s.writer.submit(store)
        assert _reload(s, use_snapshot=True) == total  # every message replayed
        assert _full_view(s) == replayed
        with pytest.raises(NotFoundError):
            s.registry.registry.site("OLD")

    run_pair(scenario)


def test_a_snapshot_is_stored_only_for_the_state_of_a_reload(run_pair: Any) -> None:
    """After anything was applied live the projection's state is not a reload's: no
    snapshot is stored (it could not say which entry it is valid to)."""

    async def scenario(p: Pair) -> None:
        await with_znpp(p)
        s = p.alpha
        _reload(s, use_snapshot=False)
        await p.bravo.deconfliction.send_data(site_notice("H4", category="hospital"))
        await p.flush()
        assert await s.writer.submit(lambda tx: s.registry.save_snapshot(tx.conn, 1)) is None
        with s.read_engine.connect() as conn:
            assert conn.execute(sa.select(schema.registry_snapshot)).first() is None

    run_pair(scenario)
