"""Hostile-batch benchmark: a peer with valid keys replays signed envelopes at a station
holding 2,000 sites while that station's operator sends messages.

In process, at the service level (no sockets): two stations, alpha (the hostile peer)
and bravo (the victim), each on its own SQLite file with fsync on (synchronous FULL),
wired as the peer endpoint wires them (every envelope checked in a worker thread, then
handed to the writer). bravo first imports 2,000 protected sites (the deconfliction
registry it must never reload per refusal), and receives alpha's history of messages.
Then:

- baseline: bravo's operator sends messages one after another (send latency p50/p99);
- writer cost per envelope: batches of 256 ordinary envelopes (new messages) vs batches
  of 256 validly signed replays (a sequence number already used, other bytes: refused
  as ``replay``), timed inside the writer thread (its batch function), per envelope;
- under attack: alpha sends batches of 256 signed replays back to back while bravo's
  operator sends messages; operator send latency p50/p99 under attack.

Budget (issue 7): sends p99 < 100 ms under attack; a refused envelope costs the writer
no more than twice an ordinary one. Prints human figures, then one JSON object as the
last line.

    python bench/hostile.py            # 2,000 sites, 200 sends, 8 measured batches
    python bench/hostile.py --quick    # 2,000 sites, 60 sends, 3 measured batches
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotline.clock import SystemClock
from hotline.crypto import primitives, tls
from hotline.crypto.keys import StationIdentity
from hotline.errors import HotlineError
from hotline.service.line import Inbound
from hotline.settings import Settings
from hotline.station import Station
from hotline.wire import envelope as wire
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

BATCH = 256


def identity(station_id: str) -> StationIdentity:
    key_pem, cert_pem = tls.make_self_signed(station_id)
    return StationIdentity(
        station_id=station_id,
        display_name=station_id.capitalize(),
        signing_seed=primitives.new_signing_key(),
        encryption_private=primitives.new_encryption_key(),
        log_seed=primitives.new_signing_key(),
        cosign_seed=primitives.new_signing_key(),
        tls_key_pem=key_pem,
        tls_cert_pem=cert_pem,
        endpoints=("https://127.0.0.1:8471",),
        created_at="2026-01-01T00:00:00Z",
    )


def sites_file(n: int) -> bytes:
    """``n`` point sites with a 1 km protection radius on a grid over Ukraine."""
    feats = []
    for i in range(n):
        lon, lat = 23.0 + (i % 80) * 0.2, 45.0 + (i // 80) * 0.2
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {"site_id": f"S{i}", "name": f"site {i}",
                               "category": "hospital", "protection_radius_m": 1000.0},
            }
        )  # fmt: skip
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode()


class WriterMeter:
    """Times the writer thread's batch function: busy seconds and units."""

    def __init__(self, station: Station) -> None:
        self.busy = 0.0
        self.units = 0
        real: Callable[[list[Any]], None] = station.writer._commit

        def timed(batch: list[Any]) -> None:
            t = time.perf_counter()
            real(batch)
            self.busy += time.perf_counter() - t
            self.units += len(batch)

        station.writer._commit = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.busy, self.units = 0.0, 0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def machine() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_1m_at_start": os.getloadavg()[0],
    }


async def receive(station: Station, raws: list[bytes]) -> list[bytes | Exception]:
    """What the peer endpoint does with one batch: check in a thread, then store."""

    def check_all() -> list[Inbound | HotlineError]:
        out: list[Inbound | HotlineError] = []
        for raw in raws:
            try:
                out.append(station.line.check_inbound(raw))
            except HotlineError as exc:
                out.append(exc)
        return out

    checked = await asyncio.to_thread(check_all)
    good = [c for c in checked if isinstance(c, Inbound)]
    stored = iter(await station.line.store_inbound(good))
    return [c if isinstance(c, HotlineError) else next(stored) for c in checked]


async def send_from(station: Station, peer: str, text: str) -> float:
    """One operator send; its latency in ms (answered: durable in the ledger)."""
    t = time.perf_counter()
    await station.line.send(
        peer=peer, channel="working", precedence=Precedence.ROUTINE,
        payload=MessagePayload(text=text),
    )  # fmt: skip
    return (time.perf_counter() - t) * 1000


async def queued_to(station: Station, peer: str, n: int) -> list[bytes]:
    """Send ``n`` messages from ``station`` to ``peer``; their envelopes, in order."""
    import sqlalchemy as sa

    from hotline.ledger.entry import Entry
    from hotline.store import schema

    o, e = schema.outbox, schema.entries
    await asyncio.gather(*(send_from(station, peer, f"m{i}") for i in range(n)))
    with station.read_engine.connect() as conn:
        rows = conn.execute(
            sa.select(e.c.leaf).join(o, o.c.entry_idx == e.c.idx)
            .where(o.c.peer == peer).order_by(o.c.sequence)
        ).all()  # fmt: skip
    return [Entry.decode(bytes(r.leaf)).data for r in rows][-n:]


def equivocate(alpha: Station, bravo: Station, raw: bytes, i: int) -> bytes:
    """The same sequence number with other bytes, validly signed by alpha."""
    u = wire.decode(raw, max_bytes=1 << 20)
    return wire.seal_envelope(
        dataclasses.replace(u.header, message_id=uuid.uuid4()),
        json.dumps({"type": "text", "text": f"replayed {i}"}).encode(),
        primitives.Signer(alpha.identity.signing_seed),
        bravo.line.card.card.encryption_key,
    ).raw


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    clock = SystemClock()
    stations = []
    for name in ("alpha", "bravo"):
        (tmp / name).mkdir()
        s = Settings(data_dir=tmp / name, database_url=f"sqlite:///{tmp / name / 'store.db'}")
        stations.append(Station(s, identity(name), clock))
    alpha, bravo = stations
    for me, other in ((alpha, bravo), (bravo, alpha)):
        _card, unit = me.line.peer_add_unit(other.line.card.to_text(), "bench")
        me.writer.run_sync(unit)
    for st in stations:
        st.writer.start()
    try:
        t = time.perf_counter()
        await bravo.deconfliction.import_file(sites_file(args.sites), peer="alpha")
        with bravo.registry.lock:
            held = len(list(bravo.registry.registry.sites()))
        print(f"bravo holds {held} sites (import {time.perf_counter() - t:.1f} s)")

        meter = WriterMeter(bravo)
        rollbacks: list[Any] = []
        bravo.writer.on_rollback.append(rollbacks.append)
        history = await queued_to(alpha, "bravo", BATCH)
        if not all(isinstance(r, bytes) for r in await receive(bravo, history)):
            raise RuntimeError("the history was not stored")
        replays = [equivocate(alpha, bravo, raw, i) for i, raw in enumerate(history)]

        base = [await send_from(bravo, "alpha", f"base {i}") for i in range(args.sends)]
        print(f"baseline sends: p50 {statistics.median(base):.1f} ms, p99 {pct(base, 99):.1f} ms")

        ordinary_us, refused_us = [], []
        for _ in range(args.batches):
            fresh = await queued_to(alpha, "bravo", BATCH)
            meter.reset()
            got = await receive(bravo, fresh)
            if not all(isinstance(r, bytes) for r in got):
                raise RuntimeError(f"ordinary envelopes refused: {got[:3]}")
            ordinary_us.append(meter.busy / meter.units * 1e6)
            meter.reset()
            got = await receive(bravo, replays)
            codes = {r.code for r in got if isinstance(r, HotlineError)}
            if codes != {"replay"} or len(got) != BATCH:
                raise RuntimeError(f"replays were not all refused as replay: {codes}")
            refused_us.append(meter.busy / meter.units * 1e6)
        ordinary, refused = statistics.median(ordinary_us), statistics.median(refused_us)
        print(f"writer cost per envelope: ordinary {ordinary:.0f} us, "
              f"refused replay {refused:.0f} us ({refused / ordinary:.2f}x)")  # fmt: skip

        stop = asyncio.Event()
        attack_batches = 0

        async def attacker() -> None:
            nonlocal attack_batches
            while not stop.is_set():
                got = await receive(bravo, replays)
                if any(isinstance(r, bytes) for r in got):
                    raise RuntimeError("a replay was accepted")
                attack_batches += 1

        task = asyncio.create_task(attacker())
        await asyncio.sleep(0.2)
        under: list[float] = []
        t = time.perf_counter()
        for i in range(args.sends):
            under.append(await send_from(bravo, "alpha", f"under attack {i}"))
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - t
        stop.set()
        await task
        print(f"sends under attack: p50 {statistics.median(under):.1f} ms, "
              f"p99 {pct(under, 99):.1f} ms, max {max(under):.1f} ms "
              f"({attack_batches} batches of {BATCH} replays refused in {elapsed:.1f} s, "
              f"{attack_batches * BATCH / elapsed:.0f} refusals/s)")  # fmt: skip
        print(f"batches rolled back (each reloads the registry): {len(rollbacks)}")
        return {
            "sites": held,
            "batch": BATCH,
            "sends": args.sends,
            "baseline_send_p50_ms": round(statistics.median(base), 2),
            "baseline_send_p99_ms": round(pct(base, 99), 2),
            "attack_send_p50_ms": round(statistics.median(under), 2),
            "attack_send_p99_ms": round(pct(under, 99), 2),
            "attack_send_max_ms": round(max(under), 2),
            "attack_refusals_per_s": round(attack_batches * BATCH / elapsed),
            "writer_us_per_ordinary": round(ordinary, 1),
            "writer_us_per_refused": round(refused, 1),
            "refused_over_ordinary": round(refused / ordinary, 3),
            "writer_batches": bravo.writer.batches,
            "rollbacks": len(rollbacks),
            "budget_send_p99_ok": pct(under, 99) < 100,
            "budget_refused_ok": refused <= 2 * ordinary,
        }
    finally:
        for st in stations:
            st.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sends and batches")
    ap.add_argument("--sites", type=int, default=2000)
    args = ap.parse_args()
    args.sends = 60 if args.quick else 200
    args.batches = 3 if args.quick else 8
    info = machine()
    print(f"machine: {info['nproc']} cores ({info['cpu']}), load {info['loadavg_1m_at_start']}")
    with tempfile.TemporaryDirectory(prefix="hotline-hostile-") as d:
        result = asyncio.run(run(args, Path(d)))
    print(json.dumps({"bench": "hostile", "quick": args.quick, "machine": info, **result}))


if __name__ == "__main__":
    main()
