"""The console's Handover tab: the outgoing officer's note, the station's summary, the
incoming officer's "I have read it", and the history of handovers with who and when.

Owns ``GET /console/tab/handover`` (the form to write a note, with a preview of the
summary the station will add now) and ``GET /console/handovers`` (the handovers, latest
first, each with its recorded summary and its acknowledgement; refreshed live on
``handover.written`` and ``handover.acknowledged``). Writing and acknowledging are the
JSON API's (``POST /api/v1/handovers``, ``POST /api/v1/handovers/{id}/acknowledge``,
service/handover.py), sent by console.js. Must not touch: SQL, writes, the queue.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.routers import api_router
from hotline.console.context import Console
from hotline.service import handover

#: handovers listed in the history
HISTORY = 20
#: the parts of a summary, in the order shown, with their labels
PARTS: list[tuple[str, str]] = [
    ("unacknowledged", "Received, not acknowledged"),
    ("overdue", "Overdue acknowledgements"),
    ("escalations", "Open escalations"),
    ("conflicts", "Open conflicts"),
    ("concerns", "Open concerns"),
    ("alarms", "Open alarms"),
]


def item_text(part: str, item: dict[str, Any]) -> str:
    """One item of a summary part as a line of text (escaped by the template)."""
    if not isinstance(item, dict):
        return str(item)
    if part == "unacknowledged":
        return f"{item.get('precedence')} from {item.get('peer')} on {item.get('channel')}: " + str(
            item.get("text") or ""
        )
    if part == "overdue":
        way = "from" if item.get("direction") == "in" else "to"
        return f"{item.get('precedence')} {way} {item.get('peer')} on {item.get('channel')}"
    if part == "escalations":
        return (
            f"message {item.get('message_id')} with {item.get('peer')}: step "
            f"{item.get('step')} to {item.get('role')} ({item.get('origin')})"
        )
    if part == "conflicts":
        return f"activity {item.get('activity_id')} near site {item.get('site_id')}"
    if part == "concerns":
        return f"concern {item.get('concern_id')}: {item.get('state')}"
    if part == "alarms":
        peer = f" ({item.get('peer')})" if item.get("peer") else ""
        return f"{item.get('kind')}{peer}: {item.get('detail')}"
    return ", ".join(f"{k}: {v}" for k, v in item.items())


def handover_router(console: Console) -> APIRouter:
    router = api_router(prefix="/console", include_in_schema=False)

    @router.get("/tab/handover", response_class=HTMLResponse)
    async def tab(request: Request) -> Response:
        who = console.who(request)
        now = console.line.clock.now_us()
        preview = await console.read(lambda conn: handover.summary(console.line.ctx, conn, now))
        return console.render(
            "handover/tab.html", who, preview=preview, parts=PARTS, item_text=item_text
        )

    @router.get("/handovers", response_class=HTMLResponse)
    async def history(request: Request) -> Response:
        who = console.who(request)
        items = await handover.latest(console.line.ctx, HISTORY)
        return console.render(
            "handover/history.html", who, handovers=items, parts=PARTS, item_text=item_text
        )

    return router
