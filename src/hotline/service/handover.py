"""Shift handover: the outgoing officer's note, the station's summary, the incoming
officer's acknowledgement, all on the record.

Owns writing a handover (a ``handover`` action holding the note and a summary the
station computes inside the same writer unit, so it is the state at that moment:
unacknowledged received messages, overdue acknowledgements both ways, open conflicts
and concerns, open escalations, link state per peer, open alarms), acknowledging it
(``handover_ack``, by another officer than the writer, once), and reading them back.
The summary is recorded as written: a rebuild never recomputes it.

Must not touch: SQL (store/watch.py and the read side), the registry's state beyond
reading its open conflicts and concerns.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy.engine import Connection

from hotline.errors import InputError, NotFoundError
from hotline.service import queries
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.service.escalation import excerpt
from hotline.service.roles import Action, Principal, require
from hotline.store import operational, reads
from hotline.store import watch as store
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Precedence

MAX_NOTE = 10_000
#: items listed per part of the summary (the counts are whole, up to ``MAX_COUNTED``)
MAX_ITEMS = 50
MAX_COUNTED = 1000


def _open_registry(ctx: LineContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open conflicts and open concerns, from the deconfliction registry extension when
    the line has one."""
    for ext in ctx.extensions:
        conflicts = getattr(ext, "open_conflicts", None)
        concerns = getattr(ext, "concerns", None)
        lock = getattr(ext, "lock", None)
        if conflicts is None or concerns is None or lock is None:
            continue
        with lock:
            cs = [
                {"site_id": oc.conflict.site_id, "activity_id": oc.conflict.activity_id,
                 "notice_id": oc.notice_id, "draft_concern": oc.draft.concern_id}
                for oc in list(conflicts.values())[:MAX_COUNTED]
            ]  # fmt: skip
            ks = [
                {"concern_id": t.concern_id, "state": str(t.state), "raised_by": t.raised_by}
                for t in concerns.open()[:MAX_COUNTED]
            ]
        return cs, ks
    return [], []


def _part(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"count": len(items), "items": items[:MAX_ITEMS]}


def summary(ctx: LineContext, conn: Connection, now_us: int) -> dict[str, Any]:
    """The station's open items at ``now_us`` (bounded: counts, and the first items)."""
    unacked = [
        {"message_id": r.message_id, "peer": r.peer, "channel": r.channel,
         "precedence": Precedence(r.precedence).name, "deadline_us": r.ack_deadline_us,
         "text": excerpt(r.body, 120)}
        for r in reads.messages(conn, direction="in", unacknowledged=True, limit=MAX_COUNTED)
    ]  # fmt: skip
    overdue = [
        {"message_id": r.message_id, "direction": r.direction, "peer": r.peer,
         "channel": r.channel, "precedence": Precedence(r.precedence).name,
         "deadline_us": r.ack_deadline_us}
        for r in reads.overdue(conn, now_us, MAX_COUNTED)
    ]  # fmt: skip
    escalations = [
        {"message_id": r.message_id, "origin": r.origin, "peer": r.peer, "step": r.step,
         "role": r.role}
        for r in store.escalations(conn, open_only=True, limit=MAX_COUNTED)
    ]  # fmt: skip
    conflicts, concerns = _open_registry(ctx)
    links = [
        {"peer": h["peer"], "state": h["state"], "last_ok_at_us": h["last_ok_at_us"]}
        for h in queries.link_status(conn, ctx.peers.ids())
    ]
    alarms = [
        {"kind": a["kind"], "peer": a["peer"], "ref": a["ref"], "detail": a["detail"]}
        for a in operational.open_alarms(conn)[:MAX_COUNTED]
    ]
    return {
        "at_us": now_us,
        "unacknowledged": _part(unacked),
        "overdue": _part(overdue),
        "escalations": _part(escalations),
        "conflicts": _part(conflicts),
        "concerns": _part(concerns),
        "alarms": _part(alarms),
        "links": links[:MAX_ITEMS],
    }


def shown(row: Any) -> dict[str, Any]:
    return {
        "handover_id": row.handover_id,
        "written_by": row.written_by,
        "written_at_us": row.written_at_us,
        "note": row.note,
        "summary": json.loads(row.summary),
        "entry_idx": row.entry_idx,
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at_us": row.acknowledged_at_us,
        "ack_note": row.ack_note,
    }


async def write(ctx: LineContext, principal: Principal, note: str) -> dict[str, Any]:
    """The outgoing officer's handover: its note and the station's summary, recorded."""
    require(principal, Action.HANDOVER, what="write a handover")
    if not note.strip():
        raise InputError("a handover needs a note", code="empty_note",
                         hint="say what the incoming officer must know")  # fmt: skip
    if len(note) > MAX_NOTE:
        raise InputError(f"a handover note is at most {MAX_NOTE} characters", code="too_long")
    hid = str(uuid.uuid4())

    def unit(tx: WriteTx) -> dict[str, Any]:
        now = ctx.clock.now_us()
        action = {"action": "handover", "handover_id": hid, "officer": principal.username,
                  "note": note, "summary": summary(ctx, tx.conn, now)}  # fmt: skip
        append_action(ctx, tx, action)
        out = shown(store.handover_get(tx.conn, hid))
        tx.after_commit(lambda: ctx.events.publish("handover.written", **out))
        return out

    result: dict[str, Any] = await ctx.writer.submit(unit)
    return result


async def acknowledge(
    ctx: LineContext, principal: Principal, handover_id: str, note: str | None = None
) -> dict[str, Any]:
    """The incoming officer's acknowledgement (another officer than the writer, once)."""
    require(principal, Action.HANDOVER, what="acknowledge a handover")
    if note is not None and len(note) > MAX_NOTE:
        raise InputError(f"a note is at most {MAX_NOTE} characters", code="too_long")

    def unit(tx: WriteTx) -> dict[str, Any] | InputError | NotFoundError:
        row = store.handover_get(tx.conn, handover_id)
        if row is None:
            return NotFoundError(f"no handover {handover_id}", hint="hotline handover show")
        if row.acknowledged_at_us is not None:
            return InputError(f"the handover was acknowledged by {row.acknowledged_by}",
                              code="already_acknowledged")  # fmt: skip
        if row.written_by == principal.username:
            return InputError(
                "the officer who wrote a handover cannot acknowledge it",
                code="own_handover",
                hint="the incoming officer acknowledges it with their own login",
            )
        action = {"action": "handover_ack", "handover_id": handover_id,
                  "officer": principal.username, "note": note}  # fmt: skip
        append_action(ctx, tx, action)
        out = shown(store.handover_get(tx.conn, handover_id))
        tx.after_commit(lambda: ctx.events.publish("handover.acknowledged", **out))
        return out

    result = await ctx.writer.submit(unit)
    if isinstance(result, InputError | NotFoundError):
        raise result
    return result


def _read(ctx: LineContext, fn: Any) -> Any:
    def run() -> Any:
        with ctx.reader.connect() as conn:
            return fn(conn)

    return asyncio.to_thread(run)


async def get(ctx: LineContext, handover_id: str) -> dict[str, Any]:
    row = await _read(ctx, lambda c: store.handover_get(c, handover_id))
    if row is None:
        raise NotFoundError(f"no handover {handover_id}", hint="hotline handover show")
    return shown(row)


async def latest(ctx: LineContext, limit: int = 50) -> list[dict[str, Any]]:
    rows = await _read(ctx, lambda c: store.handovers(c, limit=limit))
    return [shown(r) for r in rows]
