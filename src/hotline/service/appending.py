"""Appending the line's own entries: operator actions and outgoing envelopes.

Owns the rule that what is appended is projected from the exact bytes a rebuild will
read (an action's canonical JSON, an envelope's raw bytes), in the same transaction.
Must not touch: checks (callers append only what they have checked), SQL.
"""

from __future__ import annotations

import json
from typing import Any

from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.service.context import LineContext
from hotline.store.projections import action_bytes
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Envelope


def append_action(
    ctx: LineContext, tx: WriteTx, action: dict[str, Any], *, peer: str = "", seq: int = 0
) -> int:
    """Append an operator action and project it; returns its leaf index."""
    entry = Entry(
        EntryKind.OPERATOR_ACTION, peer, seq, ZERO_HASH, ctx.clock.now_us(), action_bytes(action)
    )
    idx = tx.append(entry)
    # project the canonical bytes, exactly as a rebuild will read them
    ctx.projector.apply(tx.conn, idx, entry, json.loads(entry.data))
    return idx


def append_envelope_out(ctx: LineContext, tx: WriteTx, env: Envelope, payload: Any) -> int:
    """Append an envelope we sealed for a peer and project it (outbox, message row)."""
    h = env.header
    entry = Entry(
        EntryKind.ENVELOPE_OUT, h.recipient, h.sequence, env.hash, ctx.clock.now_us(), env.raw
    )
    idx = tx.append(entry)
    ctx.projector.apply(tx.conn, idx, entry, (env, payload))
    return idx
