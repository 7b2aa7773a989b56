"""The console's pages: login, the three-column watch page, the wall view; the top bar.

Owns the routes a browser navigates to (``/login``, ``/``, ``/wall``: public at the gate,
each checks the session itself and sends a browser without one to ``/login``) and the
shell's own fragments (the top bar and the banners). Logging in and out are calls of the JSON API
(``POST``/``DELETE /api/v1/session``) from static/login.js and console.js. Must not
touch: SQL, writes, the officers' secrets.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from hotline.api.openapi import EVENT_TYPES
from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.errors import HotlineError
from hotline.service import handover, queries, rota, suspension
from hotline.service.roles import Action, Principal

#: the tabs of the middle column: (id, label, key after "g"); each is a fragment
#: ``/console/tab/<id>`` of its area's module
TABS: list[tuple[str, str, str]] = [
    ("threads", "Threads", "t"),
    ("map", "Map", "m"),
    ("registry", "Registry", "r"),
    ("concerns", "Concerns", "c"),
    ("record", "Record", "l"),
    ("search", "Search", "s"),
    ("handover", "Handover", "h"),
]

#: the latest handovers the banners look at for one nobody has read
UNREAD_HANDOVERS = 5


def _session(console: Console, request: Request) -> Principal | None:
    try:
        return console.officers.authenticate(request.scope)
    except HotlineError:
        return None


def pages_router(console: Console) -> APIRouter:
    router = api_router(include_in_schema=False)

    def page(request: Request, template: str, **values: Any) -> Response:
        who = _session(console, request)
        if who is None:
            return RedirectResponse("/login", status_code=303)
        return console.render(
            template,
            who,
            tabs=TABS,
            event_types=sorted(EVENT_TYPES),
            idle_lock_s=console.line.settings.console_idle_lock_s,
            **values,
        )

    @router.get("/", response_class=HTMLResponse)
    async def watch_page(request: Request) -> Response:
        return page(request, "console.html")

    @router.get("/wall", response_class=HTMLResponse)
    async def wall_page(request: Request) -> Response:
        return page(request, "wall.html")

    @router.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> Response:
        if _session(console, request) is not None:
            return RedirectResponse("/", status_code=303)
        return console.render("login.html", None)

    @router.get("/favicon.ico")
    async def favicon() -> Response:
        return Response(status_code=204)

    return router


def shell_router(console: Console) -> APIRouter:
    """The top bar (station, officer, who is on watch, one pill per peer, the alarm bell)
    and the full-width banners (a suspension in force, a line that is DOWN)."""
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/topbar", response_class=HTMLResponse)
    async def topbar(request: Request) -> Response:
        who = console.who(request)
        now = console.line.clock.now_us()
        peers = console.line.peers.ids()

        def bar(conn: Connection) -> tuple[Any, Any, Any]:  # one connection, one thread hop
            return (
                queries.alarms(conn, now),
                queries.link_status(conn, peers),
                rota.now_on_watch(conn, now),
            )

        alarms, links, on_watch = await console.read(bar)
        return console.render(
            "topbar.html",
            who,
            alarms=alarms,
            links=links,
            now_us=now,
            on_watch=[(role, names) for role, names in on_watch.items() if names],
        )

    @router.get("/banners", response_class=HTMLResponse)
    async def banners(request: Request) -> Response:
        """Full-width banners: each suspension in force (service/suspension.py, in
        memory), each line that is DOWN, and a handover another officer wrote that
        nobody has read yet (for officers who may acknowledge it)."""
        who = console.who(request)
        links = await console.read(queries.link_status, console.line.peers.ids())
        suspended = sorted(suspension.state(console.line.ctx), key=lambda s: s["since_us"])
        unread: list[dict[str, Any]] = []
        if who.may(Action.HANDOVER):
            latest = await handover.latest(console.line.ctx, UNREAD_HANDOVERS)
            unread = [
                h
                for h in latest
                if h["acknowledged_at_us"] is None and h["written_by"] != who.username
            ]
        return console.render(
            "banners.html", who, links=links, suspensions=suspended, handovers=unread
        )

    return router
