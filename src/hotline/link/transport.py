"""The one seam between the link and the network: a ``Transport`` to one peer.

The outbox and the link tester speak only to this interface, as httpx's clients speak to
its transports; ``PeerClient`` implements it over HTTPS with mutual TLS (and over any
httpx transport, e.g. ``httpx.ASGITransport`` joining another station's peer app
in-process). Contract: ``deliver`` returns one ``framing.Result`` per envelope, in
order, or raises ``TrustError`` (the peer refused the whole request; ``code`` is its
reason) or ``TransportError`` (nothing usable came back: unreachable, timeout, an
answer that is not a batch result); ``link_test`` returns the reply envelope's bytes,
unchecked, or raises the same. Callers bound every wait themselves (a transport may
hang). Must not touch: the store; envelopes are opaque bytes here.
"""

from __future__ import annotations

from typing import Protocol

from hotline.link import framing


class Transport(Protocol):
    #: the station id of the peer at the other end
    peer: str
    #: the name of the path it carries envelopes on ("https", "nats"): health, deliveries
    #: and retry state are kept per (peer, path)
    path: str

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        """Deliver a batch; one result per envelope, in order."""
        ...

    async def link_test(self, envelope: bytes) -> bytes:
        """Send one LINK_TEST envelope; the peer's LINK_TEST_REPLY envelope (unchecked)."""
        ...

    async def aclose(self) -> None: ...
