"""The line's shared context: what every part of the line (sender, inbox, receipts,
link-test protocol, replay) is handed, and the few rules they share.

Owns: the station's identity and its signing and opening keys, the settings, the writer
and the reader, the peer book, the clock, the event bus, the projector, and three shared
rules: an envelope's date check, an acknowledgement deadline, and what happens after
something is queued. Invariants: one context per station, built by ``Line``; the
projector is replaced only by ``Line`` (never by a part). Must not touch: SQL (store/),
sockets or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine

from hotline.clock import Clock
from hotline.crypto import primitives
from hotline.crypto.card import SignedCard
from hotline.crypto.keys import StationIdentity
from hotline.deconfliction.limits import Limits as NoticeLimits
from hotline.errors import BadTimeError, EnvelopeError
from hotline.service.channelbook import ChannelBook
from hotline.service.events import EventBus
from hotline.service.outseq import OutSequences
from hotline.service.peers import PeerBook
from hotline.settings import Settings
from hotline.store.projections import ProjectionExtension, Projector
from hotline.store.writer import Writer
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MIN_TIME_US


def payload_values_limit(settings: Settings) -> int:
    """Most JSON values a peer's payload may hold before it is parsed: twice what a
    deconfliction notice at its limits may hold (``deconfliction.limits``), and never
    fewer than 50,000."""
    notice = NoticeLimits(settings.geometry_max_vertices, settings.geometry_max_rings)
    return max(50_000, 2 * notice.max_nodes)


@dataclass(eq=False)
class LineContext:
    identity: StationIdentity
    settings: Settings
    writer: Writer
    reader: Engine
    peers: PeerBook
    clock: Clock
    events: EventBus
    extensions: tuple[ProjectionExtension, ...] = ()
    #: the channels this station knows (standing and agreed): service/channelbook.py
    channels: ChannelBook = field(default_factory=ChannelBook)
    #: checks of typed message data by type; they raise an InputError naming the problem
    validators: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    #: checks of a peer's typed message data that need its sender: (sender, channel,
    #: data) by type; they raise an EnvelopeError with the refusal's code
    sender_checks: dict[str, Callable[[str, str, dict[str, Any]], None]] = field(
        default_factory=dict
    )
    #: called after commit with (peer, precedence) when something is queued
    on_queued: list[Callable[[str, Precedence], None]] = field(default_factory=list)
    #: called after commit, before ``on_queued``, with (peer, precedence, entry index,
    #: envelope bytes) for an envelope the sender just queued: a running outbox whose
    #: lane waits with an empty queue takes it from here instead of reading the store
    on_sealed: list[Callable[[str, Precedence, int, bytes], None]] = field(default_factory=list)
    #: builds a fresh projector (the live one, and one per rebuild); set by ``Line``
    new_projector: Callable[[], Projector] | None = None
    #: the writer's before-commit hook that signs a batch's receipts once; set by ``Line``
    #: (one object, so the writer calls it once per batch: service/receipts.py)
    sign_receipts: Callable[[Connection, list[Any]], None] | None = None
    #: the next sequence number towards each peer, as the sender guesses it (it seals
    #: before the writer's unit; the unit checks the guess against the store)
    out_sequences: OutSequences = field(default_factory=OutSequences)
    projector: Projector = field(init=False)
    signer: primitives.Signer = field(init=False)
    opener: primitives.Opener = field(init=False)
    card: SignedCard = field(init=False)
    #: ``payload_values_limit`` of the settings object it was computed from
    _values_limit: tuple[Settings, int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.signer = primitives.Signer(self.identity.signing_seed)
        self.opener = primitives.Opener(self.identity.encryption_private)
        self.card = self.identity.card()

    @property
    def station_id(self) -> str:
        return self.identity.station_id

    @property
    def payload_values_most(self) -> int:
        """``payload_values_limit`` of the settings, computed once per settings object (the
        inbox checks it for every envelope; tests may replace the settings)."""
        held = self._values_limit
        if held is None or held[0] is not self.settings:
            held = self._values_limit = (self.settings, payload_values_limit(self.settings))
        return held[1]

    def publish_after_commit(self, type_: str, **data: Any) -> None:
        """Publish ``type_`` once the writer's unit now running is durable: for code a unit
        calls without its transaction (projection extensions; a rolled-back unit publishes
        nothing). Outside a unit (never expected), at once."""
        tx = self.writer.current()
        events = self.events
        if tx is None:
            events.publish(type_, **data)
        else:
            tx.after_commit(lambda: events.publish(type_, **data))

    def deadline_us(self, precedence: int, from_us: int, channel: str | None = None) -> int:
        """When a message of ``precedence`` must be acknowledged, counted from ``from_us``:
        the agreed channel's deadline for it (``ack_deadlines_s``), else the station's
        setting ``ack_deadline_*_s`` (standing channels, and no channel named)."""
        s = self.settings
        seconds = (
            s.ack_deadline_flash_s,
            s.ack_deadline_immediate_s,
            s.ack_deadline_priority_s,
            s.ack_deadline_routine_s,
        )[precedence]
        spec = self.channels.get(channel) if channel is not None else None
        if spec is not None and not spec.standing:
            seconds = spec.deadline_s(precedence, seconds)
        return from_us + int(seconds * 1_000_000)

    @property
    def skew_us(self) -> int:
        return int(self.settings.max_clock_skew_s * 1_000_000)

    def check_date(self, sent_at_us: int) -> None:
        """An envelope dated further in the future than the allowed skew is refused
        (``clock_skew``), and one dated before 2020 (``bad_time``)."""
        if sent_at_us > self.clock.now_us() + self.skew_us:
            raise EnvelopeError(
                "envelope is dated too far in the future: check both stations' clocks",
                code="clock_skew",
            )
        if sent_at_us < MIN_TIME_US:
            raise BadTimeError(f"envelope is dated {sent_at_us}, before 2020")

    def claim_limit_us(self, sent_at_us: int) -> int:
        """The latest time a payload may claim: the envelope's sent time or our own
        receive time, whichever is earlier, plus the allowed clock skew."""
        return min(sent_at_us, self.clock.now_us()) + self.skew_us

    def queued(
        self, peer: str, precedence: Precedence, event: str, message_id: str, **content: Any
    ) -> None:
        """After commit: tell listeners (``content``: what the event carries besides the
        peer, message id and precedence), wake the peer's outbox."""
        self.events.publish(
            event, peer=peer, message_id=message_id, precedence=precedence.name, **content
        )
        for fn in self.on_queued:
            fn(peer, precedence)
