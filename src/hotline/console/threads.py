"""The threads tab: channels by level, a channel's thread as cards, and the composer.

Owns the fragments ``/console/tab/threads`` (the channel list and the first thread),
``/console/threads/channels`` (the list again, for live counts), ``/console/thread/{name}``
(a thread with its composer) and ``/console/thread-cards/{name}`` (its cards only, for
live updates without touching what the officer is typing). Only channels whose terms let
one of the officer's roles read them here are listed or shown (service/channels.py
``readable``); an unknown channel is a 404 fragment, one the officer may not read a 403.
Sending, replying, reading, acknowledging and answering proposals are calls of the JSON
API from the browser (static/threads.js, console.js). Must not touch: SQL, writes, the
queue, the details panel (``/console/message/{id}`` is another area's).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.service import approvals, channels, threadview
from hotline.service.roles import Principal
from hotline.wire.channels import PRECEDENCES

#: the stages a card shows per recipient, lowest first (a word on every chip)
LADDER_OUT = ("queued", "sent", "delivered", "read", "acknowledged", "answered")
LADDER_IN = ("received", "read", "acknowledged", "answered")


def threads_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)
    ctx = console.line.ctx

    async def groups(who: Principal) -> list[tuple[str, list[threadview.ChannelRow]]]:
        result: list[tuple[str, list[threadview.ChannelRow]]] = await console.read(
            threadview.channel_groups,
            ctx.channels.all(),
            channels.readable(ctx, who),
            station=console.station_id,
            officer=who.username,
            now_us=console.line.clock.now_us(),
            levels=ctx.settings.channel_levels,
            two_person={n for n in ctx.channels.names() if approvals.requires_approval(ctx, n)},
        )
        return result

    async def listing(who: Principal) -> dict[str, Any]:
        found = await groups(who)
        pending = await console.read(threadview.awaiting, console.station_id)
        return {
            "groups": found,
            "pending": pending,
            "level_label": threadview.level_label,
        }

    @router.get("/tab/threads", response_class=HTMLResponse)
    async def tab(request: Request) -> Response:
        who = console.who(request)
        values = await listing(who)
        names = [row.name for _, rows in values["groups"] for row in rows]
        first = "working" if "working" in names else (names[0] if names else None)
        return console.render("threads/tab.html", who, first=first, **values)

    @router.get("/threads/channels", response_class=HTMLResponse)
    async def channel_list(request: Request) -> Response:
        who = console.who(request)
        return console.render("threads/channels.html", who, **await listing(who))

    async def thread_values(request: Request, channel: str) -> dict[str, Any] | Response:
        who = console.who(request)
        spec = ctx.channels.get(channel)
        if spec is None and not await console.read(threadview.has_messages, channel):
            return console.render(
                "threads/missing.html",
                who,
                status_code=404,
                channel=channel,
                reason="unknown",
                known=[n for n in ctx.channels.names() if n in channels.readable(ctx, who)],
            )
        if spec is not None and channel not in channels.readable(ctx, who):
            return console.render(
                "threads/missing.html",
                who,
                status_code=403,
                channel=channel,
                reason="forbidden",
                roles=list(spec.roles_at(console.station_id).read),
                known=[],
            )
        cards = await console.read(
            threadview.thread_cards,
            console.line.clock.now_us(),
            channel,
            station=console.station_id,
            officer=who.username,
        )
        return {
            "who": who,
            "channel": channel,
            "spec": spec,
            "cards": cards,
            "truncated": sum(len(c.ids) for c in cards) >= threadview.THREAD_LIMIT,
            "thread_limit": threadview.THREAD_LIMIT,
            "ladder_out": LADDER_OUT,
            "ladder_in": LADDER_IN,
        }

    @router.get("/thread/{channel:path}", response_class=HTMLResponse)
    async def thread(request: Request, channel: str) -> Response:
        values = await thread_values(request, channel)
        if isinstance(values, Response):
            return values
        spec = values["spec"]
        two_person = approvals.requires_approval(ctx, channel) is not None
        return console.render(
            "threads/thread.html",
            values.pop("who"),
            peers=console.line.peers.ids(),
            precedences=PRECEDENCES,
            two_person=two_person,
            recipients=[] if spec is None else spec.recipients(console.station_id),
            **values,
        )

    @router.get("/thread-cards/{channel:path}", response_class=HTMLResponse)
    async def thread_cards(request: Request, channel: str) -> Response:
        values = await thread_values(request, channel)
        if isinstance(values, Response):
            return values
        return console.render("threads/cards.html", values.pop("who"), **values)

    return router
