"""Putting the console on the operator API: static files, pages, and each area's fragments.

Owns the list of the console's areas (``AREAS``: one module each, each a function from
the ``Console`` to an ``APIRouter`` of GET fragments under ``/console/``) and which paths
the gate lets through without a session (the login page, the static files, and the
pages, which send a browser without a session to /login). Must not touch: SQL, writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from hotline.api.routers import include
from hotline.console import handover, pages, record, search, wall
from hotline.console.concerns import concerns_router
from hotline.console.context import Console
from hotline.console.map import map_router
from hotline.console.queue import queue_router
from hotline.console.registry import registry_router
from hotline.console.security import SecurityHeaders
from hotline.console.templates import environment
from hotline.console.threads import threads_router
from hotline.service.line import Line
from hotline.service.officers import Officers

STATIC_PREFIX = "/static/"

#: each area of the console: Console -> router of its fragments (order is irrelevant)
AREAS: list[Callable[[Console], APIRouter]] = [
    pages.shell_router,
    registry_router,
    concerns_router,
    queue_router,
    record.record_router,
    wall.wall_router,
    threads_router,
    search.search_router,
    handover.handover_router,
    map_router,
]

#: paths the gate admits without a principal (rate-limited as public); a page itself
#: sends a browser without a session to the login page
PUBLIC_PATHS = frozenset({"/", "/login", "/wall", "/favicon.ico"})
PUBLIC_PREFIXES = (STATIC_PREFIX,)


def install_console(
    app: FastAPI, line: Line, officers: Officers, deconfliction: Any = None
) -> Console:
    console = Console(line, officers, environment(), deconfliction)
    app.add_middleware(SecurityHeaders)
    app.mount(
        STATIC_PREFIX.rstrip("/"),
        StaticFiles(packages=[("hotline.console", "static")]),
        name="static",
    )
    include(app, pages.pages_router(console))
    for area in AREAS:
        include(app, area(console))
    return console
