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


#: called on the loop with (peer, path, the path's health) after every change is stored
PathListener = Callable[[str, str, health.Health], None]


class HealthRecorder:
    """Stores link health per (peer, path) through the writer, and the line's health (the
    best of its paths); raises and clears the DOWN alarms: ``link_down`` when every path
    of a line is DOWN, ``path_down`` (ref: the path) for each DOWN path of a line that
    has several."""

    def __init__(self, line: Line) -> None:
        self.line = line
        s = line.settings
        self.thresholds = health.Thresholds(
            degraded_rtt_ms=s.link_degraded_rtt_ms,
            max_skew_ms=s.max_clock_skew_s * 1000 / 10,
            down_after=s.link_down_after_failures,
        )
        self._state: dict[str, health.Health] = {}
        self._paths: dict[tuple[str, str], health.Health] = {}
        #: the paths of each peer's line, most preferred first
        self.order: dict[str, list[str]] = {}
        self.listeners: list[PathListener] = []

    def register(self, peer: str, paths: list[str]) -> None:
        """The paths of ``peer``'s line, most preferred first."""
        self.order[peer] = list(paths)

    async def success(
        self, peer: str, rtt_ms: float, skew_ms: float, path: str = "https"
    ) -> health.Health:
        now = self.line.clock.now_us()
        return await self._store(
            peer,
            path,
            lambda h: health.after_success(h, rtt_ms, skew_ms, now, self.thresholds),
            tested=True,
        )

    async def failure(
        self, peer: str, error: str, path: str = "https", *, tested: bool = True
    ) -> health.Health:
        """A failed link test (``tested``) or delivery on ``path``; the path's health."""
        now = self.line.clock.now_us()
        return await self._store(
            peer,
            path,
            lambda h: health.after_failure(h, error, now, self.thresholds),
            tested=tested,
        )

    async def _store(
        self, peer: str, path: str, step: Any, *, tested: bool = False
    ) -> health.Health:
        """Apply ``step`` to the stored health of ``path``, then the line's health from its
        paths'; a link test (``tested``) also goes into the peer's history ring
        (store/linkhistory.py), in the same writer unit. Returns the path's health."""
        events = self.line.events
        keep = self.line.settings.link_history_size
        order = self.order.get(peer, [path])

        def unit(tx: WriteTx) -> tuple[health.Health, health.Health]:
            paths = operational.load_path_health(tx.conn, peer)
            p_before = paths.get(path, health.Health())
            p_after: health.Health = step(p_before)
            operational.save_path_health(tx.conn, peer, path, p_after)
            paths[path] = p_after
            ranked = {name: paths[name] for name in order if name in paths}
            before = operational.load_health(tx.conn, peer)
            after = health.combine(ranked or {path: p_after}, before)
            operational.save_health(tx.conn, peer, after)
            now = self.line.clock.now_us()
            if tested:
                ok = p_after.failures == 0
                linkhistory.add(
                    tx.conn,
                    peer,
                    linkhistory.LinkTest(
                        at_us=p_after.last_test_at_us or now,
                        state=p_after.state,
                        ok=ok,
                        rtt_ms=p_after.rtt_ms if ok else None,
                        skew_ms=p_after.skew_ms if ok else None,
                        error=None if ok else p_after.last_error,
                        path=path,
                    ),
                    keep,
                )
            if len(order) > 1:
                self._path_alarm(tx, peer, path, p_before, p_after, now)
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
            if p_after.state != p_before.state:
                moved = {"path": path, "old_state": p_before.state, "state": p_after.state,
                         "at_us": now, "last_error": p_after.last_error}  # fmt: skip
                tx.after_commit(lambda: events.publish("path.state", peer=peer, **moved))
            return p_after, after

        p_result, result = await self.line.writer.submit(unit)
        self._state[peer] = result
        self._paths[(peer, path)] = p_result
        for listener in self.listeners:
            listener(peer, path, p_result)
        return p_result

    def _path_alarm(
        self,
        tx: WriteTx,
        peer: str,
        path: str,
        before: health.Health,
        after: health.Health,
        now: int,
    ) -> None:
        """``path_down`` for one path of a line that has several (in the writer unit)."""
        if after.state == "DOWN" and before.state != "DOWN":
            raise_alarm(
                tx,
                self.line.events,
                operational.raise_alarm,
                kind="path_down",
                severity="HIGH",
                peer=peer,
                ref=path,
                detail=f"the {path} path to {peer} is DOWN ({after.last_error}); "
                f"messages go on the other paths",
                now_us=now,
            )
        elif after.state in ("UP", "DEGRADED") and after.failures == 0:
            operational.clear_alarm(tx.conn, kind="path_down", peer=peer, now_us=now, ref=path)

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
        """The line's health as last stored by this process (None: not yet)."""
        return self._state.get(peer)

    def path_state(self, peer: str, path: str) -> health.Health | None:
        """One path's health as last stored by this process (None: not yet)."""
        return self._paths.get((peer, path))


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
        witness_lock: asyncio.Lock | None = None,
    ) -> None:
        self.line = line
        self.transport = transport
        self.peer = transport.peer
        self.path = transport.path
        #: shared by the testers of one peer's paths: one witnessing exchange at a time
        #: (a test on another path while one runs goes without a checkpoint offer)
        self.witness_lock = witness_lock or asyncio.Lock()
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
        await forever(f"link test to {self.peer} ({self.path})", self._round)

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
        if self.witnessing is None or self.witness_lock.locked():
            return await self._test_on_path(witness=False)
        async with self.witness_lock:
            return await self._test_on_path(witness=True)

    async def _test_on_path(self, *, witness: bool) -> dict[str, Any]:
        clock = self.line.clock
        offer = None
        try:
            if witness and self.witnessing is not None:
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
            log.warning("link test to %s (%s) failed: %s", self.peer, self.path, exc)
            h = await self.recorder.failure(self.peer, exc.code, self.path)
            result: dict[str, Any] = {
                "test": "link",
                "peer": self.peer,
                "path": self.path,
                "ok": False,
                "error": exc.code,
                "state": h.state,
            }
        else:
            rtt, skew = health.measure(reply.t1_us, reply.t2_us, reply.t3_us, t4)
            h = await self.recorder.success(self.peer, rtt, skew, self.path)
            result = {
                "test": "link",
                "peer": self.peer,
                "path": self.path,
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
                f"{self.peer}: no link test reply on {self.path} in "
                f"{self.timing.test_bound_s:.1f} s"
            ) from None
