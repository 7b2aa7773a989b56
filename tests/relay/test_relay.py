"""Two in-process stations over a real NATS relay (JetStream at 127.0.0.1:4222): each
runs its ``Relay`` on its own stream under a prefix of this test alone; alpha's outbox
and link tester speak to a ``RelayTransport``. Delivery, link tests, redelivery after a
crash before the ack, frames the relay altered or forged, late results."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from hotline.clock import FakeClock
from hotline.crypto import primitives
from hotline.errors import PeerTimeoutError, PeerUnreachableError
from hotline.link import framing, relayframe
from hotline.link.limits import PeerLimits, own_limits
from hotline.link.linktest import HealthRecorder, LinkTester
from hotline.link.outbox import Outbox
from hotline.link.relay import Relay, RelayTransport
from hotline.service import queries
from hotline.settings import Settings
from hotline.station import Station
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.relay.conftest import NATS_URL
from tests.service.conftest import make_identity

#: every wait in these tests is bounded by this (seconds)
BOUND_S = 20.0


@dataclass
class Pair:
    alpha: Station
    bravo: Station
    relays: dict[str, Relay]
    transport: RelayTransport
    outbox: Outbox
    tester: LinkTester
    clock: FakeClock

    async def send(self, text: str) -> Any:
        return await self.alpha.line.send(
            peer="bravo",
            channel="working",
            precedence=Precedence.ROUTINE,
            payload=MessagePayload(text=text),
        )

    async def drain(self) -> None:
        lane = self.outbox.lanes[1]
        for _ in range(20):
            if self.queued() == 0:
                return
            await self.outbox._lane_round(lane)
        raise AssertionError("the outbox did not drain")

    def queued(self) -> int:
        with self.alpha.read_engine.connect() as conn:
            rows = queries.list_messages(conn, self.clock.now_us(), direction="out", limit=10_000)
        return sum(1 for r in rows if r["state"] != "delivered")

    def received(self) -> list[dict[str, Any]]:
        with self.bravo.read_engine.connect() as conn:
            return queries.list_messages(conn, self.clock.now_us(), direction="in", limit=10_000)

    def state(self, message_id: object) -> str:
        with self.alpha.read_engine.connect() as conn:
            got = queries.get_message(conn, self.clock.now_us(), str(message_id))
        assert got is not None
        return str(got["state"])


async def until(what: str, cond: Callable[[], bool]) -> None:
    """Wait (bounded) until ``cond()``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND_S
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def relay_pair(
    tmp_path: Path,
    prefix: str,
    *,
    relay_url: str = NATS_URL,
    credentials: dict[str, Path] | None = None,
    bravo: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Pair]:
    """alpha and bravo, peers of each other, each running its Relay (``credentials``:
    each station's credentials file; ``bravo``: bravo's own settings)."""
    clock = FakeClock()
    stations = []
    for name in ("alpha", "bravo"):
        (tmp_path / name).mkdir(exist_ok=True)
        s = Settings(
            data_dir=tmp_path / name,
            database_url=f"sqlite:///{tmp_path / (name + '.db')}",
            paths=["nats"],
            relay_url=relay_url,
            relay_prefix=prefix,
            relay_credentials_file=(credentials or {}).get(name),
            **(settings | ((bravo or {}) if name == "bravo" else {})),
        )
        stations.append(Station(s, make_identity(name), clock))
    a, b = stations
    for me, other in ((a, b), (b, a)):
        _card, unit = me.line.peer_add_unit(other.line.card.to_text(), "test")
        me.writer.run_sync(unit)
    for st in stations:
        st.writer.start()
    relays = {st.identity.station_id: st.relay for st in stations if st.relay is not None}
    tasks = [asyncio.create_task(r.run()) for r in relays.values()]
    try:
        for r in relays.values():
            await asyncio.wait_for(r.connected.wait(), BOUND_S)
        transport = relays["alpha"].transport("bravo", timeout_s=5, link_test_timeout_s=5)
        limits = PeerLimits(own_limits(a.settings))
        recorder = HealthRecorder(a.line)
        box = Outbox(a.line, transport, recorder, rng=random.Random(7), limits=limits)
        tester = LinkTester(a.line, transport, recorder, 60.0, limits=limits)
        yield Pair(a, b, relays, transport, box, tester, clock)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for st in stations:
            st.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def test_messages_and_link_tests_go_over_the_relay(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix) as p:
            result = await p.tester.test_once()
            assert result["ok"], result
            sent = [await p.send(f"over the relay {i}") for i in range(5)]
            await p.drain()
            assert {p.state(m.message_id) for m in sent} == {"delivered"}
            got = p.received()
            assert sorted(m["sequence"] for m in got) == [1, 2, 3, 4, 5]
            assert p.transport.path == "nats"

    run(scenario)


def test_redelivery_after_a_crash_before_the_ack_changes_nothing(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """Bravo stores a batch and answers, then 'crashes' before acking: the relay delivers
    the frame again after relay_ack_wait_s; bravo takes it again, stores nothing twice."""

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix, relay_ack_wait_s=1.0) as p:
            bravo = p.relays["bravo"]
            taken: list[relayframe.Kind] = []
            real_take, real_ack = bravo.take, bravo._ack
            crashed = False

            async def take(frame: relayframe.Frame) -> None:
                taken.append(frame.kind)
                await real_take(frame)

            async def ack(msg: Any) -> None:
                nonlocal crashed
                if not crashed:  # the first message is never acked
                    crashed = True
                    return
                await real_ack(msg)

            bravo.take = take  # type: ignore[method-assign]
            bravo._ack = ack  # type: ignore[method-assign]
            sent = [await p.send(f"once only {i}") for i in range(3)]
            await p.drain()
            assert {p.state(m.message_id) for m in sent} == {"delivered"}
            await until("the frame delivered again", lambda: len(taken) >= 2)
            assert taken[:2] == [relayframe.Kind.BATCH, relayframe.Kind.BATCH]
            got = p.received()
            assert sorted(m["sequence"] for m in got) == [1, 2, 3]

    run(scenario)


@dataclass
class FakeMsg:
    subject: str
    data: bytes
    acked: bool = False

    async def ack(self) -> None:
        self.acked = True


class Capture:
    """A transport that keeps what it is given and delivers nothing."""

    path = "nats"
    peer = "bravo"

    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        self.batches.append(envelopes)
        raise PeerUnreachableError("captured")

    async def link_test(self, envelope: bytes) -> bytes:
        raise PeerUnreachableError("captured")

    async def aclose(self) -> None:
        return None


def test_a_tampering_relay_changes_nothing(tmp_path: Path, nats_url: str, prefix: str) -> None:
    """Frames the relay forged (signed by another key), altered (a byte of the body),
    misaddressed (for another recipient, on another sender's subject), oversized or
    garbage are dropped and acked; bravo stores nothing; the genuine frame then goes."""

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix, max_request_bytes=65536) as p:
            capture = Capture()
            box = Outbox(p.alpha.line, capture, HealthRecorder(p.alpha.line))  # type: ignore[arg-type]
            m = await p.send("the relay must not touch this")
            await box._lane_round(box.lanes[1])
            [envelopes] = capture.batches
            body = framing.encode_batch(envelopes)
            corr = bytes(16)
            alpha_signer = primitives.Signer(p.alpha.identity.signing_seed)
            mallory = primitives.Signer(primitives.new_signing_key())
            good = relayframe.encode(
                alpha_signer, relayframe.Kind.BATCH, "alpha", "bravo", corr, body
            )
            altered = bytearray(good)
            altered[len(good) - 100] ^= 1
            to_bravo = relayframe.inbound_subject(prefix, "bravo", "alpha")
            bad: list[tuple[str, bytes]] = [
                (
                    to_bravo,
                    relayframe.encode(mallory, relayframe.Kind.BATCH, "alpha", "bravo", corr, body),
                ),
                (to_bravo, bytes(altered)),
                (
                    to_bravo,
                    relayframe.encode(
                        alpha_signer, relayframe.Kind.BATCH, "alpha", "charlie", corr, body
                    ),
                ),
                (relayframe.inbound_subject(prefix, "bravo", "zulu"), good),
                (to_bravo, b"HTLF garbage"),
            ]
            nc = await nats.connect(NATS_URL)
            try:
                js = nc.jetstream()
                for subject, data in bad:
                    await js.publish(subject, data)
            finally:
                await nc.close()
            bravo = p.relays["bravo"]
            await until("bravo to drop every bad frame", lambda: bravo.dropped >= len(bad))
            # a relay that ignores its own size limit: checked before parsing, acked
            big = FakeMsg(to_bravo, good + b"\x00" * 70_000)
            assert await bravo._sort([big]) == []  # type: ignore[list-item]
            assert big.acked
            assert bravo.dropped == len(bad) + 1
            assert p.received() == []
            await p.drain()  # the genuine path
            assert p.state(m.message_id) == "delivered"
            assert [r["sequence"] for r in p.received()] == [1]

    run(scenario)


def test_results_after_the_wait_gave_up_still_record_receipts(
    tmp_path: Path, nats_url: str, prefix: str
) -> None:
    """Bravo answers after alpha's delivery timed out: alpha records the receipts when
    the late results frame arrives."""

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix) as p:
            bravo = p.relays["bravo"]
            real_take = bravo.take
            slow = asyncio.Event()

            async def take(frame: relayframe.Frame) -> None:
                await slow.wait()
                await real_take(frame)

            bravo.take = take  # type: ignore[method-assign]
            p.transport.timeout_s = 0.5
            m = await p.send("late but counted")
            lane = p.outbox.lanes[1]
            await p.outbox._lane_round(lane)  # times out
            assert p.state(m.message_id) != "delivered"
            slow.set()
            await until("the late receipt", lambda: p.state(m.message_id) == "delivered")

    run(scenario)


def test_unreachable_relay_is_a_transport_failure(tmp_path: Path, prefix: str) -> None:
    async def scenario() -> None:
        clock = FakeClock()
        s = Settings(
            data_dir=tmp_path,
            database_url=f"sqlite:///{tmp_path / 'a.db'}",
            paths=["nats"],
            relay_url="nats://127.0.0.1:1",
            relay_prefix=prefix,
        )
        st = Station(s, make_identity("alpha"), clock)
        try:
            assert st.relay is not None
            t = st.relay.transport("bravo", timeout_s=1, link_test_timeout_s=1)
            with pytest.raises(PeerUnreachableError):
                await t.deliver([b"x"])
            with pytest.raises(PeerUnreachableError):
                await t.link_test(b"x")
        finally:
            st.close()

    run(scenario)


def test_no_answer_is_a_timeout(tmp_path: Path, nats_url: str, prefix: str) -> None:
    """Bravo's relay is stopped: alpha's frame is stored on the relay, no answer comes."""

    async def scenario() -> None:
        async with relay_pair(tmp_path, prefix) as p:
            bravo = p.relays["bravo"]

            async def take(frame: relayframe.Frame) -> None:
                await asyncio.Event().wait()

            bravo.take = take  # type: ignore[method-assign]
            p.transport.link_test_timeout_s = 0.3
            with pytest.raises(PeerTimeoutError):
                await p.transport.link_test(b"anything")

    run(scenario)
