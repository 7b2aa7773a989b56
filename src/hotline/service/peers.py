"""The peer book: the checked station cards of this station's peers, in memory.

Owns lookup of a peer's keys by station id for the hot path. Loaded from the ``peers``
projection at start (active peers only), extended when a peer is added, changed when one
is re-keyed and shrunk when one is removed (after the ledger entry is committed). A
station absent from the book is an unknown peer: its envelopes are refused. Must not
touch: the store (callers load and persist), the network.
"""

from __future__ import annotations

from hotline.crypto.card import SignedCard, parse_card
from hotline.errors import UnknownPeerError


class PeerBook:
    def __init__(self) -> None:
        self._cards: dict[str, SignedCard] = {}

    def add(self, card: SignedCard) -> None:
        self._cards[card.card.station_id] = card

    def remove(self, station_id: str) -> None:
        self._cards.pop(station_id, None)

    def load(self, rows: list[tuple[str, str]]) -> None:
        for _station_id, text in rows:
            self.add(parse_card(text))

    def get(self, station_id: str) -> SignedCard:
        try:
            return self._cards[station_id]
        except KeyError:
            raise UnknownPeerError(f"station {station_id!r} is not a peer") from None

    def __contains__(self, station_id: object) -> bool:
        return station_id in self._cards

    def ids(self) -> list[str]:
        return sorted(self._cards)
