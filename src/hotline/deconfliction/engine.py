"""Conflict engine: spatial index over buffered volumes and the conflict decision.

Owns :class:`Volume` (a buffered footprint with a time window and an altitude band),
:class:`VolumeIndex` (a shapely STRtree over lon/lat prefilter boxes, plus a small
delta of volumes added since the last build and a set of dead slots, rebuilt when the
delta grows; a slot loaded from a saved index holds only its id and its columns until a
check needs its footprint, which ``resolve`` then builds) and :class:`Engine` (one
index of sites, one of live activities; checks a new or changed volume against all of
the other kind at once). Pure and synchronous: no database, clock or event loop. Not
thread-safe: one writer calls it.

Decision rule (docs/deconfliction.md): a site S and an activity A conflict when their
time windows overlap (half-open), their altitude bands overlap (closed; a missing band
or bands on different references count as overlapping) and the geodesic distance
between their footprints is at most ``S.reach_m + A.reach_m``. The STRtree is only a
prefilter with a safe margin; planar distances in a local AEQD frame decide when the
distortion bound makes them decisive, otherwise :func:`geometry.nearest` decides.
"""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Callable, Iterable, Sequence
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


def site_volume(site_id: str, station: str, site: Site, shape: Shape | None = None) -> Volume:
    """The volume a site protects (``shape``: its footprint, when already parsed)."""
    lo, hi, ref = _band(site.altitude)
    return Volume(
        site_id,
        station,
        site.geometry.shape() if shape is None else shape,
        site.reach_m,
        _epoch(site.valid_from, -math.inf),
        _epoch(site.valid_until, math.inf),
        lo,
        hi,
        ref,
        site.category,
    )


def activity_volume(
    activity_id: str, station: str, activity: Activity, shape: Shape | None = None
) -> Volume:
    """The volume an activity occupies (``shape``: its footprint, when already parsed)."""
    lo, hi, ref = _band(activity.altitude)
    return Volume(
        activity_id,
        station,
        activity.geometry.shape() if shape is None else shape,
        activity.reach_m,
        activity.window.start.timestamp(),
        activity.window.end.timestamp(),
        lo,
        hi,
        ref,
        activity.kind,
    )


@dataclass(frozen=True, slots=True)
class SavedIndex:
    """A :class:`VolumeIndex`'s live volumes as arrays (what a snapshot stores): their
    ids, their columns (``VolumeIndex`` rows, one per id) and the prefilter boxes of
    those that are not points (``boxes`` (m, 4), ``box_of`` (m,): the id's position)."""

    ids: list[str]
    cols: npt.NDArray[np.float64]
    boxes: npt.NDArray[np.float64]
    box_of: IntArray

    def check(self) -> None:
        """Raise ValueError unless the arrays fit together (shapes, ranges, flags)."""
        n = len(self.ids)
        if self.cols.shape != (n, 9) or self.boxes.ndim != 2 or self.boxes.shape[1] != 4:
            raise ValueError("a saved index's arrays do not match its ids")
        if self.box_of.shape != (len(self.boxes),):
            raise ValueError("a saved index's boxes do not match their owners")
        if n and not (self.cols[:, 8] > 0).all():
            raise ValueError("a saved index holds a dead volume")
        if len(self.box_of) and (self.box_of.min() < 0 or self.box_of.max() >= n):
            raise ValueError("a saved index's box belongs to no volume")
        if len(set(self.ids)) != n:
            raise ValueError("a saved index holds an id twice")


class VolumeIndex:
    """STRtree over prefilter boxes of the volumes, a delta beside it, dead slots.

    Slots are append-only; a changed volume takes a new slot and the old one dies.
    ``compact()`` rebuilds the tree; it runs by itself when the delta exceeds
    ``max_delta`` entries or a twentieth of the tree. A slot filled by :meth:`load`
    holds the volume's id (a str) until :meth:`_volume` resolves it.
    """

    def __init__(self, volumes: Iterable[Volume] = (), *, max_delta: int = 2048) -> None:
        self.max_delta = max_delta
        self._slots: list[Volume | str | None] = []
        self._resolve: Callable[[str], Volume] | None = None
        #: rows of ``_box_pool`` holding the prefilter boxes of each unresolved slot's shape
        self._saved_boxes: dict[str, tuple[int, int]] = {}
        self._box_pool: npt.NDArray[np.float64] = np.zeros((0, 4))
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
        return None if slot is None else self._volume(slot)

    def volumes(self) -> list[Volume]:
        return [v for v in (self._volume(i) for i in range(len(self._slots))) if v is not None]

    def _volume(self, slot: int) -> Volume | None:
        """The volume in ``slot`` (None: dead), resolving a loaded one on first use."""
        v = self._slots[slot]
        if isinstance(v, str):
            if self._resolve is None:  # pragma: no cover - load() always sets it
                raise RuntimeError("an unresolved slot without a resolver")
            v = self._resolve(v)
            self._slots[slot] = v
            self._saved_boxes.pop(v.id, None)
        return v

    def load(self, saved: SavedIndex, resolve: Callable[[str], Volume]) -> None:
        """Fill an empty index from ``saved`` without building a single volume: each
        is built by ``resolve(id)`` when a check first needs its footprint (the
        columns decide every filter before that)."""
        if self._slots:
            raise ValueError("load fills an empty index only")
        saved.check()
        self._resolve = resolve
        n = len(saved.ids)
        self._slots = list(saved.ids)
        self._by_id = dict(zip(saved.ids, range(n), strict=True))
        self._cols = np.asarray(saved.cols, dtype=np.float64).reshape(n, 9)
        order = np.argsort(saved.box_of, kind="stable")
        owners, boxes = saved.box_of[order], saved.boxes[order]
        starts = np.searchsorted(owners, np.arange(n + 1))
        shaped = np.flatnonzero(starts[1:] > starts[:-1])
        spans = zip(starts[shaped].tolist(), starts[shaped + 1].tolist(), strict=True)
        self._saved_boxes = dict(zip([saved.ids[i] for i in shaped.tolist()], spans, strict=True))
        self._box_pool = boxes
        points = (self._cols[:, 8].astype(np.int64) & 2) > 0
        if len(self._saved_boxes) != int((~points).sum()):
            raise ValueError("a saved index's shapes lack their boxes")
        # the tree from the saved boxes at once (compact() would gather them shape by shape)
        self._cols = np.zeros((n + 2 * self.max_delta, 9))
        self._cols[:n] = saved.cols
        pts = saved.cols[points]
        arr, owner = geometry.point_boxes(pts[:, 0], pts[:, 1], pts[:, 2])
        self._set_tree(np.vstack([arr, boxes]),
                       np.concatenate([np.flatnonzero(points)[owner], owners]))  # fmt: skip

    def save(self) -> SavedIndex:
        """The live volumes as arrays, for :meth:`load` (unresolved slots stay so)."""
        live = [i for i, v in enumerate(self._slots) if v is not None]
        ids = [self._id(i) for i in live]
        cols = self._cols[np.array(live, dtype=np.int64)].copy() if live else np.zeros((0, 9))
        boxes: list[npt.NDArray[np.float64]] = []
        owner: list[npt.NDArray[np.int64]] = []
        for pos in np.flatnonzero((cols[:, 8].astype(np.int64) & 2) == 0):
            b = self._boxes_of(live[int(pos)])
            boxes.append(b)
            owner.append(np.full(len(b), pos, dtype=np.int64))
        return SavedIndex(
            ids,
            cols,
            np.vstack(boxes) if boxes else np.zeros((0, 4)),
            np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64),
        )

    def _id(self, slot: int) -> str:
        v = self._slots[slot]
        if v is None:  # pragma: no cover - callers pass live slots
            raise KeyError(slot)
        return v if isinstance(v, str) else v.id

    def _boxes_of(self, slot: int) -> npt.NDArray[np.float64]:
        """The prefilter boxes of the (not point) volume in a live slot."""
        v = self._slots[slot]
        if isinstance(v, str):
            lo, hi = self._saved_boxes[v]
            return self._box_pool[lo:hi]
        if v is None:  # pragma: no cover - callers pass live slots
            raise KeyError(slot)
        return np.array(geometry.prefilter_boxes(v.shape, v.reach_m), dtype=np.float64)

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
            self._saved_boxes.pop(volume_id, None)
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
        if self._dead or len(self._by_id) != len(self._slots):
            kept: list[Volume | str | None] = [v for v in self._slots if v is not None]
            ids = [v if isinstance(v, str) else v.id for v in kept if v is not None]
            self._slots = kept
            self._by_id = dict(zip(ids, range(len(ids)), strict=True))
        self._dead = 0
        cols = self._cols[: len(self._slots)]
        points = (cols[:, 8].astype(np.int64) & 2) > 0
        arr, owner = geometry.point_boxes(cols[points, 0], cols[points, 1], cols[points, 2])
        owner = np.flatnonzero(points)[owner]
        more: list[npt.NDArray[np.float64]] = [arr]
        more_owner: list[npt.NDArray[np.int64]] = [owner]
        for i in np.flatnonzero(~points):
            b = self._boxes_of(int(i))
            more.append(b)
            more_owner.append(np.full(len(b), i, dtype=np.int64))
        if len(more) > 1:
            arr = np.vstack(more)
            owner = np.concatenate(more_owner)
        self._set_tree(arr, owner)

    def _set_tree(self, arr: npt.NDArray[np.float64], owner: IntArray) -> None:
        """The STRtree over ``arr`` (boxes), box i being slot ``owner[i]``'s; no delta."""
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
        return self.conflicts_with_many([q])[0]

    def _pairs(self, qs: Sequence[Volume]) -> tuple[IntArray, IntArray]:
        """(query number, live slot) of every box hit, each pair once, in that order."""
        reach = np.array([q.reach_m for q in qs], dtype=np.float64)
        qb, q_owner = geometry.prefilter_boxes_many([q.shape for q in qs], reach)
        qgeoms = shapely.box(qb[:, 0], qb[:, 1], qb[:, 2], qb[:, 3])
        hits = self._tree.query(qgeoms, "intersects")
        qi = [q_owner[hits[0]]]
        slot = [self._tree_slot[hits[1]]]
        if self._delta_slot:
            d = np.array(self._delta_boxes, dtype=np.float64)
            dhits = shapely.STRtree(shapely.box(d[:, 0], d[:, 1], d[:, 2], d[:, 3])).query(
                qgeoms, "intersects"
            )
            qi.append(q_owner[dhits[0]])
            slot.append(np.array(self._delta_slot, dtype=np.int64)[dhits[1]])
        qa, sa = np.concatenate(qi), np.concatenate(slot)
        keys: IntArray = np.unique(qa * (len(self._slots) + 1) + sa)
        qa, sa = keys // (len(self._slots) + 1), keys % (len(self._slots) + 1)
        alive = self._cols[sa, 8] > 0
        return qa[alive], sa[alive]

    def conflicts_with_many(
        self, qs: Sequence[Volume]
    ) -> list[list[tuple[Volume, float, float, float, float]]]:
        """:meth:`conflicts_with` for many volumes at once: one STRtree query for all of
        their boxes, the filters and planar distances over arrays of (query, candidate)
        pairs; only pairs the distortion bound leaves undecided are measured one by one.
        Gives, for each of ``qs``, exactly what :meth:`conflicts_with` gives."""
        out: list[list[tuple[Volume, float, float, float, float]]] = [[] for _ in qs]
        if not qs or not self._slots:
            return out
        qa, slots = self._pairs(qs)
        if slots.size == 0:
            return out
        qc = np.array([self._row(q) for q in qs], dtype=np.float64)
        c, p = self._cols[slots], qc[qa]
        ok = (c[:, 3] < p[:, 4]) & (p[:, 3] < c[:, 4])
        same_ref = (c[:, 7] == p[:, 7]) & (p[:, 7] != 0)
        ok &= ~same_ref | ((c[:, 5] <= p[:, 6]) & (p[:, 5] <= c[:, 6]))
        qa, slots, c, p = qa[ok], slots[ok], c[ok], p[ok]
        reach = c[:, 2] + p[:, 2]
        dist = np.full(len(slots), np.inf)
        points = (c[:, 8].astype(np.int64) & 2) > 0
        planes = _Planes(qs)
        if points.any():
            dist[points] = _point_distances_many(
                qs, planes, qa[points], c[points, 0], c[points, 1], reach[points]
            )
        if (~points).any():
            shapes = [v.shape for v in (self._volume(int(j)) for j in slots[~points]) if v]
            dist[~points] = _shape_distances_many(qs, planes, qa[~points], shapes, reach[~points])
        start, end = np.maximum(p[:, 3], c[:, 3]), np.minimum(p[:, 4], c[:, 4])
        for i in np.flatnonzero(dist <= reach):
            other = self._volume(int(slots[i]))
            if other is not None:
                hit = (other, float(dist[i]), float(reach[i]), float(start[i]), float(end[i]))
                out[int(qa[i])].append(hit)
        return out


class _Planes:
    """Each query volume's footprint in the local frame centred on its own anchor (what
    :func:`geometry.planar` gives), built lazily for all the queries in one projection."""

    def __init__(self, qs: Sequence[Volume]) -> None:
        self._qs = qs
        self._geoms: npt.NDArray[np.object_] | None = None

    def of(self, qa: IntArray) -> npt.NDArray[np.object_]:
        if self._geoms is None:
            self._geoms = _planes([q.shape for q in self._qs])
        return self._geoms[qa]


def _planes(shapes: Sequence[Shape]) -> npt.NDArray[np.object_]:
    coords = [s.coords() for s in shapes]
    n_vert = np.array([len(c) for c in coords], dtype=np.int64)
    allc = np.concatenate(coords)
    lon0 = np.repeat(np.array([s.anchor_lon for s in shapes]), n_vert)
    lat0 = np.repeat(np.array([s.anchor_lat for s in shapes]), n_vert)
    x, y = geometry.aeqd_forward_many(lon0, lat0, allc[:, 0], allc[:, 1])
    xy = np.column_stack([x, y])
    kinds = np.array([_KIND_CODE[s.kind] for s in shapes], dtype=np.int64)
    geoms = np.empty(len(shapes), dtype=object)
    vertex_owner = np.repeat(np.arange(len(shapes)), n_vert)
    pts = kinds == 0
    if pts.any():
        sel = pts[vertex_owner]
        geoms[pts] = shapely.points(xy[sel])
    part_sizes = [len(p) for s in shapes for p in s.parts]
    part_owner = np.repeat(np.arange(len(shapes)), [len(s.parts) for s in shapes])
    part_of_vertex = np.repeat(np.arange(len(part_sizes)), part_sizes)
    xy_parts = xy[~pts[vertex_owner]]  # the vertices of lines and polygons, part by part
    lines = kinds == 1
    if lines.any():
        sel = lines[part_owner][part_of_vertex]
        _, idx = np.unique(part_of_vertex[sel], return_inverse=True)
        geoms[lines] = shapely.linestrings(xy_parts[sel], indices=idx)
    polys = kinds == 2
    if polys.any():
        sel = polys[part_owner][part_of_vertex]
        _, ring_idx = np.unique(part_of_vertex[sel], return_inverse=True)
        rings = shapely.linearrings(xy_parts[sel], indices=ring_idx)
        _, poly_idx = np.unique(part_owner[polys[part_owner]], return_inverse=True)
        geoms[polys] = shapely.polygons(rings, indices=poly_idx)
    return geoms


_KIND_CODE = {"point": 0, "line": 1, "polygon": 2}


def _point_distances_many(
    qs: Sequence[Volume],
    planes: _Planes,
    qa: IntArray,
    lons: npt.NDArray[np.float64],
    lats: npt.NDArray[np.float64],
    reach: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Distances from each pair's query to its point where they decide a conflict (inf:
    surely apart).

    Planar distances in a frame centred on the query bound the geodesic one from above
    and, divided by the stretch ``k``, from below; only pairs the bounds leave undecided
    are measured exactly (frame re-centred on the point: exact radial distance)."""
    lon0 = np.array([q.shape.anchor_lon for q in qs])[qa]
    lat0 = np.array([q.shape.anchor_lat for q in qs])[qa]
    x, y = geometry.aeqd_forward_many(lon0, lat0, lons, lats)
    radial = np.hypot(x, y)
    is_point = np.array([q.shape.is_point for q in qs], dtype=bool)[qa]
    out = np.where(is_point, radial, np.inf)  # radial distance in an AEQD frame is exact
    rest = np.flatnonzero(~is_point)
    if rest.size == 0:
        return out
    extent = np.array([q.shape.extent_m for q in qs])[qa[rest]]
    d_p = np.asarray(
        shapely.distance(shapely.points(x[rest], y[rest]), planes.of(qa[rest])), dtype=np.float64
    )
    r = reach[rest]
    k = geometry.distortion(np.maximum(radial[rest], extent) * 1.01)
    got = np.where(d_p <= r, d_p, np.inf)
    # Measure exactly what the bounds leave undecided, and conflicts whose planar
    # distance could be more than REPORT_TOLERANCE_M off.
    vague = (d_p > r) & (d_p / k <= r) | (d_p <= r) & ((k - 1) * d_p > REPORT_TOL_M)
    for i in np.flatnonzero(vague):
        j = int(rest[i])
        pt = geometry.point_shape(lons[j], lats[j])
        got[i] = geometry.separation(pt, qs[int(qa[j])].shape)
    out[rest] = got
    return out


def _shape_distances_many(
    qs: Sequence[Volume],
    planes: _Planes,
    qa: IntArray,
    shapes: list[Shape],
    reach: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """As :func:`_point_distances_many` for lines and polygons: every pair's shape
    projected into the frame centred on its query in one call, measured at once."""
    coords = np.concatenate([s.coords() for s in shapes])
    n_vert = np.array([len(s.coords()) for s in shapes], dtype=np.int64)
    lon0 = np.repeat(np.array([q.shape.anchor_lon for q in qs])[qa], n_vert)
    lat0 = np.repeat(np.array([q.shape.anchor_lat for q in qs])[qa], n_vert)
    x, y = geometry.aeqd_forward_many(lon0, lat0, coords[:, 0], coords[:, 1])
    xy = np.column_stack([x, y])
    first = np.concatenate([[0], np.cumsum(n_vert)[:-1]])
    rho = np.maximum.reduceat(np.hypot(x, y), first)
    # one ring (or line) per part; polygons assemble their rings in order
    part_sizes = [len(p) for s in shapes for p in s.parts]
    part_owner = np.repeat(np.arange(len(shapes)), [len(s.parts) for s in shapes])
    part_of_vertex = np.repeat(np.arange(len(part_sizes)), part_sizes)
    is_line = np.array([s.kind == "line" for s in shapes], dtype=bool)
    geoms = np.empty(len(shapes), dtype=object)
    line_parts = is_line[part_owner]
    if line_parts.any():
        sel = line_parts[part_of_vertex]
        _, line_idx = np.unique(part_of_vertex[sel], return_inverse=True)
        geoms[is_line] = shapely.linestrings(xy[sel], indices=line_idx)
    if (~line_parts).any():
        sel = ~line_parts[part_of_vertex]
        _, ring_idx = np.unique(part_of_vertex[sel], return_inverse=True)
        rings = shapely.linearrings(xy[sel], indices=ring_idx)
        owners = part_owner[~line_parts]
        _, poly_idx = np.unique(owners, return_inverse=True)
        geoms[~is_line] = shapely.polygons(rings, indices=poly_idx)
    d_p = np.asarray(shapely.distance(geoms, planes.of(qa)), dtype=np.float64)
    q_point = np.array([q.shape.is_point for q in qs], dtype=bool)[qa]
    extent = np.array([q.shape.extent_m for q in qs])[qa]
    k = geometry.distortion(np.maximum(rho, extent) * 1.01)
    out = np.where(q_point, d_p, np.where(d_p <= reach, d_p, np.inf))
    vague = (d_p > reach) & (d_p / k <= reach) | (d_p <= reach) & ((k - 1) * d_p > REPORT_TOL_M)
    vague &= ~q_point  # distances from the frame's centre are exact
    for j in np.flatnonzero(vague):
        out[j] = geometry.separation(qs[int(qa[j])].shape, shapes[int(j)])
    return out


@functools.lru_cache(maxsize=65536)
def _when(t: float) -> datetime | None:
    """The time of an epoch second (None: open); cached, windows repeat across pairs."""
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

    def check_activities(self, activities: Sequence[Volume]) -> list[list[Conflict]]:
        """:meth:`check_activity` for many activities at once (a full re-check): one
        STRtree query and array predicates for all of them; the same conflicts. The
        cyclic garbage collector is paused meanwhile (and restored as it was)."""
        was = gc.isenabled()
        gc.disable()  # the objects made are acyclic: no walk of a million sites' heap
        try:
            found = self.sites.conflicts_with_many(activities)
            return [
                sorted(
                    (_conflict(site, a, d, r, s, e) for site, d, r, s, e in hits),
                    key=lambda c: c.key,
                )
                for a, hits in zip(activities, found, strict=True)
            ]
        finally:
            if was:
                gc.enable()

    def check_site(self, site: Volume) -> list[Conflict]:
        """Every live activity that ``site`` conflicts with."""
        found = self.activities.conflicts_with(site)
        return sorted(
            (_conflict(site, act, d, r, s, e) for act, d, r, s, e in found),
            key=lambda c: c.key,
        )
