"""The console's Search tab: full text over messages with filters, results as cards.

Owns ``GET /console/tab/search`` (the query box, the filters, the printable log's form
for officers who may export) and ``GET /console/search`` (a page of hits as cards, each
opening ``/console/message/{id}`` in the details panel, and a "more" button for the next
page). The query syntax, the checks and the search itself are service/search.py (the
same as ``GET /api/v1/search``), and hits on channels the officer's roles may not read
here are left out (service/channels.py ``visible``), exactly as the API does. A wrong
query or filter is the service's ``InputError`` (a 4xx with its hint). Must not touch:
SQL, writes, the message details fragment (another area's).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.errors import InputError
from hotline.service import channels, queries
from hotline.service import search as service
from hotline.service.roles import Action
from hotline.wire.envelope import Precedence

#: hits per page in the console
PAGE = 50
Text = Annotated[str | None, Query(max_length=64)]


def _given(value: str | None) -> str | None:
    """A form's empty field (``""``: any) as no filter."""
    return value if value else None


def segments(text: str, q: str) -> list[tuple[str, bool]]:
    """``text`` cut into (piece, matches) around the query's words, for ``<mark>``; the
    pieces are escaped by the template like any text."""
    try:
        words = {t.lower() for term in service.parse_query(q) for t in term.tokens}
    except InputError:  # the search itself refuses it
        words = set()
    if not words:
        return [(text, False)]
    pattern = re.compile(
        "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE
    )
    out: list[tuple[str, bool]] = []
    at = 0
    for m in pattern.finditer(text):
        if m.start() > at:
            out.append((text[at : m.start()], False))
        out.append((m.group(0), True))
        at = m.end()
    if at < len(text):
        out.append((text[at:], False))
    return out


def search_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/tab/search", response_class=HTMLResponse)
    async def tab(request: Request) -> Response:
        who = console.who(request)
        known = await console.read(queries.channels)
        readable = channels.visible(console.line.ctx, who, known)
        return console.render(
            "search/tab.html",
            who,
            channels=sorted({c["channel"] for c in readable}),
            peers=console.line.peers.ids(),
            precedences=[p.name for p in Precedence],
            states=service.STATES,
            may_export=who.may(Action.EXPORT),
        )

    @router.get("/search", response_class=HTMLResponse)
    async def results(
        request: Request,
        q: Annotated[str, Query(max_length=service.MAX_QUERY_CHARS)] = "",
        channel: Text = None,
        peer: Annotated[str | None, Query(max_length=32)] = None,
        precedence: Annotated[str | None, Query(max_length=16)] = None,
        direction: Annotated[str | None, Query(max_length=8)] = None,
        state: Annotated[str | None, Query(max_length=20)] = None,
        from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        to: Annotated[str | None, Query(max_length=40)] = None,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        who = console.who(request)
        req = service.SearchRequest(
            q=q, channel=_given(channel), peer=_given(peer), precedence=_given(precedence),
            direction=_given(direction), state=_given(state), from_=_given(from_),
            to=_given(to), cursor=_given(cursor), limit=PAGE,
        )  # fmt: skip
        now = console.line.clock.now_us()
        page = await service.search(console.line.reader, now, who, req)
        hits: list[dict[str, Any]] = channels.visible(console.line.ctx, who, page["items"])
        for h in hits:
            h["segments"] = segments(h["text"], q)
        params = {
            k: v
            for k, v in {
                "q": q, "channel": channel, "peer": peer, "precedence": precedence,
                "direction": direction, "state": state, "from": from_, "to": to,
            }.items()
            if v
        }  # fmt: skip
        return console.render(
            "search/results.html",
            who,
            hits=hits,
            next=page["next"],
            params=params,
            first=cursor is None,
            asked=bool(params),
        )

    return router
