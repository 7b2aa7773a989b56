"""The NATS relay path: one station's connection to a JetStream relay, and its transports.

Owns the station's one NATS connection (``Relay``), the station's own durable stream
(``<PREFIX>_<STATION>`` on ``<prefix>.<station>.in.>``: every peer publishes its frames
for us to ``<prefix>.<station>.in.<peer>``), the dispatch of what arrives there, and
``RelayTransport`` (``path = "nats"``), the ``link.transport.Transport`` to one peer over
the relay: a request frame is published to the peer's subject and the matching reply
frame (same correlation id, from that peer) is awaited, bounded.

The relay is hostile: it may drop, delay, replay, reorder or misroute frames, or be run
by the other side. Every frame is signed by its sending station (``link.relayframe``);
what arrives is size-checked before parsing, then checked for recipient (us), sender (a
peer in the book, named by the subject too) and signature; one that does not check is
dropped, logged, acked, and changes nothing. What checks goes through the procedure all
paths share (``link.intake``): a batch is stored and our results frame published back; a
link test is answered. A message is acked only once processed (and its answer
published): after a crash the relay delivers it again, which is harmless (the store
dedups by sequence number). A results frame that arrives after its delivery gave up
still has its receipts recorded: on the relay, receipts may come late.

Throughput: each request waits for the peer to take its frame from the stream, so the
transport carries several at once (``requests_at_once``) and sends a batch as frames of
at most ``FRAME_ENVELOPES``, all in flight; we check one sender's batches one at a time,
in the order they arrived, and store each while the next is checked. Of the link tests
fetched together from one sender, only the newest is answered: a station tests a path
one test at a time, so the older ones' testers gave up (they pile up while we are down).

Must not touch: SQL, envelopes' insides (``intake`` and ``line`` check them), the
outbox and link tester (they see only the ``Transport``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api as js_api

from hotline.crypto import primitives
from hotline.crypto.keys import StationIdentity
from hotline.errors import (
    ConfigError,
    EnvelopeError,
    HotlineError,
    MisaddressedError,
    PeerTimeoutError,
    PeerUnreachableError,
    TransportError,
    TrustError,
)
from hotline.link import framing, intake, relayframe
from hotline.link.relayframe import Frame, Kind
from hotline.service.line import Line
from hotline.service.witnessing import Witnessing

log = logging.getLogger(__name__)

DURABLE = "station"
#: frames fetched from the stream at once, and handled at once
FETCH_BATCH = 64
#: most envelopes in one BATCH frame: a larger batch goes as several frames, all in flight
#: at once, so that the peer checks one while it stores the one before
FRAME_ENVELOPES = 64
#: results frames remembered after their delivery gave up (their receipts still count)
GAVE_UP_KEPT = 4096
#: seconds between attempts to reach the relay
RECONNECT_S = 1.0
#: seconds closing the connection may take at stop
CLOSE_S = 5.0


def read_credentials(path: Path) -> tuple[str, str]:
    """USER:PASSWORD from a 0600 file (never logged)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"relay credentials file {path} cannot be read: {exc}") from None
    if mode & 0o077:
        raise ConfigError(f"{path} is readable by others", hint=f"chmod 600 {path}")
    user, sep, password = text.partition(":")
    if not sep or not user or "\n" in text:
        raise ConfigError(f"{path} does not hold one line USER:PASSWORD")
    return user, password


def inbox_prefix(prefix: str, station: str) -> str:
    return f"_INBOX_{prefix}.{station}"


@dataclass(slots=True)
class _Wait:
    peer: str
    kind: Kind
    expected: int
    future: asyncio.Future[Frame]


def shown_url(url: str) -> str:
    """``url`` without the user and password a URL may carry (never logged)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class Relay:
    """One station's connection to the relay; ``run`` it in the station's task group."""

    def __init__(self, line: Line, witnessing: Witnessing, identity: StationIdentity) -> None:
        s = line.settings
        if not s.relay_url:
            raise ConfigError(
                "the nats path needs relay_url", hint="set relay_url or leave nats out of paths"
            )
        self.line = line
        self.witnessing = witnessing
        self.me = identity.station_id
        self._url = s.relay_url
        #: the relay's address as logs and errors show it: without user or password
        self.url = shown_url(s.relay_url)
        self.prefix = relayframe.check_prefix(s.relay_prefix)
        self._signer = primitives.Signer(identity.signing_seed)
        self._credentials = (
            read_credentials(s.relay_credentials_file) if s.relay_credentials_file else None
        )
        self._max_frame = s.max_request_bytes + relayframe.OVERHEAD
        self._nc: NatsClient | None = None
        self.connected = asyncio.Event()
        self._waiting: dict[bytes, _Wait] = {}
        self._gave_up: collections.OrderedDict[bytes, tuple[str, int]] = collections.OrderedDict()
        self._handling: set[asyncio.Task[None]] = set()
        #: per sender: held while one of its batches is checked, so that its batches are
        #: checked one at a time, in the order they arrived (each stored while the next is
        #: checked)
        self._checking: dict[str, asyncio.Lock] = {}
        #: frames dropped because they did not check (for tests and the operator's logs)
        self.dropped = 0
        #: link tests acked unanswered: a newer one from the same sender came with them
        self.superseded = 0

    @property
    def stream(self) -> str:
        return relayframe.stream_name(self.prefix, self.me)

    def transport(
        self, peer: str, *, timeout_s: float, link_test_timeout_s: float
    ) -> RelayTransport:
        return RelayTransport(self, peer, timeout_s, link_test_timeout_s)

    # --- the connection ---------------------------------------------------------------

    async def run(self) -> None:
        """Connect (again and again while the relay cannot be reached), make sure our
        stream and consumer exist, and handle what arrives until cancelled."""
        try:
            while True:
                try:
                    await self._connect()
                    await self._consume()
                except (nats.errors.Error, OSError, TimeoutError) as exc:
                    log.warning("relay %s: %s; trying again", self.url, type(exc).__name__)
                    await self._disconnect()
                    await asyncio.sleep(RECONNECT_S)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        for task in list(self._handling):
            task.cancel()
        await self._disconnect()

    async def _disconnect(self) -> None:
        self.connected.clear()
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), CLOSE_S)

    async def _connect(self) -> None:
        kw: dict[str, str] = {}
        if self._credentials is not None:
            kw["user"], kw["password"] = self._credentials
        nc = await nats.connect(
            servers=[self._url],
            name=f"hotline-{self.me}",
            connect_timeout=5,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_S,
            # our own inboxes (answers to our requests, fetched frames): the relay's
            # permissions let no other station subscribe to them
            inbox_prefix=inbox_prefix(self.prefix, self.me),
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
            **kw,
        )
        self._nc = nc
        js = nc.jetstream(timeout=10)
        subjects = relayframe.stream_subjects(self.prefix, self.me)
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(
                name=self.stream,
                subjects=[subjects],
                retention=js_api.RetentionPolicy.WORK_QUEUE,
                storage=js_api.StorageType.FILE,
                max_msg_size=min(self._max_frame, nc.max_payload),
                max_age=7 * 86400,
            )
        self._sub = await js.pull_subscribe(
            subjects,
            durable=DURABLE,
            stream=self.stream,
            config=js_api.ConsumerConfig(
                ack_policy=js_api.AckPolicy.EXPLICIT,
                ack_wait=self.line.settings.relay_ack_wait_s,
                max_ack_pending=4 * FETCH_BATCH,
            ),
        )
        log.info("relay %s: consuming stream %s", self.url, self.stream)
        self.connected.set()

    async def _on_error(self, exc: Exception) -> None:
        log.warning("relay %s: %s", self.url, type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("relay %s: disconnected", self.url)

    async def _on_reconnected(self) -> None:
        log.info("relay %s: reconnected", self.url)

    async def _consume(self) -> None:
        sem = asyncio.Semaphore(FETCH_BATCH)
        while True:
            try:
                msgs = await self._sub.fetch(FETCH_BATCH, timeout=5)
            except nats.errors.TimeoutError:
                if self._nc is None or self._nc.is_closed:
                    raise nats.errors.ConnectionClosedError from None
                continue
            for msg, frame in await self._sort(msgs):
                await sem.acquire()
                task = asyncio.create_task(self._handle(msg, frame))
                self._handling.add(task)
                task.add_done_callback(self._handling.discard)
                task.add_done_callback(lambda _t: sem.release())

    async def _sort(self, msgs: list[Msg]) -> list[tuple[Msg, Frame]]:
        """The fetched messages to handle, in the stream's order, each with its checked
        frame. One that does not check is dropped (and acked); so is a link test followed
        by a newer one from the same sender: a station runs one link test at a time on a
        path, so the older one's tester has given up waiting (they pile up in the stream
        while we are down, and each costs a reply with proofs)."""
        checked: list[tuple[Msg, Frame]] = []
        newest: dict[str, int] = {}
        for msg in msgs:
            try:
                frame = self.check(msg.subject, msg.data)
            except HotlineError as exc:
                self.dropped += 1
                log.warning("relay: dropped a frame on %s: %s", msg.subject[:200], exc.code)
                await self._ack(msg)
                continue
            if frame.kind is Kind.LINK_TEST:
                newest[frame.sender] = len(checked)
            checked.append((msg, frame))
        out = []
        for i, (msg, frame) in enumerate(checked):
            if frame.kind is Kind.LINK_TEST and newest[frame.sender] != i:
                self.superseded += 1
                log.info("relay: a link test from %s superseded by a newer one", frame.sender)
                await self._ack(msg)
            else:
                out.append((msg, frame))
        return out

    def max_frame_body(self) -> int:
        """The most bytes a frame's body may hold on the connected relay (its
        ``max_payload`` less our frame's own header); raises while not connected."""
        return self._client().max_payload - relayframe.OVERHEAD

    def _client(self) -> NatsClient:
        nc = self._nc
        if nc is None or not self.connected.is_set() or not nc.is_connected:
            raise PeerUnreachableError(f"relay {self.url} is not connected")
        return nc

    async def publish(self, subject: str, data: bytes, timeout_s: float) -> None:
        """Publish to JetStream and wait until the relay has stored it."""
        nc = self._client()
        if len(data) > nc.max_payload:
            raise TransportError(
                f"a frame of {len(data)} bytes exceeds the relay's {nc.max_payload}",
                code="too_large_for_relay",
            )
        try:
            await nc.jetstream().publish(subject, data, timeout=timeout_s)
        except (nats.errors.TimeoutError, TimeoutError) as exc:
            raise PeerTimeoutError(f"relay {self.url}: publish timed out") from exc
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
            raise PeerUnreachableError(f"relay {self.url}: no stream takes {subject}") from exc
        except (nats.errors.Error, OSError) as exc:
            raise PeerUnreachableError(f"relay {self.url}: {type(exc).__name__}") from exc

    # --- requests and their replies --------------------------------------------------

    async def request(
        self, peer: str, kind: Kind, body: bytes, *, expected: int, timeout_s: float
    ) -> Frame:
        """Send one request frame to ``peer``; its reply frame (RESULTS, LINK_REPLY or
        REFUSED), checked, within ``timeout_s`` all in all."""
        loop = asyncio.get_running_loop()
        correlation = primitives.random_bytes(relayframe.CORRELATION_LEN)
        frame = relayframe.encode(self._signer, kind, self.me, peer, correlation, body)
        future: asyncio.Future[Frame] = loop.create_future()
        self._waiting[correlation] = _Wait(peer, kind, expected, future)
        deadline = loop.time() + timeout_s
        try:
            subject = relayframe.inbound_subject(self.prefix, peer, self.me)
            await self.publish(subject, frame, timeout_s)
            return await asyncio.wait_for(future, max(deadline - loop.time(), 0.001))
        except TimeoutError:
            if kind is Kind.BATCH:  # its results may still come: their receipts count
                self._gave_up[correlation] = (peer, expected)
                while len(self._gave_up) > GAVE_UP_KEPT:
                    self._gave_up.popitem(last=False)
            raise PeerTimeoutError(f"{peer}: no answer over the relay in {timeout_s:g}s") from None
        finally:
            self._waiting.pop(correlation, None)

    # --- what arrives --------------------------------------------------------------------

    async def _handle(self, msg: Msg, frame: Frame) -> None:
        """One message of our stream, its frame checked: handled, acked (not acked when
        handling failed for a reason of ours: the relay delivers it again)."""
        try:
            await self.take(frame)
        except HotlineError as exc:  # our answer could not be published: again later
            log.warning("relay: frame from %s not answered: %s", frame.sender, exc)
            return
        except Exception:
            log.exception("relay: handling a frame from %s failed", frame.sender)
            return
        await self._ack(msg)

    async def _ack(self, msg: Msg) -> None:
        with contextlib.suppress(nats.errors.Error, OSError):
            await msg.ack()

    def check(self, subject: str, data: bytes) -> Frame:
        """The frame in ``data`` if it checks: size, format, recipient, sender, subject,
        signature; else raise (``HotlineError``)."""
        frame = relayframe.decode(data, max_bytes=self._max_frame)
        if frame.recipient != self.me:
            raise MisaddressedError(f"frame for {frame.recipient}", code="misaddressed")
        card = self.line.peers.get(frame.sender)  # UnknownPeerError
        if subject != relayframe.inbound_subject(self.prefix, self.me, frame.sender):
            raise MisaddressedError("frame on another sender's subject", code="misaddressed")
        relayframe.verify(frame, card.card.signing_key)
        return frame

    async def take(self, frame: Frame) -> None:
        """Handle a checked frame: answer a request, resolve a waiting one."""
        if frame.kind in relayframe.REQUESTS:
            answer_kind, body = await self._answer(frame)
            reply = relayframe.encode(
                self._signer, answer_kind, self.me, frame.sender, frame.correlation, body
            )
            subject = relayframe.inbound_subject(self.prefix, frame.sender, self.me)
            await self.publish(subject, reply, self.line.settings.peer_timeout_s)
            return
        wait = self._waiting.get(frame.correlation)
        if wait is not None and wait.peer == frame.sender and not wait.future.done():
            if _answers(wait.kind, frame.kind):
                wait.future.set_result(frame)
            return
        late = self._gave_up.get(frame.correlation)
        if late is not None and late[0] == frame.sender and frame.kind is Kind.RESULTS:
            del self._gave_up[frame.correlation]
            await self._record_late(frame.sender, frame.body, late[1])
            return
        log.info("relay: an answer from %s that nobody waits for (late or replayed)", frame.sender)

    async def _answer(self, frame: Frame) -> tuple[Kind, bytes]:
        s = self.line.settings
        if frame.kind is Kind.LINK_TEST:
            t2 = self.line.clock.now_us()
            if len(frame.body) > s.max_envelope_bytes:
                return Kind.REFUSED, b"too_large"
            try:
                reply = await intake.answer_link_test(self.line, self.witnessing, frame.body, t2)
            except HotlineError as exc:
                log.warning("relay: refused a link test from %s: %s", frame.sender, exc)
                return Kind.REFUSED, _code(exc)
            return Kind.LINK_REPLY, reply
        # one batch of a sender checked at a time, in order; stored while the next is checked
        lock = self._checking.setdefault(frame.sender, asyncio.Lock())
        async with lock:  # decoded and checked in one worker thread's turn
            checked = await intake.check_framed(
                self.line,
                lambda: framing.decode_batch(
                    frame.body,
                    max_items=s.max_batch_envelopes,
                    max_item_bytes=s.max_envelope_bytes,
                ),
            )
        if isinstance(checked, HotlineError):
            log.warning("relay: refused a batch from %s: %s", frame.sender, checked)
            return Kind.REFUSED, _code(checked)
        results = await intake.store_batch(self.line, checked)
        return Kind.RESULTS, framing.encode_results(results)

    async def _record_late(self, peer: str, body: bytes, expected: int) -> None:
        try:
            results = framing.decode_results(body, expected=expected)
        except EnvelopeError as exc:
            log.warning("relay: late results from %s do not decode: %s", peer, exc)
            return
        n = 0
        got = [r.receipt for r in results if r.receipt is not None]
        for outcome in await self.line.record_receipts(peer, got, carried_by="nats"):
            if isinstance(outcome, HotlineError):
                log.warning("relay: a late receipt from %s refused: %s", peer, outcome)
            else:
                n += outcome
        log.info("relay: %d late receipts from %s recorded", n, peer)


def _answers(request: Kind, reply: Kind) -> bool:
    if reply is Kind.REFUSED:
        return True
    return (request, reply) in {(Kind.BATCH, Kind.RESULTS), (Kind.LINK_TEST, Kind.LINK_REPLY)}


def _code(exc: HotlineError) -> bytes:
    return exc.code.encode("ascii", errors="replace")[:64]


class RelayTransport:
    """The relay path to one peer (a ``link.transport.Transport``)."""

    path = "nats"
    #: requests in flight at once (the outbox fills that many per round): each waits for
    #: the peer to take its frames from the stream, check, store and answer them
    requests_at_once = 4

    def __init__(
        self, relay: Relay, peer: str, timeout_s: float, link_test_timeout_s: float
    ) -> None:
        self.relay = relay
        self.peer = peer
        self.timeout_s = timeout_s
        self.link_test_timeout_s = link_test_timeout_s

    async def aclose(self) -> None:
        """Nothing of its own: the connection is the station's ``Relay``'s."""

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        """One result per envelope, in order. A batch of more than ``FRAME_ENVELOPES``, or
        larger than the relay carries in one message, goes in several frames, all in
        flight at once (the peer checks one while it stores the one before). When one of
        them fails, the whole call fails with the first failure in order once every frame
        has ended (bounded): what the others delivered is delivered again later, and the
        peer answers a copy with the receipt it stored."""
        body = self.relay.max_frame_body()
        # one envelope alone must fit a frame with the batch framing around it
        limits = framing.Limits(
            min(len(envelopes), FRAME_ENVELOPES) or 1, body, body - framing.request_bytes([0])
        )
        sizes = [len(e) for e in envelopes]
        chunks: list[list[bytes]] = []
        i = 0
        while i < len(envelopes):
            n = framing.take(sizes[i:], limits)
            chunks.append(envelopes[i : i + n])
            i += n
        if len(chunks) == 1:
            return await self._deliver_one(chunks[0])
        answers = await asyncio.gather(
            *(self._deliver_one(c) for c in chunks), return_exceptions=True
        )
        out: list[framing.Result] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            out += answer
        return out

    async def _deliver_one(self, chunk: list[bytes]) -> list[framing.Result]:
        reply = await self.relay.request(
            self.peer,
            Kind.BATCH,
            framing.encode_batch(chunk),
            expected=len(chunk),
            timeout_s=self.timeout_s,
        )
        if reply.kind is Kind.REFUSED:
            raise _refusal(self.peer, "batch", reply.body)
        try:
            return framing.decode_results(reply.body, expected=len(chunk))
        except EnvelopeError as exc:
            raise TransportError(
                f"{self.peer} answered a batch with something else: {exc.message}",
                code="bad_results",
            ) from None

    async def link_test(self, envelope: bytes) -> bytes:
        reply = await self.relay.request(
            self.peer, Kind.LINK_TEST, envelope, expected=1, timeout_s=self.link_test_timeout_s
        )
        if reply.kind is Kind.REFUSED:
            raise _refusal(self.peer, "link test", reply.body)
        return reply.body


def _refusal(peer: str, what: str, body: bytes) -> TrustError:
    code = body.decode("ascii", errors="replace")[:64] or "refused"
    return TrustError(f"{peer} refused the {what} over the relay: {code}", code=code)
