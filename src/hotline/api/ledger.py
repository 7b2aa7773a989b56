"""Operator API for the record: the latest cosigned checkpoint, inclusion proofs of
messages, consistency proofs between two sizes, and the whole record as a transcript
(``GET /api/v1/transcript``: what ``hotline export`` writes, for ``hotline verify``).

Owns only the HTTP shapes; proofs come from the stored tree. Must not touch: writes.
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from hotline.api import shapes
from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.errors import InputError, NotFoundError
from hotline.ledger import merkle
from hotline.ledger.note import NoteSigner
from hotline.service import transcripts
from hotline.service.line import Line
from hotline.service.roles import Action
from hotline.service.witnessing import latest_cosigned, origin_of
from hotline.store import reads, tree


def ledger_router(line: Line, auth: Any) -> APIRouter:
    router = api_router(
        prefix="/api/v1/ledger",
        dependencies=[Depends(auth), Depends(allowed(Action.READ))],
        tags=["ledger"],
    )

    @router.get("/checkpoint", response_model=shapes.CosignedCheckpoint, responses=errors(404))
    def get_checkpoint(
        cosigned_by: Annotated[
            str | None,
            Query(
                max_length=64,
                description="Only a checkpoint this peer cosigned (its newest such).",
            ),
        ] = None,
    ) -> dict[str, Any]:
        """The newest checkpoint of this station's ledger that a peer has cosigned (with
        ``cosigned_by``: that peer): the signed note with every cosignature line,
        verifiable with the station cards."""
        with line.reader.connect() as conn:
            found = latest_cosigned(conn, cosigned_by)
            size = tree.ledger_size(conn)
        if found is None:
            by = f" by {cosigned_by}" if cosigned_by else ""
            raise NotFoundError(
                f"no checkpoint has been cosigned{by} yet",
                hint="run a link test: each one carries a checkpoint",
            )
        return {"origin": origin_of(line.station_id), "ledger_size": size, **found}

    @router.get("/proof/inclusion", response_model=shapes.InclusionProof, responses=errors(404))
    def prove_inclusion(
        message_id: Annotated[str, Query(max_length=36)],
        size: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """Where a message's envelope is in the ledger, with an inclusion proof for a tree
        size (default: the newest cosigned checkpoint, else the whole ledger now)."""
        with line.reader.connect() as conn:
            idx = reads.message_entry(conn, message_id)
            if idx is None:
                raise NotFoundError(f"no message {message_id}")
            now = tree.ledger_size(conn)
            cosigned = latest_cosigned(conn)
            target = size or (cosigned["size"] if cosigned else now)
            if not idx < target <= now:
                raise InputError(f"size must be above the entry's index {idx} and at most {now}")
            leaf = reads.leaf_hash(conn, idx)
            proof = tree.inclusion_proof(conn, idx, target, now)
            root = tree.root_at(conn, target, now)
        merkle.verify_inclusion(leaf, idx, target, proof, root)
        return {
            "message_id": message_id,
            "leaf_index": idx,
            "tree_size": target,
            "leaf_hash": leaf.hex(),
            "root": root.hex(),
            "proof": [h.hex() for h in proof],
        }

    @router.get("/proof/consistency", response_model=shapes.ConsistencyProof, responses=errors())
    def prove_consistency(
        old: Annotated[int, Query(ge=0)], new: Annotated[int, Query(ge=1)]
    ) -> dict[str, Any]:
        """A consistency proof between two sizes of this station's ledger."""
        with line.reader.connect() as conn:
            now = tree.ledger_size(conn)
            if not old <= new <= now:
                raise InputError(f"need 0 <= old <= new <= {now}")
            proof = tree.consistency_proof(conn, old, new, now)
            roots = [tree.root_at(conn, s, now) if s else merkle.EMPTY_ROOT for s in (old, new)]
        return {
            "old": old,
            "new": new,
            "old_root": roots[0].hex(),
            "new_root": roots[1].hex(),
            "proof": [h.hex() for h in proof],
        }

    return router


class TranscriptCosignature(shapes.Shape):
    checkpoint: int = Field(description="Index into `checkpoints`.")
    cosigner: str = Field(description="The cosigner's verifier key (vkey).")
    line: str


class Transcript(shapes.Shape):
    """A transcript (docs/transcript.md): everything `hotline verify` needs, offline."""

    format: str
    station: str
    card: str = Field(description="The station's signed card (base64).")
    log_key: str
    entries: list[str] = Field(description="Every ledger entry's exact bytes (base64).")
    checkpoints: list[str] = Field(description="Signed notes; the last one at the full size.")
    cosignatures: list[TranscriptCosignature]
    proofs: list[dict[str, Any]]


def transcript_router(line: Line, auth: Any) -> APIRouter:
    router = api_router(
        prefix="/api/v1",
        dependencies=[Depends(auth), Depends(allowed(Action.EXPORT))],
        tags=["ledger"],
    )

    @router.get(
        "/transcript",
        responses={
            200: {"model": Transcript, "description": "The transcript, as a file to keep."},
            **errors(403),
        },
    )
    async def export_transcript() -> Response:
        """This station's whole record as a self-contained transcript, signed whole (the
        same file as `hotline export`): check it offline with `hotline verify`."""
        signer = NoteSigner(origin_of(line.station_id), line.identity.log_seed)

        def build() -> str:
            with line.reader.connect() as conn:
                return transcripts.export(conn, line.card, signer)

        # built whole, like the CLI's export (it is signed whole), then sent as one body
        body = (await asyncio.to_thread(build)).encode("utf-8")
        name = f"{line.station_id}.transcript.json"
        safe = "".join(c if c.isascii() and (c.isalnum() or c in "-._") else "_" for c in name)
        return Response(
            body,
            media_type="application/json",
            headers={
                "content-disposition": f'attachment; filename="{safe}"',
                "cache-control": "no-store",
            },
        )

    return router
