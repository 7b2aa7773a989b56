"""The read side: threads with delivery state, channels, link status, alarms.

Owns the shapes operators read (plain dicts ready for JSON) and the rule that turns an
unacknowledged message past its deadline into an alarm. Times shown are our own recorded
times; a time a peer claims is shown beside them under a name that says so
(``ack_claimed_at_us``). Must not touch: writes.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from hotline.service.dissemination import record_json
from hotline.store import operational, reads, stages, tree
from hotline.store import suspension as dissemination_db
from hotline.wire.envelope import Precedence

MAX_OVERDUE = 1000  #: overdue acknowledgements listed at most


def message_state(row: Any, now_us: int) -> str:
    if row.acknowledged_at_us is not None:
        return "acknowledged"
    if row.direction == "out":
        if row.delivered_at_us is not None:
            return "delivered"
        if row.refused is not None:
            return "refused"
        return "sent" if row.first_sent_us is not None else "queued"
    return "received"


def _message(row: Any, now_us: int) -> dict[str, Any]:
    overdue = (
        row.ack_required
        and row.acknowledged_at_us is None
        and row.ack_deadline_us is not None
        and row.ack_deadline_us < now_us
    )
    body = json.loads(row.body)
    officer = body.get("officer") if isinstance(body, dict) else None
    return {
        "message_id": row.message_id,
        "direction": row.direction,
        "peer": row.peer,
        "channel": row.channel,
        "precedence": Precedence(row.precedence).name,
        "sequence": row.sequence,
        "type": row.type,
        "body": body,
        "operator": row.operator,
        # the sending officer as the sealed payload names it (a peer's claim when "in")
        "officer": officer if isinstance(officer, dict) else None,
        "state": message_state(row, now_us),
        "queued_at_us": row.stored_at_us if row.direction == "out" else None,
        "sent_at_us": row.sent_at_us,
        "first_sent_us": row.first_sent_us,
        "path": getattr(row, "path", None),
        "attempts": row.attempts or 0,
        "last_error": row.last_error,
        "refused": row.refused,
        # its sequence number was declared void (we did, after the peer refused it)
        "void": row.void_sequence is not None,
        "delivered_at_us": row.delivered_at_us,
        "ack_required": row.ack_required,
        "ack_deadline_us": row.ack_deadline_us,
        # our own time: when we recorded the acknowledgement
        "acknowledged_at_us": row.acknowledged_at_us,
        # the peer's claim of when it acknowledged (None for our own acknowledgements)
        "ack_claimed_at_us": row.ack_claimed_at_us,
        "acknowledged_by": row.acknowledged_by,
        "ack_note": row.ack_note,
        "ack_overdue": bool(overdue),
        "entry_idx": row.entry_idx,
    }


def list_messages(
    conn: Connection,
    now_us: int,
    *,
    channel: str | None = None,
    peer: str | None = None,
    direction: str | None = None,
    unacknowledged: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    rows = reads.messages(
        conn,
        channel=channel,
        peer=peer,
        direction=direction,
        unacknowledged=unacknowledged,
        limit=limit,
    )
    return _with_disseminations(conn, [_message(r, now_us) for r in rows])


def get_message(conn: Connection, now_us: int, message_id: str) -> dict[str, Any] | None:
    row = reads.message(conn, message_id)
    return None if row is None else _with_disseminations(conn, [_message(row, now_us)])[0]


def _with_disseminations(conn: Connection, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each message with its dissemination records (service/dissemination.py), one read."""
    found = dissemination_db.disseminations_by_message(conn, [m["message_id"] for m in out])
    for m in out:
        m["disseminations"] = [record_json(r) for r in found.get(m["message_id"], [])]
    return out


def channels(conn: Connection) -> list[dict[str, Any]]:
    return [
        {"channel": c, "messages": n, "last_at_us": last} for c, n, last in reads.channels(conn)
    ]


def counts(conn: Connection) -> dict[str, int]:
    return {
        "entries": tree.ledger_size(conn),
        "sent": reads.message_count(conn, "out"),
        "received": reads.message_count(conn, "in"),
        "queued": reads.queued_count(conn),
    }


def link_status(conn: Connection, peers: list[str]) -> list[dict[str, Any]]:
    out = []
    for p in peers:
        h = operational.load_health(conn, p)
        paths = [
            {"path": name, **{k: getattr(ph, k) for k in ph.__dataclass_fields__}}
            for name, ph in operational.load_path_health(conn, p).items()
        ]
        out.append(
            {"peer": p, **{k: getattr(h, k) for k in h.__dataclass_fields__}, "paths": paths}
        )
    return out


def alarms(conn: Connection, now_us: int) -> list[dict[str, Any]]:
    """Open alarms: stored ones (link down, ...) and every overdue acknowledgement."""
    out = [{**a, "source": "station"} for a in operational.open_alarms(conn)]
    for r in reads.overdue(conn, now_us, MAX_OVERDUE):
        who = "the peer has not" if r.direction == "out" else "we have not"
        out.append(
            {
                "kind": "ack_overdue",
                "severity": "HIGH" if r.precedence <= Precedence.IMMEDIATE else "MEDIUM",
                "peer": r.peer,
                "ref": r.message_id,
                "detail": f"{Precedence(r.precedence).name} message {r.message_id} on "
                f"{r.channel}: {who} acknowledged it by its deadline",
                "raised_at_us": r.ack_deadline_us,
                "cleared_at_us": None,
                "source": "deadline",
            }
        )
    return out


# --- message stages (service/stages.py) -----------------------------------------------------

#: the ladder of a message we sent, and of one we received, lowest first
LADDER_OUT = ("queued", "sent", "delivered", "read", "acknowledged", "answered")
LADDER_IN = ("received", "read", "acknowledged", "answered")
MAX_THREAD = 200  #: messages of a thread shown at most


def _step(stage: str, at_us: int | None, by: str | None = None,
          claimed_at_us: int | None = None, ref: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {"stage": stage, "at_us": at_us, "by": by, "claimed_at_us": claimed_at_us, "ref": ref}


def stages_of(row: Any, read_rows: list[Any], answer: Any) -> dict[str, Any]:
    """One recipient's stages of a message: every stage reached with who and when (OUR
    time; a peer's claim beside it as ``claimed_at_us``), the highest one, and whether it
    waits for an answer ("received, not answered")."""
    out = row.direction == "out"
    reached: list[dict[str, Any]] = []
    if out:
        reached.append(_step("queued", row.stored_at_us, row.operator))
        if row.first_sent_us is not None:
            reached.append(_step("sent", row.first_sent_us))
        if row.delivered_at_us is not None:
            reached.append(_step("delivered", row.delivered_at_us, row.peer))
    else:
        reached.append(_step("received", row.stored_at_us, row.peer, row.sent_at_us))
    for r in read_rows:
        reached.append(_step("read", r.read_at_us, r.officer, r.claimed_at_us, r.station))
    if row.acknowledged_at_us is not None:
        reached.append(
            _step("acknowledged", row.acknowledged_at_us, row.acknowledged_by,
                  row.ack_claimed_at_us, row.ack_note)
        )  # fmt: skip
    if answer is not None:
        who = row.peer if answer.direction == "in" else "us"
        reached.append(_step("answered", answer.answered_at_us, who, None, answer.reply_id))
    ladder = LADDER_OUT if out else LADDER_IN
    stage = max((s["stage"] for s in reached), key=ladder.index)
    if out and getattr(row, "refused", None) is not None and row.delivered_at_us is None:
        stage = "refused"
    waiting = answer is None and row.type == "text" and stage != "refused"
    return {
        "peer": row.peer,
        "stage": stage,
        "not_answered": waiting,
        "summary": f"{stage}, not answered" if waiting and stage != "queued" else stage,
        "stages": reached,
    }


def message_with_stages(conn: Connection, now_us: int, message_id: str) -> dict[str, Any] | None:
    """One message, its stages per recipient and its thread (what it answers, what
    answers it), or None."""
    row = reads.message(conn, message_id)
    if row is None:
        return None
    out = _with_disseminations(conn, [_message(row, now_us)])[0]
    out["recipients"] = [
        stages_of(row, stages.reads_of(conn, [message_id]),
                  next(iter(stages.answers_of(conn, [message_id])), None))
    ]  # fmt: skip
    out["thread"] = thread(conn, now_us, message_id)
    return out


def thread(conn: Connection, now_us: int, message_id: str) -> list[dict[str, Any]]:
    """The thread a message is in, oldest first: up the ``in_reply_to`` chain to its
    root, then every answer below (first answers), at most ``MAX_THREAD`` messages."""
    root, seen = message_id, {message_id}
    while len(seen) < MAX_THREAD:
        row = reads.message(conn, root)
        parent = None if row is None else json.loads(row.body).get("in_reply_to")
        if parent is None or parent in seen or reads.message(conn, parent) is None:
            break
        root = parent
        seen.add(root)
    ids, level = [root], [root]
    while level and len(ids) < MAX_THREAD:
        level = [i for i in stages.thread_of(conn, level, MAX_THREAD) if i not in ids]
        ids.extend(level)
    rows = [reads.message(conn, i) for i in ids[:MAX_THREAD]]
    msgs = [_message(r, now_us) for r in rows if r is not None]
    return _with_disseminations(conn, sorted(msgs, key=lambda m: (m["sent_at_us"], m["entry_idx"])))


def list_with_stages(conn: Connection, now_us: int, **filters: Any) -> list[dict[str, Any]]:
    """``list_messages`` with each message's stage summary (one query for the reads and
    one for the answers of the whole page)."""
    rows = reads.messages(conn, **filters)
    ids = [r.message_id for r in rows]
    by_reads: dict[str, list[Any]] = {}
    for r in stages.reads_of(conn, ids):
        by_reads.setdefault(r.message_id, []).append(r)
    answers = {a.message_id: a for a in stages.answers_of(conn, ids)}
    out = []
    for r in rows:
        m = _message(r, now_us)
        m["recipients"] = [stages_of(r, by_reads.get(r.message_id, []), answers.get(r.message_id))]
        out.append(m)
    return _with_disseminations(conn, out)
