"""Conflict engine: spatial index over buffered volumes and the conflict decision.

Owns :class:`Volume` (a buffered footprint with a time window and an altitude band),
:class:`VolumeIndex` (a shapely STRtree over lon/lat prefilter boxes, plus a small
delta of volumes added since the last build and a set of dead slots, rebuilt when the
delta grows) and :class:`Engine` (one index of sites, one of live activities; checks a
new or changed volume against all of the other kind at once). Pure and synchronous:
no database, clock or event loop. Not thread-safe: one writer calls it.

Decision rule (docs/deconfliction.md): a site S and an activity A conflict when their
time windows overlap (half-open), their altitude bands overlap (closed; a missing band
or bands on different references count as overlapping) and the geodesic distance
between their footprints is at most ``S.reach_m + A.reach_m``. The STRtree is only a
prefilter with a safe margin; planar distances in a local AEQD frame decide when the
distortion bound makes them decisive, otherwise :func:`geometry.nearest` decides.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import shapely

from . import geometry
from .geometry import Shape
from .models import Activity, AltitudeBand, Site

IntArray = npt.NDArray[np.int64]
RULE_OVERLAP = "footprint_overlap"
RULE_WITHIN = "within_protection_distance"
# A reported distance is within this of the geodesic one (decisions are exact anyway).
REPORT_TOL_M = 0.005
_REFS = {"": 0, "WGS84": 1, "AMSL": 2, "AGL": 3}


@dataclass(frozen=True, slots=True, eq=False)
class Volume:
    """A footprint, the distance it reaches, a time window and an altitude band.

    Open ends are ``-inf`` / ``inf`` (epoch seconds, metres); ``alt_ref`` "" means
    no band (all altitudes)."""

    id: str
    station: str
    shape: Shape
    reach_m: float
    start: float = -math.inf
    end: float = math.inf
    lower_m: float = -math.inf
    upper_m: float = math.inf
    alt_ref: str = ""
    label: str = ""


@dataclass(frozen=True, slots=True)
class Conflict:
    """A site and an activity whose volumes meet. ``distance_m`` is the geodesic
    distance between the footprints, ``reach_m`` the sum of both reaches (conflict when
    distance <= reach), the window is the overlap of both windows (None: open)."""

    site_id: str
    activity_id: str
    site_station: str
    activity_station: str
    distance_m: float
    reach_m: float
    window_start: datetime | None
    window_end: datetime | None
    rule: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.site_id, self.activity_id)


def _epoch(t: datetime | None, default: float) -> float:
    return default if t is None else t.timestamp()


def _band(band: AltitudeBand | None) -> tuple[float, float, str]:
    if band is None:
        return -math.inf, math.inf, ""
    return band.lower_m, band.upper_m, band.reference


def site_volume(site_id: str, station: str, site: Site) -> Volume:
    """The volume a site protects."""
    lo, hi, ref = _band(site.altitude)
    return Volume(
        site_id,
        station,
        site.geometry.shape(),
        site.reach_m,
        _epoch(site.valid_from, -math.inf),
        _epoch(site.valid_until, math.inf),
        lo,
        hi,
        ref,
        site.category,
    )


def activity_volume(activity_id: str, station: str, activity: Activity) -> Volume:
    """The volume an activity occupies."""
    lo, hi, ref = _band(activity.altitude)
    return Volume(
        activity_id,
        station,
        activity.geometry.shape(),
        activity.reach_m,
        activity.window.start.timestamp(),
        activity.window.end.timestamp(),
        lo,
        hi,
        ref,
        activity.kind,
    )


class VolumeIndex:
    """STRtree over prefilter boxes of the volumes, a delta beside it, dead slots.

    Slots are append-only; a changed volume takes a new slot and the old one dies.
    ``compact()`` rebuilds the tree; it runs by itself when the delta exceeds
    ``max_delta`` entries or a twentieth of the tree.
    """

    def __init__(self, volumes: Iterable[Volume] = (), *, max_delta: int = 2048) -> None:
        self.max_delta = max_delta
        self._slots: list[Volume | None] = []
        self._by_id: dict[str, int] = {}
        self._cols = np.zeros((0, 9))
        self._tree = shapely.STRtree([])
        self._tree_slot: IntArray = np.zeros(0, dtype=np.int64)
        self._delta_boxes: list[tuple[float, float, float, float]] = []
        self._delta_slot: list[int] = []
        self._dead = 0
        self.bulk_load(volumes)

    # columns: lon, lat, reach, start, end, lower, upper, ref code, alive(1)/point(2)
    def _row(self, v: Volume) -> list[float]:
        flags = 1.0 + (2.0 if v.shape.is_point else 0.0)
        return [
            v.shape.anchor_lon,
            v.shape.anchor_lat,
            v.reach_m,
            v.start,
            v.end,
            v.lower_m,
            v.upper_m,
            float(_REFS[v.alt_ref]),
            flags,
        ]

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, volume_id: object) -> bool:
        return volume_id in self._by_id

    def get(self, volume_id: str) -> Volume | None:
        slot = self._by_id.get(volume_id)
        return None if slot is None else self._slots[slot]

    def volumes(self) -> list[Volume]:
        return [v for v in self._slots if v is not None]

    def bulk_load(self, volumes: Iterable[Volume]) -> None:
        """Add many volumes and rebuild the tree once (fast path for start-up)."""
        vs = list({v.id: v for v in volumes}.values())
        if not vs:
            return
        for v in vs:
            self._kill(v.id)
        used = len(self._slots)
        for i, v in enumerate(vs):
            self._by_id[v.id] = used + i
        self._slots.extend(vs)
        self._cols = np.vstack([self._cols[:used], np.array([self._row(v) for v in vs])])
        self.compact()

    def put(self, volume: Volume) -> None:
        """Add or replace a volume; it counts in the next query at once (via the delta)."""
        self._kill(volume.id)
        slot = len(self._slots)
        self._slots.append(volume)
        self._by_id[volume.id] = slot
        if slot >= len(self._cols):
            grown = np.zeros((max(16, 2 * len(self._cols)), 9))
            grown[: len(self._cols)] = self._cols
            self._cols = grown
        self._cols[slot] = self._row(volume)
        for box in geometry.prefilter_boxes(volume.shape, volume.reach_m):
            self._delta_boxes.append(box)
            self._delta_slot.append(slot)
        if len(self._delta_slot) > max(self.max_delta, len(self._tree_slot) // 20):
            self.compact()

    def remove(self, volume_id: str) -> Volume | None:
        """Remove a volume (tombstone); returns it, or None if it was not there."""
        v = self.get(volume_id)
        self._kill(volume_id)
        return v

    def _kill(self, volume_id: str) -> None:
        slot = self._by_id.pop(volume_id, None)
        if slot is not None:
            self._slots[slot] = None
            self._cols[slot, 8] = 0.0
            self._dead += 1

    def compact(self) -> None:
        """Drop dead slots, renumber, and rebuild the STRtree over every live volume."""
        cols = self._cols[: len(self._slots)]
        alive = cols[:, 8] > 0
        live = cols[alive]
        self._cols = np.zeros((len(live) + 2 * self.max_delta, 9))  # room for the delta
        self._cols[: len(live)] = live
        kept = [v for v in self._slots if v is not None]
        self._by_id = {v.id: i for i, v in enumerate(kept)}
        self._slots = list(kept)
        self._dead = 0
        cols = self._cols[: len(self._slots)]
        points = (cols[:, 8].astype(np.int64) & 2) > 0
        arr, owner = geometry.point_boxes(cols[points, 0], cols[points, 1], cols[points, 2])
        owner = np.flatnonzero(points)[owner]
        more: list[tuple[float, float, float, float]] = []
        more_owner: list[int] = []
        for i in np.flatnonzero(~points):
            v = self._slots[int(i)]
            if v is not None:
                for box in geometry.prefilter_boxes(v.shape, v.reach_m):
                    more.append(box)
                    more_owner.append(int(i))
        if more:
            arr = np.vstack([arr, np.array(more)])
            owner = np.concatenate([owner, np.array(more_owner, dtype=np.int64)])
        self._tree = shapely.STRtree(shapely.box(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]))
        self._tree_slot = owner.astype(np.int64)
        self._delta_boxes, self._delta_slot = [], []

    def candidates(self, boxes: list[tuple[float, float, float, float]]) -> IntArray:
        """Live slots whose boxes meet any of ``boxes``."""
        q = np.array(boxes, dtype=np.float64).reshape(-1, 4)
        hits = self._tree.query(shapely.box(q[:, 0], q[:, 1], q[:, 2], q[:, 3]), "intersects")
        found = [self._tree_slot[hits[1]]]
        if self._delta_slot:
            d = np.array(self._delta_boxes)
            for b in q:
                m = (d[:, 0] <= b[2]) & (b[0] <= d[:, 2]) & (d[:, 1] <= b[3]) & (b[1] <= d[:, 3])
                found.append(np.array(self._delta_slot, dtype=np.int64)[m])
        slots: IntArray = np.unique(np.concatenate(found))
        alive: IntArray = slots[self._cols[slots, 8] > 0]
        return alive

    def conflicts_with(self, q: Volume) -> list[tuple[Volume, float, float, float, float]]:
        """Every indexed volume that meets ``q``: (volume, distance_m, reach_m, start, end)."""
        slots = self.candidates(geometry.prefilter_boxes(q.shape, q.reach_m))
        if slots.size == 0:
            return []
        c = self._cols[slots]
        ok = (c[:, 3] < q.end) & (q.start < c[:, 4])
        q_ref = _REFS[q.alt_ref]
        same_ref = (c[:, 7] == q_ref) & (q_ref != 0)
        ok &= ~same_ref | ((c[:, 5] <= q.upper_m) & (q.lower_m <= c[:, 6]))
        slots, c = slots[ok], c[ok]
        reach = c[:, 2] + q.reach_m
        dist = np.full(len(slots), np.inf)
        points = (c[:, 8].astype(np.int64) & 2) > 0
        if points.any():
            dist[points] = _point_distances(q, c[points, 0], c[points, 1], reach[points])
        if (~points).any():
            shapes = [v.shape for v in (self._slots[int(j)] for j in slots[~points]) if v]
            dist[~points] = _shape_distances(q, shapes, reach[~points])
        out = []
        for i in np.flatnonzero(dist <= reach):
            other = self._slots[int(slots[i])]
            if other is not None:
                start, end = max(q.start, c[i, 3]), min(q.end, c[i, 4])
                out.append((other, float(dist[i]), float(reach[i]), start, end))
        return out


def _point_distances(
    q: Volume,
    lons: npt.NDArray[np.float64],
    lats: npt.NDArray[np.float64],
    reach: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Distances from ``q`` to points where they decide a conflict (inf: surely apart).

    Planar distances in a frame centred on ``q`` bound the geodesic one from above and,
    divided by the stretch ``k``, from below; only pairs the bounds leave undecided are
    measured exactly (frame re-centred on the point: exact radial distance)."""
    lon0, lat0 = q.shape.anchor_lon, q.shape.anchor_lat
    x, y = geometry.aeqd_forward(lon0, lat0, lons, lats)
    if q.shape.is_point:
        return np.hypot(x, y)  # radial distance in an AEQD frame is exact
    d_p = shapely.distance(shapely.points(x, y), geometry.planar(q.shape, lon0, lat0))
    k = geometry.distortion(np.maximum(np.hypot(x, y), q.shape.extent_m) * 1.01)
    out = np.where(d_p <= reach, d_p, np.inf)
    # Measure exactly what the bounds leave undecided, and conflicts whose planar
    # distance could be more than REPORT_TOLERANCE_M off.
    vague = (d_p > reach) & (d_p / k <= reach) | (d_p <= reach) & ((k - 1) * d_p > REPORT_TOL_M)
    for i in np.flatnonzero(vague):
        out[i] = geometry.separation(geometry.point_shape(lons[i], lats[i]), q.shape)
    return out


def _shape_distances(
    q: Volume, shapes: list[Shape], reach: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """As :func:`_point_distances` for lines and polygons: every shape projected into
    the frame centred on ``q`` in one call, measured against ``q`` at once."""
    lon0, lat0 = q.shape.anchor_lon, q.shape.anchor_lat
    coords = np.concatenate([s.coords() for s in shapes])
    x, y = geometry.aeqd_forward(lon0, lat0, coords[:, 0], coords[:, 1])
    xy = np.column_stack([x, y])
    radius = np.hypot(x, y)
    geoms: list[shapely.Geometry] = []
    rho = np.empty(len(shapes))
    at = 0
    for i, s in enumerate(shapes):
        sizes = [len(p) for p in s.parts]
        part = xy[at : at + sum(sizes)]
        rho[i] = radius[at : at + sum(sizes)].max()
        at += sum(sizes)
        if s.kind == "line":
            geoms.append(shapely.LineString(part))
        else:
            rings = np.split(part, np.cumsum(sizes)[:-1])
            geoms.append(shapely.Polygon(rings[0], rings[1:]))
    qp = geometry.planar(q.shape, lon0, lat0)
    d_p = np.asarray(shapely.distance(np.array(geoms, dtype=object), qp), dtype=np.float64)
    if q.shape.is_point:
        return d_p  # distances from the frame's centre are exact
    k = geometry.distortion(np.maximum(rho, q.shape.extent_m) * 1.01)
    out = np.where(d_p <= reach, d_p, np.inf)
    vague = (d_p > reach) & (d_p / k <= reach) | (d_p <= reach) & ((k - 1) * d_p > REPORT_TOL_M)
    for j in np.flatnonzero(vague):
        out[j] = geometry.separation(q.shape, shapes[int(j)])
    return out


def _when(t: float) -> datetime | None:
    return None if math.isinf(t) else datetime.fromtimestamp(t, UTC)


def _conflict(
    site: Volume, activity: Volume, dist: float, reach: float, s: float, e: float
) -> Conflict:
    return Conflict(
        site_id=site.id,
        activity_id=activity.id,
        site_station=site.station,
        activity_station=activity.station,
        distance_m=dist,
        reach_m=reach,
        window_start=_when(s),
        window_end=_when(e),
        rule=RULE_OVERLAP if dist == 0.0 else RULE_WITHIN,
    )


class Engine:
    """Sites and live activities, each in a :class:`VolumeIndex`."""

    def __init__(self, *, max_delta: int = 2048) -> None:
        self.sites = VolumeIndex(max_delta=max_delta)
        self.activities = VolumeIndex(max_delta=max_delta)

    def check_activity(self, activity: Volume) -> list[Conflict]:
        """Every indexed site that ``activity`` conflicts with (one vectorised query)."""
        found = self.sites.conflicts_with(activity)
        return sorted(
            (_conflict(site, activity, d, r, s, e) for site, d, r, s, e in found),
            key=lambda c: c.key,
        )

    def check_site(self, site: Volume) -> list[Conflict]:
        """Every live activity that ``site`` conflicts with."""
        found = self.activities.conflicts_with(site)
        return sorted(
            (_conflict(site, act, d, r, s, e) for act, d, r, s, e in found),
            key=lambda c: c.key,
        )
