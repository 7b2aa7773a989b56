"""Dissemination: the receiving side records to whom and when it passed a message on.

Owns the ``dissemination`` message's data (``DisseminationData``), its projection
(``DisseminationProjection``: our ``disseminate`` actions, a peer's ``dissemination``
messages, and which received message carried which notice), the use case
``disseminate``, and the "action required" source of the conflict notices awaiting
dissemination. The watch that raises ``not_disseminated`` for a peer's notice involved
in an open conflict that nobody passed on in time, and keeps that list, is
service/dissemination_watch.py.

A peer's record is its claim: kept on the record whatever it says, but counted (shown as
``recorded``) only for a message we sent to that peer, at a time between the message
(less the clock skew) and the envelope's sent time or our receive time (plus the skew);
otherwise kept with its outcome (``unknown_message``, ``bad_time``) and an alarm
``dissemination_claim``. A time in the future is refused at the inbox (``bad_time``).

Hospitals and convoys that were notified have been struck because the notice never
reached the unit that fired: that is what this is for. Must not touch: SQL (store/
suspension.py), the registry's state (read under its lock, never written).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection

from hotline.errors import BadTimeError, InputError, NotFoundError
from hotline.service import sender
from hotline.service.actions import SOURCES, ActionItem
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.service.roles import Action, Principal, require
from hotline.store import operational, schema
from hotline.store import suspension as db
from hotline.store.projections import MessageEvent
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Precedence
from hotline.wire.messages import ClaimedTime, MessagePayload, check_claimed_time

TYPE = "dissemination"
NOTICE_TYPES = ("site_notice", "activity_notice")
#: received notices remembered (notice id -> message id); beyond it the oldest go
MAX_NOTICES = 100_000


class DisseminationData(BaseModel):
    """The data of a ``dissemination`` message (bounded)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    message_id: uuid.UUID
    to: Annotated[str, Field(min_length=1, max_length=200)]
    #: when it was passed on, as the recording station claims
    at_us: ClaimedTime
    officer: Annotated[str, Field(min_length=1, max_length=100)]
    note: Annotated[str, Field(max_length=2000)] | None = None


def parse_data(data: dict[str, Any]) -> DisseminationData:
    try:
        return DisseminationData.model_validate(data, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise InputError(
            f"dissemination data invalid at {where}: {first['msg']}", code="bad_message_data"
        ) from None


def validator(ctx: LineContext) -> Callable[[dict[str, Any]], None]:
    """The check of ``dissemination`` data: its shape, and a time not in the future
    (``bad_time``, raised as such so the inbox refuses a peer's envelope with it)."""

    def check(data: dict[str, Any]) -> None:
        record = parse_data(data)
        check_claimed_time("at_us", record.at_us, not_after_us=ctx.clock.now_us() + ctx.skew_us)

    return check


def record_json(r: Any) -> dict[str, Any]:
    return {
        "message_id": r.message_id,
        "direction": r.direction,
        "peer": r.peer,
        "to": r.to_whom,
        "passed_at_us": r.passed_at_us,
        "recorded_at_us": r.recorded_at_us,
        "officer": r.officer,
        "note": r.note,
        "record_id": r.record_id,
        "outcome": r.outcome,
    }


class DisseminationProjection:
    """A ``ProjectionExtension``: the ``disseminations`` table and the notice map."""

    tables: tuple[sa.Table, ...] = (schema.disseminations,)

    def __init__(self, ctx: LineContext) -> None:
        self.ctx = ctx
        self._quiet = False
        self._lock = threading.Lock()
        #: notice id -> the received message that carried it (a stale entry, left by a
        #: rolled-back unit, names a message that does not exist and is skipped)
        self.notices: dict[str, str] = {}

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        if action.get("action") != "disseminate":
            return
        db.insert_dissemination(
            conn,
            entry_idx=idx,
            message_id=action["message_id"],
            direction="out",
            peer=action["peer"],
            to_whom=action["to"],
            passed_at_us=action["passed_at_us"],
            recorded_at_us=at_us,
            officer=action["officer"],
            note=action.get("note"),
            record_id=None,
            outcome="recorded",
        )

    def on_message(self, conn: Connection, event: MessageEvent) -> None:
        data = event.body.data
        if event.direction != "in" or data is None:
            return
        if event.body.type in NOTICE_TYPES:
            notice_id = data.get("notice_id")
            if isinstance(notice_id, str) and len(notice_id) <= 128:
                with self._lock:
                    self.notices[notice_id] = event.message_id
                    while len(self.notices) > MAX_NOTICES:
                        self.notices.pop(next(iter(self.notices)))
            return
        if event.body.type != TYPE:
            return
        try:
            record = parse_data(data)
        except InputError:  # checked by the inbox; never expected here
            return
        outcome = self._judge(conn, event, record)
        db.insert_dissemination(
            conn,
            entry_idx=event.idx,
            message_id=str(record.message_id),
            direction="in",
            peer=event.peer,
            to_whom=record.to,
            passed_at_us=record.at_us,
            recorded_at_us=event.recorded_at_us,
            officer=record.officer,
            note=record.note,
            record_id=event.message_id,
            outcome=outcome,
        )
        if self._quiet:
            return
        content = {
            "message_id": str(record.message_id),
            "direction": "in",
            "peer": event.peer,
            "to": record.to,
            "passed_at_us": record.at_us,
            "recorded_at_us": event.recorded_at_us,
            "officer": record.officer,
            "note": record.note,
            "record_id": event.message_id,
            "outcome": outcome,
        }
        self.ctx.publish_after_commit(TYPE, **content)
        if outcome != "recorded":
            operational.raise_alarm(
                conn,
                kind="dissemination_claim",
                severity="MEDIUM",
                peer=event.peer,
                ref=event.message_id,
                now_us=event.recorded_at_us,
                detail=f"{event.peer} recorded passing on message {record.message_id}, but "
                f"the record is not counted ({outcome}): kept as its claim",
            )

    def _judge(self, conn: Connection, event: MessageEvent, record: DisseminationData) -> str:
        """A peer's record counts only for a message we sent it, at a plausible time."""
        sent = db.message(conn, str(record.message_id), "out")
        if sent is None or sent.peer != event.peer:
            return "unknown_message"
        skew = self.ctx.skew_us
        try:
            check_claimed_time(
                "at_us",
                record.at_us,
                not_after_us=min(event.sent_at_us, event.recorded_at_us) + skew,
            )
        except BadTimeError:
            return "bad_time"
        if record.at_us < int(sent.sent_at_us) - skew:
            return "bad_time"
        return "recorded"

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        return

    def reset(self) -> None:
        with self._lock:
            self.notices.clear()
        self._quiet = True

    def rebuild_finished(self, conn: Connection) -> None:
        self._quiet = False

    def load(self, conn: Connection) -> None:
        import json

        with self._lock:
            self.notices.clear()
            for mid, _peer, body in db.notice_messages(conn):
                notice_id = (json.loads(body).get("data") or {}).get("notice_id")
                if isinstance(notice_id, str):
                    self.notices[notice_id] = mid

    def message_of(self, notice_id: str) -> str | None:
        with self._lock:
            return self.notices.get(notice_id)


def make(ctx: LineContext) -> DisseminationProjection:
    """The factory in service/extensions.py CORE."""
    ext = DisseminationProjection(ctx)
    ctx.validators[TYPE] = validator(ctx)
    with ctx.reader.connect() as conn:
        ext.load(conn)
    return ext


def projection_of(ctx: LineContext) -> DisseminationProjection:
    for ext in ctx.extensions:
        if isinstance(ext, DisseminationProjection):
            return ext
    raise NotFoundError("dissemination is not projected on this line")  # pragma: no cover


# --- the use case ------------------------------------------------------------------------


async def disseminate(
    ctx: LineContext,
    principal: Principal,
    message_id: str,
    *,
    to: str,
    at_us: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Record that a received message was passed on (on the record), then send the record
    back to its sender as a ``dissemination`` message."""
    require(principal, Action.DISSEMINATE, what="record a dissemination")
    to = to.strip()
    if not to or len(to) > 200:
        raise InputError("name to whom it was passed (1 to 200 characters)", hint='--to "..."')
    note = (note or "").strip() or None
    if note is not None and len(note) > 2000:
        raise InputError("the note is longer than 2000 characters")
    try:
        mid = str(uuid.UUID(message_id))
    except ValueError:
        raise NotFoundError(f"no received message {message_id!r}") from None

    def read() -> Any:  # a worker thread: never a database read on the loop
        with ctx.reader.connect() as conn:
            return db.message(conn, mid, "in")

    row = await asyncio.to_thread(read)
    if row is None:
        raise NotFoundError(
            f"no received message {mid}",
            hint="only a message this station received is passed on (hotline inbox)",
        )
    now = ctx.clock.now_us()
    at = now if at_us is None else at_us
    if at > now + ctx.skew_us:
        raise InputError(
            f"{at} is in the future",
            code="bad_time",
            hint="give the time it was passed on, or leave it out for now",
        )
    if at < int(row.stored_at_us) - ctx.skew_us:
        raise InputError(
            "that is before this station received the message",
            code="bad_time",
            hint="give the time it was passed on (UTC), or leave it out for now",
        )
    record = DisseminationData(
        message_id=uuid.UUID(mid), to=to, at_us=at, officer=principal.username, note=note
    )
    action = {
        "action": "disseminate",
        "message_id": mid,
        "peer": row.peer,
        "to": to,
        "passed_at_us": at,
        "note": note,
        "officer": principal.username,
    }
    content = {
        "message_id": mid,
        "direction": "out",
        "peer": row.peer,
        "to": to,
        "passed_at_us": at,
        "recorded_at_us": now,
        "officer": principal.username,
        "note": note,
        "record_id": None,
        "outcome": "recorded",
    }

    def unit(tx: WriteTx) -> None:
        append_action(ctx, tx, action)
        operational.clear_alarm(
            tx.conn, kind="not_disseminated", peer=row.peer, ref=mid, now_us=ctx.clock.now_us()
        )
        tx.after_commit(lambda: ctx.events.publish(TYPE, **content))

    await ctx.writer.submit(unit)
    sent = await sender.send(
        ctx,
        peer=row.peer,
        channel=row.channel,
        precedence=Precedence(row.precedence),
        payload=MessagePayload(
            type="dissemination",
            text=f"Passed on to {to}"[:2000],
            data=record.model_dump(mode="json", exclude_none=True),
            in_reply_to=uuid.UUID(mid),
            ack_required=False,
        ),
        operator=principal.username,
    )
    return {**content, "record_id": str(sent.message_id)}


def records(conn: Connection, message_id: str) -> list[dict[str, Any]]:
    return [record_json(r) for r in db.disseminations_of(conn, message_id)]


# --- action required ---------------------------------------------------------------------


def awaiting_source(conn: Connection, principal: Principal, now_us: int) -> list[ActionItem]:
    """Conflict notices awaiting dissemination, for an officer who may record it."""
    if not principal.may(Action.DISSEMINATE):
        return []
    return [
        ActionItem(
            "disseminate",
            r.message_id,
            int(r.precedence),
            int(r.due_at_us),
            r.summary,
            r.channel,
            r.peer,
        )
        for r in db.awaiting(conn)
    ]


if awaiting_source not in SOURCES:
    SOURCES.append(awaiting_source)
