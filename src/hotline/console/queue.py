"""The console's action queue and the details of what it opens: a message, an approval.

Owns three GET fragments: ``/console/queue`` (the left column: everything this officer
must do now, from service/actions.py through service/actionqueue.py, most urgent
first, each card with what is asked, from whom, its precedence word, a live countdown
and how far it has escalated), ``/console/message/{message_id}`` (a message in full: its
text as text, its fields, its stage timeline with times and names, and the buttons
Acknowledge, Reply, Pass on) and ``/console/approval/{approval_id}`` (a held message
with Approve, Refuse with a reason, Withdraw). Every action on them is a call of the
JSON API from the browser (static/queue.js and console.js's ``data-api``); opening a
received message marks it read with ``POST /api/v1/messages/{id}/read`` from queue.js,
never from a GET here. A message on a channel whose terms do not let the officer's
roles read it is as absent as an unknown one (404), like the JSON API.

Must not touch: SQL, writes, the other areas' tabs (threads, map, ...), the top bar.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.approvals import Approval
from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.errors import NotFoundError
from hotline.service import actionqueue, approvals, channels, queries
from hotline.service.roles import Action
from hotline.wire.channels import PRECEDENCES

MessageId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f-]{1,36}$")]
ApprovalId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9A-Za-z_-]+$")]


def _text(message: dict[str, Any]) -> str:
    body = message.get("body")
    text = body.get("text") if isinstance(body, dict) else None
    return text if isinstance(text, str) else ""


def queue_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/queue", response_class=HTMLResponse)
    async def queue(request: Request) -> Response:
        who = console.who(request)
        now = console.line.clock.now_us()
        cards, total = await console.read(actionqueue.cards, console.line.ctx, who, now)
        return console.render("queue/queue.html", who, cards=cards, total=total, now_us=now)

    @router.get("/message/{message_id}", response_class=HTMLResponse)
    async def message(request: Request, message_id: MessageId) -> Response:
        who = console.who(request)
        now = console.line.clock.now_us()
        found = await console.read(queries.message_with_stages, now, message_id)
        if found is None or not channels.visible(console.line.ctx, who, [found]):
            raise NotFoundError(f"no message {message_id}")
        inbound = found["direction"] == "in"
        return console.render(
            "queue/message.html",
            who,
            m=found,
            text=_text(found),
            inbound=inbound,
            may_ack=(
                inbound
                and found["ack_required"]
                and found["acknowledged_at_us"] is None
                and who.may(Action.ACKNOWLEDGE)
            ),
            may_reply=who.may(Action.SEND) and found["type"] == "text",
            may_disseminate=inbound and who.may(Action.DISSEMINATE),
            mark_read=inbound and who.may(Action.ACKNOWLEDGE),
            precedences=list(PRECEDENCES),
            now_us=now,
        )

    @router.get("/approval/{approval_id}", response_class=HTMLResponse)
    async def approval(request: Request, approval_id: ApprovalId) -> Response:
        who = console.who(request)
        row = await console.read(approvals.get, approval_id)
        if row is None:
            raise NotFoundError(f"no approval request {approval_id}")
        a = Approval.of(row)
        pending = a.state == "pending"
        return console.render(
            "queue/approval.html",
            who,
            a=a,
            may_decide=pending and who.may(Action.APPROVE) and a.requester != who.username,
            may_withdraw=pending and a.requester == who.username,
            now_us=console.line.clock.now_us(),
        )

    return router
