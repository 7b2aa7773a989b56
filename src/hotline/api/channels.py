"""Operator API for channels at several levels: list them with their terms and where
their agreement stands, propose, accept, decline, and the per-recipient state of one
message sent to several members (a group).

Owns the HTTP shapes of ``/api/v1/channels`` and ``/api/v1/channels/...`` (except a
channel's thread, which api/operator.py serves). Every route depends on
``allowed(Action.X)``: CHANNELS to propose, accept or decline, READ to list. Must not
touch: agreement rules (service/channels.py), the store.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.errors import NotFoundError
from hotline.service import channels
from hotline.service.line import Line
from hotline.service.roles import Action, Principal
from hotline.wire.channels import ChannelSpec

ChannelName = Annotated[str, Path(min_length=1, max_length=64)]


class ChannelOut(BaseModel):
    """A channel as this station sees it: its terms, and where its agreement stands."""

    model_config = ConfigDict(extra="forbid")
    name: str
    state: Literal["standing", "proposed", "agreed", "declined", "superseded", "refused"] = Field(
        description="standing: the line's own channel with every peer, no agreement needed; "
        "proposed: waiting for members' answers; agreed: every member accepted; declined: a "
        "member declined; superseded: a later proposal or version replaced it; refused: it "
        "broke a rule when it arrived (``reason``)."
    )
    version: int = Field(description="The proposal's version (0 for a standing channel).")
    proposal_id: str = ""
    proposer: str = ""
    terms: ChannelSpec
    accepted_by: list[str] = []
    declined_by: list[str] = []
    waiting_for: list[str] = Field(
        default=[], description="Members whose answer this station has not received yet."
    )
    reason: str | None = None
    proposed_at_us: int | None = None
    decided_at_us: int | None = None


class ChannelAnswer(BaseModel):
    """What a proposal, acceptance or refusal sent: one typed message per other member."""

    model_config = ConfigDict(extra="forbid")
    proposal_id: str
    name: str
    version: int
    message_ids: dict[str, str] = Field(description="Each recipient's message id.")


class DeclineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=500)] | None = None


class GroupRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peer: str
    message_id: str
    sequence: int
    state: Literal["queued", "delivered", "acknowledged"]
    delivered_at_us: int | None = None
    acknowledged_at_us: int | None = None
    acknowledged_by: str | None = None
    ack_deadline_us: int | None = None


class GroupOut(BaseModel):
    """One message sent to several members: each recipient's envelope and its state."""

    model_config = ConfigDict(extra="forbid")
    group_id: str
    channel: str
    recipients: list[GroupRecipient]


def channel_out(s: channels.ChannelState) -> ChannelOut:
    answered = {*s.accepted_by, *s.declined_by, s.proposer}
    waiting = [m for m in s.spec.members if m not in answered] if s.state == "proposed" else []
    return ChannelOut(
        name=s.name, state=s.state, version=s.version, proposal_id=s.proposal_id,
        proposer=s.proposer, terms=s.spec, accepted_by=list(s.accepted_by),
        declined_by=list(s.declined_by), waiting_for=waiting, reason=s.reason,
        proposed_at_us=s.proposed_at_us, decided_at_us=s.decided_at_us,
    )  # fmt: skip


def recipient(row: dict[str, Any]) -> GroupRecipient:
    state = (
        "acknowledged"
        if row["acknowledged_at_us"] is not None
        else "delivered"
        if row["delivered_at_us"] is not None
        else "queued"
    )
    return GroupRecipient(
        peer=row["peer"], message_id=row["message_id"], sequence=row["sequence"], state=state,
        delivered_at_us=row["delivered_at_us"], acknowledged_at_us=row["acknowledged_at_us"],
        acknowledged_by=row["acknowledged_by"], ack_deadline_us=row["ack_deadline_us"],
    )  # fmt: skip


def channels_router(line: Line, auth: Any) -> APIRouter:
    router = api_router(prefix="/api/v1/channels", dependencies=[Depends(auth)], tags=["channels"])
    ctx = line.ctx

    def answered(a: channels.Answered) -> ChannelAnswer:
        return ChannelAnswer(
            proposal_id=a.proposal_id, name=a.name, version=a.version, message_ids=a.message_ids
        )

    @router.get("", responses=errors())
    async def list_channels(
        who: Annotated[Principal, Depends(allowed(Action.READ))],
    ) -> list[ChannelOut]:
        """Every channel: the standing ones, then each proposal with its terms, state and
        answers (a channel's versions in order; the agreed one is in force)."""
        return [channel_out(s) for s in await channels.list_channels(ctx, who)]

    @router.post("", status_code=201, responses=errors(403, 422, 503, body=True))
    async def propose_channel(
        terms: Annotated[ChannelSpec, Body()],
        who: Annotated[Principal, Depends(allowed(Action.CHANNELS))],
    ) -> ChannelAnswer:
        """Propose a channel (or new terms for one: the next version) to every other
        member; it is agreed once each accepts. 422 with a code when it cannot be:
        bad_level, proposer_not_member, unknown_member, channel_conflict."""
        return answered(await channels.propose(ctx, who, terms))

    @router.post("/{name}/accept", responses=errors(403, 404, 422, 503))
    async def accept_channel(
        name: ChannelName, who: Annotated[Principal, Depends(allowed(Action.CHANNELS))]
    ) -> ChannelAnswer:
        """Accept the pending proposal for channel ``name`` (sent to every other member)."""
        return answered(await channels.answer(ctx, who, name, accept=True))

    @router.post("/{name}/decline", responses=errors(403, 404, 422, 503, body=True))
    async def decline_channel(
        name: ChannelName,
        req: DeclineRequest,
        who: Annotated[Principal, Depends(allowed(Action.CHANNELS))],
    ) -> ChannelAnswer:
        """Decline the pending proposal for channel ``name``, with a reason."""
        return answered(await channels.answer(ctx, who, name, accept=False, reason=req.reason))

    @router.get("/groups/{group_id}", responses=errors(404))
    async def get_group(
        group_id: Annotated[str, Path(max_length=36)],
        who: Annotated[Principal, Depends(allowed(Action.READ))],
    ) -> GroupOut:
        """One message sent to several members: each recipient's envelope, delivered and
        acknowledged (by whom) or not."""

        def read() -> list[dict[str, Any]]:
            with line.reader.connect() as conn:
                return channels.group_state(conn, group_id)

        rows = await asyncio.to_thread(read)
        if not rows or rows[0]["channel"] not in channels.readable(ctx, who):
            raise NotFoundError(f"no group {group_id}")
        return GroupOut(
            group_id=group_id, channel=rows[0]["channel"], recipients=[recipient(r) for r in rows]
        )

    return router
