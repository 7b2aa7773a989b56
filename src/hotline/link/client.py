"""The HTTPS transport to one peer: mutual TLS pinned to the peer's card.

Owns the HTTP client of one peer (a ``link.transport.Transport``) and the mapping of
HTTP and socket failures onto the error tree (transport failures are retried; a refusal
by the peer is a trust failure carrying the peer's code; an answer that is not a batch
result is a transport failure, ``bad_results``). An httpx transport can be handed in
(``httpx.ASGITransport`` for a peer app in the same process); then no TLS is set up.
Must not touch: the store; envelopes are opaque bytes here.
"""

from __future__ import annotations

import httpx

from hotline.crypto import tls
from hotline.crypto.card import SignedCard
from hotline.crypto.keys import StationIdentity
from hotline.errors import (
    EnvelopeError,
    PeerTimeoutError,
    PeerUnreachableError,
    TransportError,
    TrustError,
)
from hotline.link import framing
from hotline.link.closing import https_transport


class PeerClient:
    path = "https"

    def __init__(
        self,
        identity: StationIdentity,
        card: SignedCard,
        *,
        timeout_s: float,
        link_test_timeout_s: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.peer = card.card.station_id
        #: a link test waits less than a delivery (``health.Timing.test_timeout_s``); httpx
        #: times it out by itself, which closes the socket (a cancelled TLS handshake
        #: would leave it open)
        self.link_test_timeout_s = link_test_timeout_s or timeout_s
        if not card.card.endpoints:
            raise PeerUnreachableError(f"peer {self.peer} has no endpoint on its card")
        self.endpoint = card.card.endpoints[0].rstrip("/")
        if transport is None:
            ctx = tls.client_context(
                identity.tls_cert_pem, identity.tls_key_pem, card.card.tls_cert_der
            )
            limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
            transport = https_transport(ctx, limits)
        self._http = httpx.AsyncClient(
            timeout=timeout_s, base_url=self.endpoint, trust_env=False, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        body = await self._post(
            "/peer/v1/envelopes", framing.encode_batch(envelopes), framing.CONTENT_TYPE
        )
        try:
            return framing.decode_results(body, expected=len(envelopes))
        except EnvelopeError as exc:
            raise TransportError(
                f"{self.peer} answered a batch with something else: {exc.message}",
                code="bad_results",
            ) from None

    async def link_test(self, envelope: bytes) -> bytes:
        return await self._post(
            "/peer/v1/link-test",
            envelope,
            "application/octet-stream",
            timeout_s=self.link_test_timeout_s,
        )

    async def _post(
        self, path: str, content: bytes, content_type: str, *, timeout_s: float | None = None
    ) -> bytes:
        timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
        try:
            r = await self._http.post(
                path, content=content, headers={"content-type": content_type}, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise PeerTimeoutError(f"{self.peer}: {path} timed out") from exc
        except (httpx.TransportError, OSError) as exc:
            raise PeerUnreachableError(
                f"{self.peer} unreachable at {self.endpoint}: {exc}"
            ) from exc
        if r.status_code >= 500:
            raise PeerUnreachableError(f"{self.peer} answered {r.status_code}")
        if r.status_code != 200:
            code = r.headers.get("x-hotline-error", "refused")[:64]
            raise TrustError(f"{self.peer} refused {path}: {code}", code=code)
        return r.content
