"""What one peer accepts, as far as this station knows: the limits batches are cut to.

Owns the rule "the peer's advertised limits, within our own": until a link-test reply
has told us the peer's limits (``LinkTestReplyPayload.limits``), the sender uses its own
settings of the same names; after that, the tighter of the two, field by field (a peer
that advertises huge limits does not make us build huge requests). A change in what the
peer advertises bumps ``version`` and calls the listeners (the outbox retries envelopes
the peer refused as too large). Plain state on the event loop; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from hotline.link.framing import Limits
from hotline.settings import Settings
from hotline.wire.messages import LinkLimits


def own_limits(settings: Settings) -> Limits:
    return Limits(
        max_batch_envelopes=settings.max_batch_envelopes,
        max_request_bytes=settings.max_request_bytes,
        max_envelope_bytes=settings.max_envelope_bytes,
    )


def advertised(settings: Settings) -> LinkLimits:
    """Our limits as a link-test reply advertises them."""
    return LinkLimits(
        max_batch_envelopes=settings.max_batch_envelopes,
        max_request_bytes=settings.max_request_bytes,
        max_envelope_bytes=settings.max_envelope_bytes,
    )


class PeerLimits:
    def __init__(self, own: Limits) -> None:
        self.own = own
        #: what the peer last advertised (None: not heard yet)
        self.heard: Limits | None = None
        #: bumped each time the peer advertises limits other than the ones assumed before
        self.version = 0
        self.listeners: list[Callable[[], None]] = []

    @property
    def effective(self) -> Limits:
        return self.own if self.heard is None else self.heard.within(self.own)

    def hear(self, limits: LinkLimits) -> bool:
        """Take the limits of a checked link-test reply; True when they changed (the
        first ones heard count as a change only when they differ from our own)."""
        new = Limits(
            max_batch_envelopes=limits.max_batch_envelopes,
            max_request_bytes=limits.max_request_bytes,
            max_envelope_bytes=limits.max_envelope_bytes,
        )
        before = self.heard if self.heard is not None else self.own
        self.heard = new
        if new == before:
            return False
        self.version += 1
        for fn in self.listeners:
            fn()
        return True
