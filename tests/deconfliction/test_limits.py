"""Size limits are checked on the raw decoded JSON before anything expensive: an
over-limit notice is refused with code ``geometry_too_large`` and neither shapely, pyproj
nor the schema is ever called for it (they are replaced here by tripwires, so the test
fails if they are reached; no timing is asserted). Garbage geometry always ends in a
HotlineError."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.deconfliction import geometry, models
from hotline.deconfliction.limits import MAX_DEPTH, Limits, check_size
from hotline.deconfliction.models import parse_payload
from hotline.errors import GeometryError, HotlineError

from .conftest import activity_payload, site_payload

LIMITS = Limits(max_vertices=1000, max_rings=8, max_bytes=64 * 1024)


class Tripwire:
    """Stands in for shapely, pyproj's Geod and the schema: any use fails the test."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"{self.name}.{attr} reached for an over-limit notice")

    def __call__(self, *a: Any, **kw: Any) -> Any:
        raise AssertionError(f"{self.name} called for an over-limit notice")


@pytest.fixture
def nothing_expensive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(geometry, "shapely", Tripwire("shapely"))
    monkeypatch.setattr(geometry, "GEOD", Tripwire("pyproj.Geod"))
    monkeypatch.setattr(geometry, "parse_geometry", Tripwire("parse_geometry"))
    for cls in (models.SiteNotice, models.ActivityNotice, models.Concern):
        monkeypatch.setattr(cls, "model_validate", Tripwire(f"{cls.__name__}.model_validate"))


def ring(n: int, r: float = 0.01) -> list[list[float]]:
    """A closed ring of ``n`` + 1 positions (the first repeated last) round 30E 50N."""
    pts = [
        [30.0 + r * math.cos(2 * math.pi * i / n), 50.0 + r * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return [*pts, pts[0]]


def polygon_site(rings: list[Any]) -> dict[str, Any]:
    p = site_payload()
    del p["site"]["protection_radius_m"]
    p["site"]["geometry"] = {"type": "Polygon", "coordinates": rings}
    return p


def corridor(coords: Any) -> dict[str, Any]:
    return activity_payload(
        geometry={"type": "LineString", "coordinates": coords}, radius=None, half_width_m=50.0
    )


def nested(depth: int) -> Any:
    out: Any = [0.0, 0.0]
    for _ in range(depth):
        out = [out]
    return out


def too_large(data: Any, limits: Limits = LIMITS) -> GeometryError:
    with pytest.raises(GeometryError) as info:
        parse_payload(data, limits=limits)
    assert info.value.code == "geometry_too_large", info.value
    return info.value


# --- a million vertices, and every other bound -------------------------------------------


def test_a_million_vertex_polygon_is_refused_before_any_validation(nothing_expensive: None) -> None:
    # one list shared a million times: building it costs nothing, walking it would
    million = [[30.0, 50.0]] * 1_000_000
    err = too_large(polygon_site([million]), Limits())
    assert "1000000" in err.message
    too_large(corridor(million), Limits())


def test_every_bound_is_checked_before_validation(nothing_expensive: None) -> None:
    cases = {
        "rings": polygon_site([ring(4)] * 9),
        "ring": polygon_site([ring(1000)]),
        "vertices in all": polygon_site([ring(300)] * 4),
        "line": corridor([[30.0, 50.0]] * 1001),
        "depth": polygon_site(nested(MAX_DEPTH)),
        "bytes": {**site_payload(), "padding": "x" * (64 * 1024)},
        "values": {**site_payload(), "padding": [0] * 10_000},
        "many keys": {**site_payload(), "names": {f"n{i}": "x" for i in range(10_000)}},
        "utf-8 bytes": {**site_payload(), "padding": "Ж" * (33 * 1024)},  # 2 bytes each
    }
    for name, data in cases.items():
        try:
            too_large(data)
        except BaseException as exc:
            raise AssertionError(f"case {name!r}") from exc


def test_inside_the_limits_the_notice_is_parsed() -> None:
    assert parse_payload(polygon_site([ring(500), ring(10, 0.001)]), limits=LIMITS)
    assert parse_payload(corridor([[30.0, 50.0], [30.1, 50.1]]), limits=LIMITS)
    assert parse_payload(site_payload(), limits=LIMITS)


def test_the_size_is_the_compact_json_size() -> None:
    import json

    for data in (site_payload(), activity_payload(), polygon_site([ring(50)])):
        exact = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
        assert check_size(data, LIMITS) == exact


def test_geometry_counts_before_reading_a_position(
    nothing_expensive: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """parse_geometry itself (imports, direct callers) counts before converting."""
    monkeypatch.setattr(geometry, "_positions", Tripwire("_positions"))
    for obj in (
        {"type": "Polygon", "coordinates": [[[0.0, 0.0]] * 11]},
        {"type": "Polygon", "coordinates": [[[0.0, 0.0]] * 4] * 3},
        {"type": "LineString", "coordinates": [[0.0, 0.0]] * 11},
    ):
        with pytest.raises(GeometryError) as info:
            REAL_PARSE_GEOMETRY(obj, max_vertices=10, max_rings=2)
        assert info.value.code == "geometry_too_large"


REAL_PARSE_GEOMETRY = geometry.parse_geometry


# --- garbage ------------------------------------------------------------------------------

NUMBER = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 2**63, True, None, "1", [], {}])
)
POSITION = st.lists(NUMBER, min_size=0, max_size=4)
COORDS = st.recursive(
    POSITION | NUMBER,
    lambda inner: st.lists(inner, max_size=5),
    max_leaves=30,
)
NOT_POLYGON = st.sampled_from(["Point", "LineString", "MultiPolygon", "Nope", 7, None])
OVER = st.one_of(
    # huge arrays (one element repeated: cheap to build, costly to walk)
    st.tuples(st.just("Polygon"), st.integers(9, 2_000_000).map(lambda n: [[30.0, 50.0]] * n)),
    st.tuples(st.just("Polygon"), st.integers(1001, 2_000_000).map(lambda n: [[[30.0, 50.0]] * n])),
    st.tuples(st.just("Polygon"), st.integers(9, 100_000).map(lambda n: [[[30.0, 50.0]] * 4] * n)),
    st.tuples(NOT_POLYGON, st.integers(1001, 2_000_000).map(lambda n: [[30.0, 50.0]] * n)),
    # deeper than any geometry may be
    st.tuples(NOT_POLYGON | st.just("Polygon"), st.integers(MAX_DEPTH, 5_000).map(nested)),
)


def _notice_with(gtype: Any, coords: Any, where: str) -> dict[str, Any]:
    if where == "site":
        p = site_payload()
        p["site"]["geometry"] = {"type": gtype, "coordinates": coords}
        return p
    p = activity_payload()
    p["activity"]["geometry"] = {"type": gtype, "coordinates": coords}
    return p


GTYPE = st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon", "Nope", 7, None])
WHERE = st.sampled_from(["site", "activity"])
FAST = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(over=OVER, where=WHERE)
def test_over_limit_garbage_never_reaches_validation(over: tuple[Any, Any], where: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(geometry, "shapely", Tripwire("shapely"))
        mp.setattr(geometry, "GEOD", Tripwire("pyproj.Geod"))
        for cls in (models.SiteNotice, models.ActivityNotice):
            mp.setattr(cls, "model_validate", Tripwire("model_validate"))
        too_large(_notice_with(*over, where))


@FAST
@given(gtype=GTYPE, coords=COORDS, where=WHERE)
def test_garbage_geometry_raises_a_hotline_error(gtype: Any, coords: Any, where: str) -> None:
    data = _notice_with(gtype, coords, where)
    try:
        parse_payload(data, limits=LIMITS)
    except HotlineError:
        return
    # the rare draw that is a real geometry: it must be one the model accepts as such
    assert gtype in ("Point", "LineString", "Polygon")
