"""Payload models: round trips, action rules, and garbage never escapes as another error."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.deconfliction.models import (
    ActivityNotice,
    Concern,
    SiteNotice,
    parse_payload,
)
from hotline.errors import GeometryError, InputError

from .conftest import activity_payload, site_payload


def test_round_trip_of_each_type() -> None:
    for payload in (
        site_payload(),
        activity_payload(),
        {
            "type": "concern",
            "concern_id": "c1",
            "step": "raise",
            "about": {"site_ids": ["ZNPP"]},
            "asked": "Confirm receipt.",
        },
    ):
        model = parse_payload(payload)
        assert parse_payload(model.to_payload()) == model
        assert model.to_payload()["type"] == payload["type"]


def test_names_in_more_than_one_language() -> None:
    n = SiteNotice.from_payload(site_payload())
    assert n.site is not None
    assert n.site.names["uk"] == "Запорізька АЕС"


def _without_site(action: str, **extra: Any) -> dict[str, Any]:
    return {"notice_id": "n", "action": action, "site_id": "S", **extra}


REFUSED: list[tuple[str, type[Any], dict[str, Any], str]] = [
    ("add without site", SiteNotice, _without_site("add"), "carries the site"),
    ("withdraw with site", SiteNotice, {**site_payload(), "action": "withdraw"}, "carries no site"),
    ("reconfirm without date", SiteNotice, _without_site("reconfirm"), "reconfirm_by"),
    ("point site without radius", SiteNotice, site_payload(radius=0.0), "protection_radius_m"),
    ("bad category", SiteNotice, site_payload(category="bunker"), "category"),
    (
        "naive time",
        SiteNotice,
        {**site_payload(), "site": {**site_payload()["site"], "reconfirm_by": "2025-01-01T00:00"}},
        "UTC offset",
    ),
    ("unknown field", SiteNotice, {**site_payload(), "colour": "red"}, "colour"),
    ("bad id", SiteNotice, site_payload(site_id="has space"), "site_id"),
    ("radius too large", SiteNotice, site_payload(radius=1e9), "protection_radius_m"),
    (
        "window backwards",
        ActivityNotice,
        activity_payload(
            start=activity_payload()["activity"]["window"]["end"]
            and __import__("datetime").datetime(2030, 1, 1, tzinfo=__import__("datetime").UTC)
        ),
        "end must be after start",
    ),
    ("band backwards", ActivityNotice, activity_payload(band=(500.0, 100.0)), "upper_m"),
    (
        "cancel with activity",
        ActivityNotice,
        {**activity_payload(), "action": "cancel"},
        "cancel carries none",
    ),
    (
        "corridor without width",
        ActivityNotice,
        activity_payload(
            geometry={"type": "LineString", "coordinates": [[30, 50], [30.1, 50]]}, radius=None
        ),
        "half_width_m",
    ),
    (
        "concern raise without ask",
        Concern,
        {"concern_id": "c", "step": "raise", "about": {"site_ids": ["S"]}},
        "what is asked",
    ),
    (
        "concern about nothing",
        Concern,
        {"concern_id": "c", "step": "raise", "about": {}, "asked": "x"},
        "at least one",
    ),
    ("answer without text", Concern, {"concern_id": "c", "step": "answer"}, "carries text"),
    ("not an object", SiteNotice, [], "JSON object"),  # type: ignore[dict-item]
]


@pytest.mark.parametrize(("name", "cls", "payload", "needle"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_payloads(name: str, cls: Any, payload: Any, needle: str) -> None:
    with pytest.raises(InputError) as err:
        cls.from_payload(payload)
    assert needle in str(err.value)


def test_geometry_errors_keep_their_type_and_vertex_limit_is_a_parameter() -> None:
    bad = site_payload(coords=(200.0, 47.0))
    with pytest.raises(GeometryError, match="longitude"):
        SiteNotice.from_payload(bad)
    ring = [[30, 50], [30.01, 50], [30.01, 50.01], [30, 50.01], [30, 50]]
    poly = activity_payload(geometry={"type": "Polygon", "coordinates": [ring]}, radius=None)
    assert ActivityNotice.from_payload(poly, max_vertices=5).activity is not None
    with pytest.raises(GeometryError, match="limit of 4"):
        ActivityNotice.from_payload(poly, max_vertices=4)


def test_unknown_payload_type() -> None:
    with pytest.raises(InputError, match="unknown deconfliction payload type"):
        parse_payload({"type": "strike_order"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)


def _mutations() -> st.SearchStrategy[dict[str, Any]]:
    base = st.sampled_from(
        [
            site_payload(),
            activity_payload(),
            {
                "type": "concern",
                "concern_id": "c",
                "step": "raise",
                "about": {"incident": "x"},
                "asked": "y",
            },
        ]
    )
    return st.builds(
        lambda b, k, v: {**b, k: v} if k else b,
        base,
        st.sampled_from(
            ["", "site", "activity", "geometry", "action", "type", "notice_id", "step", "about"]
        ),
        json_values,
    )


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, _mutations()))
def test_garbage_gives_input_errors_only(data: Any) -> None:
    with contextlib.suppress(InputError):
        parse_payload(data)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_garbage_geometry_gives_input_errors_only(geom: Any) -> None:
    with contextlib.suppress(InputError):
        SiteNotice.from_payload(
            {**site_payload(), "site": {**site_payload()["site"], "geometry": geom}}
        )
