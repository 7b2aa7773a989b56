"""The console's Registry tab: sites and activities (ours and the peer's) with their
version history, stale flags and per-recipient acknowledgements; the refused notices;
and the import of a file with a preview before anything is sent.

Owns the GET fragments ``/console/tab/registry``, ``/console/registry/tables``,
``/console/registry/site/{id}`` and ``/console/registry/activity/{id}`` (read through
``service/registryview.py``). The import
is the browser's: static/registry.js posts the file to ``POST /api/v1/sites/import/preview``
(a dry run: counts, or the first bad feature named) and only then, on the officer's
"Import and notify", to ``POST /api/v1/sites/import``. Must not touch: SQL, writes, the
map, concerns (concerns.py).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.service import registryview

#: a site or activity id as the models accept one (anything else is a 422 before reading)
IDENT = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"


def registry_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/tab/registry", response_class=HTMLResponse)
    async def tab(request: Request) -> Response:
        who = console.who(request)
        proj = console.projection()
        tables = await asyncio.to_thread(registryview.registry_tables, proj, console.now())
        return console.render("registry/tab.html", who, **tables, peers=console.line.peers.ids())

    @router.get("/registry/tables", response_class=HTMLResponse)
    async def tables(request: Request) -> Response:
        """The tables alone: the tab refreshes them live without touching the import."""
        who = console.who(request)
        proj = console.projection()
        values = await asyncio.to_thread(registryview.registry_tables, proj, console.now())
        return console.render("registry/tables.html", who, **values)

    async def details(request: Request, kind: str, ident: str) -> Response:
        who = console.who(request)
        proj = console.projection()
        rec = await asyncio.to_thread(registryview.record, proj, kind, ident, console.now())
        return console.render("registry/record.html", who, rec=rec)

    @router.get("/registry/site/{site_id}", response_class=HTMLResponse)
    async def site(request: Request, site_id: Annotated[str, Path(pattern=IDENT)]) -> Response:
        return await details(request, "site", site_id)

    @router.get("/registry/activity/{activity_id}", response_class=HTMLResponse)
    async def activity(
        request: Request, activity_id: Annotated[str, Path(pattern=IDENT)]
    ) -> Response:
        return await details(request, "activity", activity_id)

    return router
