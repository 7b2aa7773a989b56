"""The MAP tab: protected sites, activities and conflicts on an offline basemap.

Owns ``/console/tab/map`` (the tab: map, layer toggles, time slider, legend, the list of
conflicts), the map's GeoJSON sources (``/console/map/sites``, ``/activities``,
``/conflicts``: read from the deconfliction registry in memory, ``service/mapview.py``)
and the details fragments ``/console/site/{id}``, ``/console/activity/{id}`` and
``/console/conflict/{concern_id}`` (a conflict is named by its draft concern, which the
officer reviews, edits and raises there through ``POST /api/v1/concerns/{id}/raise``).
static/map.js draws every ``.map[data-map]`` element (the tab's and the wall's).
A station without deconfliction (``console.deconfliction`` is None) says so and serves
empty sources. Must not touch: SQL, writes (raising a concern is the JSON API's).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.errors import NotFoundError
from hotline.service import mapview

#: ids as the registry accepts them (deconfliction/models.py ``Ident``); any other path
#: names nothing there: 404, as an unknown id
IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
#: what the legend says of each site category, in words
CATEGORIES: list[tuple[str, str]] = [
    ("nuclear_power_plant", "Nuclear power plant (large magenta ring)"),
    ("power_station", "Power station"),
    ("substation", "Substation"),
    ("dam", "Dam"),
    ("water_works", "Water works"),
    ("hospital", "Hospital"),
    ("school", "School"),
    ("humanitarian_office", "Humanitarian office"),
    ("humanitarian_warehouse", "Humanitarian warehouse"),
    ("other", "Other site"),
]
EMPTY: dict[str, Any] = {"type": "FeatureCollection", "features": []}


def _json(value: dict[str, Any]) -> Response:
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


def _us(t: dt.datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() * 1_000_000)


def map_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    async def source(fn: Callable[[Any], dict[str, Any]]) -> Response:
        dc = console.deconfliction
        if dc is None:
            return _json(EMPTY)
        return _json(await asyncio.to_thread(fn, dc.projection))

    async def detail(fn: Callable[..., Any], ident: str, *args: Any) -> Any:
        dc = console.deconfliction
        if dc is None:
            raise NotFoundError("this station keeps no registry of sites and activities")
        if not IDENT.fullmatch(ident):
            raise NotFoundError("no such site, activity or conflict")
        return await asyncio.to_thread(fn, dc.projection, ident, *args)

    @router.get("/tab/map", response_class=HTMLResponse)
    async def tab(request: Request) -> Response:
        return console.render(
            "map/tab.html",
            console.who(request),
            enabled=console.deconfliction is not None,
            categories=CATEGORIES,
        )

    @router.get("/map/sites")
    async def sites() -> Response:
        """Live protected sites (GeoJSON; ``k`` sizes their rings in metres)."""
        return await source(mapview.sites_geojson)

    @router.get("/map/activities")
    async def activities() -> Response:
        """Live activities with their windows (``start``, ``end``: epoch seconds)."""
        return await source(mapview.activities_geojson)

    @router.get("/map/conflicts")
    async def conflicts() -> Response:
        """Open conflicts as lines between activity and site, with the distance."""
        return await source(mapview.conflicts_geojson)

    @router.get("/site/{site_id}", response_class=HTMLResponse)
    async def site(request: Request, site_id: str) -> Response:
        view = await detail(mapview.site_view, site_id, console.now())
        return console.render(
            "map/site.html", console.who(request), rec=view, us=_us, categories=dict(CATEGORIES)
        )

    @router.get("/activity/{activity_id}", response_class=HTMLResponse)
    async def activity(request: Request, activity_id: str) -> Response:
        view = await detail(mapview.activity_view, activity_id, console.now())
        return console.render("map/activity.html", console.who(request), rec=view, us=_us)

    @router.get("/conflict/{concern_id}", response_class=HTMLResponse)
    async def conflict(request: Request, concern_id: str) -> Response:
        view = await detail(mapview.conflict_view, concern_id)
        return console.render(
            "map/conflict.html",
            console.who(request),
            v=view,
            c=view.open.conflict,
            us=_us,
            categories=dict(CATEGORIES),
        )

    return router
