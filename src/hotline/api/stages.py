"""Operator API of message stages and acknowledgements: read, bulk acknowledgement, alarm
acknowledgement, the "action required" queue; and the typed shapes of a message with its
stages per recipient (GET /api/v1/messages/{id} answers ``MessageStages``).

Reading is an explicit POST (``/messages/{id}/read``): a GET never writes, so a console
prefetch or a proxy retry cannot mark a message read; ``hotline show`` calls both. Every
route depends on ``allowed(Action.X)`` and the use case names ``principal.username`` on
the record; nothing here takes an officer's name from the body. Database reads run in
worker threads. Must not touch: SQL, the stage rules (service/stages.py, queries.py).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from hotline.api import shapes
from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.errors import NotFoundError
from hotline.service import actions, channels, queries, stages
from hotline.service.line import Line
from hotline.service.roles import Action, Principal
from hotline.wire.envelope import Precedence

Shape = shapes.Shape
IMPORT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
MessageId = Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f-]{1,36}$")]


class StageStep(Shape):
    """One stage reached: when (OUR time), who, and the peer's claim beside it."""

    stage: Literal["queued", "sent", "delivered", "received", "read", "acknowledged", "answered"]
    at_us: int | None = Field(description="Our recorded time of this stage.")
    by: str | None = Field(
        default=None,
        description="queued: our operator; delivered/received: the peer; read, "
        "acknowledged: the officer; answered: `us` or the peer.",
    )
    claimed_at_us: int | None = Field(
        default=None, description="The peer's claim of the time (its own clock), if any."
    )
    ref: str | None = Field(
        default=None,
        description="read: the reading station; acknowledged: the note; answered: the "
        "reply's message id.",
    )


class RecipientStages(Shape):
    """One recipient's stages of a message."""

    peer: str
    stage: str = Field(
        description="The highest stage reached: out queued → sent → delivered → read → "
        "acknowledged → answered (or refused); in received → read → acknowledged → answered."
    )
    not_answered: bool = Field(description="A text message no reply answers yet.")
    summary: str = Field(description='e.g. "received, not answered".')
    stages: list[StageStep]


class MessageSummary(shapes.Message):
    """One message with its delivery state and its stages per recipient."""

    recipients: list[RecipientStages] = Field(default_factory=list)


class MessageStages(MessageSummary):
    """One message with its delivery state, its stages per recipient and its thread."""

    thread: list[shapes.Message] = Field(
        default_factory=list, description="The thread it is in (in_reply_to), oldest first."
    )


class BulkAckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_ids: (
        Annotated[list[uuid.UUID], Field(min_length=1, max_length=stages.MAX_BULK)] | None
    ) = None
    import_id: Annotated[str, Field(min_length=1, max_length=100, pattern=IMPORT_ID)] | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class BulkAckResult(Shape):
    acknowledged: list[str] = Field(description="Each got its own signed acknowledgement.")
    skipped: list[str] = Field(
        description="Not received messages, or acknowledged already: nothing was sent."
    )


class AlarmAckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=2000)] | None = None


class ActionItemShape(Shape):
    """Something this officer must do now."""

    kind: str = Field(description="`acknowledge` a message, `alarm` to acknowledge, ...")
    ref: str = Field(description="What to act on: a message id, an alarm id, ...")
    precedence: shapes.PrecedenceName
    due_at_us: int | None = None
    time_left_s: float | None = Field(
        default=None, description="Seconds until the deadline (negative: overdue)."
    )
    summary: str
    channel: str = ""
    peer: str = ""


def stages_router(line: Line, auth: Any) -> APIRouter:
    router = api_router(prefix="/api/v1", dependencies=[Depends(auth)], tags=["stages"])
    ctx = line.ctx

    def read(fn: Any, *args: Any) -> Any:
        def run() -> Any:
            with line.reader.connect() as conn:
                return fn(conn, *args)

        return asyncio.to_thread(run)

    async def with_stages(message_id: str) -> MessageStages:
        found = await read(queries.message_with_stages, line.clock.now_us(), message_id)
        if found is None:
            raise NotFoundError(f"no message {message_id}")
        return MessageStages.model_validate(found)

    @router.post("/messages/{message_id}/read", response_model=MessageStages, responses=errors(404))
    async def mark_message_read(
        message_id: MessageId, who: Annotated[Principal, Depends(allowed(Action.READ))]
    ) -> MessageStages:
        """Record that this officer opened a received message (the first read per officer
        counts; a message we sent records nothing) and tell its sender with a `read`
        typed message. Answers the message with its stages."""
        await stages.mark_read(ctx, who, message_id)
        return await with_stages(message_id)

    @router.post(
        "/acknowledgements", response_model=BulkAckResult, responses=errors(404, 503, body=True)
    )
    async def acknowledge_messages(
        req: BulkAckRequest, who: Annotated[Principal, Depends(allowed(Action.ACKNOWLEDGE))]
    ) -> BulkAckResult:
        """Acknowledge received messages in bulk: a selection (`message_ids`), or every
        unacknowledged notice of a peer's import (`import_id`, the start of its notice
        ids). Each gets its own signed acknowledgement naming this officer."""
        ids = None if req.message_ids is None else [str(m) for m in req.message_ids]
        done = await stages.acknowledge_many(
            ctx, who, message_ids=ids, import_id=req.import_id, note=req.note
        )
        return BulkAckResult.model_validate(done)

    @router.post(
        "/alarms/{alarm_id}/acknowledge",
        response_model=shapes.Alarm,
        responses=errors(404, body=True),
    )
    async def acknowledge_alarm(
        alarm_id: Annotated[int, Path(ge=1, le=2**62)],
        req: AlarmAckRequest,
        who: Annotated[Principal, Depends(allowed(Action.ACKNOWLEDGE))],
    ) -> shapes.Alarm:
        """Acknowledge a stored alarm: by whom, when, with a note (on the record as an
        `alarm_ack` action). The alarm stays open until its cause clears; the listing
        shows who acknowledged it. An acknowledgement overdue is not a stored alarm:
        acknowledge its message instead."""
        row = await stages.acknowledge_alarm(ctx, who, alarm_id, req.note)
        return shapes.Alarm.model_validate({**row, "source": "station"})

    @router.get("/actions", response_model=list[ActionItemShape], responses=errors())
    async def list_actions(
        who: Annotated[Principal, Depends(allowed(Action.READ))],
    ) -> list[ActionItemShape]:
        """What this officer must do now, from every source, most urgent first
        (precedence, then time left)."""
        now = line.clock.now_us()
        items: list[actions.ActionItem] = await read(channels.required, line.ctx, who, now)
        return [
            ActionItemShape(
                kind=i.kind, ref=i.ref, precedence=Precedence(i.precedence).name,
                due_at_us=i.due_at_us,
                time_left_s=None if i.due_at_us is None else (i.due_at_us - now) / 1e6,
                summary=i.summary, channel=i.channel, peer=i.peer,
            )
            for i in items
        ]  # fmt: skip

    return router
