"""The read side of the record and of link health, for the console.

Owns the shapes the record view and the link details show: our checkpoints with their
cosignatures, per peer the checkpoints of its log that we checked (a consistency proof
from the one we cosigned before) and cosigned, forks and refusals, and a peer's link
health with its history. Reads only; the entries it decodes are our own ledger's.
Must not touch: writes, keys.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Connection

from hotline.errors import HotlineError
from hotline.ledger.entry import Entry
from hotline.store import linkhistory, operational, recordview, tree, witnessdb

MAX_CHECKPOINTS = 20  #: our checkpoints shown at most
MAX_PEER_CHECKS = 20  #: witness entries about one peer shown at most
MAX_RED_ROWS = 50  #: fork and refusal alarms shown at most


def _witness_doc(leaf: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(Entry.decode(leaf).data)
    except (HotlineError, ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


def peer_checks(conn: Connection, peer: str, limit: int = MAX_PEER_CHECKS) -> list[dict[str, Any]]:
    """What our ledger says about ``peer``'s log, newest first: each checkpoint of its
    we cosigned (``cosigned``) and each fork we found (``fork``)."""
    out = []
    for idx, at_us, leaf in recordview.witness_entries(conn, peer, limit):
        doc = _witness_doc(leaf)
        if doc is None:
            continue
        if doc.get("witness") == "cosigned_for_peer":
            out.append({"kind": "cosigned", "entry": idx, "at_us": at_us,
                        "size": doc.get("size"), "root": str(doc.get("root", "")),
                        "detail": None})  # fmt: skip
        elif doc.get("witness") == "fork_evidence":
            out.append({"kind": "fork", "entry": idx, "at_us": at_us,
                        "size": doc.get("old_size"), "root": "",
                        "detail": f"{doc.get('error')}: {doc.get('detail')}"})  # fmt: skip
    return out


def record(conn: Connection, peers: list[str]) -> dict[str, Any]:
    """Everything the record tab shows."""
    cps = recordview.checkpoints(conn, MAX_CHECKPOINTS)
    by_peer = []
    for p in peers:
        checks = peer_checks(conn, p)
        held = witnessdb.witness_state(conn, p)
        last = next((c for c in checks if c["kind"] == "cosigned"), None)
        by_peer.append(
            {
                "peer": p,
                "witnessed_size": None if held is None else held[0],
                "witnessed_root": None if held is None else held[1].hex(),
                "last_check": last,
                "checks": checks,
                "our_cosigned_size": witnessdb.cosigned_size(conn, p),
            }
        )
    return {
        "ledger_size": tree.ledger_size(conn),
        "checkpoints": cps,
        "peers": by_peer,
        "red": recordview.record_alarms(conn, MAX_RED_ROWS),
    }


def link_details(conn: Connection, peer: str, limit: int) -> dict[str, Any]:
    """One peer's link health now, its last ``limit`` tests (oldest first), the last
    good test, the last checkpoint of ours it cosigned, and its open alarms."""
    h = operational.load_health(conn, peer)
    history = linkhistory.recent(conn, peer, limit)
    good = linkhistory.last_good(conn, peer)
    size = witnessdb.cosigned_size(conn, peer)
    alarms = [a for a in operational.open_alarms(conn) if a["peer"] == peer]
    return {
        "peer": peer,
        "health": {k: getattr(h, k) for k in h.__dataclass_fields__},
        "paths": [
            {"path": name, **{k: getattr(ph, k) for k in ph.__dataclass_fields__}}
            for name, ph in operational.load_path_health(conn, peer).items()
        ],
        "history": history,
        "last_good": good,
        "cosigned_size": size,
        "alarms": alarms,
    }
