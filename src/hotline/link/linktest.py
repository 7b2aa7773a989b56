"""Link tests and link health for one peer.

Owns the scheduled test exchange (round trip, clock skew, gaps the peer reports, the
peer's advertised limits), the health transitions it and deliveries cause, the DOWN
alarm, the ``peer_refused`` alarm (raised when the outbox parks an envelope the peer
refused), and recording each test in the ledger. Every test waits at most
``Timing.test_timeout_s`` and failed tests are repeated by ``Timing.wait_after``, so a
peer that accepts TCP and never answers is DOWN within two intervals. The tester speaks
to a ``Transport``. The event loop only schedules: building a test (a database read)
and checking its reply run in worker threads, writes in the writer. Must not touch:
envelope delivery (``outbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy.engine import Connection

from hotline.errors import HotlineError, PeerTimeoutError
from hotline.link import health
from hotline.link.limits import PeerLimits
from hotline.link.transport import Transport
from hotline.service import voids
from hotline.service.events import raise_alarm
from hotline.service.line import Line
from hotline.service.witnessing import Witnessing
from hotline.store import linkhistory, operational
from hotline.store.writer import WriteTx
from hotline.supervise import forever
from hotline.wire.messages import LinkTestReplyPayload

log = logging.getLogger(__name__)

#: called with (peer, reply) for every link-test reply that passed its checks
OnReply = Callable[[str, LinkTestReplyPayload], None]

#: what the operator should do about a refusal, by the peer's code
_ADVICE = {
    "too_large": "it is larger than {peer} accepts: send it shorter or in parts, or ask "
    "{peer}'s operators to raise max_envelope_bytes / max_request_bytes; it goes again "
    "by itself when a link test shows {peer}'s limits changed",
    "replay": "{peer} holds another envelope under its sequence number (was this station "
    "restored from a backup?): compare both stations' records before going on",
    "old_message_id": "{peer} already holds its message id (was this station restored "
    "from a backup?): compare both stations' records before going on",
}
_DEFAULT_ADVICE = "ask {peer}'s operators why (their log names the detail)"


def refusal_advice(peer: str, code: str) -> str:
    what = _ADVICE.get(code, _DEFAULT_ADVICE).format(peer=peer)
    if voids.voids_number(code):
        return (
            f"{peer} refused a message ({code}); its sequence number is declared void, so "
            f"the line goes on without it and it is never sent again. {what}; then send a "
            f"corrected message (it gets a new number)"
        )
    return (
        f"{peer} refused a message ({code}); it is parked, not retried. {what}; "
        f"after the cause is fixed, test the link (hotline link-test) to send it again"
    )


class HealthRecorder:
    """Stores link health through the writer and raises/clears the DOWN alarm."""

    def __init__(self, line: Line) -> None:
        self.line = line
        s = line.settings
        self.thresholds = health.Thresholds(
            degraded_rtt_ms=s.link_degraded_rtt_ms,
            max_skew_ms=s.max_clock_skew_s * 1000 / 10,
            down_after=s.link_down_after_failures,
        )
        self._state: dict[str, health.Health] = {}

    async def success(self, peer: str, rtt_ms: float, skew_ms: float) -> health.Health:
        now = self.line.clock.now_us()
        return await self._store(
            peer,
            lambda h: health.after_success(h, rtt_ms, skew_ms, now, self.thresholds),
            tested=True,
        )

    async def failure(self, peer: str, error: str) -> health.Health:
        now = self.line.clock.now_us()
        return await self._store(
            peer, lambda h: health.after_failure(h, error, now, self.thresholds), tested=True
        )

    async def _store(self, peer: str, step: Any, *, tested: bool = False) -> health.Health:
        """Apply ``step`` to the stored health; a link test (``tested``) also goes into the
        peer's history ring (store/linkhistory.py), in the same writer unit."""
        events = self.line.events
        keep = self.line.settings.link_history_size

        def unit(tx: WriteTx) -> health.Health:
            before = operational.load_health(tx.conn, peer)
            after: health.Health = step(before)
            operational.save_health(tx.conn, peer, after)
            now = self.line.clock.now_us()
            if tested:
                ok = after.failures == 0
                linkhistory.add(
                    tx.conn,
                    peer,
                    linkhistory.LinkTest(
                        at_us=after.last_test_at_us or now,
                        state=after.state,
                        ok=ok,
                        rtt_ms=after.rtt_ms if ok else None,
                        skew_ms=after.skew_ms if ok else None,
                        error=None if ok else after.last_error,
                    ),
                    keep,
                )
            if after.state == "DOWN" and before.state != "DOWN":
                raise_alarm(
                    tx,
                    self.line.events,
                    operational.raise_alarm,
                    kind="link_down",
                    severity="HIGH",
                    peer=peer,
                    ref=None,
                    detail=f"line to {peer} is DOWN: {after.last_error}",
                    now_us=now,
                )
            elif after.state in ("UP", "DEGRADED") and after.failures == 0:
                operational.clear_alarm(tx.conn, kind="link_down", peer=peer, now_us=now)
            if after.state != before.state:
                content = {"old_state": before.state, "state": after.state, "at_us": now,
                           "failures": after.failures, "last_error": after.last_error,
                           "rtt_ms": after.rtt_ms}  # fmt: skip
                tx.after_commit(lambda: events.publish("link.state", peer=peer, **content))
            return after

        result = await self.line.writer.submit(unit)
        self._state[peer] = result
        return result

    async def refused(
        self, peer: str, refusals: list[tuple[int, str]], *, parked: list[tuple[int, str]]
    ) -> health.Health:
        """Count envelopes the peer refused; raise ``peer_refused`` (once per code) for
        those parked."""
        clock = self.line.clock

        def unit(tx: WriteTx) -> health.Health:
            before = operational.load_health(tx.conn, peer)
            after = health.after_refusals(before, len(refusals), refusals[-1][1])
            operational.save_health(tx.conn, peer, after)
            for code in sorted({code for _, code in parked}):
                raise_alarm(
                    tx,
                    self.line.events,
                    operational.raise_alarm,
                    kind="peer_refused",
                    severity="HIGH",
                    peer=peer,
                    ref=code,
                    detail=refusal_advice(peer, code),
                    now_us=clock.now_us(),
                )
            return after

        result: health.Health = await self.line.writer.submit(unit)
        self._state[peer] = result
        return result

    @staticmethod
    def clear_refused(
        conn: Connection, peer: str, now_us: int, codes: Collection[str] | None = None
    ) -> None:
        """Clear ``peer_refused`` (for ``codes`` only, when given): in a writer unit."""
        if codes is None:
            operational.clear_alarm(conn, kind="peer_refused", peer=peer, now_us=now_us)
            return
        for code in codes:
            operational.clear_alarm(conn, kind="peer_refused", peer=peer, now_us=now_us, ref=code)

    def state(self, peer: str) -> health.Health | None:
        return self._state.get(peer)


class LinkTester:
    def __init__(
        self,
        line: Line,
        transport: Transport,
        recorder: HealthRecorder,
        interval_s: float,
        on_missing: Any = None,
        witnessing: Witnessing | None = None,
        *,
        limits: PeerLimits | None = None,
        on_reply: OnReply | None = None,
    ) -> None:
        self.line = line
        self.transport = transport
        self.peer = transport.peer
        self.recorder = recorder
        self.interval_s = interval_s
        self.on_missing = on_missing
        self.witnessing = witnessing
        self.limits = limits
        self.on_reply = on_reply
        s = line.settings
        self.timing = health.Timing(interval_s, s.link_down_after_failures, s.peer_timeout_s)
        self._now = asyncio.Event()
        self._one_at_a_time = asyncio.Lock()
        self._failures = 0
        #: what the peer last said it holds contiguously from us (its replies): our void
        #: declarations start above it
        self._peer_contiguous = 0

    def test_now(self) -> None:
        self._now.set()

    async def run(self) -> None:
        """Test every ``interval_s``; after a failure, sooner (``Timing.wait_after``), so
        that a hung peer is DOWN within two intervals and a line that comes back is seen
        UP within seconds."""
        await forever(f"link test to {self.peer}", self._round)

    async def _round(self) -> None:
        result = await self.test_once()
        self._failures = 0 if result["ok"] else self._failures + 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._now.wait(), self.timing.wait_after(self._failures))
        self._now.clear()

    async def test_once(self) -> dict[str, Any]:
        """One link test; returns what it measured (and records it in the ledger). One at a
        time per line; a witness conflict (our old size is not the peer's) is retried once
        at once, with the size the peer named."""
        async with self._one_at_a_time:
            result = await self._test()
            if result.get("witness_error") == "witness_conflict":
                result = await self._test()
            return result

    async def _test(self) -> dict[str, Any]:
        clock = self.line.clock
        offer = None
        try:
            if self.witnessing is not None:
                offer = await self.witnessing.offer(self.peer)
            void = await asyncio.to_thread(
                self.line.declared_void, self.peer, self._peer_contiguous
            )
            # building the test reads the store, checking the reply decodes, verifies and
            # opens up to max_envelope_bytes: both in a worker thread, never on the loop
            env, sent = await asyncio.to_thread(
                self.line.make_link_test,
                self.peer,
                witness=offer.request if offer else None,
                prove=offer.prove if offer else None,
                void=void,
            )
            raw = await self._exchange(env.raw)
            t4 = clock.now_us()
            reply = await asyncio.to_thread(self.line.check_link_reply, self.peer, sent, raw)
        except HotlineError as exc:
            log.warning("link test to %s failed: %s", self.peer, exc)
            h = await self.recorder.failure(self.peer, exc.code)
            result: dict[str, Any] = {
                "test": "link",
                "peer": self.peer,
                "ok": False,
                "error": exc.code,
                "state": h.state,
            }
        else:
            rtt, skew = health.measure(reply.t1_us, reply.t2_us, reply.t3_us, t4)
            h = await self.recorder.success(self.peer, rtt, skew)
            result = {
                "test": "link",
                "peer": self.peer,
                "ok": True,
                "rtt_ms": round(rtt, 3),
                "skew_ms": round(skew, 3),
                "state": h.state,
                "missing": [list(r) for r in reply.missing],
            }
            if sent.void:
                result["void"] = [list(r) for r in sent.void]
            if reply.held_contiguous is not None:
                self._peer_contiguous = reply.held_contiguous
            if reply.limits is not None:
                result["limits"] = reply.limits.model_dump()
                if self.limits is not None and self.limits.hear(reply.limits):
                    log.warning("%s advertises new limits: %s", self.peer, reply.limits)
            if self.on_reply is not None:
                self.on_reply(self.peer, reply)
            if reply.missing and self.on_missing is not None:
                self.on_missing(self.peer, reply.missing)
            if offer is not None and self.witnessing is not None:
                result |= await self.witnessing.take_reply(self.peer, offer, reply)
        await self.line.record_link_test(self.peer, result)
        return result

    async def _exchange(self, raw: bytes) -> bytes:
        """The transport's link test, bounded by ``Timing.test_bound_s`` (a ``PeerClient``
        built with ``link_test_timeout_s=Timing.test_timeout_s`` times out first)."""
        try:
            async with asyncio.timeout(self.timing.test_bound_s):
                return await self.transport.link_test(raw)
        except TimeoutError:
            raise PeerTimeoutError(
                f"{self.peer}: no link test reply in {self.timing.test_bound_s:.1f} s"
            ) from None
