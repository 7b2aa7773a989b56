"""Replay: wipe every projection and rebuild it from the ledger, checking on the way.

Owns parsing a stored entry back into what the projector takes (an action, an envelope
and its opened payload, a receipt), verifying every envelope again: our own with our
key, a peer's with the card its ``peer_add`` action recorded. So a rebuilt store has the
same trust as a live one, and equals it (tests/service/test_line.py proves it). Must not
touch: SQL beyond store/linedb, the live projector (a rebuild uses a fresh one).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy.engine import Connection

from hotline.crypto.card import parse_card
from hotline.errors import HotlineError
from hotline.ledger.entry import Entry, EntryKind
from hotline.service import receipts
from hotline.service.context import LineContext
from hotline.service.peers import PeerBook
from hotline.store import linedb, projections, schema
from hotline.wire import batchreceipt
from hotline.wire import envelope as wire
from hotline.wire.messages import ReceiptPayload, parse_payload


def rebuild_projections(ctx: LineContext, conn: Connection, chunk: int = 1000) -> int:
    """Wipe every projection and replay the whole ledger into it; returns entries read.

    Runs inside the caller's transaction (a writer unit, or ``Writer.run_sync``).
    """
    projections.stash_receipts(conn)  # our receipts survive the rebuild, byte for byte
    linedb.wipe(conn, schema.PROJECTIONS)
    for ext in ctx.extensions:
        ext.reset()
        linedb.wipe(conn, ext.tables)
    if ctx.new_projector is None:  # pragma: no cover - Line always sets it
        raise RuntimeError("the line context has no projector factory")
    projector = ctx.new_projector()
    book = PeerBook()
    done, last = 0, -1
    while True:
        rows = linedb.leaves_after(conn, last, chunk)
        if not rows:
            projections.drop_stash(conn)
            for ext in ctx.extensions:
                ext.rebuild_finished(conn)
            return done
        kept = projections.stashed_receipts(conn, rows[0][0], rows[-1][0])
        pending: list[receipts.Pending] = []
        again: list[tuple[str, int, bytes]] = []
        roots: batchreceipt.RootCache = {}  # a batch's receipts share one signed root
        for idx, leaf in rows:
            entry = Entry.decode(leaf)
            parsed = parse_entry(ctx, entry, book, roots)
            applied = projector.apply(conn, idx, entry, parsed)
            if applied.item is not None:
                h = parsed[0].header
                old = kept.get(idx)
                if old is not None and _same_item(old, applied.item):
                    again.append((h.sender, h.sequence, old))
                else:
                    pending.append(receipts.Pending(h, applied.item))
            done, last = done + 1, idx
        projections.set_receipts(conn, again)
        # a receipt not kept (a store restored from its ledger alone) is signed again: the
        # same item (it derives from the ledger), one signature per peer per chunk
        receipts.sign_batch(ctx, conn, list(pending))


def _same_item(raw: bytes, item: ReceiptPayload) -> bool:
    try:
        return bool(batchreceipt.item_of(raw) == item)
    except HotlineError:
        return False


def parse_entry(
    ctx: LineContext, entry: Entry, book: PeerBook, roots: batchreceipt.RootCache | None = None
) -> Any:
    """A stored entry as the projector takes it, verified again (``book`` learns peers
    from ``peer_add`` actions as the replay meets them; ``roots``: receipt roots already
    verified in this replay, each verified once)."""
    if entry.kind is EntryKind.OPERATOR_ACTION:
        action: dict[str, Any] = json.loads(entry.data)
        if action.get("action") in ("peer_add", "peer_rekey"):
            book.add(parse_card(action["card"]))
        elif action.get("action") == "peer_void":  # its evidence: the peer's signed test
            raw = base64.b64decode(action["envelope"])
            wire.decode(raw, max_bytes=len(raw)).verify(book.get(entry.peer).card.signing_key)
        return action
    if entry.kind is EntryKind.LINK_TEST or entry.kind is EntryKind.WITNESS:
        return json.loads(entry.data)
    if entry.kind is EntryKind.RECEIPT_IN:  # either form (wire/batchreceipt.py)
        _h, item = batchreceipt.open_receipt(
            entry.data, book.get(entry.peer).card.signing_key, sender=entry.peer,
            recipient=ctx.station_id, max_envelope_bytes=len(entry.data), roots=roots,
        )  # fmt: skip
        return item
    u = wire.decode(entry.data, max_bytes=len(entry.data))
    if entry.kind is EntryKind.ENVELOPE_OUT:  # its plaintext is in the "send" action
        return u.verify(ctx.signer.public_key), None
    env = u.verify(book.get(entry.peer).card.signing_key)
    return env, parse_payload(env.header.kind, env.open(ctx.opener))
