"""The outbox through the transport seam, against bravo's real peer app in-process:
batches cut to the receiver's limits, refusals isolated and parked (state ``refused``,
counted, alarmed, not retried unchanged), and the lanes' retry state kept on the loop."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import sqlalchemy as sa

from hotline.errors import TrustError
from hotline.link import framing
from hotline.store import schema
from tests.link.conftest import Link

#: 20,000 Cyrillic characters: 40,000 bytes of UTF-8 in each message
CYRILLIC = ("Щоб не було непорозумінь на лінії. " * 600)[:20_000]


def attempts(link: Link, idx: int) -> int:
    d = schema.deliveries
    with link.alpha.read_engine.connect() as conn:
        n = conn.execute(sa.select(d.c.attempts).where(d.c.entry_idx == idx)).scalar_one()
    return int(n)


def test_256_long_cyrillic_messages_are_delivered_in_batches_within_the_limits(
    run_link: Any,
) -> None:
    """Today: one batch of 256 (> 8 MiB) refused whole as too_large, again and again; the
    lane stalls forever, every message shows "sent", no alarm."""

    async def scenario(link: Link) -> None:
        sent = [await link.send(CYRILLIC) for _ in range(256)]
        rounds = await link.drain()
        assert link.queued() == 0
        assert {link.message(s.message_id)["state"] for s in sent} == {"delivered"}
        limit = link.bravo.settings.max_request_bytes
        assert len(link.transport.batches) >= 2
        assert all(size <= limit for _, size in link.transport.batches)
        assert sum(n for n, _ in link.transport.batches) == 256  # nothing went twice
        assert rounds == len(link.transport.batches)
        assert link.alarms() == []
        assert link.health().refused == 0

    run_link(scenario)


def test_batches_follow_the_limits_bravo_advertises(run_link: Any) -> None:
    """Until it has heard them, alpha cuts batches by its own settings: bravo refuses the
    batch of 10 whole (bad_batch, over its 4), alpha splits it and delivers every one.
    After a link test, batches fit bravo's limits the first time."""

    async def scenario(link: Link) -> None:
        for _ in range(12):
            await link.send("x" * 3000)
        await link.round()
        assert link.transport.batches[0][0] == 10  # alpha's own max_batch_envelopes
        assert link.queued() == 2  # the ten were delivered in halves
        assert link.alarms() == []
        assert link.health().refused == 0
        result = await link.tester.test_once()
        assert result["ok"] is True
        assert result["limits"]["max_batch_envelopes"] == 4
        assert link.limits.effective.max_batch_envelopes == 4
        for _ in range(8):
            await link.send("y")
        before = len(link.transport.batches)
        await link.drain()
        assert [n for n, _ in link.transport.batches[before:]] == [4, 4, 2]
        assert link.queued() == 0

    run_link(scenario, alpha={"max_batch_envelopes": 10}, bravo={"max_batch_envelopes": 4})


def test_an_envelope_the_peer_refuses_is_isolated_parked_and_alarmed(run_link: Any) -> None:
    """Bravo accepts envelopes up to 8 KiB; alpha (1 MiB) has not heard that yet. The
    batch is refused whole (too_large); alpha splits it, delivers the five others, and
    parks the big one: state "refused" with the code, counted in health, the peer_refused
    alarm raised, the hook called, and further rounds do not send it again.
    Today: the whole batch is retried every 30 s forever, every message shows "sent"."""

    async def scenario(link: Link) -> None:
        small = [await link.send(f"short {i}") for i in range(5)]
        big = await link.send("Щ" * 10_000)  # 20 kB of UTF-8
        small.append(await link.send("after"))
        await link.drain()
        for s in small:
            assert link.message(s.message_id)["state"] == "delivered"
        refused = link.message(big.message_id)
        assert (refused["state"], refused["refused"]) == ("refused", "too_large")
        assert refused["last_error"] == "too_large"
        assert link.refusals == [("bravo", "too_large", big.entry_idx)]
        h = link.health()
        assert (h.refused, h.last_refused) == (1, "too_large")
        [alarm] = link.alarms()
        assert (alarm["kind"], alarm["peer"]) == ("peer_refused", "bravo")
        assert alarm["ref"] == "too_large"
        assert "hotline link-test" in alarm["detail"]
        tries = attempts(link, big.entry_idx)
        assert await link.drain() == 0  # parked: nothing to send
        link.outbox.retry_now()  # what a link test reporting gaps does: parked stay parked
        assert await link.drain() == 0
        assert attempts(link, big.entry_idx) == tries

    run_link(scenario, bravo={"max_envelope_bytes": 8192})


def test_a_refused_envelope_goes_again_when_the_peer_limits_change(run_link: Any) -> None:
    """Parked as too large. A link test that shows limits it still does not fit sends
    nothing; one that shows bravo raised them sends it again, once, and it is delivered."""

    async def scenario(link: Link) -> None:
        big = await link.send("Щ" * 10_000)
        await link.drain()
        assert link.message(big.message_id)["state"] == "refused"
        assert (await link.tester.test_once())["ok"] is True  # bravo's 8 KiB: first heard
        assert await link.drain() == 1  # the round that looked: still too large, not sent
        assert attempts(link, big.entry_idx) == 1
        assert link.message(big.message_id)["state"] == "refused"
        link.peer_app.rebuild(max_envelope_bytes=65536, max_request_bytes=1 << 20)
        await link.tester.test_once()
        await link.drain()
        assert attempts(link, big.entry_idx) == 2
        assert link.message(big.message_id)["state"] == "delivered"
        assert not [a for a in link.alarms() if a["kind"] == "peer_refused"]
        await link.tester.test_once()  # the same limits again: nothing changes
        assert await link.drain() == 0

    run_link(scenario, bravo={"max_envelope_bytes": 8192})


class Refusing:
    """A transport that answers for bravo like its endpoint, except that it refuses the
    envelopes in ``codes`` (by bytes) with the given code, as the batch result does."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.peer = inner, inner.peer
        self.path: str = getattr(inner, "path", "https")
        self.codes: dict[bytes, str] = {}
        self.whole: str | None = None  # refuse every request whole with this code

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        if self.whole is not None:
            raise TrustError("refused", code=self.whole)
        keep = [e for e in envelopes if e not in self.codes]
        got = iter(await self.inner.deliver(keep) if keep else [])
        return [
            framing.Result(refused=self.codes[e]) if e in self.codes else next(got)
            for e in envelopes
        ]

    async def link_test(self, envelope: bytes) -> bytes:
        reply: bytes = await self.inner.link_test(envelope)
        return reply

    async def aclose(self) -> None:
        await self.inner.aclose()


def queued_raw(link: Link, idx: int) -> bytes:
    batch = link.outbox._pending([0, 1, 2, 3], frozenset(), big_limits())
    [raw] = [r for i, r in batch if i == idx]
    return raw


def big_limits() -> framing.Limits:
    return framing.Limits(10_000, 1 << 30, 1 << 30)


def test_the_operator_sends_a_refused_envelope_again(run_link: Any) -> None:
    """A refusal in the batch result (here: replay) parks that envelope only; the others
    of the batch are delivered. It goes again only when the operator asks; the alarm is
    cleared then."""
    refusing: list[Refusing] = []

    def wrap(inner: Any) -> Refusing:
        refusing.append(Refusing(inner))
        return refusing[0]

    async def scenario(link: Link) -> None:
        msgs = [await link.send(f"m{i}") for i in range(3)]
        refusing[0].codes[queued_raw(link, msgs[1].entry_idx)] = "replay"
        await link.drain()
        states = [link.message(m.message_id)["state"] for m in msgs]
        assert states == ["delivered", "refused", "delivered"]
        assert [a["ref"] for a in link.alarms()] == ["replay"]
        await link.tester.test_once()  # a scheduled test: no retry
        assert await link.drain() == 0
        refusing[0].codes.clear()  # bravo fixed whatever it was
        assert await link.outbox.retry_refused() == 1
        assert link.alarms() == []
        await link.drain()
        assert link.message(msgs[1].message_id)["state"] == "delivered"

    run_link(scenario, wrap=wrap)


def test_a_transient_refusal_is_retried_not_parked(run_link: Any) -> None:
    refusing: list[Refusing] = []

    def wrap(inner: Any) -> Refusing:
        refusing.append(Refusing(inner))
        return refusing[0]

    async def scenario(link: Link) -> None:
        m = await link.send("soon")
        refusing[0].codes[queued_raw(link, m.entry_idx)] = "store"
        await link.round()
        got = link.message(m.message_id)
        assert (got["state"], got["last_error"], got["refused"]) == ("sent", "store", None)
        assert link.alarms() == []
        assert link.health().refused == 1  # counted all the same
        assert m.entry_idx in link.outbox.lanes[1].retry_at  # backing off
        refusing[0].codes.clear()
        link.outbox.retry_now()
        await link.drain()
        assert link.message(m.message_id)["state"] == "delivered"

    run_link(scenario, wrap=wrap)


def test_a_peer_that_refuses_every_request_costs_one_split_per_envelope(run_link: Any) -> None:
    """Every request refused whole: the batch of 8 is split down to single envelopes
    (15 requests), each is parked, and the lane does not go round again."""
    refusing: list[Refusing] = []

    def wrap(inner: Any) -> Refusing:
        refusing.append(Refusing(inner))
        return refusing[0]

    async def scenario(link: Link) -> None:
        for i in range(8):
            await link.send(f"m{i}")
        refusing[0].whole = "bad_batch"
        assert await link.drain() == 1
        assert len(link.transport.batches) == 15
        assert {m["state"] for m in link.messages()} == {"refused"}
        assert link.health().refused == 8
        assert len(link.refusals) == 8

    run_link(scenario, wrap=wrap)


async def garbage_app(scope: Any, receive: Any, send: Any) -> None:
    """A peer endpoint that answers every request with 200 and bytes that are no result."""
    body = b"HTLR\x00\x00\x00\x01junk"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_an_answer_that_is_not_a_result_is_not_a_refusal(run_link: Any) -> None:
    """Garbage instead of batch results (a buggy or hostile peer) must not park our
    envelopes as if the peer had refused them: a transport failure (bad_results), the
    batch backs off and stays queued."""

    async def scenario(link: Link) -> None:
        m = await link.send("hello")
        link.peer_app.app = garbage_app  # type: ignore[assignment]
        await link.round()
        got = link.message(m.message_id)
        assert (got["state"], got["last_error"], got["refused"]) == ("sent", "bad_results", None)
        assert m.entry_idx in link.outbox.lanes[1].retry_at
        assert link.health().failures == 1

    run_link(scenario)


class LoopOnly(dict[int, float]):
    """Retry state that notes every thread that reads it."""

    readers: set[str]

    def __init__(self) -> None:
        super().__init__()
        self.readers = set()

    def _seen(self) -> None:
        self.readers.add(threading.current_thread().name)

    def items(self) -> Any:
        self._seen()
        return super().items()

    def values(self) -> Any:
        self._seen()
        return super().values()

    def __iter__(self) -> Any:
        self._seen()
        return super().__iter__()

    def __contains__(self, key: object) -> bool:
        self._seen()
        return super().__contains__(key)


def test_the_retry_state_is_read_on_the_event_loop_only(run_link: Any) -> None:
    """Today _pending iterates lane.retry_at in a worker thread (asyncio.to_thread) while
    the loop may change it: "dictionary changed size during iteration" at best."""

    async def scenario(link: Link) -> None:
        lane = link.outbox.lanes[1]
        lane.retry_at = LoopOnly()
        loop_thread = threading.current_thread().name
        first = await link.send("one")
        lane.retry_at[first.entry_idx] = asyncio.get_running_loop().time() + 3600
        await link.send("two")
        await link.round()
        assert lane.retry_at.readers == {loop_thread}
        assert [n for n, _ in link.transport.batches] == [1]  # "one" waits: not sent

    run_link(scenario)


def test_the_retry_state_changes_while_batches_are_read(run_link: Any) -> None:
    """The loop changes a large retry state as fast as it can while the lane reads
    batches (today, often: RuntimeError, dictionary changed size during iteration)."""

    async def scenario(link: Link) -> None:
        lane = link.outbox.lanes[1]
        for _ in range(20):
            await link.send("x")
        for i in range(50_000):
            lane.retry_at[10**9 + i] = 0.0
        stop = asyncio.Event()

        async def churn() -> None:
            i = 0
            while not stop.is_set():
                lane.retry_at[2 * 10**9 + i] = 0.0
                lane.retry_at.pop(2 * 10**9 + i - 1, None)
                i += 1
                if i % 500 == 0:
                    await asyncio.sleep(0)

        task = asyncio.create_task(churn())
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # threads take turns as often as they can
        try:
            for _ in range(20):
                await link.round()
        finally:
            sys.setswitchinterval(switch)
            stop.set()
            await task
        assert link.queued() == 0

    run_link(scenario, max_batch_envelopes=1)


def test_the_lane_loop_delivers_the_next_batch_while_the_last_one_is_recorded(
    run_link: Any,
) -> None:
    """The lane's own loop (``run``) is pipelined: the second batch goes to bravo before
    the first batch's receipts are recorded at alpha (recording the first is held until
    the second delivery has started: without the pipeline this waits forever), and every
    envelope is delivered and recorded exactly once."""

    async def scenario(link: Link) -> None:
        sent = [await link.send(f"m{i}") for i in range(12)]
        box = link.outbox
        second_delivery, all_recorded = asyncio.Event(), asyncio.Event()
        real_deliver, real_record = link.transport.deliver, box._record_round

        async def deliver(envelopes: list[bytes]) -> list[framing.Result]:
            if link.transport.batches:  # this is the second batch (or later)
                second_delivery.set()
            return await real_deliver(envelopes)

        async def record_round(lane: Any, done: Any) -> None:
            await second_delivery.wait()
            await real_record(lane, done)
            if box.delivered == len(sent):
                all_recorded.set()

        link.transport.deliver = deliver  # type: ignore[method-assign]
        box._record_round = record_round  # type: ignore[method-assign]
        loop = asyncio.create_task(box.run())
        try:
            async with asyncio.timeout(60):
                await all_recorded.wait()
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        assert link.queued() == 0
        assert [n for n, _ in link.transport.batches] == [4, 4, 4]  # nothing went twice
        assert {link.message(s.message_id)["state"] for s in sent} == {"delivered"}
        assert box.delivered == 12
        with link.bravo.read_engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(schema.inbound)).scalar()
        assert n == 12

    run_link(scenario, alpha={"max_batch_envelopes": 4}, bravo={"max_batch_envelopes": 4})


def test_an_idle_lane_takes_a_lone_message_from_the_sender_without_reading(
    run_link: Any,
) -> None:
    """The lane's own loop, woken at each commit as the station wakes it: a message sent
    alone while the lane waits with an empty queue is handed to it by the sender (the
    envelope it committed) and delivered without a read of the queue (before: one read,
    a worker thread's turn and a query, per message). The rounds that follow its
    delivery do not read either: nothing woke the lane, and it took all there was. A
    wake that comes without its envelope (here: the hand-off unplugged, as for an
    acknowledgement or a resync) reads the store, which stays the truth."""

    async def scenario(link: Link) -> None:
        box = link.outbox
        # no periodic look: the reads counted are those the messages cause, also on a
        # machine slow enough for the scenario to outlast the 5 s look (seen in CI: one
        # more read, of the message being sent)
        box.look_every_s = 3600.0
        link.alpha.line.on_queued.append(lambda _peer, prec: box.wake(prec))
        reads: list[int] = []  # the batch size of each read (a worker thread appends)
        recorded, started = asyncio.Event(), asyncio.Event()
        real_take, real_record = box._take, box._record_round
        here = asyncio.get_running_loop()

        def take(*args: Any) -> tuple[list[tuple[int, bytes]], bool]:
            batch, more = real_take(*args)
            reads.append(len(batch))
            if len(reads) == 2:  # both lanes' first read, of an empty queue
                here.call_soon_threadsafe(started.set)
            return batch, more

        async def record_round(lane: Any, done: Any) -> None:
            await real_record(lane, done)
            recorded.set()

        box._take = take  # type: ignore[method-assign]
        box._record_round = record_round  # type: ignore[method-assign]
        loop = asyncio.create_task(box.run())
        try:
            async with asyncio.timeout(60):
                await started.wait()
                for i in range(3):
                    recorded.clear()
                    sent = await link.send(f"alone {i}")
                    await recorded.wait()
                    assert link.message(sent.message_id)["state"] == "delivered"
                assert reads == [0, 0]  # each lane's start only
                link.alpha.line.ctx.on_sealed.remove(box._on_sealed)
                recorded.clear()
                sent = await link.send("unannounced")
                await recorded.wait()
                assert link.message(sent.message_id)["state"] == "delivered"
        finally:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        assert reads == [0, 0, 1]  # the message that came without its envelope was read
        assert box.delivered == 4

    run_link(scenario)


def test_a_rounds_attempts_commit_with_its_receipts(run_link: Any) -> None:
    """A delivered round is recorded in one group commit: its delivery attempts are
    submitted with its receipts, after their check, not ahead of them (then the
    receipts, the end of a message's latency, waited for the attempts' own commit)."""

    async def scenario(link: Link) -> None:
        sent = [await link.send(f"m{i}") for i in range(2)]
        writer = link.alpha.writer
        before = writer.batches
        await link.round()
        assert writer.batches - before == 1
        for s in sent:
            got = link.message(s.message_id)
            assert (got["state"], got["attempts"], got["path"]) == ("delivered", 1, "https")

    run_link(scenario)
