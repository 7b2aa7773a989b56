"""The console's action queue: "action required" items as cards, with who asks and how far
each has escalated.

Owns the card shape the console's queue column shows (``Card``, a plain dict ready for a
template): the ``ActionItem`` of service/actions.py, the precedence word, what is asked
in words, from whom (the sending officer as the sealed payload names it, or the peer),
the escalation steps taken for it (to which role), whether it sounds the alarm (a FLASH
message to acknowledge, a CRITICAL alarm), and which details fragment opens it.

Read side only, in a worker thread with a read connection. Must not touch: writes, SQL
(it reads through store/reads.py, store/watch.py and store/approvals.py).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from hotline.service import actions, channels
from hotline.service.context import LineContext
from hotline.service.roles import Principal
from hotline.store import approvals as approvals_db
from hotline.store import reads
from hotline.store import watch as watch_db
from hotline.wire.envelope import Precedence

#: cards shown at most (the rest are counted)
MAX_CARDS = 200
#: how each kind of work reads on a card
ASKED = {
    "acknowledge": "Acknowledge",
    "alarm": "Acknowledge alarm",
    "approve": "Approve or refuse",
    "handover": "Read the handover",
    "escalation": "Escalated: get it acknowledged",
    "disseminate": "Pass on",
    "channel": "Answer the channel proposal",
}
#: kinds whose ref is a message id (details: /console/message/{ref})
MESSAGE_KINDS = frozenset({"acknowledge", "escalation", "disseminate"})


def _details(item: actions.ActionItem) -> str | None:
    if item.kind in MESSAGE_KINDS:
        return f"/console/message/{item.ref}"
    if item.kind == "approve":
        return f"/console/approval/{item.ref}"
    return None


def _from(row: Any) -> str:
    """Who asks: the sending officer as the payload names it, and the peer."""
    try:
        body = json.loads(row.body)
    except (TypeError, ValueError):
        body = {}
    officer = body.get("officer") if isinstance(body, dict) else None
    if isinstance(officer, dict) and officer.get("display_name"):
        role = f", {officer.get('role')}" if officer.get("role") else ""
        return f"{officer['display_name']}{role} ({row.peer})"
    return str(row.peer)


def cards(
    conn: Connection, ctx: LineContext, principal: Principal, now_us: int
) -> tuple[list[dict[str, Any]], int]:
    """The officer's cards, most urgent first (service/actions.py's order), and how many
    items there are in all; items on channels the officer may not read are left out
    (``channels.required``), as in the API."""
    items = channels.required(conn, ctx, principal, now_us)
    escalated: dict[str, list[str]] = {}
    for e in watch_db.escalations(conn, open_only=True, limit=1000):
        escalated.setdefault(str(e.message_id), []).append(f"{e.role} (step {e.step})")
    out = []
    for item in items[:MAX_CARDS]:
        prec = Precedence(item.precedence).name
        who = item.peer
        alarm = False
        flash = item.precedence == int(Precedence.FLASH)
        if item.kind in MESSAGE_KINDS:
            row = reads.message(conn, item.ref)
            if row is not None and row.direction == "in":
                who = _from(row)
            alarm = item.kind == "acknowledge" and flash
        elif item.kind == "approve":
            held = approvals_db.get(conn, item.ref)
            if held is not None:
                name = held["request"].get("requested_by_name", held["requester"])
                who = f"{name} ({held['requester']}), to {item.peer}"
        elif item.kind == "alarm":
            alarm = flash  # a CRITICAL alarm ranks as FLASH (service/stages.py)
        out.append(
            {
                "kind": item.kind,
                "ref": item.ref,
                "asked": ASKED.get(item.kind, item.kind.replace("_", " ").capitalize()),
                "precedence": prec,
                "due_at_us": item.due_at_us,
                "overdue": item.due_at_us is not None and item.due_at_us < now_us,
                "summary": item.summary,
                "channel": item.channel,
                "from": who,
                "escalated_to": list(reversed(escalated.get(item.ref, []))),
                "alarm": alarm,
                "details": _details(item),
            }
        )
    return out, len(items)
