"""The registry saved as items and loaded back (deconfliction/snapshot.py): the loaded
registry equals the replayed one, and goes on to give the same conflicts."""

from __future__ import annotations

import contextlib
import json
import random
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
    """The registry saved as a station stores it (headers through JSON) and loaded."""
    return _load_chunks(_stored(reg))


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
    assert not any(r.decoded for r in _records(loaded))  # nothing decoded by the load
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
    empty = Registry()
    with pytest.raises(InputError):
        reg.restore({}, {}, [], empty.saved_index("site"), empty.saved_index("activity"), {})


def _item_chunks(item: list[Any]) -> list[tuple[list[Any], bytes]]:
    """A record item (``S``/``A``) as the only record of a chunk, as it would be stored
    (its header from the item where the item can say, else neutral), with the two
    indexes empty; a conflict item (``C``) as a chunk of its own."""
    empty = Registry()
    indexes = [h for h in _stored(empty) if h[0][0][0] == snapshot.INDEX]
    if not item or item[0] not in ("S", "A"):
        return [([item], b""), *indexes]
    raw = json.dumps(item).encode()
    versions = item[3] if len(item) > 3 and isinstance(item[3], list) else []
    notices = [str(v[1]) for v in versions if isinstance(v, list) and len(v) > 1]
    kind = "site" if item[0] == "S" else "activity"
    oid = str(item[1]) if len(item) > 1 else "X"
    header = [snapshot.RECORDS, kind, [oid], ["ua"], [False], [None], notices,
              [len(notices)], [len(raw)]]  # fmt: skip
    return [([header], raw), *indexes]


def _load_and_read(chunks: list[tuple[list[Any], bytes]]) -> None:
    """Load, then decode every record (its versions and, if live, its volume)."""
    reg = _load_chunks(chunks)
    for r in _records(reg):
        _ = r.versions
        if r.live:
            r.saved_volume()


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
    with pytest.raises(SNAPSHOT_ERRORS):
        _load_and_read(_item_chunks(item))


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
    for item in items:
        with contextlib.suppress(SNAPSHOT_ERRORS):
            _load_and_read(_item_chunks(item))


# --- chunks: what a station stores (records decoded on first read, the index as arrays) ---


def _stored(reg: Registry) -> list[tuple[list[Any], bytes]]:
    """The registry's chunks as a station stores them: headers through JSON."""
    return [(json.loads(json.dumps(h)), blob) for h, blob in snapshot.encode_chunks(reg, per=3)]


def _load_chunks(chunks: list[tuple[list[Any], bytes]]) -> Registry:
    loader = snapshot.RegistryLoader(max_delta=2)
    for header, blob in chunks:
        for item in header:
            if item[0] in (snapshot.RECORDS, snapshot.INDEX):
                loader.add_chunk(item, blob)
            else:
                loader.add(item)
    return loader.finish()


def _records(reg: Registry) -> list[Any]:
    return reg.sites(include_ended=True) + reg.activities(include_ended=True)


def _mixed_log(seed: int) -> list[NoticeEntry | AckEntry]:
    """A random log of points, polygons, corridors and areas (shapes whose boxes the
    index keeps), with modifies, withdrawals, reconfirmations and cancellations."""
    rng = random.Random(seed)
    log: list[NoticeEntry | AckEntry] = []
    live_sites: set[str] = set()
    live_acts: set[str] = set()
    for i in range(30):
        t = T0 + timedelta(minutes=i)
        lon, lat = ZNPP[0] + rng.uniform(-0.4, 0.4), ZNPP[1] + rng.uniform(-0.3, 0.3)
        d = rng.uniform(0.01, 0.05)
        ring = [[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]
        choice = rng.random()
        n: SiteNotice | ActivityNotice
        if choice < 0.4:
            sid = f"S{rng.randint(0, 5)}"
            action = "modify" if sid in live_sites else "add"
            p = site_payload(sid, notice_id=f"n{i}", action=action, coords=(lon, lat),
                             radius=rng.uniform(500, 8000))  # fmt: skip
            if rng.random() < 0.5:
                p["site"]["geometry"] = {"type": "Polygon", "coordinates": [ring]}
                del p["site"]["protection_radius_m"]
                p["site"]["buffer_m"] = rng.uniform(0, 3000)
            n = SiteNotice.from_payload(p)
            live_sites.add(sid)
        elif choice < 0.5 and live_sites:
            sid = rng.choice(sorted(live_sites))
            action = rng.choice(["withdraw", "reconfirm"])
            extra = {}
            if action == "reconfirm":
                extra = {"reconfirm_by": (t + timedelta(days=9)).isoformat()}
            n = SiteNotice.from_payload(
                {"notice_id": f"n{i}", "site_id": sid, "action": action, **extra}
            )
            if action == "withdraw":
                live_sites.discard(sid)
        elif choice < 0.9:
            aid = f"A{rng.randint(0, 5)}"
            action = "modify" if aid in live_acts else "add"
            kind = rng.randint(0, 2)
            geo: dict[str, Any] = {"type": "Point", "coordinates": [lon, lat]}
            extra2: dict[str, Any] = {"radius": rng.uniform(100, 5000)}
            if kind == 1:
                geo = {"type": "LineString", "coordinates": [[lon, lat], [lon + d, lat + d]]}
                extra2 = {"radius": None, "half_width_m": rng.uniform(100, 2000)}
            elif kind == 2:
                geo, extra2 = {"type": "Polygon", "coordinates": [ring]}, {"radius": None}
            n = ActivityNotice.from_payload(activity_payload(
                aid, notice_id=f"n{i}", action=action, geometry=geo, **extra2))  # fmt: skip
            live_acts.add(aid)
        elif live_acts:
            aid = rng.choice(sorted(live_acts))
            n = ActivityNotice.from_payload(
                {"notice_id": f"n{i}", "activity_id": aid, "action": "cancel"}
            )
            live_acts.discard(aid)
        else:
            continue
        log.append(NoticeEntry(n, "ua" if isinstance(n, SiteNotice) else "ru", t))
        if rng.random() < 0.2:
            log.append(AckEntry(f"n{i}", "icrc", t))
    return log


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6), st.floats(min_value=0.0, max_value=1.0))
def test_a_registry_loaded_from_chunks_equals_the_replayed_one_and_goes_on_alike(
    seed: int, at: float
) -> None:
    log = _mixed_log(seed)
    cut = int(len(log) * at)
    replayed = Registry()
    _feed(replayed, log[:cut])
    loaded = _load_chunks(_stored(replayed))
    assert not any(r.decoded for r in _records(loaded))  # nothing decoded by the load
    for e in log[:cut]:
        if isinstance(e, AckEntry):
            loaded.acknowledge(e.notice_id, e.recipient, e.at)
    # the index decides from its columns alone until a footprint is needed
    assert _feed(loaded, log[cut:]) == _feed(replayed, log[cut:])
    assert loaded.snapshot() == replayed.snapshot()
    assert loaded.conflicts() == replayed.conflicts()
    for kind in ("site", "activity"):
        a, b = loaded.saved_index(kind), replayed.saved_index(kind)  # type: ignore[arg-type]
        assert sorted(a.ids) == sorted(b.ids)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6))
def test_an_undecoded_registry_is_saved_as_the_bytes_it_came_from(seed: int) -> None:
    reg = Registry()
    _feed(reg, [e for e in _mixed_log(seed) if isinstance(e, NoticeEntry)])
    first = _stored(reg)
    loaded = _load_chunks(first)
    assert _stored(loaded) == first  # not one record decoded to save it again
    for r in _records(loaded)[::2]:
        assert r.versions  # decode every other one: it is encoded anew, to the same
    again = _stored(loaded)
    assert _load_chunks(again).snapshot() == reg.snapshot()


def test_the_loaded_index_builds_a_footprint_only_when_a_check_needs_it() -> None:
    reg = Registry()
    far = site_payload("FAR", notice_id="s1", coords=(20.0, 50.0), radius=1000.0)
    near = site_payload("NEAR", notice_id="s2", radius=1000.0)
    near["site"]["geometry"] = {"type": "Polygon", "coordinates": [[
        [34.58, 47.51], [34.59, 47.51], [34.59, 47.52], [34.58, 47.51]]]}  # fmt: skip
    del near["site"]["protection_radius_m"]
    reg.apply(SiteNotice.from_payload(far), "ua", T0)
    reg.apply(SiteNotice.from_payload(near), "ua", T0)
    loaded = _load_chunks(_stored(reg))
    index = loaded._engine.sites
    assert all(isinstance(v, str) for v in index._slots)  # ids only, no volume built
    point = {"type": "Point", "coordinates": [34.585, 47.5115]}  # inside NEAR
    act = ActivityNotice.from_payload(
        activity_payload("A1", notice_id="a1", geometry=point, radius=500.0)
    )
    changes = loaded.apply(act, "ru", T0)
    assert [c.conflict.site_id for c in changes] == ["NEAR"]
    assert changes == reg.apply(act, "ru", T0)
    built = {v.id for v in index._slots if not isinstance(v, str) and v is not None}
    assert built == {"NEAR"}  # the far point was ruled out by its columns
    assert not loaded.site("FAR").decoded


def _chunks_of(reg: Registry) -> list[tuple[list[Any], bytes]]:
    return [(json.loads(json.dumps(h)), b) for h, b in snapshot.encode_chunks(reg, per=100)]


def _one_site_registry() -> Registry:
    reg = Registry()
    reg.apply(SiteNotice.from_payload(site_payload(notice_id="s1")), "ua", T0)
    reg.apply(ActivityNotice.from_payload(activity_payload("A1", notice_id="a1")), "ru", T0)
    return reg


def _damaged(what: str) -> list[tuple[list[Any], bytes]]:
    chunks = _chunks_of(_one_site_registry())
    (rs, blob), (_ra, _), (ix, ixblob) = chunks[0], chunks[1], chunks[2]
    if what == "short blob":
        chunks[0] = (rs, blob[:-1])
    elif what == "lengths":
        rs[0][8] = [rs[0][8][0] + 1]
    elif what == "columns":
        rs[0][3] = []
    elif what == "kind":
        rs[0][1] = "ship"
    elif what == "live flag":
        rs[0][4] = [1]
    elif what == "no version":
        rs[0][6], rs[0][7] = [], [0]
    elif what == "index size":
        chunks[2] = (ix, ixblob + b"\0")
    elif what == "index id":
        ix[0][2] = ["Elsewhere"]
    elif what == "no index":
        del chunks[2]
    elif what == "index twice":
        chunks.append(chunks[2])
    elif what == "dead in index":
        cols = bytearray(ixblob)
        cols[64:72] = b"\0" * 8  # the first volume's alive flag (column 8) zeroed
        chunks[2] = (ix, bytes(cols))
    elif what == "chunk tag":
        rs[0][0] = "RX"
    return chunks


@pytest.mark.parametrize(
    "what",
    ["short blob", "lengths", "columns", "kind", "live flag", "no version", "index size",
     "index id", "no index", "index twice", "dead in index", "chunk tag"],
)  # fmt: skip
def test_damaged_chunks_are_refused_at_load(what: str) -> None:
    chunks = _damaged(what)
    with pytest.raises(SNAPSHOT_ERRORS):
        _load_chunks(chunks)


def test_a_record_whose_bytes_hold_another_is_refused_when_read() -> None:
    """The bytes of a record are checked against the header when decoded (the store's
    digest vouches for them; this catches a snapshot written wrong)."""
    reg = _one_site_registry()
    reg.apply(SiteNotice.from_payload(site_payload("Y", notice_id="s2")), "ua", T0)
    chunks = _chunks_of(reg)
    header, blob = chunks[0]
    lengths = header[0][8]
    a, b = blob[: lengths[0]], blob[lengths[0] :]
    header[0][8] = [lengths[1], lengths[0]]
    loaded = _load_chunks([(header, b + a), *chunks[1:]])
    with pytest.raises(ValueError, match="holds another record"):
        _ = loaded.site("Y").versions


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_json, min_size=1, max_size=9).map(lambda v: [snapshot.RECORDS, *v])
    | st.lists(_json, min_size=1, max_size=4).map(lambda v: [snapshot.INDEX, *v]),
    st.binary(max_size=200),
)
def test_garbage_chunks_raise_only_the_documented_errors(item: list[Any], blob: bytes) -> None:
    loader = snapshot.RegistryLoader()
    try:
        loader.add_chunk(item, blob)
        loader.finish()
    except SNAPSHOT_ERRORS:
        pass


def test_a_records_blob_given_lazily_is_asked_for_on_the_first_read_only() -> None:
    """A station passes each records chunk's blob still compressed: it is unpacked when
    a record of the chunk is first read, once, and its size is checked then."""
    reg = _one_site_registry()
    reg.apply(SiteNotice.from_payload(site_payload("Y", notice_id="s2")), "ua", T0)
    for short in (False, True):
        chunks = _chunks_of(reg)
        asked: list[int] = []
        header, blob = chunks[0]

        def unpack(blob: bytes = blob[:-1] if short else blob, asked: list[int] = asked) -> bytes:
            asked.append(1)
            return blob

        loader = snapshot.RegistryLoader()
        loader.add_chunk(header[0], unpack)
        for h, b in chunks[1:]:
            for item in h:
                if item[0] in (snapshot.RECORDS, snapshot.INDEX):
                    loader.add_chunk(item, b)
                else:
                    loader.add(item)
        loaded = loader.finish()
        assert asked == []  # nothing unpacked by the load
        if short:
            with pytest.raises(ValueError, match="do not add up"):
                _ = loaded.site("Y").versions
            continue
        for rec in reg.sites():
            assert loaded.site(rec.id).versions == rec.versions
        assert len(reg.sites()) == 2
        assert asked == [1]
        assert loaded.snapshot() == reg.snapshot()
