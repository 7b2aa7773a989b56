"""Operator API for the record: the latest cosigned checkpoint, inclusion proofs of
messages, consistency proofs between two sizes.

Owns only the HTTP shapes; proofs come from the stored tree. Must not touch: writes.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from hotline.api import shapes
from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.errors import InputError, NotFoundError
from hotline.ledger import merkle
from hotline.service.line import Line
from hotline.service.roles import Action
from hotline.service.witnessing import latest_cosigned, origin_of
from hotline.store import reads, tree


def ledger_router(line: Line, auth: Any) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1/ledger",
        dependencies=[Depends(auth), Depends(allowed(Action.READ))],
        tags=["ledger"],
    )

    @router.get("/checkpoint", response_model=shapes.CosignedCheckpoint, responses=errors(404))
    def get_checkpoint() -> dict[str, Any]:
        """The newest checkpoint of this station's ledger that a peer has cosigned: the
        signed note with every cosignature line, verifiable with the station cards."""
        with line.reader.connect() as conn:
            found = latest_cosigned(conn)
            size = tree.ledger_size(conn)
        if found is None:
            raise NotFoundError(
                "no checkpoint has been cosigned yet",
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
