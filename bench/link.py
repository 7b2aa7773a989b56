"""Link benchmark: the outbox and the link tester through the transport seam, in-process.

Prints human-readable figures; the last line is one JSON object.

- long messages: 256 messages of 20,000 Cyrillic characters (40 kB of UTF-8 each, more
  than 8 MiB together) from alpha to bravo's real peer app over ``httpx.ASGITransport``,
  SQLite stores with fsync on: requests, largest request, seconds to deliver them all
  (64 with --quick);
- one bad envelope: a batch of 256 short messages with one too large for bravo in the
  middle: requests it takes to isolate it, seconds, messages delivered;
- hung peer: a loopback socket that accepts and never answers; seconds from the first
  link test to DOWN at a 2 s interval (the rule's bound: ``Timing.worst_time_to_down_s``
  less one interval, since the peer hangs from the start).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from benchkit import identity
from hotline.api.peer import create_peer_app
from hotline.clock import SystemClock
from hotline.link import framing
from hotline.link.client import PeerClient
from hotline.link.health import Timing
from hotline.link.limits import PeerLimits, own_limits
from hotline.link.linktest import HealthRecorder, LinkTester
from hotline.link.outbox import Outbox
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import operational, schema
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

CYRILLIC = ("Щоб не було непорозумінь на лінії. " * 600)[:20_000]


class Counting:
    def __init__(self, inner: PeerClient) -> None:
        self.inner, self.peer = inner, inner.peer
        self.sizes: list[int] = []

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        self.sizes.append(framing.request_bytes([len(e) for e in envelopes]))
        return await self.inner.deliver(envelopes)

    async def link_test(self, envelope: bytes) -> bytes:
        return await self.inner.link_test(envelope)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def with_pair(root: Path, bravo: dict[str, Any], scenario: Any) -> Any:
    stations = []
    for name, own in (("alpha", {}), ("bravo", bravo)):
        (root / name).mkdir()
        s = Settings(data_dir=root / name, **own)
        stations.append(Station(s, identity(name), SystemClock()))
    a, b = stations
    for me, other in ((a, b), (b, a)):
        me.writer.run_sync(me.line.peer_add_unit(other.line.card.to_text(), "bench")[1])
    for st in stations:
        st.writer.start()
    app = create_peer_app(b.line, b.witnessing)
    client = PeerClient(
        a.identity, b.line.card, timeout_s=60, transport=httpx.ASGITransport(app=app)
    )
    transport = Counting(client)
    box = Outbox(a.line, transport, HealthRecorder(a.line), rng=random.Random(1),
                 limits=PeerLimits(own_limits(a.settings)))  # fmt: skip
    try:
        return await scenario(a, b, box, transport)
    finally:
        await client.aclose()
        for st in stations:
            st.close()


async def drain(a: Station, box: Outbox) -> None:
    lane = box.lanes[1]
    loop = asyncio.get_running_loop()
    o, d = schema.outbox, schema.deliveries
    while True:
        with a.read_engine.connect() as conn:
            left = conn.execute(
                sa.select(o.c.entry_idx).outerjoin(d, d.c.entry_idx == o.c.entry_idx)
                .where(d.c.refused.is_(None))
            ).scalars().all()  # fmt: skip
        if not [i for i in left if lane.retry_at.get(i, 0) <= loop.time()]:
            return
        await box._lane_round(lane)


async def long_messages(root: Path, n: int) -> dict[str, Any]:
    async def scenario(a: Station, b: Station, box: Outbox, t: Counting) -> dict[str, Any]:
        for _ in range(n):
            await a.line.send(peer="bravo", channel="working", precedence=Precedence.ROUTINE,
                              payload=MessagePayload(text=CYRILLIC))  # fmt: skip
        start = time.perf_counter()
        await drain(a, box)
        took = time.perf_counter() - start
        return {"messages": n, "delivered": box.delivered, "requests": len(t.sizes),
                "largest_request_bytes": max(t.sizes), "seconds": round(took, 2)}  # fmt: skip

    result: dict[str, Any] = await with_pair(root, {}, scenario)
    return result


async def one_bad_envelope(root: Path) -> dict[str, Any]:
    async def scenario(a: Station, b: Station, box: Outbox, t: Counting) -> dict[str, Any]:
        for i in range(256):
            text = "Щ" * 10_000 if i == 128 else f"short {i}"
            await a.line.send(peer="bravo", channel="working", precedence=Precedence.ROUTINE,
                              payload=MessagePayload(text=text))  # fmt: skip
        start = time.perf_counter()
        await drain(a, box)
        took = time.perf_counter() - start
        return {"batch": 256, "requests": len(t.sizes), "delivered": box.delivered,
                "parked": box.refused, "seconds": round(took, 2)}  # fmt: skip

    result: dict[str, Any] = await with_pair(root, {"max_envelope_bytes": 8192}, scenario)
    return result


async def hung_peer(root: Path, interval: float) -> dict[str, Any]:
    stop = asyncio.Event()

    async def hold(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await stop.wait()
        w.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    settings = {"link_test_interval_s": interval, "link_down_after_failures": 3}

    async def scenario(a: Station, b: Station, box: Outbox, t: Counting) -> dict[str, Any]:
        s = a.line.settings
        timing = Timing(s.link_test_interval_s, s.link_down_after_failures, s.peer_timeout_s)
        card = dataclasses.replace(b.identity, endpoints=(url,)).card()
        client = PeerClient(a.identity, card, timeout_s=s.peer_timeout_s,
                            link_test_timeout_s=timing.test_timeout_s)  # fmt: skip
        tester = LinkTester(a.line, client, HealthRecorder(a.line), s.link_test_interval_s)
        start = time.perf_counter()
        task = asyncio.create_task(tester.run())
        while True:
            with a.read_engine.connect() as conn:
                if operational.load_health(conn, "bravo").state == "DOWN":
                    break
            await asyncio.sleep(0.01)
        took = time.perf_counter() - start
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        return {"interval_s": interval, "down_after_s": round(took, 2),
                "bound_s": round(timing.worst_time_to_down_s() - interval, 2)}  # fmt: skip

    try:
        # alpha tests a "bravo" that hangs; the pair's bravo only lends its keys
        result: dict[str, Any] = await with_pair(root, {}, _with_alpha(settings, scenario))
        return result
    finally:
        stop.set()
        server.close()
        await server.wait_closed()


def _with_alpha(settings: dict[str, Any], scenario: Any) -> Any:
    async def run(a: Station, b: Station, box: Outbox, t: Counting) -> Any:
        a.line.ctx.settings = a.line.settings.model_copy(update=settings)
        return await scenario(a, b, box, t)

    return run


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "1").mkdir()
        (root / "2").mkdir()
        (root / "3").mkdir()
        long = await long_messages(root / "1", 64 if args.quick else 256)
        print(f"long messages: {long['messages']} x 40 kB in {long['requests']} requests "
              f"(largest {long['largest_request_bytes']:,} B), delivered {long['delivered']} "
              f"in {long['seconds']} s")  # fmt: skip
        bad = await one_bad_envelope(root / "2")
        print(f"one bad envelope in {bad['batch']}: {bad['requests']} requests, "
              f"{bad['delivered']} delivered, {bad['parked']} parked, "
              f"{bad['seconds']} s")  # fmt: skip
        hung = await hung_peer(root / "3", 2.0)
        print(f"hung peer: DOWN after {hung['down_after_s']} s at a {hung['interval_s']} s "
              f"interval (rule: at most {hung['bound_s']} s plus processing)")  # fmt: skip
        return {"long_messages": long, "one_bad_envelope": bad, "hung_peer": hung}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 long messages instead of 256")
    args = ap.parse_args(argv)
    result = asyncio.run(main_async(args))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
