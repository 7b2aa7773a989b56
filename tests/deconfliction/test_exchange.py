"""Import (GeoJSON, ED-318; all or nothing) and export; the reference data; the demo path."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.deconfliction import exchange
from hotline.deconfliction.concerns import ConcernBook, draft_concern
from hotline.deconfliction.models import ActivityNotice, Concern
from hotline.deconfliction.registry import Registry
from hotline.errors import ImportFileError, InputError

from .conftest import DATA, T0, activity_payload


def ref_bytes() -> bytes:
    return (DATA / "ukraine_power_sites_example.geojson").read_bytes()


def test_reference_data_imports_whole() -> None:
    notices = exchange.parse_import(ref_bytes(), now=T0, notice_prefix="ref")
    assert len(notices) == 38
    cats = {n.site_id: n.site.category for n in notices if n.site}
    assert cats["UA-NPP-ZNPP"] == "nuclear_power_plant"
    assert sum(c == "nuclear_power_plant" for c in cats.values()) == 5
    assert set(cats.values()) == {"nuclear_power_plant", "power_station"}


def test_shipped_copy_equals_the_shared_reference() -> None:
    shipped = exchange.reference_sites(now=T0)
    shared = exchange.parse_import(
        ref_bytes(), now=T0, notice_prefix="reference", reconfirm_after=exchange.timedelta(days=365)
    )
    assert [n.to_payload() for n in shipped] == [n.to_payload() for n in shared]


def _collection(features: list[Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def test_one_bad_feature_names_itself_and_nothing_is_imported() -> None:
    data = json.loads(ref_bytes())
    data["features"][7]["geometry"]["coordinates"] = [34.0, 95.0]
    with pytest.raises(ImportFileError) as err:
        exchange.parse_import(json.dumps(data).encode(), now=T0, notice_prefix="x")
    assert "feature 7 (" in str(err.value)
    assert "latitude" in str(err.value)
    assert "nothing was imported" in str(err.value)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"not json", "not a JSON file"),
        (b"[]", "not a GeoJSON FeatureCollection"),
        (_collection([]), "no features"),
        (_collection([{"type": "Feature"}]), "no properties"),
        (_collection([1]), "not a GeoJSON Feature"),
        (
            _collection(
                [
                    {
                        "type": "Feature",
                        "id": "a",
                        "properties": {"name": "A", "kind": "x"},
                        "geometry": {"type": "Point", "coordinates": [30, 50]},
                    }
                ]
            ),
            "protection_radius_m",
        ),
    ],
)
def test_import_refusals(raw: bytes, needle: str) -> None:
    with pytest.raises(ImportFileError, match=needle):
        exchange.parse_import(raw, now=T0, notice_prefix="x")


def test_duplicate_site_ids_in_one_file_are_refused() -> None:
    data = json.loads(ref_bytes())
    data["features"].append(data["features"][0])
    with pytest.raises(ImportFileError, match="appears twice"):
        exchange.import_geojson(data, now=T0, notice_prefix="x")


def test_ed318_examples() -> None:
    circle = exchange.parse_import(
        (DATA / "ed318-examples/Example_GeoZone_Circle.json").read_bytes(),
        now=T0,
        notice_prefix="e",
    )
    (c,) = circle
    assert c.site_id == "ABC1234"
    assert c.site is not None
    assert c.site.protection_radius_m == 3500.0
    assert c.site.altitude is not None
    assert c.site.altitude.reference == "AGL"
    layers = exchange.parse_import(
        (DATA / "ed318-examples/Example_GeoZone_2_Layers.json").read_bytes(),
        now=T0,
        notice_prefix="f",
    )
    assert [n.site_id for n in layers] == ["NFZ6547.1", "NFZ6547.2"]
    assert layers[0].site is not None
    assert layers[0].site.valid_until is not None
    assert layers[1].site is not None
    assert layers[1].site.altitude is not None
    assert layers[1].site.altitude.upper_m == 50.0


def test_ed318_bad_zone_is_named() -> None:
    data = json.loads((DATA / "ed318-examples/Example_GeoZone_Circle.json").read_bytes())
    data["features"][0]["geometry"]["layer"]["uom"] = "furlong"
    with pytest.raises(ImportFileError, match=r"feature 0 \(ABC1234\): layer"):
        exchange.import_ed318(data, now=T0, notice_prefix="x")


def _loaded() -> Registry:
    reg = Registry()
    for n in exchange.reference_sites(now=T0):
        reg.apply(n, "ua", T0)
    return reg


def test_demo_path_conflict_raised_concerned_answered() -> None:
    """What `hotline demo` shows: the reference data, one activity near Zaporizhzhia,
    the conflict, the draft concern (IAEA template), the answer and the close."""
    reg = _loaded()
    near = ActivityNotice.from_payload(
        activity_payload(geometry={"type": "Point", "coordinates": [34.62, 47.53]}, radius=500.0)
    )
    changes = {c.conflict.site_id: c for c in reg.apply(near, "ru", T0)}
    opened = changes["UA-NPP-ZNPP"]  # (the neighbouring thermal plant conflicts too)
    assert opened.change == "opened"
    site = reg.site("UA-NPP-ZNPP").current
    assert site is not None
    draft = draft_concern(
        opened.conflict,
        concern_id="c1",
        site_name=site.names["en"],
        site_category=site.category,
        activity_kind="artillery",
    )
    assert draft.template == "iaea_five_principles"
    book = ConcernBook()
    book.apply(draft, "ua", T0)
    book.apply(Concern.from_payload({"concern_id": "c1", "step": "acknowledge"}), "ru", T0)
    book.apply(
        Concern.from_payload({"concern_id": "c1", "step": "answer", "text": "Moved east."}),
        "ru",
        T0,
    )
    assert (
        book.apply(Concern.from_payload({"concern_id": "c1", "step": "close"}), "ua", T0).state
        == "closed"
    )


def test_exports() -> None:
    reg = _loaded()
    reg.apply(
        ActivityNotice.from_payload(
            activity_payload(
                geometry={
                    "type": "Polygon",
                    "coordinates": [[[34.5, 47.45], [34.7, 47.45], [34.7, 47.6], [34.5, 47.45]]],
                },
                radius=None,
            )
        ),
        "ru",
        T0,
    )
    gj = exchange.export_geojson(reg, now=T0)
    assert len(gj["features"]) == 39
    assert "never permission" in gj["notice"]
    again = exchange.import_geojson(
        {
            "type": "FeatureCollection",
            "features": [f for f in gj["features"] if f["properties"]["kind"] == "site"],
        },
        now=T0,
        notice_prefix="rt",
    )
    before = {r.id: r.current for r in reg.sites()}
    assert {n.site_id: n.site for n in again} == before
    conflicts = exchange.export_conflicts_geojson(reg)
    by_site = {f["properties"]["site_id"]: f for f in conflicts["features"]}
    assert by_site["UA-NPP-ZNPP"]["geometry"]["type"] == "Point"  # the area covers the plant
    far = [f for f in conflicts["features"] if f["properties"]["distance_m"] > 0]
    assert all(f["geometry"]["type"] == "LineString" for f in far)
    ed = exchange.export_ed318(reg, issued=T0)
    assert len(ed["features"]) == 38
    assert exchange.is_ed318(ed)
    back = exchange.import_ed318(ed, now=T0, notice_prefix="ed")
    assert {n.site_id: n.site.protection_radius_m for n in back if n.site} == {
        r.id: r.current.reach_m for r in reg.sites() if r.current is not None
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "features",
                    "geometry",
                    "properties",
                    "coordinates",
                    "identifier",
                    "layer",
                    "extent",
                    "name",
                    "site_id",
                    "radius_m",
                    "kind",
                    "subType",
                    "radius",
                    "lower",
                    "upper",
                    "uom",
                    "limitedApplicability",
                    "geometries",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, st.binary(max_size=64)))
def test_garbage_import_gives_input_errors_only(data: Any) -> None:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    with contextlib.suppress(InputError):
        exchange.parse_import(raw, now=T0, notice_prefix="g")


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=3))
def test_garbage_features_give_import_errors_only(features: list[Any]) -> None:
    for wrap in (
        lambda f: f,
        lambda f: {"type": "Feature", "properties": {"identifier": "Z"}, "geometry": f},
    ):
        with contextlib.suppress(InputError):
            exchange.parse_import(
                _collection([wrap(f) for f in features]), now=T0, notice_prefix="g"
            )
