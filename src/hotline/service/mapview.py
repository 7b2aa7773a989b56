"""The console map's read side: sites, activities and conflicts as lean GeoJSON, and the
details of one of each, from the deconfliction registry held in memory.

Owns the shape the map draws (one FeatureCollection per source, with short properties:
10,000 sites stay one small request) and the values its details panels show. Each
function takes the ``RegistryProjection`` and holds its lock only while it copies what
it needs; call it in a worker thread, never on the event loop (the writer thread holds
the same lock while it applies a notice). Must not touch: the registry's rules, writes.

Circles in metres: a point's protection reach (or an activity's radius, a corridor's
half-width) is given as ``k``, its size in pixels at zoom 0 in Web Mercator (512-pixel
tiles) at the feature's latitude; the map doubles it at each zoom level, so the ring is
the right size in metres at every zoom without thousands of polygon vertices.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from hotline.deconfliction import geometry
from hotline.deconfliction.concerns import ConcernThread
from hotline.deconfliction.models import Activity, Concern, Site
from hotline.deconfliction.registry import Record
from hotline.errors import NotFoundError
from hotline.service.registry import OpenConflict, RegistryProjection

#: metres per pixel at zoom 0 on the equator (512-pixel tiles)
M_PER_PX_Z0 = 2 * math.pi * 6_378_137.0 / 512


def _px0(metres: float, lat: float) -> float:
    """A length in metres as pixels at zoom 0, at latitude ``lat``."""
    scale = max(math.cos(math.radians(lat)), 1e-6)
    return round(metres / (M_PER_PX_Z0 * scale), 9)


def _name(site: Site | None, fallback: str) -> str:
    if site is None:
        return fallback
    return site.names.get("en") or next(iter(site.names.values()), fallback)


def _epoch(t: dt.datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def sites_geojson(proj: RegistryProjection) -> dict[str, Any]:
    """Every live site: its point or polygon, name, category, owner and reach."""
    proj.decode_listed("site")
    with proj.lock:
        recs = [(r.id, r.owner, r.current) for r in proj.registry.sites()]
    feats: list[dict[str, Any]] = []
    for sid, owner, site in recs:
        if not isinstance(site, Site):
            continue
        g = site.geometry
        props: dict[str, Any] = {
            "id": sid,
            "name": _name(site, sid),
            "cat": site.category,
            "nuc": site.category == "nuclear_power_plant",
            "owner": owner,
            "reach": site.reach_m,
        }
        if g.type == "Point":
            props["k"] = _px0(site.reach_m, g.coordinates[1])
        geom = {"type": g.type, "coordinates": g.coordinates}
        feats.append({"type": "Feature", "geometry": geom, "properties": props})
    return _collection(feats)


def activities_geojson(proj: RegistryProjection) -> dict[str, Any]:
    """Every live activity: its area, corridor or point, kind, owner and window (epoch s)."""
    proj.decode_listed("activity")
    with proj.lock:
        recs = [(r.id, r.owner, r.current) for r in proj.registry.activities()]
    feats: list[dict[str, Any]] = []
    for aid, owner, act in recs:
        if not isinstance(act, Activity):
            continue
        g = act.geometry
        props: dict[str, Any] = {
            "id": aid,
            "kind": act.kind,
            "owner": owner,
            "start": act.window.start.timestamp(),
            "end": act.window.end.timestamp(),
        }
        if g.type == "Point":
            props["k"] = _px0(act.radius_m or 0.0, g.coordinates[1])
        elif g.type == "LineString":
            props["k"] = _px0(2 * (act.half_width_m or 0.0), g.coordinates[0][1])
        feats.append({"type": "Feature", "geometry": g.model_dump(), "properties": props})
    return _collection(feats)


def conflicts_geojson(proj: RegistryProjection) -> dict[str, Any]:
    """Every open conflict: a line between the nearest points of site and activity (a
    point where they overlap), named by its draft concern's id, with the distance."""
    with proj.lock:
        rows = []
        for oc in proj.open_conflicts.values():
            c = oc.conflict
            site = proj.registry.site(c.site_id).current
            act = proj.registry.activity(c.activity_id).current
            state = _concern_state(proj, oc.draft.concern_id)
            rows.append((oc, site, act, state))
    feats: list[dict[str, Any]] = []
    for oc, site, act, state in rows:
        c = oc.conflict
        if not isinstance(site, Site) or not isinstance(act, Activity):
            continue
        _, p, q = geometry.nearest(site.geometry.shape(), act.geometry.shape())
        geom: dict[str, Any] = (
            {"type": "Point", "coordinates": list(p)}
            if p == q
            else {"type": "LineString", "coordinates": [list(p), list(q)]}
        )
        props = {
            "id": oc.draft.concern_id,
            "site_id": c.site_id,
            "site_name": _name(site, c.site_id),
            "nuc": site.category == "nuclear_power_plant",
            "activity_id": c.activity_id,
            "kind": act.kind,
            "activity_station": c.activity_station,
            "distance_m": round(c.distance_m, 1),
            "reach_m": round(c.reach_m, 1),
            "start": _epoch(c.window_start),
            "end": _epoch(c.window_end),
            "concern": state,
        }
        feats.append({"type": "Feature", "geometry": geom, "properties": props})
    feats.sort(key=lambda f: (not f["properties"]["nuc"], f["properties"]["distance_m"]))
    return _collection(feats)


def _concern_state(proj: RegistryProjection, concern_id: str) -> str:
    """``draft`` until the concern is raised, then its state. Caller holds the lock."""
    try:
        return proj.concerns.get(concern_id).state
    except NotFoundError:
        return "draft"


# --- details --------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionView:
    version: int
    action: str
    notified_by: str
    at: dt.datetime
    acknowledged_by: dict[str, dt.datetime]


@dataclass(frozen=True)
class RecordView:
    """A site or activity and its versions, for the details panel."""

    id: str
    kind: str
    owner: str
    live: bool
    current: Site | Activity | None
    versions: list[VersionView]
    stale: bool
    reconfirm_by: dt.datetime | None


def _record_view(proj: RegistryProjection, rec: Record, now: dt.datetime) -> RecordView:
    versions = [
        VersionView(
            v.version,
            v.action,
            v.notified_by,
            v.at,
            proj.registry.acknowledgements(v.notice_id),
        )
        for v in rec.versions
    ]
    stale = rec.kind == "site" and proj.registry.is_stale(rec.id, now)
    return RecordView(
        rec.id, rec.kind, rec.owner, rec.live, rec.current, versions, stale, rec.reconfirm_by
    )


def site_view(proj: RegistryProjection, site_id: str, now: dt.datetime) -> RecordView:
    """One site (NotFoundError if unknown)."""
    with proj.lock:
        return _record_view(proj, proj.registry.site(site_id), now)


def activity_view(proj: RegistryProjection, activity_id: str, now: dt.datetime) -> RecordView:
    """One activity (NotFoundError if unknown)."""
    with proj.lock:
        return _record_view(proj, proj.registry.activity(activity_id), now)


@dataclass(frozen=True)
class ConflictView:
    """An open conflict, its draft concern, and the concern's thread once raised."""

    open: OpenConflict
    site_name: str
    site_category: str
    activity_kind: str
    draft: Concern
    #: the concern once raised: its state, who raised it, and its steps (step, by, at)
    state: str | None
    raised_by: str | None
    steps: list[tuple[Concern, str, dt.datetime]]


def conflict_view(proj: RegistryProjection, concern_id: str) -> ConflictView:
    """The open conflict whose draft concern is ``concern_id`` (NotFoundError if none)."""
    with proj.lock:
        for oc in proj.open_conflicts.values():
            if oc.draft.concern_id != concern_id:
                continue
            site = proj.registry.site(oc.conflict.site_id).current
            act = proj.registry.activity(oc.conflict.activity_id).current
            try:
                thread: ConcernThread | None = proj.concerns.get(concern_id)
            except NotFoundError:
                thread = None
            return ConflictView(
                oc,
                _name(site if isinstance(site, Site) else None, oc.conflict.site_id),
                site.category if isinstance(site, Site) else "other",
                act.kind if isinstance(act, Activity) else "other",
                oc.draft,
                thread.state if thread else None,
                thread.raised_by if thread else None,
                list(thread.steps) if thread else [],
            )
    raise NotFoundError(f"no open conflict with draft concern {concern_id}")
