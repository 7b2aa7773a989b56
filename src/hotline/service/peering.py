"""Peers over their lifetime: load the book at start, remove a peer, re-key a peer.

Owns the units of work that put a peer's removal or re-keying on the record (an
``OPERATOR_ACTION`` ledger entry, projected into ``peers`` by ``projections``, so
``rebuild_projections`` replays them) and loading the active peers at start so that one
unusable card never stops a station. Adding a peer stays ``Line.peer_add_unit``.

Invariants:
- The peer book changes only after the entry that justifies it is committed.
- A removed peer is absent from the book: its envelopes and link tests are refused as
  ``unknown_peer`` (the peer endpoint still completes its TLS handshake so that it is
  told so); its messages, receipts and ledger entries stay.
- A re-key replaces the card of a current peer (same station id) with a card the
  operator confirmed by its safety number, exactly like ``hotline peer add``; what the
  peer signs from then on is checked with the new keys, what it signed before stays
  verifiable with the old card (recorded by the earlier entry). We forget the checkpoint
  we cosigned for it: witnessing starts afresh with the new card's log key.
Must not touch: the network, TLS contexts and link tasks (``station`` does that after the
unit commits), SQL beyond ``store.peerstate``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from hotline.crypto.card import SignedCard, parse_card, safety_number
from hotline.errors import HotlineError, InputError, UnknownPeerError
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.service.line import Line
from hotline.service.peers import PeerBook
from hotline.store import peerstate
from hotline.store.projections import action_bytes
from hotline.store.writer import WriteTx

log = logging.getLogger(__name__)

Unit = Callable[[WriteTx], Any]


@dataclass(frozen=True, slots=True)
class Unusable:
    """A recorded peer whose card cannot be used (it is left out of the book)."""

    station_id: str
    code: str
    detail: str


def load_book(conn: Connection, book: PeerBook) -> list[Unusable]:
    """Put every active peer whose card still checks into ``book``; return the others."""
    bad: list[Unusable] = []
    for row in peerstate.peer_rows(conn):
        if row.removed_at_us is not None:
            continue
        try:
            card = parse_card(row.card)
            if card.card.station_id != row.station_id:
                raise InputError("the card names another station", code="bad_card")
        except HotlineError as exc:
            log.error("peer %s left out: its card does not check: %s", row.station_id, exc)
            bad.append(Unusable(row.station_id, exc.code, exc.message))
            continue
        book.add(card)
    return bad


def removed_cards(conn: Connection) -> dict[str, SignedCard]:
    """The last cards of removed peers (the peer endpoint still lets them connect, so that
    what they send is answered ``unknown_peer`` instead of failing the handshake)."""
    out: dict[str, SignedCard] = {}
    for row in peerstate.peer_rows(conn):
        if row.removed_at_us is None:
            continue
        try:
            out[row.station_id] = parse_card(row.card)
        except HotlineError as exc:
            log.warning("removed peer %s: its card does not check: %s", row.station_id, exc)
    return out


def record(line: Line, tx: WriteTx, action: dict[str, Any], peer: str) -> int:
    """Append an operator (or system) action about ``peer`` and project it."""
    entry = Entry(
        EntryKind.OPERATOR_ACTION, peer, 0, ZERO_HASH, line.clock.now_us(), action_bytes(action)
    )
    idx = tx.append(entry)
    # project the canonical bytes, exactly as a rebuild will read them
    line.projector.apply(tx.conn, idx, entry, json.loads(entry.data))
    return idx


def remove_unit(line: Line, station_id: str, operator: str | None) -> Unit:
    """The unit that removes a current peer; raises ``UnknownPeerError`` if it is not one."""
    card = line.peers.get(station_id)
    action = {
        "action": "peer_remove",
        "station_id": station_id,
        "fingerprint": card.fingerprint(),
        "operator": operator,
    }

    def unit(tx: WriteTx) -> None:
        record(line, tx, action, station_id)
        tx.after_commit(lambda: line.peers.remove(station_id))

    return unit


def rekey_unit(line: Line, card_text: str, operator: str | None) -> tuple[SignedCard, Unit]:
    """Check a new card for a current peer; return it with the unit that records it."""
    card = parse_card(card_text)
    sid = card.card.station_id
    if sid == line.station_id:
        raise InputError("that is this station's own card", code="own_card")
    if sid not in line.peers:
        raise UnknownPeerError(
            f"station {sid!r} is not a peer: add it with 'hotline peer add'",
            hint="re-keying replaces the card of a current peer; add a new peer instead",
        )
    old = line.peers.get(sid)
    action = {
        "action": "peer_rekey",
        "station_id": sid,
        "card": card.to_text(),
        "safety_number": safety_number(line.card, card),
        "old_fingerprint": old.fingerprint(),
        "fingerprint": card.fingerprint(),
        "operator": operator,
    }

    def unit(tx: WriteTx) -> None:
        record(line, tx, action, sid)
        peerstate.delete_witness_state(tx.conn, sid)
        tx.after_commit(lambda: line.peers.add(card))

    return card, unit
