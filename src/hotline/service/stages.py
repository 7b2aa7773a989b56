"""Message stages and acknowledgements that fit the work.

Owns the ladder every message climbs per recipient (queued → sent → delivered → read →
acknowledged → answered), the ``read`` typed message (an officer of the recipient opened
it: ``ReadData``), the ``read`` and ``alarm_ack`` operator actions, the projection of
both into ``message_reads`` and ``message_answers`` (``StagesProjection``, one of the
line's CORE extensions: rebuilt from the ledger equals live), and the use cases: mark a
message read, acknowledge messages in bulk (a selection or a peer's import),
acknowledge an alarm, and the "action required" source for acknowledgements.

A peer is hostile: a ``read`` naming a message we never sent, or one we sent to another
station, or beyond ``MAX_READERS`` officers per message, stays on the ledger as what the
peer said and is IGNORED by the projection, with a code on an alarm (``read_ignored``:
``unknown_message``, ``not_yours``, ``read_flood``). Its claimed time (the envelope's
sent time) is kept beside our receive time.

Must not touch: SQL (store/stages.py), the sending path (service/sender.py is called,
never changed), the registry's rules.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection

from hotline.errors import HotlineError, InputError, NotFoundError
from hotline.service import actions, sender
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.service.roles import Action, Principal, require
from hotline.store import operational, schema
from hotline.store import stages as db
from hotline.store.projections import MessageEvent
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

log = logging.getLogger(__name__)

#: most officers of one peer whose reads of one message are recorded (a flood is ignored)
MAX_READERS = 32
#: most messages one bulk acknowledgement takes
MAX_BULK = 500
#: most items the acknowledgement source lists
MAX_ITEMS = 500
#: the typed message's name
READ = "read"
NOTICE_TYPES = ("site_notice", "activity_notice")
_SEVERITY_PRECEDENCE = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2}


class ReadData(BaseModel):
    """The data of a ``read`` typed message: an officer of the recipient opened one of
    the sender's messages. Control message: sent with ``ack_required`` false."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    message_id: Annotated[uuid.UUID, Field(strict=False)]
    officer: Annotated[str, Field(min_length=1, max_length=100)]


def parse_read(data: object) -> ReadData:
    try:
        return ReadData.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise InputError(
            f"read data invalid at {where}: {first['msg']}", code="bad_message_data"
        ) from None


def check_read(data: dict[str, Any]) -> None:
    """The validator registered for ``read`` (the inbox runs it on a peer's data)."""
    parse_read(data)


class StagesProjection:
    """``message_reads`` and ``message_answers`` from the ledger (a ProjectionExtension)."""

    tables: tuple[sa.Table, ...] = (schema.message_reads, schema.message_answers)

    def __init__(self, ctx: LineContext) -> None:
        self.ctx = ctx
        #: during a rebuild no alarm is raised again (they are operational, not replayed)
        self._quiet = False

    def on_message(self, conn: Connection, event: MessageEvent) -> None:
        if event.body.type != READ or event.direction != "in":
            return  # our own read is projected from its ``read`` action
        try:
            data = parse_read(event.body.data)
        except InputError:  # the inbox checked it; never expected on a replay
            return
        target = str(data.message_id)
        to = db.outgoing_to(conn, target)
        code = None
        if to is None:
            code = "unknown_message"
        elif to != event.sender:
            code = "not_yours"
        elif db.has_read(conn, target, event.sender, data.officer):
            return  # a later read by the same officer: the first counts
        elif db.reader_count(conn, target, event.sender) >= MAX_READERS:
            code = "read_flood"
        if code is not None:
            self._ignored(conn, event, target, code)
            return
        db.record_read(
            conn, message_id=target, station=event.sender, officer=data.officer,
            read_at_us=event.recorded_at_us, claimed_at_us=event.sent_at_us,
            entry_idx=event.idx,
        )  # fmt: skip
        if not self._quiet:  # live: published once the unit is durable
            self.ctx.publish_after_commit(
                "message_read", message_id=target, peer=event.sender, channel=event.channel,
                station=event.sender, officer=data.officer, read_at_us=event.recorded_at_us,
                claimed_read_at_us=event.sent_at_us,
            )  # fmt: skip
            self.ctx.publish_after_commit(
                "stage", message_id=target, peer=event.sender, stage="read",
                by=data.officer, at_us=event.recorded_at_us,
            )  # fmt: skip

    def _ignored(self, conn: Connection, event: MessageEvent, target: str, code: str) -> None:
        log.warning("read %s from %s ignored (%s)", event.message_id, event.sender, code)
        if self._quiet:
            return
        operational.raise_alarm(
            conn, kind="read_ignored", severity="MEDIUM", peer=event.sender, ref=code,
            now_us=event.recorded_at_us,
            detail=f"{event.sender} sent a read for message {target} that was ignored "
            f"({code}): the peer's station may be faulty or hostile",
        )  # fmt: skip

    def on_reply(
        self, conn: Connection, idx: int, direction: str, peer: str, reply_id: str,
        original: str, at_us: int,
    ) -> None:  # fmt: skip
        """A reply (``in_reply_to``) sent or received marks the original answered, when
        the original was exchanged with the same peer (anything else is not threaded)."""
        row = db.message_row(conn, original)
        if row is None or row.peer != peer or row.direction == direction:
            return
        db.record_answer(
            conn, message_id=original, reply_id=reply_id, direction=direction, at_us=at_us,
            idx=idx,
        )  # fmt: skip

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        """Acknowledgements are in ``messages`` already."""

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        name = action.get("action")
        if name == "read":
            db.record_read(
                conn, message_id=action["message_id"], station=self.ctx.station_id,
                officer=action["officer"], read_at_us=at_us, claimed_at_us=None, entry_idx=idx,
            )  # fmt: skip
        elif name == "alarm_ack":
            db.ack_alarm(conn, int(action["alarm_id"]), action["officer"], action.get("note"),
                         at_us)  # fmt: skip

    def reset(self) -> None:
        self._quiet = True

    def rebuild_finished(self, conn: Connection) -> None:
        self._quiet = False


def extension(ctx: LineContext) -> StagesProjection:
    """The CORE factory: the projection, and the ``read`` validator for the inbox."""
    ctx.validators[READ] = check_read
    return StagesProjection(ctx)


# --- use cases ---------------------------------------------------------------------------


def _read(ctx: LineContext, fn: Any, *args: Any) -> Any:
    with ctx.reader.connect() as conn:
        return fn(conn, *args)


async def mark_read(ctx: LineContext, principal: Principal, message_id: str) -> bool:
    """An officer opened a received message: record ``read`` (the first read per officer
    only) and tell the sender with a ``read`` typed message. True when it was new; a
    message we sent, a second read, or a look by an officer whose roles may not
    acknowledge (an auditor, an administrator) records nothing and sends nothing."""
    require(principal, Action.READ)
    row = await asyncio.to_thread(_read, ctx, db.message_row, message_id)
    if row is None:
        raise NotFoundError(f"no message {message_id}")
    if row.direction != "in" or row.type == READ:
        return False  # reading our own message, or a read notice, is not an event
    if not principal.may(Action.ACKNOWLEDGE):
        return False  # an auditor's or an administrator's look is not the watch reading it
    officer = principal.username

    def unit(tx: WriteTx) -> bool:
        if db.has_read(tx.conn, message_id, ctx.station_id, officer):
            return False
        action = {"action": "read", "message_id": message_id, "officer": officer}
        append_action(ctx, tx, action, peer=row.peer)
        at = ctx.clock.now_us()
        tx.after_commit(lambda: ctx.events.publish(
            "message_read", message_id=message_id, peer=row.peer, channel=row.channel,
            station=ctx.station_id, officer=officer, read_at_us=at,
        ))  # fmt: skip
        tx.after_commit(lambda: ctx.events.publish(
            "stage", message_id=message_id, peer=row.peer, stage="read", by=officer, at_us=at,
        ))  # fmt: skip
        return True

    new: bool = await ctx.writer.submit(unit)
    if new and row.peer in ctx.peers:
        payload = MessagePayload(
            type="read", text=f"read by {officer}", ack_required=False,
            data={"message_id": message_id, "officer": officer},
        )  # fmt: skip
        try:
            await sender.send(
                ctx, peer=row.peer, channel=row.channel, precedence=Precedence(row.precedence),
                payload=payload, operator=officer,
            )  # fmt: skip
        except HotlineError as exc:  # the read is on the record; telling the peer failed
            log.warning("read of %s not sent to %s: %s", message_id, row.peer, exc)
    return new


async def acknowledge_many(
    ctx: LineContext,
    principal: Principal,
    *,
    message_ids: list[str] | None = None,
    import_id: str | None = None,
    note: str | None = None,
) -> dict[str, list[str]]:
    """Acknowledge received messages in bulk: a selection, or every unacknowledged notice
    of a peer's import (their notice ids start with ``import_id``). Each is its own ACK
    envelope and ``ack`` action naming the officer. Returns {acknowledged, skipped}."""
    require(principal, Action.ACKNOWLEDGE)
    if (message_ids is None) == (import_id is None):
        raise InputError("give message_ids or import_id (one of them)", code="bad_selection")
    if message_ids is not None:
        if len(message_ids) > MAX_BULK:
            raise InputError(f"at most {MAX_BULK} messages at once", code="too_many")
        targets = list(dict.fromkeys(message_ids))
    elif import_id is not None:
        targets = await asyncio.to_thread(_read, ctx, _import_messages, import_id)
        if not targets:
            raise NotFoundError(
                f"no unacknowledged notice of import {import_id}",
                hint="check the import id (the start of its notice ids) with: hotline inbox",
            )
    done: list[str] = []
    skipped: list[str] = []
    for mid in targets:
        try:
            await sender.acknowledge(ctx, mid, principal.username, note)
        except (NotFoundError, InputError):
            skipped.append(mid)
            continue
        done.append(mid)
        ctx.events.publish(  # after its unit committed
            "stage", message_id=mid, stage="acknowledged", by=principal.username,
            at_us=ctx.clock.now_us(),
        )  # fmt: skip
    return {"acknowledged": done, "skipped": skipped}


def _import_messages(conn: Connection, import_id: str) -> list[str]:
    out = []
    for r in db.awaiting_ack(conn, MAX_BULK * 10, types=NOTICE_TYPES):
        data = json.loads(r.body).get("data") or {}
        if str(data.get("notice_id", "")).startswith(import_id):
            out.append(str(r.message_id))
    return out[:MAX_BULK]


async def acknowledge_alarm(
    ctx: LineContext, principal: Principal, alarm_id: int, note: str | None
) -> dict[str, Any]:
    """Acknowledge a stored alarm: an ``alarm_ack`` action names the officer, the time
    and the note. An alarm acknowledged already is refused (``already_acknowledged``)."""
    require(principal, Action.ACKNOWLEDGE)
    if note is not None and len(note) > 2000:
        raise InputError("the note is longer than 2000 characters", code="bad_input")
    officer = principal.username

    def unit(tx: WriteTx) -> dict[str, Any] | HotlineError:
        row = db.alarm(tx.conn, alarm_id)
        if row is None:
            return NotFoundError(f"no alarm {alarm_id}", hint="see: hotline alarms")
        if row.acknowledged_at_us is not None:
            return InputError(
                f"alarm {alarm_id} was acknowledged by {row.acknowledged_by}",
                code="already_acknowledged",
            )
        action = {
            "action": "alarm_ack", "alarm_id": alarm_id, "kind": row.kind, "ref": row.ref,
            "peer": row.peer, "officer": officer, "note": note,
        }  # fmt: skip
        append_action(ctx, tx, action)
        after = dict(db.alarm(tx.conn, alarm_id)._mapping)
        tx.after_commit(lambda: ctx.events.publish("alarm_acknowledged", **after))
        return after

    result = await ctx.writer.submit(unit)
    if isinstance(result, HotlineError):
        raise result
    out: dict[str, Any] = result
    return out


# --- "action required" ---------------------------------------------------------------------


def acknowledgement_items(
    conn: Connection, principal: Principal, now_us: int
) -> list[actions.ActionItem]:
    """Received messages awaiting an acknowledgement, and unacknowledged open alarms, for
    an officer whose roles may acknowledge."""
    if not principal.may(Action.ACKNOWLEDGE):
        return []
    items = []
    for r in db.awaiting_ack(conn, MAX_ITEMS):
        body = json.loads(r.body)
        items.append(
            actions.ActionItem(
                kind="acknowledge", ref=str(r.message_id), precedence=int(r.precedence),
                due_at_us=r.ack_deadline_us,
                summary=str(body.get("text") or r.type)[:200], channel=r.channel, peer=r.peer,
            )
        )  # fmt: skip
    for a in db.open_unacknowledged_alarms(conn, MAX_ITEMS):
        items.append(
            actions.ActionItem(
                kind="alarm", ref=str(a.id),
                precedence=_SEVERITY_PRECEDENCE.get(a.severity, int(Precedence.ROUTINE)),
                due_at_us=None, summary=f"{a.kind}: {a.detail}"[:200], peer=a.peer or "",
            )
        )  # fmt: skip
    return items


actions.SOURCES.append(acknowledgement_items)
