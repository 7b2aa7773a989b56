"""Operator API of the two-person rule: the approval queue and its decisions.

Owns the HTTP shapes of ``GET /api/v1/approvals`` (pending first, filter by state),
``GET /api/v1/approvals/{approval_id}`` and ``POST .../approve``, ``.../refuse`` and
``.../withdraw``, and ``ApprovalHeld``, the 202 answer of ``POST /api/v1/messages`` on a
channel that requires a second officer. Every route depends on ``allowed(Action.X)``: the
officer is the authenticated principal, never a name from the body. Must not touch: the
store (service/approvals.py reads it in a worker thread), the rules (who may decide,
deadlines: service/approvals.py).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.api.shapes import PrecedenceName
from hotline.errors import NotFoundError
from hotline.service import approvals
from hotline.service.approvals import MAX_REASON_CHARS, Requested
from hotline.service.line import Line
from hotline.service.roles import Action, Principal
from hotline.wire.channels import PRECEDENCES

State = Literal["pending", "approved", "refused", "withdrawn", "expired"]
ApprovalId = Annotated[str, Path(min_length=1, max_length=36)]
#: the authenticated officer, if one of its roles allows reading, approving, sending
Reader = Annotated[Principal, Depends(allowed(Action.READ))]
Approver = Annotated[Principal, Depends(allowed(Action.APPROVE))]
Sender = Annotated[Principal, Depends(allowed(Action.SEND))]


class ApprovalHeld(BaseModel):
    """The channel requires a second officer's approval: nothing was sent; the request
    waits in the approval queue until approved, refused, withdrawn or its deadline."""

    approval_id: str
    channel: str
    peers: list[str]
    precedence: PrecedenceName
    state: Literal["pending"] = "pending"
    requester: str
    deadline_us: int = Field(description="Our time by which a second officer must decide.")

    @classmethod
    def of(cls, held: Requested) -> ApprovalHeld:
        return cls(
            approval_id=held.approval_id, channel=held.channel, peers=held.peers,
            precedence=held.precedence.name, requester=held.requester,
            deadline_us=held.deadline_us,
        )  # fmt: skip


class Approval(BaseModel):
    """An approval request with its decision (times in microseconds since the epoch, ours)."""

    id: str
    state: State
    channel: str
    peers: list[str]
    precedence: PrecedenceName
    type: str
    text: str
    requester: str
    requester_name: str
    requested_at_us: int
    deadline_us: int
    decided_by: str | None = Field(description="Who approved, refused or withdrew it.")
    decided_at_us: int | None
    reason: str | None = Field(description="The reason given for a refusal.")
    message_ids: list[str] = Field(description="The messages its approval sent.")

    @classmethod
    def of(cls, row: dict[str, Any]) -> Approval:
        req = row["request"]
        return cls(
            id=row["id"], state=row["state"], channel=row["channel"], peers=req["peers"],
            precedence=PRECEDENCES[row["precedence"]], type=req["payload"].get("type", "text"),
            text=req["payload"].get("text", ""), requester=row["requester"],
            requester_name=req.get("requested_by_name", row["requester"]),
            requested_at_us=row["requested_at_us"], deadline_us=row["deadline_us"],
            decided_by=row["decided_by"], decided_at_us=row["decided_at_us"],
            reason=row["reason"], message_ids=row["message_ids"],
        )  # fmt: skip


class RefuseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS)]


def approvals_router(line: Line) -> APIRouter:
    router = api_router(prefix="/api/v1/approvals", tags=["approvals"])
    ctx = line.ctx

    def read(fn: Any, *args: Any, **kw: Any) -> Any:
        def run() -> Any:
            with line.reader.connect() as conn:
                return fn(conn, *args, **kw)

        return asyncio.to_thread(run)

    @router.get("", operation_id="list_approvals", responses=errors())
    async def list_approvals(
        _who: Reader,
        state: State | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[Approval]:
        """The approval queue: pending requests first (earliest deadline first), then the
        decided ones, newest first; ``state`` keeps one state."""
        rows: list[dict[str, Any]] = await read(approvals.listing, state=state, limit=limit)
        return [Approval.of(r) for r in rows]

    @router.get("/{approval_id}", operation_id="get_approval", responses=errors(404))
    async def get_approval(_who: Reader, approval_id: ApprovalId) -> Approval:
        """One approval request with its decision."""
        row: dict[str, Any] | None = await read(approvals.get, approval_id)
        if row is None:
            raise NotFoundError(
                f"no approval request {approval_id}", hint="list them with hotline approvals"
            )
        return Approval.of(row)

    @router.post(
        "/{approval_id}/approve", operation_id="approve_request", responses=errors(403, 404, 503)
    )
    async def approve_request(who: Approver, approval_id: ApprovalId) -> Approval:
        """Approve another officer's request: the message is sent now, the approval and
        the message on the record together. 403 ``same_officer`` for one's own request;
        422 ``approval_closed`` once it is decided, withdrawn or past its deadline."""
        return Approval.of(await approvals.approve(ctx, who, approval_id))

    @router.post(
        "/{approval_id}/refuse",
        operation_id="refuse_request",
        responses=errors(403, 404, 503, body=True),
    )
    async def refuse_request(
        who: Approver, approval_id: ApprovalId, req: RefuseRequest
    ) -> Approval:
        """Refuse another officer's request, with a reason; nothing is sent."""
        return Approval.of(await approvals.refuse(ctx, who, approval_id, req.reason))

    @router.post(
        "/{approval_id}/withdraw", operation_id="withdraw_request", responses=errors(403, 404, 503)
    )
    async def withdraw_request(who: Sender, approval_id: ApprovalId) -> Approval:
        """Withdraw one's own pending request (403 ``not_requester`` for another's)."""
        return Approval.of(await approvals.withdraw(ctx, who, approval_id))

    return router
