"""Operator API for the hand-carried path: bundle files for a peer, and importing one.

Owns the HTTP shapes of ``POST /api/v1/bundles/export`` (the file, base64 in JSON, with
what it carries), ``POST /api/v1/bundles/import`` (the body is the file's bytes, read raw
within ``bundle_max_bytes``; the answer is what the import did and the answering file)
and ``GET /api/v1/bundles`` (the bundles carried, newest first). Export and import need
the peers action, like the other peer-admin routes. Must not touch: the file format
(wire/bundle.py), what a bundle carries (link/bundles.py), SQL.
"""

import asyncio
import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.peer import read_limited
from hotline.api.routers import api_router
from hotline.crypto.card import STATION_ID_PATTERN
from hotline.link.bundles import Bundles, Exported
from hotline.service.roles import Action, Principal
from hotline.store import bundles as store

#: the import route: its body limit is the setting bundle_max_bytes
BUNDLE_IMPORT_PATH = "/api/v1/bundles/import"


class BundleExportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    peer: Annotated[str, Field(pattern=STATION_ID_PATTERN, max_length=32)]


class BundleFile(BaseModel):
    """A signed bundle file for ``peer``: write ``file`` (base64) to a file and carry it."""

    bundle_id: str
    peer: str
    #: our sequence numbers of the envelopes it carries
    sequences: list[int]
    receipts: int
    #: the id of the peer's bundle this one answers
    answers: str | None
    size: int
    file: str = Field(description="The bundle file, base64 (standard alphabet, padded).")


class BundleImported(BaseModel):
    """What importing a bundle did; ``answer`` is the bundle to carry back (None when
    the imported one carried nothing)."""

    bundle_id: str
    peer: str
    stored: list[int]
    duplicates: list[int]
    refused: dict[str, int]
    receipts_recorded: int
    receipts_known: int
    receipts_refused: dict[str, int]
    #: the id of our bundle that this one answered (its receipts are now on record)
    answered: str | None
    answer: BundleFile | None


class BundleRecord(BaseModel):
    peer: str
    direction: str
    bundle_id: str
    created_at_us: int
    recorded_at_us: int
    envelopes: int
    receipts: int
    answers: str | None
    answered_at_us: int | None
    digest: str
    entry_idx: int


class BundleList(BaseModel):
    bundles: list[BundleRecord]


def _file(e: Exported) -> BundleFile:
    return BundleFile(
        bundle_id=e.bundle_id, peer=e.peer, sequences=list(e.sequences), receipts=e.receipts,
        answers=e.answers, size=len(e.data), file=base64.b64encode(e.data).decode("ascii"),
    )  # fmt: skip


def _record(r: store.BundleRow) -> BundleRecord:
    return BundleRecord(
        peer=r.peer, direction=r.direction, bundle_id=r.bundle_id,
        created_at_us=r.created_at_us, recorded_at_us=r.recorded_at_us, envelopes=r.envelopes,
        receipts=r.receipts, answers=r.answers, answered_at_us=r.answered_at_us,
        digest=r.digest.hex(), entry_idx=r.entry_idx,
    )  # fmt: skip


def bundles_router(bundles: Bundles, auth: Any) -> APIRouter:
    router = api_router(prefix="/api/v1", dependencies=[Depends(auth)], tags=["bundles"])
    Admin = Annotated[Principal, Depends(allowed(Action.PEERS))]
    line = bundles.line

    @router.post(
        "/bundles/export", response_model=BundleFile, responses=errors(400, 404, body=True)
    )
    async def export_bundle(req: BundleExportRequest, who: Admin) -> BundleFile:
        """Everything pending for a peer (envelopes without its receipt, receipts owed
        to it) as one signed file for a USB stick or an e-mail attachment."""
        return _file(await bundles.export(req.peer, who.username))

    @router.post(
        BUNDLE_IMPORT_PATH.removeprefix("/api/v1"),
        response_model=BundleImported,
        responses=errors(400, 404, body=True),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
                "description": "A bundle file's bytes.",
            }
        },
    )
    async def import_bundle(request: Request, who: Admin) -> BundleImported:
        """Import a peer's bundle file once; the answer carries the bundle to take back."""
        raw = await read_limited(request, line.settings.bundle_max_bytes)
        got = await bundles.import_(raw, who.username)
        return BundleImported(
            bundle_id=got.bundle_id, peer=got.peer, stored=list(got.stored),
            duplicates=list(got.duplicates), refused=got.refused,
            receipts_recorded=got.receipts_recorded, receipts_known=got.receipts_known,
            receipts_refused=got.receipts_refused, answered=got.answered,
            answer=None if got.answer is None else _file(got.answer),
        )  # fmt: skip

    @router.get(
        "/bundles",
        response_model=BundleList,
        responses=errors(),
        dependencies=[Depends(allowed(Action.READ))],
    )
    async def list_bundles(
        peer: Annotated[str | None, Query(pattern=STATION_ID_PATTERN, max_length=32)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> BundleList:
        """The bundles exported and imported (of one peer), newest first."""

        def run() -> list[store.BundleRow]:
            with line.reader.connect() as conn:
                return store.history(conn, peer, limit=limit)

        rows = await asyncio.to_thread(run)
        return BundleList(bundles=[_record(r) for r in rows])

    return router
