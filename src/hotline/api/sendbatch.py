"""Many messages in one request: ``POST /api/v1/messages:batch``.

Owns the request a send is made of (``SendRequest``, shared with ``POST
/api/v1/messages``) and the batch route: up to ``MAX_BATCH`` messages, each answered
with what the single route would have answered for it (its status, and its result,
approval or error), in the items' order. One item's refusal refuses only that item.
Each item may carry its own idempotency key, with the single route's meaning (a key
used in either route is answered the same in both). The whole batch is refused (422)
only when it does not parse; the officer needs the role that sends, as for the single
route. The items are handed to the writer together, so they share a group commit, and
items without an idempotency key to one peer take its sequence numbers in the items'
order. Why: the operator API's HTTP request costs the sender more CPU than the message
itself (docs/performance.md "Latency and the send path (issue 11)"). Must not touch:
how a message is sent (the single route's code, handed in as ``send_one``), SQL.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hotline.api import shapes
from hotline.api.approvals import ApprovalHeld
from hotline.api.auth import allowed
from hotline.api.errors import error_body, status_of
from hotline.api.idempotency import KEY_PATTERN, REPLAYED_HEADER
from hotline.api.openapi import ErrorDetail, errors
from hotline.errors import HotlineError
from hotline.service.roles import Action, Principal

BATCH_PATH = "/api/v1/messages:batch"
#: messages in one batch request (the body's size is bounded by the gate as well)
MAX_BATCH = 100


class SendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: on a standing channel, the peer to send to; on an agreed channel, every other
    #: member is sent to (a peer named must be a member)
    peer: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")] | None = None
    channel: Annotated[str, Field(min_length=1, max_length=64)] = "working"
    precedence: shapes.PrecedenceName = "ROUTINE"
    text: Annotated[str, Field(max_length=100_000)] = ""
    type: Literal["text"] = "text"
    ack_required: bool = True
    in_reply_to: uuid.UUID | None = None


class BatchItem(SendRequest):
    """One message of a batch: the single route's request, and its idempotency key."""

    idempotency_key: Annotated[
        str | None,
        Field(
            pattern=KEY_PATTERN,
            description="The single route's Idempotency-Key, for this message alone.",
        ),
    ] = None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: Annotated[list[BatchItem], Field(min_length=1, max_length=MAX_BATCH)]


class BatchResult(BaseModel):
    """What ``POST /api/v1/messages`` would have answered for one item."""

    status: int = Field(description="201 sent, 202 held for approval, or the error's status.")
    message: shapes.SendResponse | None = Field(None, description="With 201.")
    approval: ApprovalHeld | None = Field(None, description="With 202.")
    error: ErrorDetail | None = Field(None, description="With an error status.")
    replayed: bool = Field(
        False, description="The first result of an earlier request with the same key."
    )


class BatchResponse(BaseModel):
    results: list[BatchResult] = Field(description="One per message, in the request's order.")


#: the single route's code: (request, officer, idempotency key) -> its answer, or raises
SendOne = Callable[
    [SendRequest, Principal, str | None], Awaitable[shapes.SendResponse | JSONResponse]
]


async def _one(send_one: SendOne, item: BatchItem, who: Principal) -> BatchResult:
    req = SendRequest.model_construct(
        **{k: getattr(item, k) for k in SendRequest.model_fields}
    )  # already checked as a BatchItem
    try:
        answer = await send_one(req, who, item.idempotency_key)
    except HotlineError as exc:
        return BatchResult(status=status_of(exc), error=ErrorDetail(**error_body(exc)["error"]))
    if isinstance(answer, shapes.SendResponse):
        return BatchResult(status=201, message=answer)
    body = json.loads(bytes(answer.body))
    replayed = answer.headers.get(REPLAYED_HEADER) == "true"
    if answer.status_code == 202:
        return BatchResult(status=202, approval=ApprovalHeld.model_validate(body))
    return BatchResult(
        status=answer.status_code, message=shapes.SendResponse.model_validate(body),
        replayed=replayed,
    )  # fmt: skip


def add_batch_route(
    app: FastAPI, send_one: SendOne, auth: Callable[..., Awaitable[Principal]]
) -> None:
    """The route on the app itself (not an included router), so that ``route_first`` can
    put it in front (api/operator.py)."""

    @app.post(
        BATCH_PATH,
        dependencies=[Depends(auth)],
        response_model=BatchResponse,
        responses=errors(403, body=True),
    )
    async def send_batch(
        req: BatchRequest, who: Annotated[Principal, Depends(allowed(Action.SEND))]
    ) -> BatchResponse:
        """Send up to 100 messages in one request: each is answered as
        `POST /api/v1/messages` would answer it (its status and its result, approval or
        error), in order; one item's refusal refuses only that item. Each item may carry
        its own `idempotency_key`. Messages without a key to one peer are queued in the
        items' order."""
        # every item's send starts before any is awaited: the writer commits them together
        results = await asyncio.gather(*(_one(send_one, item, who) for item in req.messages))
        return BatchResponse(results=list(results))
