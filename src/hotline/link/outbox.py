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
from collections.abc import Callable, Coroutine
from typing import Any

from hotline.errors import HotlineError, PeerTimeoutError, TransportError, TrustError
from hotline.link import framing
from hotline.link.health import Timing
from hotline.link.limits import PeerLimits, own_limits
from hotline.link.linktest import HealthRecorder
from hotline.link.transport import Transport
from hotline.service import voids
from hotline.service.line import Line
from hotline.store import outbox as store
from hotline.store.writer import WriteTx
from hotline.supervise import forever
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

#: called with (peer, the peer's code, entry index) when the peer refuses an envelope
OnRefused = Callable[[str, str, int], None]


class _Lane:
    def __init__(self, name: str, precedences: tuple[Precedence, ...]) -> None:
        self.name = name
        self.precedences = [int(p) for p in precedences]
        self.wake = asyncio.Event()
        self.failures = 0
        self.retry_at: dict[int, float] = {}  # entry idx -> loop time of next attempt


class _Round:
    """What one lane's round did, to be recorded in one group commit."""

    def __init__(self) -> None:
        self.attempts: list[store.Attempt] = []
        self.receipts: list[tuple[int, bytes]] = []
        self.parked: list[tuple[int, str]] = []
        self.refusals: list[tuple[int, str]] = []  # every refusal, parked or not
        self.later: list[int] = []  # back off: transport failure or transient refusal
        self.failure: HotlineError | None = None


class Outbox:
    def __init__(
        self,
        line: Line,
        transport: Transport,
        recorder: HealthRecorder,
        *,
        rng: random.Random | None = None,
        limits: PeerLimits | None = None,
        on_refused: OnRefused | None = None,
    ) -> None:
        self.line = line
        self.transport = transport
        self.peer = transport.peer
        self.recorder = recorder
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

    def wake(self, precedence: Precedence | None = None) -> None:
        for lane in self.lanes:
            if precedence is None or int(precedence) in lane.precedences:
                lane.wake.set()

    def retry_now(self) -> None:
        """Forget every backoff and try again now (the line is back, or the peer reports
        sequence numbers missing: whatever is still queued goes at once). Parked
        envelopes stay parked."""
        for lane in self.lanes:
            lane.failures = 0
            lane.retry_at.clear()
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

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for lane in self.lanes:
                tg.create_task(self._run_lane(lane), name=f"outbox-{self.peer}-{lane.name}")

    async def _run_lane(self, lane: _Lane) -> None:
        await forever(f"delivery to {self.peer} ({lane.name})", lambda: self._lane_round(lane))

    async def _lane_round(self, lane: _Lane) -> None:
        """One batch delivered (or one wait for work): a round of a lane's loop."""
        loop = asyncio.get_running_loop()
        lane.wake.clear()
        if self.limits.version != self._limits_seen:
            self._limits_seen = self.limits.version
            await self.retry_refused(SIZE_CODES)
        now = loop.time()
        # the retry state is read here, on the loop: the worker thread gets a snapshot
        waiting = frozenset(i for i, t in lane.retry_at.items() if t > now)
        limits = self.limits.effective
        batch = await asyncio.to_thread(self._pending, lane.precedences, waiting, limits)
        if not batch:
            delay = 5.0
            if lane.retry_at:
                delay = max(0.0, min(min(lane.retry_at.values()) - loop.time(), delay))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.wake.wait(), delay)
            return
        done = await self._deliver(batch)
        await self._record_round(lane, done)

    async def _deliver(self, batch: list[tuple[int, bytes]]) -> _Round:
        """Deliver ``batch``; a request the peer refuses whole is split in halves until
        the envelope at fault is alone. Stops at the first transport failure."""
        done = _Round()
        work = [batch]
        while work:
            part = work.pop(0)
            try:
                async with asyncio.timeout(self.timing.delivery_timeout_s):
                    results = await self.transport.deliver([raw for _, raw in part])
            except TimeoutError:
                self._failed(done, part, work, PeerTimeoutError(f"{self.peer}: delivery timed out"))
                break
            except TrustError as exc:  # the peer refused the whole request
                if exc.code in TRANSIENT:
                    self._failed(done, part, work, exc)
                    break
                if len(part) > 1:
                    half = len(part) // 2
                    work[:0] = [part[:half], part[half:]]
                    continue
                self._refused(done, part[0][0], exc.code)
                continue
            except HotlineError as exc:
                self._failed(done, part, work, exc)
                break
            for (idx, _), result in zip(part, results, strict=True):
                if result.receipt is not None:
                    done.attempts.append(store.Attempt(idx))
                    done.receipts.append((idx, result.receipt))
                else:
                    self._refused(done, idx, result.refused or "refused")
        return done

    def _refused(self, done: _Round, idx: int, code: str) -> None:
        log.warning("%s refused envelope #%d: %s", self.peer, idx, code)
        done.refusals.append((idx, code))
        if code in TRANSIENT:
            done.attempts.append(store.Attempt(idx, error=code))
            done.later.append(idx)
        else:
            done.attempts.append(store.Attempt(idx, error=code, refused=code))
            done.parked.append((idx, code))

    def _failed(
        self,
        done: _Round,
        part: list[tuple[int, bytes]],
        work: list[list[tuple[int, bytes]]],
        exc: HotlineError,
    ) -> None:
        done.failure = exc
        for chunk in [part, *work]:
            for idx, _ in chunk:
                done.attempts.append(
                    store.Attempt(idx, error=exc.code, sent=exc.code not in NOT_SENT)
                )
                done.later.append(idx)

    async def _record_round(self, lane: _Lane, done: _Round) -> None:
        loop = asyncio.get_running_loop()
        s = self.line.settings
        if done.failure is not None:
            lane.failures += 1
            wait = self._backoff(lane.failures)
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
        # commit, not several
        jobs: list[Coroutine[Any, Any, Any]] = [self._note(done.attempts)]
        jobs += [self._record(receipt) for _, receipt in done.receipts]
        if done.refusals:
            jobs.append(self.recorder.refused(self.peer, done.refusals, parked=done.parked))
        if isinstance(done.failure, TransportError):
            jobs.append(self.recorder.failure(self.peer, done.failure.code))
        voiding = [(idx, code) for idx, code in done.parked if voids.voids_number(code)]
        if voiding:  # refused for good: the number is declared void (service/voids.py)
            jobs.append(self.line.void_parked(self.peer, voiding))
        _noted, *outcomes = await asyncio.gather(*jobs)
        for (idx, _), ok in zip(done.receipts, outcomes[: len(done.receipts)], strict=True):
            if ok is None:  # the receipt did not check: not delivered, try again later
                lane.retry_at[idx] = loop.time() + s.retry_max_s
            else:
                lane.retry_at.pop(idx, None)
                self.delivered += int(ok)
        self.refused += len(done.parked)
        if self.on_refused is not None:
            for idx, code in done.refusals:
                self.on_refused(self.peer, code, idx)

    async def _note(self, attempts: list[store.Attempt]) -> None:
        if not attempts:
            return
        clock = self.line.clock

        def unit(tx: WriteTx) -> None:
            store.note_attempts(tx.conn, attempts, clock.now_us())

        await self.line.writer.submit(unit)

    async def _record(self, receipt: bytes) -> bool | None:
        """Record the peer's receipt: True when new, False when already held, None when it
        does not check (then the envelope stays queued)."""
        try:
            return await self.line.record_receipt(self.peer, receipt)
        except HotlineError as exc:
            log.error("receipt from %s refused: %s", self.peer, exc)
            return None

    def _pending(
        self, precedences: list[int], waiting: frozenset[int], limits: framing.Limits
    ) -> list[tuple[int, bytes]]:
        """The next batch (worker thread): queued, not parked, not waiting for a retry,
        cut to ``limits``. ``waiting`` is a snapshot taken on the loop."""
        with self.line.reader.connect() as conn:
            rows = store.candidates(
                conn, self.peer, precedences, limit=limits.max_batch_envelopes + len(waiting)
            )
            rows = [(idx, size) for idx, size in rows if idx not in waiting]
            n = framing.take([size for _, size in rows], limits)
            return store.envelopes(conn, [idx for idx, _ in rows[:n]])

    def _backoff(self, failures: int) -> float:
        s = self.line.settings
        ceiling = min(s.retry_max_s, s.retry_base_s * 2 ** min(failures - 1, 16))
        return self._rng.uniform(ceiling / 2, ceiling)  # "equal jitter"
