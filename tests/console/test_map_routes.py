"""The map's routes without a browser: the GeoJSON sources, the details fragments, the
edited draft concern, garbage ids, and a station without deconfliction.

Two in-process stations (tests/api/test_operator_api.py's helpers, SQLite only: the map
reads the registry in memory, which is the same on both databases); the console is
reached with an officer's session cookie, as a browser would.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.test_operator_api import (
    TOKEN,
    Api,
    activity,
    client,
    create_operator_app,
    run_pair,
    site,
    with_api,
)

__all__ = ["run_pair"]

PASSWORD = "correct horse battery staple"
NASTY = '<script>alert("x")</script> & Zaporizhzhia'
GARBAGE_IDS = ["nope", "..", "%2e%2e", "<b>", "a" * 65, "x%00y", "ZNPP%20", "-lead"]
sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)


@contextlib.asynccontextmanager
async def officer_client(
    app: Any, api_client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A client carrying a watch officer's session (created with the station token)."""
    r = await api_client.post(
        "/api/v1/officers",
        json={
            "username": "wo",
            "display_name": "Watch Officer",
            "roles": ["watch_officer"],
            "password": PASSWORD,
        },
    )
    assert r.status_code in (200, 201), r.text
    async with client(app, headers=None) as c:
        r = await c.post("/api/v1/session", json={"username": "wo", "password": PASSWORD})
        assert r.status_code == 200, r.text
        # httpx keeps Secure cookies to https only; a browser sends them to loopback too
        c.headers["Cookie"] = f"hotline_session={r.cookies['hotline_session']}"
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        yield c


def in_own_thread(fn: Callable[[], None]) -> None:
    """Run ``fn`` on a thread of its own: the browser tests' Playwright (sync API) keeps
    an event loop running on the main thread, where ``asyncio.run`` would refuse."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # re-raised on the test's thread
            failure.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if failure:
        raise failure[0]


def nasty_site() -> dict[str, Any]:
    s = site()
    s["site"]["names"] = {"en": NASTY}
    return s


async def conflict_between(api: Api) -> str:
    """bravo notifies the plant, alpha an activity near it: the draft concern's id."""
    assert (await api.bravo.post("/api/v1/notices", json={"notice": nasty_site()})).is_success
    await api.pair.flush()
    assert (await api.alpha.post("/api/v1/notices", json={"notice": activity()})).is_success
    await api.pair.flush()
    [conflict] = (await api.bravo.get("/api/v1/conflicts")).json()["conflicts"]
    return str(conflict["draft_concern"]["concern_id"])


@sqlite_only
def test_geojson_sources_have_the_map_shape_and_keep_names_as_data(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        cid = await conflict_between(api)
        async with officer_client(api.apps["bravo"], api.bravo) as c:
            r = await c.get("/console/map/sites")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/json")
            assert r.headers["cache-control"] == "no-store"
            sites = r.json()
            assert sites["type"] == "FeatureCollection"
            [f] = sites["features"]
            assert f["geometry"] == {"type": "Point", "coordinates": [34.5863, 47.5119]}
            p = f["properties"]
            assert (p["id"], p["cat"], p["nuc"], p["owner"]) == (
                "ZNPP",
                "nuclear_power_plant",
                True,
                "bravo",
            )
            assert p["name"] == NASTY  # data in JSON, drawn as text by map.js
            assert p["reach"] == 5_000.0
            # the ring: 5 km at 47.5° N, in pixels at zoom 0
            expected = 5_000 / (2 * math.pi * 6_378_137 / 512 * math.cos(math.radians(47.5119)))
            assert p["k"] == pytest.approx(expected, rel=1e-6)

            [a] = (await c.get("/console/map/activities")).json()["features"]
            assert a["properties"]["id"] == "act-1"
            assert a["properties"]["kind"] == "artillery"
            assert a["properties"]["end"] - a["properties"]["start"] == 4 * 3600

            [k] = (await c.get("/console/map/conflicts")).json()["features"]
            assert k["geometry"]["type"] == "LineString"
            assert k["properties"]["id"] == cid
            assert k["properties"]["site_name"] == NASTY
            assert k["properties"]["concern"] == "draft"
            assert 0 < k["properties"]["distance_m"] <= k["properties"]["reach_m"]

            # the details escape the peer's words
            for url in ("/console/site/ZNPP", f"/console/conflict/{cid}"):
                html = (await c.get(url)).text
                assert "<script>alert" not in html
                assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Zaporizhzhia" in html
            html = (await c.get(f"/console/conflict/{cid}")).text
            assert 'data-api="POST /api/v1/concerns/' + cid + '/raise"' in html
            assert "IAEA five principles" in html
            act = (await c.get("/console/activity/act-1")).text
            assert "2026-01-02 00:00:00Z to 2026-01-02 04:00:00Z" in act

    in_own_thread(lambda: with_api(run_pair, scenario))


@sqlite_only
def test_garbage_ids_get_404_and_no_session_gets_401(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        await conflict_between(api)
        app = api.apps["alpha"]
        async with client(app, headers=None) as anon:
            for path in ("/console/map/sites", "/console/tab/map", "/console/site/ZNPP"):
                assert (await anon.get(path)).status_code == 401
        async with officer_client(app, api.alpha) as c:
            for kind in ("site", "activity", "conflict"):
                for ident in GARBAGE_IDS:
                    r = await c.get(f"/console/{kind}/{ident}")
                    assert r.status_code == 404, (kind, ident, r.status_code)
            # random ids (any characters, quoted as one path segment): never found, never
            # an error of the station
            rng = random.Random(9)
            alphabet = "aZ09._:-/%?#&<>\"' \x00\u00e9\u2603\U0001f600"
            for _ in range(150):
                ident = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
                kind = rng.choice(("site", "activity", "conflict"))
                r = await c.get(f"/console/{kind}/{quote(ident, safe='')}")
                # (an id ending in "/" is the router's: a redirect without the slash)
                assert r.status_code in (404, 307), (kind, ident, r.status_code)
                if r.status_code == 307:
                    assert r.headers["location"].startswith("http://station/console/")
            # ids of the other kinds are not found either
            assert (await c.get("/console/site/act-1")).status_code == 404
            assert (await c.get("/console/conflict/ZNPP")).status_code == 404

    in_own_thread(lambda: with_api(run_pair, scenario))


@sqlite_only
def test_an_edited_draft_concern_is_raised_with_the_officers_words(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        cid = await conflict_between(api)
        url = f"/api/v1/concerns/{cid}/raise"
        for bad in ({"asked": ""}, {"text": "x" * 4001}, {"asked": 3}, {"other": "x"}):
            r = await api.bravo.post(url, json=bad)
            assert r.status_code == 422, (bad, r.text)
        assert (await api.bravo.get("/api/v1/concerns")).json()["concerns"] == []
        body = {"asked": "Edited: keep 10 km clear.", "text": "Our words, reviewed."}
        r = await api.bravo.post(url, json=body)
        assert r.status_code == 201, r.text
        await api.pair.flush()
        for c in (api.alpha, api.bravo):
            concern = (await c.get(f"/api/v1/concerns/{cid}")).json()
            assert concern["state"] == "raised"
            assert concern["raised"]["asked"] == body["asked"]
            assert concern["raised"]["text"] == body["text"]
            assert concern["raised"]["about"]["site_ids"] == ["ZNPP"]
        # the map's conflict now shows the concern's state instead of the draft form
        async with officer_client(api.apps["bravo"], api.bravo) as c:
            [k] = (await c.get("/console/map/conflicts")).json()["features"]
            assert k["properties"]["concern"] == "raised"
            html = (await c.get(f"/console/conflict/{cid}")).text
            assert "RAISED" in html
            assert "concern-form" not in html
            assert "Edited: keep 10 km clear." in html

    in_own_thread(lambda: with_api(run_pair, scenario))


@sqlite_only
def test_a_station_without_deconfliction_says_so(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        app = create_operator_app(api.pair.alpha.line, TOKEN)
        async with client(app) as bearer, officer_client(app, bearer) as c:
            html = (await c.get("/console/tab/map")).text
            assert "No deconfliction on this station" in html
            assert 'data-map="tab"' not in html
            for source in ("sites", "activities", "conflicts"):
                r = await c.get(f"/console/map/{source}")
                assert r.json() == {"type": "FeatureCollection", "features": []}
            assert (await c.get("/console/site/ZNPP")).status_code == 404

    in_own_thread(lambda: with_api(run_pair, scenario))
