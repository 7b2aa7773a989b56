"""The wall view: read-only, large type, for a screen across the room.

Owns ``/console/wall`` (the fragment the ``/wall`` page loads into ``<main>`` and
refreshes on every event): the line state of each peer in big words, suspensions in
force, overdue items (the station's open alarms and acknowledgements past their
deadline), open conflicts, and the map's slot (``data-map="wall"``: static/map.js draws
it). No controls: nothing on it sends anything. Must not touch: SQL, writes, the map.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.service import queries, suspension

MAX_WALL_ITEMS = 12  #: overdue items and conflicts shown at most (each list says how many more)


def _conflicts(dc: Any) -> list[dict[str, Any]]:
    if dc is None or getattr(dc, "projection", None) is None:
        return []
    from hotline.service.registry import conflict_json

    proj = dc.projection
    with proj.lock:
        return [conflict_json(oc) for oc in proj.open_conflicts.values()]


def wall_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/wall", response_class=HTMLResponse)
    async def wall(request: Request) -> Response:
        who = console.who(request)
        now = console.line.clock.now_us()
        links = await console.read(queries.link_status, console.line.peers.ids())
        alarms = await console.read(queries.alarms, now)
        conflicts = await asyncio.to_thread(_conflicts, console.deconfliction)
        suspended = suspension.state(console.line.ctx)
        overdue = sorted(alarms, key=lambda a: (a["source"] != "deadline", a["raised_at_us"]))
        return console.render(
            "wall/wall.html",
            who,
            links=links,
            overdue=overdue[:MAX_WALL_ITEMS],
            overdue_more=max(0, len(overdue) - MAX_WALL_ITEMS),
            conflicts=conflicts[:MAX_WALL_ITEMS],
            conflicts_more=max(0, len(conflicts) - MAX_WALL_ITEMS),
            suspended=suspended,
            now_us=now,
        )

    return router
