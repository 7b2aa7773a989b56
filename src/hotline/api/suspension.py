"""Operator API of suspension and dissemination.

Owns the HTTP shapes and routes of ``/api/v1/suspensions`` (declare, resume, the state
of both sides, the history) and ``/api/v1/messages/{id}/disseminations`` (record that a
received message was passed on; the records of one message, ours or the peer's). Every
route depends on ``allowed(Action.X)``; the officer on the record is the authenticated
principal, never a name from the body. Must not touch: the store beyond reads in a
worker thread, business rules (service/suspension.py, service/dissemination.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.service import dissemination, suspension
from hotline.service.line import Line
from hotline.service.roles import Action, Principal

PeerId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
ChannelName = Annotated[str, Field(min_length=1, max_length=64)]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MessageId = Annotated[str, Path(min_length=1, max_length=36)]


class SuspendRequest(BaseModel):
    """Suspend the line with ``peer`` (no channel), or one channel with it. On an agreed
    channel ``peer`` may be left out: every other member."""

    model_config = ConfigDict(extra="forbid")
    peer: PeerId | None = None
    channel: ChannelName | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peer: PeerId | None = None
    channel: ChannelName | None = None
    reason: Annotated[str, Field(min_length=1, max_length=2000)] = "resumed"


class Suspension(BaseModel):
    """A suspension in force. ``side`` is ``ours`` (this station declared it) or
    ``theirs`` (the peer did); both bind what this station sends."""

    peer: str
    scope: Literal["channel", "line"]
    channel: str | None
    declared_by: str
    side: Literal["ours", "theirs"]
    reason: str
    officer: str | None = Field(description="Our officer who declared it (ours only).")
    since_us: int = Field(description="Our recorded time of the declaration.")
    message_id: str | None = Field(description="The peer's suspension message (theirs).")


class Suspensions(BaseModel):
    """Every suspension in force, both sides', and what may still be sent."""

    station: str
    active: list[Suspension]
    standing_allow: list[str] = Field(
        description="Precedences still sent on a standing channel while suspended."
    )


class SuspensionRecord(BaseModel):
    """One declaration or resumption on the record, ours or the peer's, with its outcome
    (``applied``, ``no_effect``, ``not_theirs``: a peer's claim to resume our suspension,
    ``too_many``)."""

    entry_idx: int
    peer: str
    channel: str | None
    declared_by: str
    state: Literal["suspended", "resumed"]
    reason: str
    officer: str | None
    at_us: int
    message_id: str | None
    claimed_at_us: int | None
    outcome: str


class Resumed(BaseModel):
    peers: list[str]
    channel: str | None
    state: Literal["resumed"] = "resumed"


class DisseminateRequest(BaseModel):
    """Record that a received message was passed on: to whom, when (default: now)."""

    model_config = ConfigDict(extra="forbid")
    to: Annotated[str, Field(min_length=1, max_length=200)]
    at: AwareDatetime | None = None
    note: Annotated[str, Field(max_length=2000)] | None = None


class Dissemination(BaseModel):
    """A dissemination record. ``direction`` ``out``: we passed on a message we received;
    ``in``: the peer reports passing on one of ours (``passed_at_us`` is its claim,
    ``recorded_at_us`` our time; ``outcome`` other than ``recorded`` means the claim is
    not counted: ``unknown_message``, ``bad_time``)."""

    message_id: str
    direction: Literal["in", "out"]
    peer: str
    to: str
    passed_at_us: int
    recorded_at_us: int
    officer: str
    note: str | None
    record_id: str | None
    outcome: str


def suspension_router(line: Line) -> APIRouter:
    router = api_router(tags=["suspension"])
    ctx = line.ctx

    def read(fn: Any, *args: Any) -> Any:
        def run() -> Any:
            with line.reader.connect() as conn:
                return fn(conn, *args)

        return asyncio.to_thread(run)

    @router.get("/api/v1/suspensions", responses=errors(403))
    async def list_suspensions(
        _who: Annotated[Principal, Depends(allowed(Action.READ))],
    ) -> Suspensions:
        """The suspensions in force, both sides' (from memory: no database read)."""
        return Suspensions(
            station=line.station_id,
            active=[Suspension.model_validate(s) for s in suspension.state(ctx)],
            standing_allow=list(line.settings.suspended_allow),
        )

    @router.get("/api/v1/suspensions/history", responses=errors(403))
    async def suspension_history(
        _who: Annotated[Principal, Depends(allowed(Action.READ))],
        peer: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[SuspensionRecord]:
        """Declarations and resumptions on the record, newest first."""
        rows = await read(lambda conn: suspension.history(ctx, conn, peer, limit))
        return [
            SuspensionRecord.model_validate({**dict(r._mapping), "channel": r.channel or None})
            for r in rows
        ]

    @router.post(
        "/api/v1/suspensions", status_code=201, responses=errors(400, 403, 404, 503, body=True)
    )
    async def suspend(
        req: SuspendRequest, who: Annotated[Principal, Depends(allowed(Action.SUSPEND))]
    ) -> list[Suspension]:
        """Declare the line with a peer, or a channel, suspended: on the record, and told
        to the peer (FLASH) so both sides show it and enforce it. Link tests go on.
        Refused ``already_suspended`` when this station already suspended it."""
        done = await suspension.suspend(
            ctx, who, peer=req.peer, channel=req.channel, reason=req.reason
        )
        return [Suspension.model_validate(s) for s in done]

    @router.post("/api/v1/suspensions/resume", responses=errors(400, 403, 404, 503, body=True))
    async def resume_suspension(
        req: ResumeRequest, who: Annotated[Principal, Depends(allowed(Action.SUSPEND))]
    ) -> Resumed:
        """Resume this station's own suspension (on the record, told to the peer). One the
        peer declared is refused ``not_yours``: only the peer resumes it."""
        peers = await suspension.resume(
            ctx, who, peer=req.peer, channel=req.channel, reason=req.reason
        )
        return Resumed(peers=peers, channel=req.channel)

    @router.post(
        "/api/v1/messages/{message_id}/disseminations",
        status_code=201,
        responses=errors(400, 403, 404, 503, body=True),
    )
    async def disseminate_message(
        message_id: MessageId,
        req: DisseminateRequest,
        who: Annotated[Principal, Depends(allowed(Action.DISSEMINATE))],
    ) -> Dissemination:
        """Record that a received message was passed on (to whom, when, by the
        authenticated officer); the record travels back to its sender as its own signed
        ``dissemination`` message. Clears its ``not_disseminated`` alarm."""
        at_us = None if req.at is None else (req.at - EPOCH) // dt.timedelta(microseconds=1)
        done = await dissemination.disseminate(
            ctx, who, message_id, to=req.to, at_us=at_us, note=req.note
        )
        return Dissemination.model_validate(done)

    @router.get("/api/v1/messages/{message_id}/disseminations", responses=errors(403))
    async def list_disseminations(
        message_id: MessageId, _who: Annotated[Principal, Depends(allowed(Action.READ))]
    ) -> list[Dissemination]:
        """A message's dissemination records: ours (we passed it on) or the peer's (it
        passed on ours), oldest first."""
        rows = await read(dissemination.records, message_id)
        return [Dissemination.model_validate(r) for r in rows]

    return router
