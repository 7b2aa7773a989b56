"""Geometry: every refusal path, the local frame, buffers and prefilter boxes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pyproj import Transformer

from hotline.deconfliction import geometry as g
from hotline.errors import GeometryError

SQUARE = [[30.0, 50.0], [30.1, 50.0], [30.1, 50.1], [30.0, 50.1], [30.0, 50.0]]

BAD: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], "GeoJSON object"),
    ("unknown type", {"type": "Circle", "coordinates": [1, 2]}, "unknown geometry type"),
    ("multi", {"type": "MultiPolygon", "coordinates": []}, "not accepted"),
    ("short position", {"type": "Point", "coordinates": [30.0]}, "position"),
    ("string coordinate", {"type": "Point", "coordinates": ["30", 50]}, "not a number"),
    ("bool coordinate", {"type": "Point", "coordinates": [True, 50]}, "not a number"),
    ("NaN", {"type": "Point", "coordinates": [math.nan, 50.0]}, "NaN"),
    ("infinite", {"type": "Point", "coordinates": [30.0, math.inf]}, "NaN or infinite"),
    ("longitude range", {"type": "Point", "coordinates": [190.0, 50.0]}, "longitude"),
    ("latitude range", {"type": "Point", "coordinates": [30.0, 91.0]}, "latitude"),
    ("pole", {"type": "Point", "coordinates": [0.0, 90.0]}, "pole"),
    ("empty line", {"type": "LineString", "coordinates": []}, "empty geometry"),
    ("one-point line", {"type": "LineString", "coordinates": [[30, 50], [30, 50]]}, "empty"),
    ("no rings", {"type": "Polygon", "coordinates": []}, "empty Polygon"),
    ("empty ring", {"type": "Polygon", "coordinates": [[]]}, "empty geometry"),
    ("short ring", {"type": "Polygon", "coordinates": [SQUARE[:3]]}, "at least 4"),
    ("open ring", {"type": "Polygon", "coordinates": [SQUARE[:4]]}, "not closed"),
    (
        "self-intersecting",
        {
            "type": "Polygon",
            "coordinates": [[[30, 50], [30.1, 50.1], [30.1, 50], [30, 50.1], [30, 50]]],
        },
        "Self-intersection",
    ),
    (
        "hole outside",
        {"type": "Polygon", "coordinates": [SQUARE, [[31, 51], [31.1, 51], [31, 51.1], [31, 51]]]},
        "invalid Polygon",
    ),
    (
        "antimeridian",
        {"type": "LineString", "coordinates": [[179.5, 60.0], [-179.5, 60.0]]},
        "antimeridian",
    ),
    (
        "antimeridian polygon",
        {"type": "Polygon", "coordinates": [[[179, 0], [-179, 0], [-179, 1], [179, 1], [179, 0]]]},
        "antimeridian",
    ),
    (
        "too large",
        {"type": "LineString", "coordinates": [[0.0, 0.0], [25.0, 0.0]]},
        "more than 1000 km",
    ),
]


@pytest.mark.parametrize(("name", "obj", "needle"), BAD, ids=[b[0] for b in BAD])
def test_invalid_geometry_is_refused_with_a_clear_error(name: str, obj: Any, needle: str) -> None:
    with pytest.raises(GeometryError) as err:
        g.parse_geometry(obj)
    assert needle in str(err.value)


def test_antimeridian_error_says_how_to_split() -> None:
    with pytest.raises(GeometryError) as err:
        g.parse_geometry({"type": "LineString", "coordinates": [[179.5, 0], [-179.5, 0]]})
    assert "split the geometry at the antimeridian" in err.value.hint


def test_vertex_limit() -> None:
    ring = [
        [30 + 0.001 * math.cos(t), 50 + 0.001 * math.sin(t)]
        for t in np.linspace(0, 2 * math.pi, 50, endpoint=False)
    ]
    ring.append(ring[0])
    obj = {"type": "Polygon", "coordinates": [ring]}
    assert g.parse_geometry(obj, max_vertices=51).kind == "polygon"
    with pytest.raises(GeometryError, match="more than the limit of 50"):
        g.parse_geometry(obj, max_vertices=50)


def test_split_pieces_at_the_antimeridian_are_accepted() -> None:
    east = g.parse_geometry(
        {
            "type": "Polygon",
            "coordinates": [[[179.0, 0.0], [180.0, 0.0], [180.0, 1.0], [179.0, 1.0], [179.0, 0.0]]],
        }
    )
    west = g.parse_geometry(
        {
            "type": "Polygon",
            "coordinates": [
                [[-180.0, 0.0], [-179.0, 0.0], [-179.0, 1.0], [-180.0, 1.0], [-180.0, 0.0]]
            ],
        }
    )
    assert g.separation(east, west) == 0.0


def test_aeqd_frame_matches_proj_aeqd() -> None:
    lon0, lat0 = 34.5863, 47.5119
    rng = np.random.default_rng(1)
    lons = lon0 + rng.uniform(-2, 2, 50)
    lats = lat0 + rng.uniform(-2, 2, 50)
    x, y = g.aeqd_forward(lon0, lat0, lons, lats)
    t = Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84", always_xy=True
    )
    px, py = t.transform(lons, lats)
    assert np.max(np.hypot(x - px, y - py)) < 1e-3
    back_lon, back_lat = g.aeqd_inverse(lon0, lat0, x, y)
    assert np.max(np.abs(back_lon - lons)) < 1e-9
    assert np.max(np.abs(back_lat - lats)) < 1e-9


def test_distortion_bounds_planar_distances() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        lat0 = rng.uniform(-85, 85)
        lon0 = rng.uniform(-180, 180)
        pts = [
            g.GEOD.fwd(lon0, lat0, rng.uniform(0, 360), rng.uniform(0, 300e3))[:2] for _ in range(2)
        ]
        x, y = g.aeqd_forward(
            lon0, lat0, np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        )
        d_p = math.hypot(x[1] - x[0], y[1] - y[0])
        d_g = g.geodesic_distance(*pts[0], *pts[1])
        k = g.distortion(max(math.hypot(x[0], y[0]), math.hypot(x[1], y[1])))
        assert d_g - 1e-6 <= d_p <= k * d_g + 1e-6


def test_buffer_is_built_in_metres_not_degrees() -> None:
    shape = g.point_shape(30.0, 70.0)  # at 70° N a degree of longitude is 38 km
    (ring,) = g.buffer_rings(shape, 10_000.0)
    d = [g.geodesic_distance(30.0, 70.0, lon, lat) for lon, lat in ring]
    assert max(d) == pytest.approx(10_000.0, abs=0.01)
    assert min(d) > 10_000.0 * math.cos(math.pi / 64) - 0.01  # chords of 64 segments


def test_buffer_of_a_line_without_radius_is_refused() -> None:
    line = g.parse_geometry({"type": "LineString", "coordinates": [[30, 50], [30.1, 50]]})
    with pytest.raises(GeometryError, match="empty area"):
        g.buffer_rings(line, 0.0)


def test_prefilter_box_wraps_at_the_antimeridian_and_covers_the_pole() -> None:
    boxes = g.prefilter_boxes(g.point_shape(179.99, 10.0), 5000.0)
    assert len(boxes) == 2
    assert any(b[0] == -180.0 for b in boxes)
    assert any(b[2] == 180.0 for b in boxes)
    (polar,) = g.prefilter_boxes(g.point_shape(10.0, 89.99), 5000.0)
    assert polar[0] == -180.0
    assert polar[2] == 180.0
    assert polar[3] == 90.0
    arr, owner = g.point_boxes(
        np.array([179.99, 10.0]), np.array([10.0, 89.99]), np.array([5000.0, 5000.0])
    )
    assert sorted(owner.tolist()) == [0, 0, 1]
    one = sorted(map(tuple, arr[owner == 0].tolist()))
    assert np.allclose(one, sorted(g.prefilter_boxes(g.point_shape(179.99, 10.0), 5000.0)))


def test_densify_keeps_pieces_short() -> None:
    line = g.parse_geometry({"type": "LineString", "coordinates": [[30, 50], [30.5, 50]]})
    (part,) = line.parts
    _, _, d = g.GEOD.inv(part[:-1, 0], part[:-1, 1], part[1:, 0], part[1:, 1])
    assert max(d) <= g.DENSIFY_STEP_M + 1e-6
    assert len(part) > 30
