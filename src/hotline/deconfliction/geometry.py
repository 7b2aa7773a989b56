"""Geodesic geometry for deconfliction: parse, check, densify, measure, buffer.

Owns the meaning of a notified footprint (RFC 7946 Point, LineString or Polygon on
WGS 84) and the one definition of distance used by the conflict engine. Pure: no I/O,
no database, no clock. Must not import the registry, the engine or anything outside
``hotline.errors``.

Method (see docs/deconfliction.md for the error bound):

* Edges are geodesics on WGS 84. Every edge longer than ``DENSIFY_STEP_M`` is split
  into geodesic pieces of at most that length before anything is measured.
* A *local frame* is the ellipsoidal azimuthal equidistant (AEQD) projection centred
  on a point ``c``, computed with pyproj's ``Geod`` (Karney's geodesic algorithms): a
  point maps to ``(s sin az, s cos az)`` where ``s`` and ``az`` are the geodesic
  distance and azimuth from ``c``. Distances *from the centre* are exact; between
  other points the planar distance ``d_p`` satisfies ``d_g <= d_p <= k(rho) d_g``
  (``k`` from :func:`distortion`), because the AEQD metric stretches by a factor
  between 1 and ``rho / m(rho)``.
* :func:`separation` gives the exact geodesic distance between two shapes: when the
  bound above is not decisive it re-centres the frame on the nearest point of one
  shape and measures the other radially (exact), alternating until it stops moving.
* Buffers are never built in degrees: :func:`buffer_rings` builds them in a local
  frame and maps them back.

Invariants of a :class:`Shape`: coordinates finite, latitude strictly inside
(-90, 90), longitude in [-180, 180], no edge crossing the antimeridian (so no ring
winds round a pole), rings closed and simple, at most ``max_vertices`` input vertices,
every vertex within ``MAX_EXTENT_M`` of the anchor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from hotline.errors import GeometryError

from .limits import DEFAULT_MAX_RINGS, DEFAULT_MAX_VERTICES, Limits, check_coordinates, too_large

Array = npt.NDArray[np.float64]
Kind = Literal["point", "line", "polygon"]

GEOD = Geod(ellps="WGS84")
WGS84_A = 6378137.0
WGS84_E2 = GEOD.es
# Smallest meridional radius of curvature (at the equator): bounds degrees per metre.
MERIDIONAL_MIN_M = WGS84_A * (1.0 - WGS84_E2)
# Largest Gaussian curvature is 1/(M N) at the equator; a sphere of this radius bounds
# the AEQD stretch from above (Rauch comparison), rounded down for safety.
CURVATURE_RADIUS_M = 6_350_000.0
DENSIFY_STEP_M = 1000.0
MAX_EXTENT_M = 1_000_000.0
MAX_RADIUS_M = 100_000.0
# Absolute slack for 1 km chords standing in for geodesic edges: measured <= 0.35 mm at
# the 200 km that two maximal radii can span (1.6 mm at 775 km), always on the near side.
# Documented in docs/deconfliction.md.
CHORD_SLACK_M = 1e-3
SPLIT_HINT = (
    "split the geometry at the antimeridian (longitude ±180°) into pieces that each stay "
    "on one side, as RFC 7946 §3.1.9 asks, and notify each piece"
)


@dataclass(frozen=True, slots=True, eq=False)
class Shape:
    """A checked, densified footprint. ``parts`` are (n, 2) lon/lat arrays: the rings
    of a polygon (exterior first), the one part of a line, nothing for a point."""

    kind: Kind
    anchor_lon: float
    anchor_lat: float
    parts: tuple[Array, ...]
    extent_m: float

    @property
    def is_point(self) -> bool:
        return self.kind == "point"

    def coords(self) -> Array:
        """Every vertex (the anchor for a point) as an (n, 2) array."""
        if not self.parts:
            return np.array([[self.anchor_lon, self.anchor_lat]])
        return np.concatenate(self.parts)


def point_shape(lon: float, lat: float) -> Shape:
    """A point shape from already checked coordinates."""
    return Shape("point", float(lon), float(lat), (), 0.0)


# --------------------------------------------------------------------------- parsing


def parse_geometry(
    obj: object, *, max_vertices: int = DEFAULT_MAX_VERTICES, max_rings: int = DEFAULT_MAX_RINGS
) -> Shape:
    """Turn an untrusted GeoJSON geometry object into a checked :class:`Shape`.

    Raises GeometryError naming what is wrong and what to do about it; code
    ``geometry_too_large`` (counted on list lengths, before any position is read) when it
    has more than ``max_vertices`` vertices or ``max_rings`` rings.
    """
    if not isinstance(obj, dict):
        raise GeometryError("a geometry must be a GeoJSON object", hint="send {type, coordinates}")
    gtype = obj.get("type")
    coords = obj.get("coordinates")
    check_coordinates(gtype, coords, Limits(max_vertices=max_vertices, max_rings=max_rings))
    if gtype == "Point":
        lon, lat = _position(coords, "Point")
        return point_shape(lon, lat)
    if gtype == "LineString":
        line = _positions(coords, "LineString")
        _check_count(len(line), max_vertices)
        if len(line) < 2 or len({tuple(p) for p in line}) < 2:
            raise GeometryError(
                "empty LineString: it needs at least two distinct positions",
                hint="send a corridor centre line with two or more distinct points",
            )
        return _build("line", [np.array(line)])
    if gtype == "Polygon":
        if not isinstance(coords, list) or not coords:
            raise GeometryError("empty Polygon: no rings", hint="send at least the outer ring")
        rings = [_positions(r, f"Polygon ring {i}") for i, r in enumerate(coords)]
        _check_count(sum(len(r) for r in rings), max_vertices)
        for i, ring in enumerate(rings):
            if len(ring) < 4:
                raise GeometryError(
                    f"Polygon ring {i} has {len(ring)} positions; a ring needs at least 4",
                    hint="close the ring: its last position repeats the first",
                )
            if ring[0] != ring[-1]:
                raise GeometryError(
                    f"Polygon ring {i} is not closed",
                    hint="repeat the first position as the last one",
                )
        arrays = [np.array(r) for r in rings]
        _check_simple(arrays)
        return _build("polygon", arrays)
    if gtype in {"MultiPolygon", "MultiPoint", "MultiLineString", "GeometryCollection"}:
        raise GeometryError(
            f"{gtype} is not accepted for one site or activity",
            hint="notify each part as its own Point, LineString or Polygon",
        )
    raise GeometryError(
        f"unknown geometry type {str(gtype)[:40]!r}", hint="use Point, LineString or Polygon"
    )


def _position(p: object, where: str) -> tuple[float, float]:
    if not isinstance(p, list | tuple) or len(p) not in (2, 3):
        raise GeometryError(
            f"{where}: a position is [longitude, latitude] (optionally with altitude)",
            hint="write positions as [lon, lat] in decimal degrees, WGS 84",
        )
    for v in p:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise GeometryError(f"{where}: coordinate {v!r:.40} is not a number")
        if not math.isfinite(v):
            raise GeometryError(f"{where}: coordinate is NaN or infinite")
    lon, lat = float(p[0]), float(p[1])
    if not -180.0 <= lon <= 180.0:
        raise GeometryError(
            f"{where}: longitude {lon} is out of range [-180, 180]",
            hint="longitude comes first in GeoJSON: [lon, lat]; " + SPLIT_HINT,
        )
    if not -90.0 < lat < 90.0:
        raise GeometryError(
            f"{where}: latitude {lat} is out of range or at a pole",
            hint="latitude must be strictly between -90 and 90; a geometry on a pole is not "
            "supported: split it into pieces that do not touch the pole (each below 90°)",
        )
    return lon, lat


def _positions(coords: object, where: str) -> list[tuple[float, float]]:
    if not isinstance(coords, list):
        raise GeometryError(f"{where}: coordinates must be a list of positions")
    if not coords:
        raise GeometryError(f"empty geometry: {where} has no positions")
    return [_position(p, where) for p in coords]


def _check_count(n: int, max_vertices: int) -> None:
    if n > max_vertices:
        raise too_large(f"geometry has {n} vertices, more than the limit of {max_vertices}")


def _check_simple(rings: Sequence[Array]) -> None:
    # Validity is topological; checked on lon/lat after the antimeridian check below
    # guarantees no ring wraps.
    for ring in rings:
        _check_antimeridian(ring)
    poly = shapely.Polygon(rings[0], rings[1:])
    reason = shapely.is_valid_reason(poly)
    if reason != "Valid Geometry":
        raise GeometryError(
            f"invalid Polygon: {reason}",
            hint="rings must not cross themselves or each other; holes lie inside the "
            "outer ring. Fix the ring (e.g. reorder the vertices) and send it again",
        )


def _check_antimeridian(part: Array) -> None:
    jumps = np.abs(np.diff(part[:, 0]))
    if jumps.size and float(jumps.max()) >= 180.0:
        i = int(np.argmax(jumps))
        raise GeometryError(
            f"edge {i} crosses the antimeridian or runs over a pole "
            f"(longitude {part[i, 0]} to {part[i + 1, 0]})",
            hint=SPLIT_HINT,
        )


def _build(kind: Kind, parts: list[Array]) -> Shape:
    for part in parts:
        _check_antimeridian(part)
    lon0, lat0 = float(parts[0][0, 0]), float(parts[0][0, 1])
    allc = np.concatenate(parts)
    x, y = aeqd_forward(lon0, lat0, allc[:, 0], allc[:, 1])
    cx = (float(x.min()) + float(x.max())) / 2.0
    cy = (float(y.min()) + float(y.max())) / 2.0
    alon, alat = aeqd_inverse(lon0, lat0, np.array([cx]), np.array([cy]))
    anchor_lon, anchor_lat = float(alon[0]), float(alat[0])
    dense = tuple(densify(p) for p in parts)
    _, dist = _inv_from(anchor_lon, anchor_lat, np.concatenate(dense))
    extent = float(dist.max())
    if extent > MAX_EXTENT_M:
        raise GeometryError(
            f"geometry reaches {extent / 1000:.0f} km from its centre, more than "
            f"{MAX_EXTENT_M / 1000:.0f} km",
            hint="notify a large area as several smaller pieces",
        )
    return Shape(kind, anchor_lon, anchor_lat, dense, extent)


def densify(part: Array, step_m: float = DENSIFY_STEP_M) -> Array:
    """Insert geodesic points so that no piece of an edge is longer than ``step_m``."""
    lon1, lat1 = part[:-1, 0], part[:-1, 1]
    lon2, lat2 = part[1:, 0], part[1:, 1]
    _, _, length = GEOD.inv(lon1, lat1, lon2, lat2)
    if not np.any(length > step_m):
        return np.ascontiguousarray(part, dtype=np.float64)
    out: list[Array] = []
    for i in range(len(part) - 1):
        out.append(part[i : i + 1])
        if length[i] > step_m:
            n = math.ceil(length[i] / step_m) - 1
            mid = GEOD.npts(lon1[i], lat1[i], lon2[i], lat2[i], n)
            out.append(np.array(mid, dtype=np.float64).reshape(-1, 2))
    out.append(part[-1:])
    return np.concatenate(out).astype(np.float64)


# --------------------------------------------------------------------------- frames


def _inv_from(lon0: float, lat0: float, coords: Array) -> tuple[Array, Array]:
    n = len(coords)
    az, _, dist = GEOD.inv(np.full(n, lon0), np.full(n, lat0), coords[:, 0], coords[:, 1])
    return np.asarray(az, dtype=np.float64), np.asarray(dist, dtype=np.float64)


def aeqd_forward(lon0: float, lat0: float, lons: Array, lats: Array) -> tuple[Array, Array]:
    """Ellipsoidal azimuthal equidistant projection centred on (lon0, lat0), in metres."""
    az, dist = _inv_from(lon0, lat0, np.column_stack([lons, lats]))
    rad = np.radians(az)
    return dist * np.sin(rad), dist * np.cos(rad)


def aeqd_forward_many(lon0: Array, lat0: Array, lons: Array, lats: Array) -> tuple[Array, Array]:
    """:func:`aeqd_forward` with one centre per point (the same numbers, in one call)."""
    az, _, dist = GEOD.inv(lon0, lat0, lons, lats)
    rad = np.radians(np.asarray(az, dtype=np.float64))
    d = np.asarray(dist, dtype=np.float64)
    return d * np.sin(rad), d * np.cos(rad)


def aeqd_inverse(lon0: float, lat0: float, x: Array, y: Array) -> tuple[Array, Array]:
    """Inverse of :func:`aeqd_forward`."""
    n = len(x)
    az = np.degrees(np.arctan2(x, y))
    lons, lats, _ = GEOD.fwd(np.full(n, lon0), np.full(n, lat0), az, np.hypot(x, y))
    return np.asarray(lons, dtype=np.float64), np.asarray(lats, dtype=np.float64)


def distortion(rho_m: float | Array) -> float | Array:
    """Upper bound of the AEQD stretch ``k`` within ``rho_m`` of the centre (>= 1)."""
    t = np.maximum(np.asarray(rho_m, dtype=np.float64), 1.0) / CURVATURE_RADIUS_M
    k = t / np.sin(np.minimum(t, 3.0))
    return float(k) if np.ndim(k) == 0 else k


def planar(shape: Shape, lon0: float, lat0: float) -> BaseGeometry:
    """The shape in the local frame centred on (lon0, lat0)."""
    if shape.is_point:
        x, y = aeqd_forward(lon0, lat0, np.array([shape.anchor_lon]), np.array([shape.anchor_lat]))
        return shapely.Point(float(x[0]), float(y[0]))
    allc = np.concatenate(shape.parts)
    x, y = aeqd_forward(lon0, lat0, allc[:, 0], allc[:, 1])
    xy = np.column_stack([x, y])
    if shape.kind == "line":
        return shapely.LineString(xy)
    sizes = np.cumsum([len(p) for p in shape.parts])[:-1]
    rings = np.split(xy, sizes)
    return shapely.Polygon(rings[0], rings[1:])


# --------------------------------------------------------------------------- distance


def geodesic_distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres on WGS 84."""
    _, _, d = GEOD.inv(lon1, lat1, lon2, lat2)
    return float(d)


def _from_point(lon: float, lat: float, shape: Shape) -> tuple[float, float, float]:
    """Exact distance from a point to a shape, and the nearest point of the shape."""
    if shape.is_point:
        return geodesic_distance(lon, lat, shape.anchor_lon, shape.anchor_lat), *(
            shape.anchor_lon,
            shape.anchor_lat,
        )
    geom = planar(shape, lon, lat)
    origin = shapely.Point(0.0, 0.0)
    if shape.kind == "polygon" and geom.covers(origin):
        return 0.0, lon, lat
    near = shapely.get_point(shapely.shortest_line(origin, geom), 1)
    nlon, nlat = aeqd_inverse(lon, lat, np.array([near.x]), np.array([near.y]))
    return float(origin.distance(geom)), float(nlon[0]), float(nlat[0])


def separation(a: Shape, b: Shape) -> float:
    """Exact geodesic distance in metres between two shapes (0 when they meet)."""
    return nearest(a, b)[0]


def nearest(a: Shape, b: Shape) -> tuple[float, tuple[float, float], tuple[float, float]]:
    """Distance between two shapes and a nearest point on each ((lon, lat) pairs)."""
    if a.is_point:
        d, lon, lat = _from_point(a.anchor_lon, a.anchor_lat, b)
        return d, (a.anchor_lon, a.anchor_lat), (lon, lat)
    if b.is_point:
        d, lon, lat = _from_point(b.anchor_lon, b.anchor_lat, a)
        return d, (lon, lat), (b.anchor_lon, b.anchor_lat)
    lon0, lat0 = a.anchor_lon, a.anchor_lat
    pa, pb = planar(a, lon0, lat0), planar(b, lon0, lat0)
    if pa.intersects(pb):
        inside = pa.intersection(pb).representative_point()
        ilon, ilat = aeqd_inverse(lon0, lat0, np.array([inside.x]), np.array([inside.y]))
        cl, ct = float(ilon[0]), float(ilat[0])
        if planar(a, cl, ct).intersects(planar(b, cl, ct)):
            return 0.0, (cl, ct), (cl, ct)
    near_a = shapely.get_point(shapely.shortest_line(pa, pb), 0)
    plon, plat = aeqd_inverse(lon0, lat0, np.array([near_a.x]), np.array([near_a.y]))
    p = (float(plon[0]), float(plat[0]))
    best = math.inf
    result = (best, p, p)
    for _ in range(12):
        d_b, qlon, qlat = _from_point(p[0], p[1], b)
        d_a, rlon, rlat = _from_point(qlon, qlat, a)
        if d_b < result[0]:
            result = (d_b, p, (qlon, qlat))
        if d_a < result[0]:
            result = (d_a, (rlon, rlat), (qlon, qlat))
        if best - result[0] < 1e-5:
            break
        best = result[0]
        p = (rlon, rlat)
    return result


# --------------------------------------------------------------------------- buffers


def buffer_rings(shape: Shape, radius_m: float, quad_segs: int = 16) -> list[Array]:
    """The shape buffered by ``radius_m``, built in its local AEQD frame, as lon/lat
    rings (exterior first). For display and export only: chords of the arc are inside
    the true buffer; conflict decisions use :func:`separation`, never this polygon."""
    lon0, lat0 = shape.anchor_lon, shape.anchor_lat
    geom = planar(shape, lon0, lat0)
    if radius_m > 0:
        geom = geom.buffer(radius_m, quad_segs=quad_segs)
    if not isinstance(geom, shapely.Polygon):
        raise GeometryError("cannot build a buffer of an empty area", hint="give a radius > 0")
    rings = [np.asarray(geom.exterior.coords)] + [np.asarray(r.coords) for r in geom.interiors]
    out: list[Array] = []
    for ring in rings:
        lons, lats = aeqd_inverse(lon0, lat0, ring[:, 0], ring[:, 1])
        out.append(np.column_stack([lons, lats]))
    return out


# --------------------------------------------------------------------------- prefilter


def prefilter_boxes(shape: Shape, radius_m: float) -> list[tuple[float, float, float, float]]:
    """Lon/lat boxes that surely contain every point within ``radius_m`` of the shape.

    Latitude grows at most 1/M_min rad per metre and longitude at most 1/(a cos φ), so
    the box is safe with a small margin; it covers all longitudes near a pole and is
    split in two where it wraps across the antimeridian.
    """
    c = shape.coords()
    r = radius_m * 1.001 + 1.0
    dlat = math.degrees(r / MERIDIONAL_MIN_M) + 1e-6
    lat_lo = max(float(c[:, 1].min()) - dlat, -90.0)
    lat_hi = min(float(c[:, 1].max()) + dlat, 90.0)
    phi = max(abs(lat_lo), abs(lat_hi))
    cosphi = math.cos(math.radians(phi))
    if cosphi < 1e-6:
        return [(-180.0, lat_lo, 180.0, lat_hi)]
    dlon = math.degrees(r / (WGS84_A * cosphi)) + 1e-6
    lon_lo = float(c[:, 0].min()) - dlon
    lon_hi = float(c[:, 0].max()) + dlon
    if lon_hi - lon_lo >= 360.0:
        return [(-180.0, lat_lo, 180.0, lat_hi)]
    if lon_lo < -180.0:
        return [(lon_lo + 360.0, lat_lo, 180.0, lat_hi), (-180.0, lat_lo, lon_hi, lat_hi)]
    if lon_hi > 180.0:
        return [(lon_lo, lat_lo, 180.0, lat_hi), (-180.0, lat_lo, lon_hi - 360.0, lat_hi)]
    return [(lon_lo, lat_lo, lon_hi, lat_hi)]


def prefilter_boxes_many(
    shapes: Sequence[Shape], radius_m: Array
) -> tuple[Array, npt.NDArray[np.int64]]:
    """:func:`prefilter_boxes` for many shapes at once: an (m, 4) array of boxes and, for
    each box, the index of its shape (the same boxes, in one pass over arrays)."""
    coords = [s.coords() for s in shapes]
    sizes = np.array([len(c) for c in coords], dtype=np.int64)
    allc = np.concatenate(coords)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    lon_min = np.minimum.reduceat(allc[:, 0], first)
    lon_max = np.maximum.reduceat(allc[:, 0], first)
    lat_min = np.minimum.reduceat(allc[:, 1], first)
    lat_max = np.maximum.reduceat(allc[:, 1], first)
    r = np.asarray(radius_m, dtype=np.float64) * 1.001 + 1.0
    dlat = np.degrees(r / MERIDIONAL_MIN_M) + 1e-6
    lat_lo = np.maximum(lat_min - dlat, -90.0)
    lat_hi = np.minimum(lat_max + dlat, 90.0)
    cosphi = np.cos(np.radians(np.maximum(np.abs(lat_lo), np.abs(lat_hi))))
    polar = cosphi < 1e-6
    with np.errstate(divide="ignore"):
        dlon = np.degrees(r / (WGS84_A * np.where(polar, 1.0, cosphi))) + 1e-6
    lon_lo, lon_hi = lon_min - dlon, lon_max + dlon
    full = polar | (lon_hi - lon_lo >= 360.0)
    west = ~full & (lon_lo < -180.0)
    east = ~full & ~west & (lon_hi > 180.0)
    idx = np.arange(len(shapes), dtype=np.int64)
    boxes = np.column_stack(
        [
            np.where(full, -180.0, np.where(west, lon_lo + 360.0, lon_lo)),
            lat_lo,
            np.where(full | west, 180.0, np.where(east, 180.0, lon_hi)),
            lat_hi,
        ]
    )
    extra_w = np.column_stack(
        [np.full(west.sum(), -180.0), lat_lo[west], lon_hi[west], lat_hi[west]]
    )
    extra_e = np.column_stack(
        [np.full(east.sum(), -180.0), lat_lo[east], lon_hi[east] - 360.0, lat_hi[east]]
    )
    return np.vstack([boxes, extra_w, extra_e]), np.concatenate([idx, idx[west], idx[east]])


def point_boxes(lons: Array, lats: Array, radius_m: Array) -> tuple[Array, npt.NDArray[np.int64]]:
    """:func:`prefilter_boxes` for many points at once: an (m, 4) array of boxes and,
    for each box, the index of its point (a point whose box wraps has two)."""
    r = radius_m * 1.001 + 1.0
    dlat = np.degrees(r / MERIDIONAL_MIN_M) + 1e-6
    lat_lo = np.maximum(lats - dlat, -90.0)
    lat_hi = np.minimum(lats + dlat, 90.0)
    cosphi = np.cos(np.radians(np.maximum(np.abs(lat_lo), np.abs(lat_hi))))
    with np.errstate(divide="ignore"):
        dlon = np.degrees(r / (WGS84_A * cosphi)) + 1e-6
    full = (cosphi < 1e-6) | (dlon >= 180.0)
    lon_lo = np.where(full, -180.0, lons - dlon)
    lon_hi = np.where(full, 180.0, lons + dlon)
    idx = np.arange(len(lons), dtype=np.int64)
    west = lon_lo < -180.0
    east = lon_hi > 180.0
    boxes = np.column_stack(
        [np.where(west, -180.0, lon_lo), lat_lo, np.where(east, 180.0, lon_hi), lat_hi]
    )
    extra_w = np.column_stack(
        [lon_lo[west] + 360.0, lat_lo[west], np.full(west.sum(), 180.0), lat_hi[west]]
    )
    extra_e = np.column_stack(
        [np.full(east.sum(), -180.0), lat_lo[east], lon_hi[east] - 360.0, lat_hi[east]]
    )
    return np.vstack([boxes, extra_w, extra_e]), np.concatenate([idx, idx[west], idx[east]])
