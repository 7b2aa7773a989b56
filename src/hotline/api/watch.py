"""Operator API of the watch: the duty rota, shift handovers and escalations.

Owns the HTTP shapes and routes of ``/api/v1/rota`` (GET the entries, PUT and DELETE one,
GET ``/now``: who is on watch per role), ``/api/v1/handovers`` (write, list latest
first, read one, acknowledge) and ``GET /api/v1/escalations``. Each route names the
action its role must allow (api/auth.py ``allowed``); the officer on the record is the
authenticated principal, never a name from the body. Must not touch: the store (reads
run in a worker thread through the service), business rules (service/rota.py,
service/handover.py, service/escalation.py).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.api.shapes import PrecedenceName, Shape
from hotline.service import escalation, handover, rota
from hotline.service.line import Line
from hotline.service.roles import Action, Principal
from hotline.wire.messages import INT64_MAX

EntryId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
HandoverId = Annotated[str, Path(min_length=36, max_length=36)]
RoleName = Literal["watch_officer", "senior_watch_officer", "principal", "administrator", "auditor"]
Time = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: the principal, when its roles allow reading, the rota, handovers
Reader = Annotated[Principal, Depends(allowed(Action.READ))]
Rota = Annotated[Principal, Depends(allowed(Action.ROTA))]
Hand = Annotated[Principal, Depends(allowed(Action.HANDOVER))]

# --- shapes ---------------------------------------------------------------------------------


class RotaSetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    role: RoleName
    from_us: Time = Field(description="Start of the watch, our time (inclusive).")
    to_us: Time = Field(description="End of the watch, our time (exclusive).")


class RotaEntry(Shape):
    """Who is on watch in a role from ``from_us`` (inclusive) to ``to_us`` (exclusive)."""

    entry_id: str
    username: str
    role: str
    from_us: int
    to_us: int
    set_by: str = Field(description="The officer who set it (on the record).")
    set_at_us: int
    entry_idx: int = Field(description="The ledger entry of the `rota_set` action.")


class RotaCleared(Shape):
    entry_id: str
    cleared: bool = True


class OnWatchNow(Shape):
    """Who is on watch now, per role (an empty list: the rota names nobody)."""

    at_us: int
    roles: dict[str, list[str]]


class HandoverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(min_length=1, max_length=handover.MAX_NOTE)]


class HandoverAckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=handover.MAX_NOTE)] | None = None


class Handover(Shape):
    """An outgoing officer's note with the station's summary of open items at that
    moment, and the incoming officer's acknowledgement."""

    handover_id: str
    written_by: str
    written_at_us: int
    note: str
    summary: dict[str, Any] = Field(
        description="Open items when it was written: unacknowledged, overdue, escalations, "
        "conflicts, concerns, alarms (each {count, items}), links (state per peer)."
    )
    entry_idx: int
    acknowledged_by: str | None = None
    acknowledged_at_us: int | None = None
    ack_note: str | None = None


class Escalation(Shape):
    """A step of an escalation ladder: ours (origin `local`, for a message the peer has
    not acknowledged) or the peer's (origin `peer`: it escalates a message it sent us;
    `ignored` with a code when it names no such open message)."""

    entry_idx: int
    message_id: str
    origin: Literal["local", "peer"]
    peer: str
    channel: str
    step: int
    role: str
    both_sides: bool
    status: Literal["raised", "ignored"]
    code: str | None = None
    at_us: int = Field(description="Our recorded time.")
    claimed_at_us: int | None = Field(
        default=None, description="The peer's claim: its envelope's sent time."
    )
    precedence: PrecedenceName | None = None
    acknowledged: bool = Field(description="Whether the message is acknowledged by now.")


# --- routes ---------------------------------------------------------------------------------


def watch_router(line: Line) -> APIRouter:
    """The routes. Who is asking is the gate's principal (``allowed``), an officer's token
    as much as the station's; the bearer scheme is declared for the spec only."""
    bearer = Depends(HTTPBearer(auto_error=False))
    router = api_router(prefix="/api/v1", dependencies=[bearer], tags=["watch"])
    ctx = line.ctx

    def read(fn: Any) -> Any:
        def run() -> Any:
            with line.reader.connect() as conn:
                return fn(conn)

        return asyncio.to_thread(run)

    @router.get("/rota", operation_id="list_rota", responses=errors(403))
    async def list_rota(
        _who: Reader,
        role: RoleName | None = None,
        at_us: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> list[RotaEntry]:
        """The rota's entries by start time (`at_us`: only those covering that time)."""
        rows = await read(lambda c: rota.entries(c, role=role, at_us=at_us, limit=limit))
        return [RotaEntry.model_validate(r) for r in rows]

    @router.get("/rota/now", operation_id="on_watch_now", responses=errors(403))
    async def on_watch_now(_who: Reader) -> OnWatchNow:
        """Who is on watch now, per role."""
        now = line.clock.now_us()
        roles = await read(lambda c: rota.now_on_watch(c, now))
        return OnWatchNow(at_us=now, roles=roles)

    @router.put("/rota/{entry_id}", operation_id="set_rota_entry",
                responses=errors(403, body=True))  # fmt: skip
    async def set_rota_entry(entry_id: EntryId, req: RotaSetRequest, who: Rota) -> RotaEntry:
        """Create or replace a rota entry (a `rota_set` action naming you)."""
        out = await rota.set_entry(ctx, who, entry_id, username=req.username, role=req.role,
                                   from_us=req.from_us, to_us=req.to_us)  # fmt: skip
        return RotaEntry.model_validate(out)

    @router.delete("/rota/{entry_id}", operation_id="clear_rota_entry",
                   responses=errors(403, 404))  # fmt: skip
    async def clear_rota_entry(entry_id: EntryId, who: Rota) -> RotaCleared:
        """Remove a rota entry (a `rota_clear` action naming you)."""
        await rota.clear_entry(ctx, who, entry_id)
        return RotaCleared(entry_id=entry_id)

    @router.get("/handovers", operation_id="list_handovers", responses=errors(403))
    async def list_handovers(
        _who: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[Handover]:
        """Handovers, latest first."""
        return [Handover.model_validate(h) for h in await handover.latest(ctx, limit)]

    @router.post("/handovers", operation_id="write_handover", status_code=201,
                 responses=errors(403, body=True))  # fmt: skip
    async def write_handover(req: HandoverRequest, who: Hand) -> Handover:
        """Write your handover note; the station adds its summary of open items now."""
        return Handover.model_validate(await handover.write(ctx, who, req.note))

    @router.get("/handovers/{handover_id}", operation_id="get_handover",
                responses=errors(403, 404))  # fmt: skip
    async def get_handover(handover_id: HandoverId, _who: Reader) -> Handover:
        """One handover with its summary."""
        return Handover.model_validate(await handover.get(ctx, handover_id))

    @router.post("/handovers/{handover_id}/acknowledge", operation_id="acknowledge_handover",
                 responses=errors(403, 404, body=True))  # fmt: skip
    async def acknowledge_handover(
        handover_id: HandoverId, who: Hand, req: HandoverAckRequest | None = None
    ) -> Handover:
        """Acknowledge a handover as the incoming officer (not its writer), once."""
        note = req.note if req is not None else None
        return Handover.model_validate(await handover.acknowledge(ctx, who, handover_id, note))

    @router.get("/escalations", operation_id="list_escalations", responses=errors(403))
    async def list_escalations(
        _who: Reader,
        open_only: Annotated[bool, Query(alias="open")] = False,
        message_id: Annotated[str | None, Query(max_length=36)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[Escalation]:
        """Escalation steps, newest first (`open=true`: raised, message not acknowledged)."""
        rows = await read(
            lambda c: escalation.listed(c, message_id=message_id, open_only=open_only, limit=limit)
        )
        return [Escalation.model_validate(r) for r in rows]

    return router
