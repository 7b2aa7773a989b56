"""Operator API for a peer's lifetime after it was added: remove it, re-key it.

Owns the HTTP shapes of ``DELETE /api/v1/peers/{station_id}`` and
``POST /api/v1/peers/{station_id}/rekey``. A re-key, like an add, must carry the safety
number the officers read aloud for the new pair of cards; a mismatch changes nothing.
Must not touch: the ledger or the link directly (the station's ``PeerAdmin`` does).
"""

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from hotline.api.auth import allowed
from hotline.api.routers import api_router
from hotline.crypto import primitives
from hotline.crypto.card import STATION_ID_PATTERN, SignedCard, parse_card, safety_number
from hotline.errors import InputError
from hotline.service.line import Line
from hotline.service.roles import Action, Principal

StationId = Annotated[str, Path(pattern=STATION_ID_PATTERN, max_length=32)]


class PeerAdmin(Protocol):
    """What the running station does for these endpoints (``hotline.station.Station``)."""

    async def remove_peer(self, station_id: str, operator: str | None) -> None: ...

    async def rekey_peer(self, card_text: str, operator: str | None) -> SignedCard: ...


class PeerRemoveRequest(BaseModel):
    """Nothing to say: who removes the peer is the authenticated officer."""

    model_config = ConfigDict(extra="forbid")


class PeerRemoved(BaseModel):
    """The peer is removed: its envelopes are refused as ``unknown_peer`` from now on;
    its history stays on the ledger."""

    station_id: str
    removed: bool = True


class PeerRekeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: Annotated[str, Field(min_length=1, max_length=65536)]
    safety_number: Annotated[str, Field(max_length=200)]


class PeerRekeyed(BaseModel):
    station_id: str
    old_fingerprint: str
    fingerprint: str


def peers_router(line: Line, admin: PeerAdmin, auth: Any) -> APIRouter:
    router = api_router(prefix="/api/v1/peers", dependencies=[Depends(auth)], tags=["peers"])
    Admin = Annotated[Principal, Depends(allowed(Action.PEERS))]

    @router.delete("/{station_id}", operation_id="remove_peer")
    async def remove_peer(
        station_id: StationId, who: Admin, req: PeerRemoveRequest | None = None
    ) -> PeerRemoved:
        """Remove a peer. Its line stops; what it sent and what we sent stays on record."""
        await admin.remove_peer(station_id, who.username)
        return PeerRemoved(station_id=station_id)

    @router.post("/{station_id}/rekey", operation_id="rekey_peer")
    async def rekey_peer(station_id: StationId, req: PeerRekeyRequest, who: Admin) -> PeerRekeyed:
        """Replace a peer's card. Send the safety number the officers confirmed."""
        card = parse_card(req.card)
        if card.card.station_id != station_id:
            raise InputError(
                f"the card is for station {card.card.station_id!r}, not {station_id!r}",
                code="wrong_station",
            )
        expected = safety_number(line.card, card)
        if not primitives.equal(req.safety_number.encode(), expected.encode()):
            raise InputError(
                "the safety number does not match this pair of cards",
                code="safety_number_mismatch",
                hint="read the safety number aloud with the peer's officer before re-keying",
            )
        old = line.peers.get(station_id).fingerprint()
        new = await admin.rekey_peer(req.card, who.username)
        return PeerRekeyed(
            station_id=station_id, old_fingerprint=old, fingerprint=new.fingerprint()
        )

    return router
