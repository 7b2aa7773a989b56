"""The durable outbox of one peer: delivery with retries, backoff and jitter.

Owns the delivery loops. The queue itself is the ``outbox`` projection (every envelope
we signed for the peer that has no receipt yet), so nothing is lost across a crash:
after a restart the loops start again from the table. Two lanes per peer, so a FLASH
never waits behind a backlog: the urgent lane carries FLASH and IMMEDIATE, the other
PRIORITY and ROUTINE; each sends the lowest precedence value, then the lowest sequence
number, first. Must not touch: envelope contents (opaque bytes) or health rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import sqlalchemy as sa

from hotline.errors import HotlineError, TransportError
from hotline.ledger.entry import Entry
from hotline.link.client import PeerClient
from hotline.link.linktest import HealthRecorder
from hotline.service.line import Line
from hotline.store import schema
from hotline.store.writer import WriteTx
from hotline.supervise import forever
from hotline.wire.envelope import Precedence

log = logging.getLogger(__name__)

URGENT = (Precedence.FLASH, Precedence.IMMEDIATE)
#: error codes of attempts that never left this station (no connection was made)
NOT_SENT = frozenset({"peer_unreachable"})
NORMAL = (Precedence.PRIORITY, Precedence.ROUTINE)


class _Lane:
    def __init__(self, name: str, precedences: tuple[Precedence, ...]) -> None:
        self.name = name
        self.precedences = [int(p) for p in precedences]
        self.wake = asyncio.Event()
        self.failures = 0
        self.retry_at: dict[int, float] = {}  # entry idx -> loop time of next attempt


class Outbox:
    def __init__(
        self,
        line: Line,
        client: PeerClient,
        recorder: HealthRecorder,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.line = line
        self.client = client
        self.peer = client.peer
        self.recorder = recorder
        self.lanes = (_Lane("urgent", URGENT), _Lane("normal", NORMAL))
        self._rng = rng or random.SystemRandom()
        self.delivered = 0

    def wake(self, precedence: Precedence | None = None) -> None:
        for lane in self.lanes:
            if precedence is None or int(precedence) in lane.precedences:
                lane.wake.set()

    def retry_now(self) -> None:
        """Forget every backoff and try again now (the line is back, or the peer reports
        sequence numbers missing: whatever is still queued goes at once)."""
        for lane in self.lanes:
            lane.failures = 0
            lane.retry_at.clear()
            lane.wake.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for lane in self.lanes:
                tg.create_task(self._run_lane(lane), name=f"outbox-{self.peer}-{lane.name}")

    async def _run_lane(self, lane: _Lane) -> None:
        await forever(f"delivery to {self.peer} ({lane.name})", lambda: self._lane_round(lane))

    async def _lane_round(self, lane: _Lane) -> None:
        """One batch delivered (or one wait for work): a round of a lane's loop."""
        loop = asyncio.get_running_loop()
        s = self.line.settings
        lane.wake.clear()
        batch = await asyncio.to_thread(self._pending, lane, loop.time())
        if not batch:
            delay = 5.0
            if lane.retry_at:
                delay = max(0.0, min(min(lane.retry_at.values()) - loop.time(), delay))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.wake.wait(), delay)
            return
        attempt = self._note_attempts([idx for idx, _ in batch])
        try:
            results = await self.client.deliver([raw for _, raw in batch])
        except HotlineError as exc:
            await attempt(exc.code)
            lane.failures += 1
            wait = self._backoff(lane.failures)
            log.warning("delivery to %s failed (%s); retry in %.1fs", self.peer, exc.code, wait)
            for idx, _ in batch:
                lane.retry_at[idx] = loop.time() + wait
            if isinstance(exc, TransportError):
                await self.recorder.failure(self.peer, exc.code)
            return
        lane.failures = 0
        recorded = []
        for (idx, _), result in zip(batch, results, strict=True):
            if result.receipt is not None:
                lane.retry_at.pop(idx, None)
                recorded.append(self._record(result.receipt))
            else:
                log.warning("%s refused envelope #%d: %s", self.peer, idx, result.refused)
                lane.retry_at[idx] = loop.time() + s.retry_max_s
        # the attempt and the receipts go to the writer together: one group commit, not two
        _noted, *counts = await asyncio.gather(attempt(None), *recorded)
        self.delivered += sum(counts)

    def _note_attempts(self, indices: list[int]) -> Any:
        """Returns a coroutine function that records one attempt to send ``indices``: the
        count, the last error, and the first time they actually left on the wire."""
        line = self.line

        async def note(error: str | None) -> None:
            def unit(tx: WriteTx) -> None:
                now = line.clock.now_us()
                sent = now if error not in NOT_SENT else None
                d = schema.deliveries
                held = set(
                    tx.conn.execute(
                        sa.select(d.c.entry_idx).where(d.c.entry_idx.in_(indices))
                    ).scalars()
                )
                if held:
                    tx.conn.execute(
                        d.update()
                        .where(d.c.entry_idx.in_(held))
                        .values(
                            attempts=d.c.attempts + 1,
                            last_attempt_us=now,
                            last_error=error,
                            first_sent_us=sa.func.coalesce(d.c.first_sent_us, sent),
                        )
                    )
                new = [i for i in indices if i not in held]
                if new:
                    tx.conn.execute(
                        d.insert(),
                        [
                            {
                                "entry_idx": i,
                                "attempts": 1,
                                "first_sent_us": sent,
                                "last_attempt_us": now,
                                "last_error": error,
                            }
                            for i in new
                        ],
                    )

            await line.writer.submit(unit)

        return note

    async def _record(self, receipt: bytes) -> int:
        try:
            return int(await self.line.record_receipt(self.peer, receipt))
        except HotlineError as exc:
            log.error("receipt from %s refused: %s", self.peer, exc)
            return 0

    def _pending(self, lane: _Lane, now: float) -> list[tuple[int, bytes]]:
        o, e = schema.outbox, schema.entries
        limit = self.line.settings.max_batch_envelopes
        waiting = {i for i, t in lane.retry_at.items() if t > now}
        with self.line.reader.connect() as conn:
            rows = conn.execute(
                sa.select(o.c.entry_idx, e.c.leaf)
                .join(e, e.c.idx == o.c.entry_idx)
                .where(o.c.peer == self.peer, o.c.precedence.in_(lane.precedences))
                .order_by(o.c.precedence, o.c.sequence)
                .limit(limit + len(waiting))
            ).all()
        out = [
            (int(r.entry_idx), Entry.decode(bytes(r.leaf)).data)
            for r in rows
            if r.entry_idx not in waiting
        ]
        return out[:limit]

    def _backoff(self, failures: int) -> float:
        s = self.line.settings
        ceiling = min(s.retry_max_s, s.retry_base_s * 2 ** min(failures - 1, 16))
        return self._rng.uniform(ceiling / 2, ceiling)  # "equal jitter"
