"""The import's dry run (``POST /api/v1/sites/import/preview``) on SQLite and PostgreSQL:
it counts what the import would notify, or refuses what the import would refuse with
the same error (the first bad feature named), and never sends or stores anything.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.api.test_operator_api import (
    GARBAGE,
    JSON,
    Api,
    _assert_4xx,
    error_of,
    on_thread,
    request_once,
    run_pair,
    with_api,
)
from tests.service.conftest import snapshot

__all__ = ["run_pair"]
PREVIEW = "/api/v1/sites/import/preview"


def feature(site_id: str, lat: float = 50.4, category: str = "hospital") -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [30.5, lat]},
        "properties": {"site_id": site_id, "name": f"Site <b>{site_id}</b>",
                       "category": category, "protection_radius_m": 500},
    }  # fmt: skip


def collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def test_a_preview_counts_and_sends_nothing_then_the_import_sends(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        good = collection(feature("H-1"), feature("H-2"), feature("S-1", category="school"))
        before = snapshot(p.bravo)
        r = await api.bravo.post(PREVIEW, content=good)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == 3
        assert body["categories"] == {"hospital": 2, "school": 1}
        assert [s["site_id"] for s in body["sites"]] == ["H-1", "H-2", "S-1"]
        assert body["sites"][0]["name"] == "Site <b>H-1</b>"
        assert body["recipients"] == ["alpha"]
        assert "never permission" in body["notice"]
        assert snapshot(p.bravo) == before
        assert (await api.bravo.get("/api/v1/sites")).json()["sites"] == []
        # the same bytes import after the preview
        r = await api.bravo.post("/api/v1/sites/import", content=good)
        assert r.status_code == 201, r.text
        assert r.json()["imported"] == ["H-1", "H-2", "S-1"]
        await p.flush()
        assert len((await api.alpha.get("/api/v1/sites")).json()["sites"]) == 3
        # previewing them again: refused as the import would be (already notified)
        before = snapshot(p.bravo)
        r = await api.bravo.post(PREVIEW, content=good)
        assert r.status_code == 422
        assert "feature 0 (H-1)" in error_of(r)["message"]
        assert snapshot(p.bravo) == before

    with_api(run_pair, scenario)


def test_a_preview_names_the_first_bad_feature_and_changes_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        bad = collection(feature("H-1"), feature("H-BAD", lat=99.0), feature("H-WORSE", lat=98))
        before = (snapshot(p.alpha), snapshot(p.bravo))
        r = await api.bravo.post(PREVIEW, content=bad)
        assert r.status_code == 422
        err = error_of(r)
        assert "feature 1 (H-BAD)" in err["message"]
        assert "nothing was imported" in err["hint"]
        for raw, words in [
            (b"not json at all", "not a JSON file"),
            (b'{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
            (collection(), "no features"),
        ]:
            r = await api.bravo.post(PREVIEW, content=raw)
            assert r.status_code == 422, raw
            assert words in error_of(r)["message"], raw
        # an unknown peer is refused before the file is read
        r = await api.bravo.post(PREVIEW, params={"peer": "nobody"}, content=bad)
        assert 400 <= r.status_code < 500
        assert "nobody" in error_of(r)["message"]
        # a body over the import's limit is refused before it is read whole
        r = await api.bravo.post(PREVIEW, content=b" " * (2 * 1024 * 1024))
        assert 400 <= r.status_code < 500
        await p.flush()
        assert (snapshot(p.alpha), snapshot(p.bravo)) == before

    with_api(run_pair, scenario)


def test_garbage_previews_get_a_4xx_and_change_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        app = api.apps["alpha"]
        collections = st.builds(
            lambda feats: json.dumps({"type": "FeatureCollection", "features": feats}).encode(),
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.just("Feature"), "geometry": JSON, "properties": JSON},
                    optional={"id": JSON},
                ),
                min_size=1,
                max_size=3,
            ),
        )

        @GARBAGE
        @given(raw=st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), JSON)
               | collections)  # fmt: skip
        def garbage(raw: bytes) -> None:
            r = request_once(app, "POST", PREVIEW, content=raw)
            _assert_4xx(r, raw)
            assert set(r.json()) == {"error"}

        await on_thread(garbage)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)
