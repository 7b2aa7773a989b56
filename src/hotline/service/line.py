"""The line: one station's side of its lines to its peers, as a thin composition.

``Line`` holds the shared ``LineContext`` and hands each use case to the module that
owns it: sending and acknowledging (``sender``), checking and storing a peer's
envelopes (``inbox``), receipts both ways (``receipts``), the link-test protocol
(``linkproto``) and rebuilding projections from the ledger (``replay``). Adding a peer
and loading the peer book stay here. Its public names are what the API, the link, the
witnessing and the CLI call. Must not touch: SQL (store/), sockets or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Engine

from hotline.clock import Clock
from hotline.crypto.card import SignedCard, parse_card, safety_number
from hotline.crypto.keys import StationIdentity
from hotline.errors import HotlineError, InputError
from hotline.service import extensions as extensions_mod
from hotline.service import inbox, linkproto, receipts, replay, sender, voids
from hotline.service.appending import append_action
from hotline.service.channelbook import ChannelBook
from hotline.service.context import LineContext
from hotline.service.events import EventBus
from hotline.service.inbox import Inbound
from hotline.service.peers import PeerBook
from hotline.service.sender import Sent
from hotline.settings import Settings
from hotline.store import linedb
from hotline.store.projections import ProjectionExtension, Projector
from hotline.store.writer import Writer, WriteTx
from hotline.wire.envelope import Envelope, Precedence
from hotline.wire.messages import (
    LinkTestPayload,
    LinkTestReplyPayload,
    MessagePayload,
)

__all__ = ["Inbound", "Line", "Sent"]


class Line:
    def __init__(
        self,
        identity: StationIdentity,
        settings: Settings,
        writer: Writer,
        reader: Engine,
        peers: PeerBook,
        clock: Clock,
        events: EventBus,
        extensions: Sequence[ProjectionExtension] = (),
        validators: Mapping[str, Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        ctx = LineContext(
            identity, settings, writer, reader, peers, clock, events,
            extensions=tuple(extensions), validators=dict(validators or {}),
            channels=ChannelBook(settings.standing_channels),
        )  # fmt: skip
        self.ctx = ctx
        ctx.extensions = (*ctx.extensions, *(make(ctx) for make in extensions_mod.CORE))
        ctx.new_projector = self._new_projector
        ctx.projector = self._new_projector()

        def sign_receipts(conn: Connection, pending: list[Any]) -> None:
            receipts.sign_batch(ctx, conn, pending)

        ctx.sign_receipts = sign_receipts

    def _new_projector(self) -> Projector:
        ctx = self.ctx
        return Projector(
            ctx.deadline_us,
            ctx.station_id,
            ctx.extensions,
            max_ahead=ctx.settings.max_sequence_ahead,
        )

    # --- the context, by its old names --------------------------------------------------

    @property
    def identity(self) -> StationIdentity:
        return self.ctx.identity

    @property
    def station_id(self) -> str:
        return self.ctx.station_id

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def writer(self) -> Writer:
        return self.ctx.writer

    @property
    def reader(self) -> Engine:
        return self.ctx.reader

    @property
    def peers(self) -> PeerBook:
        return self.ctx.peers

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def events(self) -> EventBus:
        return self.ctx.events

    @property
    def projector(self) -> Projector:
        return self.ctx.projector

    @property
    def card(self) -> SignedCard:
        return self.ctx.card

    @property
    def extensions(self) -> tuple[ProjectionExtension, ...]:
        return self.ctx.extensions

    @property
    def validators(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        """Checks of typed message data by type; they raise an InputError."""
        return self.ctx.validators

    @property
    def on_queued(self) -> list[Callable[[str, Precedence], None]]:
        """Called after commit with (peer, precedence) when something is queued."""
        return self.ctx.on_queued

    def check_data(self, payload: MessagePayload) -> None:
        sender.check_data(self.ctx, payload)

    def deadline_us(self, precedence: int, sent_at_us: int) -> int:
        return self.ctx.deadline_us(precedence, sent_at_us)

    # --- peers ------------------------------------------------------------------------

    def load_peers(self) -> None:
        with self.reader.connect() as conn:
            self.peers.load(linedb.peer_cards(conn))

    def peer_add_unit(self, card_text: str, operator: str | None) -> tuple[SignedCard, Any]:
        """Check a card and return it with the unit that records it."""
        card = parse_card(card_text)
        sid = card.card.station_id
        if sid == self.station_id:
            raise InputError("that is this station's own card", code="own_card")
        if sid in self.peers:
            raise InputError(f"station {sid!r} is already a peer", code="peer_exists")
        action = {
            "action": "peer_add",
            "station_id": sid,
            "card": card.to_text(),
            "safety_number": safety_number(self.card, card),
            "operator": operator,
        }

        def unit(tx: WriteTx) -> None:
            append_action(self.ctx, tx, action, peer=sid)
            tx.after_commit(lambda: self.peers.add(card))

        return card, unit

    # --- sender -------------------------------------------------------------------------

    async def send(
        self,
        *,
        peer: str,
        channel: str,
        precedence: Precedence,
        payload: MessagePayload,
        operator: str | None = None,
        also: Callable[[Connection, Sent], None] | None = None,
    ) -> Sent:
        return await sender.send(
            self.ctx,
            peer=peer,
            channel=channel,
            precedence=precedence,
            payload=payload,
            operator=operator,
            also=also,
        )

    async def acknowledge(self, message_id: str, officer: str, note: str | None = None) -> None:
        await sender.acknowledge(self.ctx, message_id, officer, note)

    # --- inbox --------------------------------------------------------------------------

    def check_inbound(self, raw: bytes) -> Inbound:
        return inbox.check_inbound(self.ctx, raw)

    async def store_inbound(self, items: list[Inbound]) -> list[bytes | Exception]:
        return await inbox.store_inbound(self.ctx, items)

    # --- receipts -----------------------------------------------------------------------

    def check_receipt(self, peer: str, raw: bytes) -> receipts.Checked:
        return receipts.check_receipt(self.ctx, peer, raw)

    async def record_receipt(self, peer: str, raw: bytes, carried_by: str | None = None) -> bool:
        return await receipts.record_receipt(self.ctx, peer, raw, carried_by)

    async def record_receipts(
        self,
        peer: str,
        raws: list[bytes],
        carried_by: str | None = None,
        expected: list[bytes] | None = None,
        also: Callable[[WriteTx], object] | None = None,
    ) -> list[bool | HotlineError]:
        """Record many receipts of ``peer``'s (service/receipts.py): each one's outcome;
        ``also``: a unit committed with them."""
        return await receipts.record_receipts(self.ctx, peer, raws, carried_by, expected, also)

    # --- link tests ---------------------------------------------------------------------

    def make_link_test(
        self,
        peer: str,
        *,
        witness: str | None = None,
        prove: list[tuple[int, int]] | None = None,
        void: list[tuple[int, int]] | None = None,
    ) -> tuple[Envelope, LinkTestPayload]:
        return linkproto.make_link_test(self.ctx, peer, witness=witness, prove=prove, void=void)

    def check_link_test(self, raw: bytes) -> tuple[Envelope, LinkTestPayload]:
        return linkproto.check_link_test(self.ctx, raw)

    def reply_link_test(
        self, env: Envelope, test: LinkTestPayload, t2_us: int, extra: dict[str, Any]
    ) -> bytes:
        return linkproto.reply_link_test(self.ctx, env, test, t2_us, extra)

    def check_link_reply(
        self, peer: str, sent: LinkTestPayload, raw: bytes
    ) -> LinkTestReplyPayload:
        return linkproto.check_link_reply(self.ctx, peer, sent, raw)

    async def record_link_test(self, peer: str, result: dict[str, Any]) -> None:
        await linkproto.record_link_test(self.ctx, peer, result)

    # --- void sequence numbers (service/voids.py) ---------------------------------------

    async def void_parked(self, peer: str, parked: list[tuple[int, str]]) -> list[int]:
        """Declare void the numbers of envelopes ``peer`` refused for good."""
        done: list[int] = await self.writer.submit(voids.void_unit(self.ctx, peer, parked))
        return done

    async def void_message(self, message_id: str) -> str:
        """An operator declares void the number of a refused, parked message; its peer."""
        peer: str = await self.writer.submit(voids.operator_void_unit(self.ctx, message_id))
        return peer

    def declared_void(self, peer: str, above: int) -> list[tuple[int, int]]:
        """The void ranges our next link test to ``peer`` declares (reads the store)."""
        return voids.declared_ranges(self.ctx, peer, above)

    async def record_peer_void(
        self, env: Envelope, test: LinkTestPayload
    ) -> list[tuple[int, int]] | None:
        """Record what a checked link test declares void (the accepted ranges)."""
        return await voids.record_peer_void(self.ctx, env, test)

    # --- replay -------------------------------------------------------------------------

    def rebuild_projections(self, conn: Connection, chunk: int = 1000) -> int:
        """Wipe every projection and replay the whole ledger into it; returns entries read."""
        return replay.rebuild_projections(self.ctx, conn, chunk)
