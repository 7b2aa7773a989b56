"""The registry saved as items and loaded back (deconfliction/snapshot.py): the loaded
registry equals the replayed one, and goes on to give the same conflicts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.deconfliction import snapshot
from hotline.deconfliction.models import ActivityNotice, SiteNotice
from hotline.deconfliction.registry import AckEntry, NoticeEntry, Registry
from hotline.errors import InputError

from .conftest import T0, ZNPP, activity_payload, site_payload
from .test_registry import _random_log

SNAPSHOT_ERRORS = (ValueError, KeyError, TypeError, IndexError, InputError)


def _load(reg: Registry) -> Registry:
    items = json.loads(json.dumps(list(snapshot.encode(reg))))  # as stored: JSON
    loader = snapshot.RegistryLoader(max_delta=2)
    for item in items:
        loader.add(item)
    return loader.finish()


def _feed(reg: Registry, log: list[NoticeEntry | AckEntry]) -> list[Any]:
    out: list[Any] = []
    for e in log:
        if isinstance(e, NoticeEntry):
            out.append(reg.apply(e.notice, e.notified_by, e.at))
        else:
            reg.acknowledge(e.notice_id, e.recipient, e.at)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6), st.floats(min_value=0.0, max_value=1.0))
def test_loaded_registry_equals_the_replayed_one_and_goes_on_alike(seed: int, at: float) -> None:
    log = _random_log(seed)
    cut = int(len(log) * at)
    replayed = Registry()
    _feed(replayed, log[:cut])
    loaded = _load(replayed)
    # acknowledgements are not in the snapshot: the store replays them all
    for e in log[:cut]:
        if isinstance(e, AckEntry):
            loaded.acknowledge(e.notice_id, e.recipient, e.at)
    assert loaded.snapshot() == replayed.snapshot()
    for kind in ("sites", "activities"):
        a = {r.id: r.versions for r in getattr(loaded, kind)(include_ended=True)}
        b = {r.id: r.versions for r in getattr(replayed, kind)(include_ended=True)}
        assert a == b  # the payload models themselves, not only their dumps
    assert _feed(loaded, log[cut:]) == _feed(replayed, log[cut:])
    assert loaded.snapshot() == replayed.snapshot()


def test_polygons_corridors_and_windows_survive_the_round_trip() -> None:
    reg = Registry()
    ring = [[34.5, 47.4], [34.7, 47.4], [34.7, 47.6], [34.5, 47.6], [34.5, 47.4]]
    hole = [[34.55, 47.45], [34.6, 47.45], [34.6, 47.5], [34.55, 47.45]]
    band = {"lower_m": 0.0, "upper_m": 500.0, "reference": "AGL"}
    until = T0 + timedelta(days=3)
    poly_site = site_payload("P1", notice_id="s1", radius=0.0, valid_from=T0,
                             valid_until=until, buffer_m=500.0, altitude=band)  # fmt: skip
    poly_site["site"]["geometry"] = {"type": "Polygon", "coordinates": [ring, hole]}
    del poly_site["site"]["protection_radius_m"]
    reg.apply(SiteNotice.from_payload(poly_site), "ua", T0)
    reg.apply(SiteNotice.from_payload(site_payload("Z", notice_id="s2")), "ua", T0)
    line = {"type": "LineString", "coordinates": [[34.4, 47.3], [34.9, 47.7]]}
    reg.apply(ActivityNotice.from_payload(activity_payload(
        "C1", notice_id="a1", geometry=line, radius=None, half_width_m=800.0,
        description="corridor")), "ru", T0)  # fmt: skip
    area = {"type": "Polygon", "coordinates": [ring]}
    reg.apply(ActivityNotice.from_payload(activity_payload(
        "B1", notice_id="a2", geometry=area, radius=None)), "ru", T0)  # fmt: skip
    reg.apply(ActivityNotice.from_payload(
        {"notice_id": "a3", "activity_id": "B1", "action": "cancel"}), "ru", T0)  # fmt: skip
    assert reg.conflicts()
    loaded = _load(reg)
    assert loaded.snapshot() == reg.snapshot()
    a, b = loaded.site_volume("P1"), reg.site_volume("P1")
    assert a is not None
    assert b is not None
    assert [p.tolist() for p in a.shape.parts] == [p.tolist() for p in b.shape.parts]
    later = ActivityNotice.from_payload(activity_payload("A9", notice_id="a9"))
    assert loaded.apply(later, "ru", T0) == reg.apply(later, "ru", T0)
    assert loaded.snapshot() == reg.snapshot()


def test_a_restored_registry_refuses_a_notice_id_it_already_holds() -> None:
    reg = Registry()
    reg.apply(SiteNotice.from_payload(site_payload(notice_id="s1")), "ua", T0)
    loaded = _load(reg)
    with pytest.raises(InputError):
        loaded.apply(SiteNotice.from_payload(site_payload("Y", notice_id="s1")), "ua", T0)


def test_restore_fills_an_empty_registry_only() -> None:
    reg = Registry()
    reg.apply(SiteNotice.from_payload(site_payload(notice_id="s1")), "ua", T0)
    with pytest.raises(InputError):
        reg.restore([], [], [], [])


@pytest.mark.parametrize(
    "item",
    [
        [],
        ["X"],
        ["S", "Z", "ua", [], None],  # a record without a version
        [
            "S",
            "Z",
            "ua",
            [[1, "n1", "add", "ua", "2025-06-01T00:00:00+00:00", None, None]],
            ["point", ZNPP[0], ZNPP[1], 0.0, []],
        ],  # footprint of a record that is not live
        ["S", "Z", "ua", [[1, "n1", "add", "ua", 5, None, None]], None],
        [
            "A",
            "A",
            "ru",
            [[1, "n1", "add", "ru", "2025-06-01T00:00:00+00:00", None, None]],
            ["blob", 0, 0, 0, []],
        ],
        ["C", "S", "A"],
    ],
)
def test_bad_items_are_refused(item: list[Any]) -> None:
    loader = snapshot.RegistryLoader()

    def load() -> None:
        loader.add(item)
        loader.finish()

    with pytest.raises(SNAPSHOT_ERRORS):
        load()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.lists(_json, max_size=10),
                          st.tuples(st.sampled_from(["S", "A", "C"]), _json, _json, _json,
                                    _json).map(list)), max_size=5))  # fmt: skip
def test_garbage_items_raise_only_the_documented_errors(items: list[Any]) -> None:
    loader = snapshot.RegistryLoader()
    try:
        for item in items:
            loader.add(item)
        loader.finish()
    except SNAPSHOT_ERRORS:
        pass
