"""The console's Concerns tab: every concern with its workflow drafted → raised →
acknowledged → answered → closed, who (station and officer) and when at each step, and
the details of one: its text (as text), the conflict it is about, and the actions this
station's officer may take at this step.

Owns the GET fragments ``/console/tab/concerns`` and ``/console/concern/{id}`` (read
through ``service/registryview.py``). The steps are the browser's calls of the JSON API:
raise a draft with ``POST /api/v1/concerns/{id}/raise``; acknowledge, answer and close
with ``POST /api/v1/notices`` carrying the concern step (static/concerns.js); the concern
rules (``deconfliction/concerns.py``) decide again. Must not touch: SQL, writes, the
map's drafting and editing of concerns.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.service import registryview

#: a concern id as the models accept one (anything else is a 422 before reading)
IDENT = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"


def concerns_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/tab/concerns", response_class=HTMLResponse)
    async def tab(request: Request) -> Response:
        who = console.who(request)
        rows = await console.read(registryview.concerns, console.projection(), console.station_id)
        return console.render(
            "concerns/tab.html", who, concerns=rows, workflow_states=registryview.WORKFLOW
        )

    @router.get("/concern/{concern_id}", response_class=HTMLResponse)
    async def details(
        request: Request, concern_id: Annotated[str, Path(pattern=IDENT)]
    ) -> Response:
        who = console.who(request)
        row = await console.read(
            registryview.concern, console.projection(), console.station_id, concern_id
        )
        return console.render(
            "concerns/details.html", who, c=row, workflow_states=registryview.WORKFLOW
        )

    return router
