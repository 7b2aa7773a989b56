"""Resuming a line after this station's store was restored from a backup.

A restored store has forgotten the envelopes it signed after the backup, so it would
number new ones with sequence numbers the peer already holds, and the peer refuses them
as ``replay`` forever. The peer says where it stands: every link-test reply carries the
highest contiguous and the highest sequence number it holds from us. This module owns
what we do with that:

- ``on_reply``: when the peer holds a sequence number at or above our next one, put on
  the record (a system ``resync`` action, projected: ``peers.next_out_seq`` moves past
  what the peer holds, so a rebuild gives the same) that we resume above it, and raise a
  ``sequence_gap`` alarm naming the numbers the peer holds that our ledger lacks.
- ``on_missing``: the other way round, when the *peer* was restored: it reports as
  missing sequence numbers it had given us receipts for. Those envelopes will not be
  sent again (they were delivered); a ``peer_lost`` alarm names them.
- ``reissue``: a queued envelope of ours the peer refused as ``replay`` (it holds
  another envelope of ours under that number, from before the restore) is re-sealed and
  re-signed under a new sequence number, on the record (a ``reissue`` action, then the
  new ``ENVELOPE_OUT``); the old one leaves the queue, its ledger entry stays.

Invariants: every change is a ledger entry written by the writer (nothing here reads
the store on the event loop); a claim of the peer is bounded (``MAX_RESUME_JUMP``):
a peer cannot push our sequence numbers arbitrarily far; a jump beyond the bound is an
alarm, not a jump; an envelope is re-issued only when the peer's last reply said it
holds that number (a peer that calls everything a replay gets nothing re-issued).
Must not touch: transport, link health, the peer endpoint.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from hotline.crypto import primitives
from hotline.errors import HotlineError
from hotline.ledger.entry import Entry, EntryKind
from hotline.service import peering
from hotline.service.events import raise_alarm
from hotline.service.line import Line
from hotline.store import operational, peerstate
from hotline.store.writer import WriteTx
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from hotline.wire.messages import AckPayload, MessagePayload

log = logging.getLogger(__name__)

#: the furthest a peer's claim moves our next sequence number in one resync: a restored
#: backup that is more envelopes behind than this needs an operator (docs/operations.md)
MAX_RESUME_JUMP = 1_000_000


@dataclass(frozen=True, slots=True)
class Resumed:
    """What one resync recorded: our old and new next sequence number, and the gap."""

    peer: str
    old_next: int
    new_next: int
    gap: tuple[int, int]


class Resync:
    def __init__(self, line: Line) -> None:
        self.line = line
        self._signer = primitives.Signer(line.identity.signing_seed)
        #: the highest sequence number of ours each peer last said it holds
        self._held: dict[str, int] = {}

    async def on_reply(self, peer: str, held_contiguous: int, held_highest: int) -> Resumed | None:
        """The peer holds ``held_highest`` (contiguous up to ``held_contiguous``) from us:
        resume above it when our ledger lacks some of it. None when nothing was lacking."""
        line = self.line
        self._held[peer] = held_highest

        def unit(tx: WriteTx) -> Resumed | None:
            nxt = peerstate.next_out_seq(tx.conn, peer)
            if nxt is None or held_highest < nxt:
                return None
            now = line.clock.now_us()
            gap = (nxt, held_highest)
            if held_highest - nxt >= MAX_RESUME_JUMP:
                raise_alarm(
                    tx, line.events, operational.raise_alarm,
                    kind="resync_refused", severity="HIGH", peer=peer, ref=None,
                    now_us=now,
                    detail=f"{peer} claims to hold our sequence numbers up to {held_highest}, "
                    f"{held_highest - nxt + 1} beyond our ledger; not resumed (more than "
                    f"{MAX_RESUME_JUMP}): compare both stations' records (docs/operations.md)",
                )  # fmt: skip
                return None
            action = {
                "action": "resync",
                "station_id": peer,
                "by": "system",
                "next_out_seq": held_highest + 1,
                "held_contiguous": held_contiguous,
                "held_highest": held_highest,
                "gap": list(gap),
            }
            peering.record(line, tx, action, peer)
            raise_alarm(
                tx, line.events, operational.raise_alarm,
                kind="sequence_gap", severity="HIGH", peer=peer, ref=f"{gap[0]}-{gap[1]}",
                now_us=now,
                detail=f"{peer} holds our sequence numbers {gap[0]}..{gap[1]} that our ledger "
                f"lacks (was this store restored from a backup?); resumed at {held_highest + 1}. "
                "What we sent under those numbers is only on the peer's record: export its "
                "transcript (docs/operations.md, Restore)",
            )  # fmt: skip
            events = line.events
            content = {"gap": list(gap), "resumed_at": held_highest + 1, "at_us": now}
            tx.after_commit(lambda: events.publish("line.resync", peer=peer, **content))
            return Resumed(peer, nxt, held_highest + 1, gap)

        resumed: Resumed | None = await line.writer.submit(unit)
        if resumed is not None:
            log.warning(
                "%s holds our sequence numbers %d..%d that our ledger lacks: resumed at %d",
                peer, resumed.gap[0], resumed.gap[1], resumed.new_next,
            )  # fmt: skip
        return resumed

    async def on_missing(self, peer: str, ranges: list[tuple[int, int]]) -> list[int]:
        """The peer reports ``ranges`` missing: alarm on the numbers it had receipted (it
        lost them, e.g. restored from a backup). Returns those numbers."""
        line = self.line
        bounded = [(lo, hi) for lo, hi in ranges[:64] if 0 < lo <= hi]

        def unit(tx: WriteTx) -> list[int]:
            lost = peerstate.receipted_in(tx.conn, peer, bounded)
            if lost:
                shown = _ranges(lost)
                raise_alarm(
                    tx, line.events, operational.raise_alarm,
                    kind="peer_lost", severity="HIGH", peer=peer, ref=shown,
                    now_us=line.clock.now_us(),
                    detail=f"{peer} reports missing our sequence numbers {shown}, which it "
                    "had receipted (was its store restored from a backup?); they are not "
                    "sent again: give its operators our transcript (docs/operations.md, Restore)",
                )  # fmt: skip
            return lost

        if not bounded:
            return []
        lost: list[int] = await line.writer.submit(unit)
        return lost

    async def reissue(self, peer: str, entry_idx: int) -> int | None:
        """Re-seal and re-sign our queued envelope at ``entry_idx`` under the next sequence
        number; its new ledger index, or None when it is no longer queued or the peer has
        not said (in a link-test reply) that it holds that number: a peer that calls
        every envelope a replay gets no envelope re-issued twice for nothing."""
        line = self.line
        card = line.peers.get(peer)
        held = self._held.get(peer, -1)

        def unit(tx: WriteTx) -> tuple[int, Precedence] | None:
            queued = peerstate.queued_at(tx.conn, peer, entry_idx)
            if queued is None:
                return None
            old = wire.decode(Entry.decode(queued.leaf).data, max_bytes=len(queued.leaf))
            h = old.verify(self._signer.public_key).header
            if h.sequence > held:
                log.warning(
                    "%s refused our sequence %d as a replay but did not say it holds it: "
                    "not re-issued", peer, h.sequence,
                )  # fmt: skip
                return None
            plaintext = self._plaintext(tx, h, entry_idx)
            seq = peerstate.next_out_seq(tx.conn, peer)
            if seq is None:  # pragma: no cover - a queued envelope's peer has a row
                return None
            now = line.clock.now_us()
            header = Header(
                h.kind, h.precedence, h.suite, h.sender, h.recipient, h.channel, seq,
                h.message_id, now,
            )  # fmt: skip
            env = wire.seal_envelope(header, plaintext, self._signer, card.card.encryption_key)
            action: dict[str, Any] = {
                "action": "reissue",
                "by": "system",
                "station_id": peer,
                "old_sequence": h.sequence,
                "new_sequence": seq,
                "old_entry": entry_idx,
                "reason": "replay",
            }
            if h.kind is Kind.MESSAGE:
                action["message_id"] = str(h.message_id)
            peering.record(line, tx, action, peer)
            entry = Entry(EntryKind.ENVELOPE_OUT, peer, seq, env.hash, now, env.raw)
            idx = tx.append(entry)
            line.projector.apply(tx.conn, idx, entry, (env, None))
            return idx, h.precedence

        done: tuple[int, Precedence] | None = await line.writer.submit(unit)
        if done is None:
            return None
        for fn in line.on_queued:
            fn(peer, done[1])
        return done[0]

    def _plaintext(self, tx: WriteTx, h: Header, entry_idx: int) -> bytes:
        """What the envelope said: from the projections (we cannot open what we sealed)."""
        if h.kind is Kind.MESSAGE:
            sent = peerstate.sent_message(tx.conn, str(h.message_id))
            if sent is None:
                raise HotlineError(f"message {h.message_id} is not on record", code="not_found")
            return MessagePayload.model_validate_json(sent[0], strict=False).to_bytes()
        # an acknowledgement: its "ack" action is the entry just before it
        prev = peerstate.entry_leaf(tx.conn, entry_idx - 1)
        action = json.loads(Entry.decode(prev).data) if prev is not None else {}
        if not isinstance(action, dict) or action.get("action") != "ack":
            raise HotlineError("the acknowledgement's action is not on record", code="not_found")
        held = peerstate.acknowledgement(tx.conn, action["message_id"])
        if held is None:
            raise HotlineError("the acknowledgement is not on record", code="not_found")
        officer, note, at_us = held
        ack = AckPayload(
            message_id=uuid.UUID(action["message_id"]),
            officer=officer,
            note=note,
            acknowledged_at_us=at_us,
        )
        return ack.to_bytes()


def _ranges(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3..5,9"`` (the first 8 runs)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    shown = [f"{a}..{b}" if a != b else str(a) for a, b in runs[:8]]
    return ",".join(shown) + (",..." if len(runs) > 8 else "")
