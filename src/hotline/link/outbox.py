"""The durable outbox of one peer: delivery with retries, backoff and jitter.

Owns the delivery loops. The queue itself is the ``outbox`` projection (every envelope
we signed for the peer that has no receipt yet), so nothing is lost across a crash:
after a restart the loops start again from the table. Two lanes per peer, so a FLASH
never waits behind a backlog: the urgent lane carries FLASH and IMMEDIATE, the other
PRIORITY and ROUTINE; each sends the lowest precedence value, then the lowest sequence
number, first.

Batches are cut to the peer's limits (``PeerLimits``: by count and by bytes). When the
peer refuses a whole request, the batch is split in halves until the envelope at fault
is alone; the rest is delivered. An envelope the peer refuses (alone, or in the batch
result) is *parked* with the peer's code: its state reads ``refused``, link health
counts it, the ``peer_refused`` alarm says what to do, and it is not sent again until
the operator asks (``retry_refused``: an operator's link test) or a link test shows the
peer's limits changed (then the envelopes refused for their size that fit the new
limits go again, once). A number refused for good (not a size, not ``replay`` or
``old_message_id``) is declared void (``service/voids.py``): the envelope leaves the
queue and the peer's contiguous mark passes it. Codes
that say "not now" rather than "not this" (``TRANSIENT``) are retried with backoff.

Paths: the outbox holds one transport per path to the peer (``Transport.path``), most
preferred first. A round goes on the first path that is not DOWN and not backing off;
when that path fails (unreachable, timed out, or DOWN by its link tests while the
request is in flight: the request is abandoned at once), the rest of the batch goes on
the next path in the same round, so failover takes no longer than noticing the failure.
A failed path backs off on its own (``_Path``); a path whose link test answers again is
used again at once. DOWN paths are tried last, never skipped: a line with one path keeps
retrying it. A FLASH on a channel named in ``flash_every_path`` also goes, at the same
time, on every other path that is not DOWN; the peer keeps one copy (it holds each
sequence number once and answers a copy with the receipt it stored). The path that
carried each envelope is recorded with its delivery attempt. A path that carries several
requests at once (its transport's ``requests_at_once``: the relay) gets that many in a
round, cut to the peer's limits and in flight together.

Invariants: the lanes' retry state (``_Lane.retry_at``) is read and written on the event
loop only (the worker thread that reads the queue gets a snapshot); a refusal is never
recorded as a successful attempt; every wait on the peer is bounded. The SQL is in
``store.outbox``. Must not touch: envelope contents (opaque bytes) or health rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from hotline.crypto import primitives
from hotline.errors import HotlineError, PeerTimeoutError, TransportError, TrustError
from hotline.link import framing
from hotline.link.health import Health, Timing
from hotline.link.limits import PeerLimits, own_limits
from hotline.link.linktest import HealthRecorder
from hotline.link.transport import Transport
from hotline.service import voids
from hotline.service.line import Line
from hotline.store import outbox as store
from hotline.store.writer import WriteTx
from hotline.supervise import forever
from hotline.wire import envelope as wire
from hotline.wire.envelope import Precedence

log = logging.getLogger(__name__)

URGENT = (Precedence.FLASH, Precedence.IMMEDIATE)
#: error codes of attempts that never left this station (no connection was made)
NOT_SENT = frozenset({"peer_unreachable"})
NORMAL = (Precedence.PRIORITY, Precedence.ROUTINE)
#: refusals that say "not now" (a database failure, clocks apart, a sequence window not
#: yet reached, a peer that has not added us yet): retried with backoff, never parked
TRANSIENT = frozenset({"store", "clock_skew", "seq_window", "unknown_peer"})
#: refusals about size: the envelopes go again once when the peer's limits change
SIZE_CODES = frozenset({"too_large", "bad_batch"})
#: an idle lane's periodic look at the queue (``Outbox.look_every_s``), in seconds
LOOK_EVERY_S = 5.0

#: called with (peer, the peer's code, entry index) when the peer refuses an envelope
OnRefused = Callable[[str, str, int], None]


class _Path:
    """One path to the peer: its transport and its own backoff (event loop only)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.name = transport.path
        self.failures = 0
        self.retry_at = 0.0  # loop time before which no round uses it
        #: set while its link tests say DOWN: an exchange in flight on it is abandoned
        self.down = asyncio.Event()


class _Lane:
    def __init__(self, name: str, precedences: tuple[Precedence, ...]) -> None:
        self.name = name
        self.precedences = [int(p) for p in precedences]
        self.wake = asyncio.Event()
        self.failures = 0
        self.retry_at: dict[int, float] = {}  # entry idx -> loop time of next attempt
        #: the entries of the round whose results are being recorded while the next round
        #: is delivered (``Outbox._run_lane``): never taken again until that record is done
        self.recording: frozenset[int] = frozenset()
        self.recorder: asyncio.Task[None] | None = None
        #: the last read of the queue took every envelope it could, and nothing has woken
        #: the lane since: a round reads again only when woken, when a retry is due, or
        #: after a wait that timed out (the periodic look at the queue)
        self.fresh = False
        #: the lane waits with nothing queued for it (fresh, nothing to retry, no record
        #: in flight): the envelopes the sender commits meanwhile are handed to it
        #: (``Outbox.offer``: precedence, entry index, bytes) and ``wakes`` counts the
        #: wakes. A round that finds one envelope handed for every wake delivers them
        #: without reading the store; any other wake (an acknowledgement, a resync, a
        #: retry) reads it, as before
        self.idle = False
        self.handed: list[tuple[int, int, bytes]] = []
        self.wakes = 0


class _Round:
    """What one lane's round did, to be recorded in one group commit."""

    def __init__(self) -> None:
        self.attempts: list[store.Attempt] = []
        #: (entry idx, the peer's receipt, the hash of the envelope it must name)
        self.receipts: list[tuple[int, bytes, bytes]] = []
        self.parked: list[tuple[int, str]] = []
        self.refusals: list[tuple[int, str]] = []  # every refusal, parked or not
        self.later: list[int] = []  # back off: transport failure or transient refusal
        #: the part a transport failure left unsent (a subset of ``later``)
        self.unsent: list[int] = []
        self.failure: HotlineError | None = None
        #: (path, the failure) for each path that failed in this round
        self.path_failures: list[tuple[str, HotlineError]] = []

    def add(self, other: _Round) -> None:
        """Take ``other``'s outcome beside ours (another part of the batch on the same
        path); the first failure in the batch's order stays the round's."""
        self.attempts += other.attempts
        self.receipts += other.receipts
        self.parked += other.parked
        self.refusals += other.refusals
        self.later += other.later
        self.unsent += other.unsent
        self.failure = self.failure or other.failure
        if not self.path_failures:
            self.path_failures = other.path_failures[:1]

    def merge(self, other: _Round) -> None:
        """Take ``other``'s outcome for the envelopes it tried (a later path's try)."""
        tried = {a.entry_idx for a in other.attempts}
        self.attempts = [a for a in self.attempts if a.entry_idx not in tried] + other.attempts
        self.receipts += other.receipts
        self.parked += other.parked
        self.refusals += other.refusals
        self.later = [i for i in self.later if i not in tried] + other.later
        self.unsent = other.unsent
        self.failure = other.failure
        self.path_failures += other.path_failures


class Outbox:
    def __init__(
        self,
        line: Line,
        transport: Transport | Sequence[Transport],
        recorder: HealthRecorder,
        *,
        rng: random.Random | None = None,
        limits: PeerLimits | None = None,
        on_refused: OnRefused | None = None,
    ) -> None:
        transports = list(transport) if isinstance(transport, Sequence) else [transport]
        if not transports or len({t.path for t in transports}) != len(transports):
            raise ValueError("an outbox needs one transport per path, at least one")
        self.line = line
        #: the most preferred path's transport
        self.transport = transports[0]
        self.peer = self.transport.peer
        self.paths = [_Path(t) for t in transports]
        self.recorder = recorder
        recorder.listeners.append(self._on_path_health)
        self._copies: set[asyncio.Task[None]] = set()
        self.lanes = (_Lane("urgent", URGENT), _Lane("normal", NORMAL))
        self._rng = rng or random.SystemRandom()
        self.limits = limits or PeerLimits(own_limits(line.settings))
        self.limits.listeners.append(self.wake)
        self._limits_seen = self.limits.version
        self.on_refused = on_refused
        s = line.settings
        self.timing = Timing(s.link_test_interval_s, s.link_down_after_failures, s.peer_timeout_s)
        self.delivered = 0
        self.refused = 0
        #: seconds an idle lane waits for a wake before it looks at the queue anyway (the
        #: safety net for anything queued without a wake); tests that count the queue's
        #: reads lengthen it, so that a slow machine does not add a look of its own
        self.look_every_s = LOOK_EVERY_S

    def wake(self, precedence: Precedence | None = None) -> None:
        for lane in self.lanes:
            if precedence is None or int(precedence) in lane.precedences:
                lane.wakes += 1
                lane.wake.set()

    def offer(self, precedence: Precedence, idx: int, raw: bytes) -> None:
        """An envelope just committed to the queue (the sender's ``on_sealed``, on the
        loop, before the wake): an idle lane keeps it for its next round. The store stays
        the truth: a lane that was not idle reads it, and so does a restart."""
        for lane in self.lanes:
            if lane.idle and int(precedence) in lane.precedences:
                lane.handed.append((int(precedence), idx, raw))

    def _on_sealed(self, peer: str, precedence: Precedence, idx: int, raw: bytes) -> None:
        if peer == self.peer:
            self.offer(precedence, idx, raw)

    def retry_now(self) -> None:
        """Forget every backoff and try again now (the line is back, or the peer reports
        sequence numbers missing: whatever is still queued goes at once). Parked
        envelopes stay parked."""
        for lane in self.lanes:
            lane.failures = 0
            lane.retry_at.clear()
            lane.idle = False
            lane.wake.set()

    async def retry_refused(self, codes: frozenset[str] | None = None) -> int:
        """Send again the envelopes the peer refused and clear the ``peer_refused`` alarm;
        returns how many. The operator asks for it by testing the link (every code); a
        change in the peer's limits asks for the size codes, and only for the envelopes
        that fit the new limits (the alarm stays while any is still parked)."""
        peer, clock = self.peer, self.line.clock
        fits = None
        if codes is not None:
            limits = self.limits.effective
            alone = limits.max_request_bytes - framing.request_bytes([0])
            fits = min(limits.max_envelope_bytes, alone)

        def unit(tx: WriteTx) -> int:
            n = store.unpark(tx.conn, peer, codes, max_bytes=fits)
            still = {code for _, code in store.parked(tx.conn, peer)}
            cleared = set(codes) - still if codes is not None else None
            self.recorder.clear_refused(tx.conn, peer, clock.now_us(), cleared)
            return n

        n = int(await self.line.writer.submit(unit))
        if n:
            log.warning("%d envelope(s) %s refused go again", n, peer)
        self.retry_now()
        return n

    def _on_path_health(self, peer: str, path: str, h: Health) -> None:
        """A path's health changed (its link test or a delivery): a DOWN path's exchange
        in flight is abandoned; a path that answers again is used again at once."""
        p = next((p for p in self.paths if p.name == path), None)
        if peer != self.peer or p is None:
            return
        if h.state == "DOWN":
            p.down.set()
        elif h.failures == 0 and (p.down.is_set() or p.failures):
            p.down.clear()
            p.failures, p.retry_at = 0, 0.0
            self.retry_now()

    def detach(self) -> None:
        """Stop hearing path health (the outbox is being replaced or stopped)."""
        if self._on_path_health in self.recorder.listeners:
            self.recorder.listeners.remove(self._on_path_health)

    async def run(self) -> None:
        sealed = self.line.ctx.on_sealed
        sealed.append(self._on_sealed)
        try:
            async with asyncio.TaskGroup() as tg:
                for lane in self.lanes:
                    tg.create_task(self._run_lane(lane), name=f"outbox-{self.peer}-{lane.name}")
        finally:
            if self._on_sealed in sealed:
                sealed.remove(self._on_sealed)
            for task in list(self._copies):
                task.cancel()

    async def _run_lane(self, lane: _Lane) -> None:
        """The lane's loop, pipelined: a round's results (receipts, attempts, refusals)
        are recorded while the next round is delivered, at most one record in flight. The
        entries being recorded are left out of the next round, so nothing goes twice."""
        try:
            await forever(
                f"delivery to {self.peer} ({lane.name})",
                lambda: self._lane_round(lane, pipelined=True),
            )
        finally:
            if lane.recorder is not None:
                lane.recorder.cancel()

    async def _recorded(self, lane: _Lane) -> None:
        """Wait for the record in flight (if any); its error is raised here, once."""
        task, lane.recorder = lane.recorder, None
        try:
            if task is not None:
                await task
        except BaseException:
            lane.fresh = False  # what the record left undone is read again
            raise
        finally:
            lane.recording = frozenset()

    async def _lane_round(self, lane: _Lane, *, pipelined: bool = False) -> None:
        """One batch delivered (or one wait for work): a round of a lane's loop. Not
        ``pipelined`` (as tests drive it), the round's results are recorded before it
        returns; pipelined, they are recorded while the next round runs."""
        if lane.recorder is not None and lane.recorder.done():
            await self._recorded(lane)
        loop = asyncio.get_running_loop()
        woken = lane.wake.is_set()
        lane.wake.clear()
        if self.limits.version != self._limits_seen:
            self._limits_seen = self.limits.version
            await self.retry_refused(SIZE_CODES)  # not idle after this (``retry_now``)
        idle, handed, wakes = lane.idle, lane.handed, lane.wakes
        lane.idle, lane.handed, lane.wakes = False, [], 0
        now = loop.time()
        # the retry state is read here, on the loop: the worker thread gets a snapshot
        waiting = frozenset(i for i, t in lane.retry_at.items() if t > now)
        due = len(waiting) < len(lane.retry_at)
        waiting |= lane.recording
        limits = self.limits.effective
        ready = self._ready(now)
        if ready:  # a round fills every request its first path carries at once
            width = requests_at_once(ready[0].transport)
            limits = framing.Limits(
                limits.max_batch_envelopes * width,
                limits.max_request_bytes * width,
                limits.max_envelope_bytes,
            )
        batch: list[tuple[int, bytes]] = []
        # pipelined (the station's loop, woken at every commit that queues), nothing new
        # since a read that took all it could: reading again finds nothing (a lone
        # message's round was followed by two such reads, each a worker thread's turn and
        # a query, while its receipt was being recorded). Driven round by round (tests,
        # nothing wakes the lane), every round reads.
        fresh = pipelined and lane.fresh
        if ready and idle and handed and len(handed) == wakes and not lane.retry_at:
            # every wake since the lane went idle came with its envelope: the queue holds
            # these and nothing else for the lane; no worker thread, no query
            handed.sort()
            if framing.take([len(raw) for _, _, raw in handed], limits) == len(handed):
                batch = [(idx, raw) for _, idx, raw in handed]
                lane.fresh = not lane.wake.is_set()
        if not batch and ready and (woken or lane.wake.is_set() or due or not fresh):
            lane.fresh = False
            batch, more = await asyncio.to_thread(self._take, lane.precedences, waiting, limits)
            lane.fresh = not more and not lane.wake.is_set()
        if not batch and lane.recorder is not None:  # what is left may be being recorded
            await self._recorded(lane)
            return
        if not batch:
            delay = self.look_every_s
            if lane.retry_at:
                delay = max(0.0, min(min(lane.retry_at.values()) - loop.time(), delay))
            if not ready:
                delay = max(0.0, min(min(p.retry_at for p in self.paths) - now, delay))
            # the queue holds nothing for the lane: what the sender commits now is handed
            lane.idle = (
                pipelined
                and lane.fresh
                and bool(ready)
                and not lane.retry_at
                and not lane.wake.is_set()
            )
            lane.wakes = 0
            try:
                await asyncio.wait_for(lane.wake.wait(), delay)
            except TimeoutError:
                lane.fresh = False  # a retry may be due, or something queued unannounced
                lane.idle = False
            return
        if lane.name == "urgent":
            self._copy_flash(batch, ready[0])
        done = await self._deliver(batch, ready)
        if not pipelined:
            await self._record_round(lane, done)
            return
        await self._recorded(lane)  # the previous round's: at most one record in flight
        lane.recording = frozenset(idx for idx, _ in batch)
        lane.recorder = asyncio.create_task(
            self._record_round(lane, done), name=f"outbox-{self.peer}-{lane.name}-record"
        )

    def _ready(self, now: float) -> list[_Path]:
        """The paths a round may use, in the order it tries them: not backing off, the
        paths not DOWN first (each group in order of preference)."""
        ready = [p for p in self.paths if p.retry_at <= now]
        return sorted(ready, key=lambda p: p.down.is_set())

    async def _deliver(self, batch: list[tuple[int, bytes]], paths: list[_Path]) -> _Round:
        """Deliver ``batch`` on the first of ``paths``; what a transport failure leaves
        unsent goes on the next path at once."""
        done = _Round()
        left = batch
        for path in paths:
            tried = await self._deliver_on(path, left)
            done.merge(tried)
            if tried.failure is None or not tried.unsent:
                break
            unsent = set(tried.unsent)
            left = [(idx, raw) for idx, raw in left if idx in unsent]
            if len(paths) > 1:
                log.warning(
                    "the %s path to %s failed (%s): %d envelope(s) go on the next path",
                    path.name, self.peer, tried.failure.code, len(left),
                )  # fmt: skip
        return done

    async def _exchange(self, path: _Path, raws: list[bytes]) -> list[framing.Result]:
        """One request on ``path``, bounded; abandoned at once when the path goes DOWN
        (unless it was DOWN already: then it is the last resort and has its full wait)."""
        timeout = PeerTimeoutError(f"{self.peer}: delivery on {path.name} timed out")
        if path.down.is_set():
            try:
                async with asyncio.timeout(self.timing.delivery_timeout_s):
                    return await path.transport.deliver(raws)
            except TimeoutError:
                raise timeout from None
        request = asyncio.ensure_future(path.transport.deliver(raws))
        down = asyncio.ensure_future(path.down.wait())
        try:
            finished, _ = await asyncio.wait(
                {request, down},
                timeout=self.timing.delivery_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            down.cancel()
            if not request.done():
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await request
        if request in finished:
            return request.result()
        if down in finished:
            raise PeerTimeoutError(f"{self.peer}: the {path.name} path went DOWN")
        raise timeout

    def _cut(self, batch: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
        """``batch`` in parts of the peer's limits, one request each, in order."""
        limits = self.limits.effective
        sizes = [len(raw) for _, raw in batch]
        parts, i = [], 0
        while i < len(batch):
            n = framing.take(sizes[i:], limits)
            parts.append(batch[i : i + n])
            i += n
        return parts

    async def _deliver_on(self, path: _Path, batch: list[tuple[int, bytes]]) -> _Round:
        """Deliver ``batch`` on ``path``, in requests of the peer's limits: one after the
        other, or as many in flight at once as the path carries (``requests_at_once``:
        the relay, where each request waits for the peer to take it from the stream)."""
        parts = self._cut(batch)
        width = requests_at_once(path.transport)
        if width == 1 or len(parts) == 1:
            done = await self._deliver_parts(path, parts)
        else:
            done = await self._deliver_in_flight(path, parts, width)
        if done.path_failures:
            self._path_failed(path)
        return done

    async def _deliver_in_flight(
        self, path: _Path, parts: list[list[tuple[int, bytes]]], width: int
    ) -> _Round:
        """Each part in its own request, up to ``width`` in flight, each with its own
        outcome (a part the peer refuses whole is split on its own). After a transport
        failure no further part is sent: those not yet sent fail with it (and go on the
        next path); the receipts of the parts delivered count."""
        gate = asyncio.Semaphore(width)
        failed: list[HotlineError] = []

        async def one(part: list[tuple[int, bytes]]) -> _Round:
            async with gate:
                if failed:
                    skipped = _Round()
                    self._failed(skipped, part, [], failed[0], path.name, unsent=True)
                    return skipped
                r = await self._deliver_parts(path, [part])
                if r.path_failures:
                    failed.append(r.path_failures[0][1])
                return r

        done = _Round()
        for r in await asyncio.gather(*(one(p) for p in parts)):
            done.add(r)
        return done

    async def _deliver_parts(self, path: _Path, work: list[list[tuple[int, bytes]]]) -> _Round:
        """Deliver the parts of ``work`` on ``path``, one after the other; a request the
        peer refuses whole is split in halves until the envelope at fault is alone. Stops
        at the first transport failure (the caller backs the path off)."""
        done = _Round()
        while work:
            part = work.pop(0)
            try:
                results = await self._exchange(path, [raw for _, raw in part])
            except TrustError as exc:  # the peer refused the whole request
                if exc.code in TRANSIENT:
                    self._failed(done, part, work, exc, path.name, unsent=False)
                    break
                if len(part) > 1:
                    half = len(part) // 2
                    work[:0] = [part[:half], part[half:]]
                    continue
                self._refused(done, part[0][0], exc.code, path.name)
                continue
            except HotlineError as exc:
                self._failed(done, part, work, exc, path.name, unsent=True)
                done.path_failures.append((path.name, exc))
                break
            for (idx, raw), result in zip(part, results, strict=True):
                if result.receipt is not None:
                    done.attempts.append(store.Attempt(idx, path=path.name))
                    done.receipts.append((idx, result.receipt, primitives.sha256(raw)))
                else:
                    self._refused(done, idx, result.refused or "refused", path.name)
        return done

    def _path_failed(self, path: _Path) -> None:
        path.failures += 1
        path.retry_at = asyncio.get_running_loop().time() + self._backoff(path.failures)

    def _copy_flash(self, batch: list[tuple[int, bytes]], first: _Path) -> None:
        """Send the batch's FLASH envelopes of the channels in ``flash_every_path`` on
        every other path that is not DOWN and not backing off, now, beside the round."""
        every = self.line.settings.flash_every_path
        if not every or len(self.paths) < 2:
            return
        raws = []
        for _, raw in batch:
            try:
                h = wire.decode(raw, max_bytes=len(raw)).header
            except HotlineError:  # pragma: no cover - our own envelope
                continue
            if h.precedence is Precedence.FLASH and ("*" in every or h.channel in every):
                raws.append(raw)
        if not raws:
            return
        now = asyncio.get_running_loop().time()
        for path in self._ready(now):
            if path is not first and not path.down.is_set():
                task = asyncio.create_task(self._copy(path, raws), name=f"flash-{path.name}")
                self._copies.add(task)
                task.add_done_callback(self._copies.discard)

    async def _copy(self, path: _Path, raws: list[bytes]) -> None:
        """One copy of FLASH envelopes on ``path``; its receipts are recorded like any
        (the first to arrive counts, the rest change nothing)."""
        try:
            results = []
            for part in self._cut(list(enumerate(raws))):  # a round may hold several requests
                results += await self._exchange(path, [raw for _, raw in part])
        except HotlineError as exc:
            log.warning("FLASH copy on the %s path to %s failed: %s", path.name, self.peer, exc)
            return
        got = [(r.receipt, primitives.sha256(raw)) for raw, r in zip(raws, results, strict=True)
               if r.receipt is not None]  # fmt: skip
        if got:
            await self._record([r for r, _ in got], [h for _, h in got])

    def _refused(self, done: _Round, idx: int, code: str, path: str) -> None:
        log.warning("%s refused envelope #%d: %s", self.peer, idx, code)
        done.refusals.append((idx, code))
        if code in TRANSIENT:
            done.attempts.append(store.Attempt(idx, error=code, path=path))
            done.later.append(idx)
        else:
            done.attempts.append(store.Attempt(idx, error=code, refused=code, path=path))
            done.parked.append((idx, code))

    def _failed(
        self,
        done: _Round,
        part: list[tuple[int, bytes]],
        work: list[list[tuple[int, bytes]]],
        exc: HotlineError,
        path: str,
        *,
        unsent: bool,
    ) -> None:
        done.failure = exc
        for chunk in [part, *work]:
            for idx, _ in chunk:
                done.attempts.append(
                    store.Attempt(idx, error=exc.code, sent=exc.code not in NOT_SENT, path=path)
                )
                done.later.append(idx)
                if unsent:
                    done.unsent.append(idx)

    async def _record_round(self, lane: _Lane, done: _Round) -> None:
        loop = asyncio.get_running_loop()
        s = self.line.settings
        if done.failure is not None:
            lane.failures += 1
            wait = self._backoff(lane.failures)
            if done.unsent:  # every path failed: wait for the first to be ready again
                wait = max(0.0, min(p.retry_at for p in self.paths) - loop.time())
            log.warning(
                "delivery to %s failed (%s); retry in %.1fs", self.peer, done.failure.code, wait
            )
        else:
            lane.failures = 0
            wait = s.retry_max_s
        for idx in done.later:
            lane.retry_at[idx] = loop.time() + wait
        for idx, _ in done.parked:
            lane.retry_at.pop(idx, None)
        # the attempts, the receipts and the refusals go to the writer together: one group
        # commit, not several. With receipts, the attempts are submitted with them, after
        # their check (in a worker thread): submitted at once, they would commit alone
        # first, and the receipts (the end of a message's latency) wait for that fsync
        note = self._note_unit(done.attempts)
        jobs: list[Coroutine[Any, Any, Any]] = []
        if not done.receipts and note is not None:
            jobs.append(self.line.writer.submit(note))
        # every receipt of the round checked together: each distinct root's signature once
        at = len(jobs)
        jobs.append(
            self._record(
                [r for _, r, _ in done.receipts],
                [h for _, _, h in done.receipts],
                also=note if done.receipts else None,
            )
        )
        if done.refusals:
            jobs.append(self.recorder.refused(self.peer, done.refusals, parked=done.parked))
        for path, failure in done.path_failures:
            if isinstance(failure, TransportError):
                jobs.append(self.recorder.failure(self.peer, failure.code, path))
        voiding = [(idx, code) for idx, code in done.parked if voids.voids_number(code)]
        if voiding:  # refused for good: the number is declared void (service/voids.py)
            jobs.append(self.line.void_parked(self.peer, voiding))
        outcomes = (await asyncio.gather(*jobs))[at]
        for (idx, _, _), ok in zip(done.receipts, outcomes, strict=True):
            if ok is None:  # the receipt did not check: not delivered, try again later
                lane.retry_at[idx] = loop.time() + s.retry_max_s
            else:
                lane.retry_at.pop(idx, None)
                self.delivered += int(ok)
        self.refused += len(done.parked)
        if self.on_refused is not None:
            for idx, code in done.refusals:
                self.on_refused(self.peer, code, idx)

    def _note_unit(self, attempts: list[store.Attempt]) -> Callable[[WriteTx], None] | None:
        """The unit that records a round's delivery attempts (None: there are none)."""
        if not attempts:
            return None
        clock = self.line.clock

        def unit(tx: WriteTx) -> None:
            store.note_attempts(tx.conn, attempts, clock.now_us())

        return unit

    async def _record(
        self,
        receipts: list[bytes],
        hashes: list[bytes],
        also: Callable[[WriteTx], None] | None = None,
    ) -> list[bool | None]:
        """Record the peer's receipts, each naming the envelope of ``hashes``: True when
        new, False when already held, None when it does not check (then the envelope
        stays queued). ``also``: a unit committed with them (the round's attempts)."""
        if not receipts:
            return []
        out: list[bool | None] = []
        recorded = await self.line.record_receipts(self.peer, receipts, expected=hashes, also=also)
        for r in recorded:
            if isinstance(r, HotlineError):
                log.error("receipt from %s refused: %s", self.peer, r)
                out.append(None)
            else:
                out.append(r)
        return out

    def _pending(
        self, precedences: list[int], waiting: frozenset[int], limits: framing.Limits
    ) -> list[tuple[int, bytes]]:
        """The next batch (worker thread): queued, not parked, not waiting for a retry,
        cut to ``limits``. ``waiting`` is a snapshot taken on the loop."""
        return self._take(precedences, waiting, limits)[0]

    def _take(
        self, precedences: list[int], waiting: frozenset[int], limits: framing.Limits
    ) -> tuple[list[tuple[int, bytes]], bool]:
        """``_pending``, and whether more may be queued than it took (the batch was cut
        to the limits, or the query's limit was reached)."""
        limit = limits.max_batch_envelopes + len(waiting)
        with self.line.reader.connect() as conn:
            found = store.candidates(conn, self.peer, precedences, limit=limit)
            rows = [(idx, size) for idx, size in found if idx not in waiting]
            n = framing.take([size for _, size in rows], limits)
            more = n < len(rows) or len(found) >= limit
            return store.envelopes(conn, [idx for idx, _ in rows[:n]]), more

    def _backoff(self, failures: int) -> float:
        s = self.line.settings
        ceiling = min(s.retry_max_s, s.retry_base_s * 2 ** min(failures - 1, 16))
        return self._rng.uniform(ceiling / 2, ceiling)  # "equal jitter"


def requests_at_once(transport: Transport) -> int:
    """How many requests ``transport`` carries at once (its ``requests_at_once``; 1 when
    it has none): a round takes that many requests' worth of envelopes."""
    return max(1, int(getattr(transport, "requests_at_once", 1)))
