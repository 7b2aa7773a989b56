"""Benchmark of a station's start with a large deconfliction registry: full replay of
every notice (before) against the registry snapshot (after).

Writes a synthetic SQLite store (migrated schema; N site notices from the peer as
``messages`` rows, each with a ledger ``entries`` row; 80 % points with a 0.3-5 km
protection radius, 20 % small polygons, over Ukraine and its neighbours), then measures
what a start spends on the registry: ``RegistryProjection.reload`` replaying every
message; storing the snapshot (as the start after that replay does); ``reload`` from
the snapshot and the messages after it (``--extra`` notices added after the snapshot);
and checks both give the same registry. Prints figures, then one JSON line.

    python bench/registry_start.py            # 1,000,000 sites
    python bench/registry_start.py --quick    # 100,000 sites
    python bench/registry_start.py --sites 200000 --store /tmp/reg.db  # kept; again:
    python bench/registry_start.py --store /tmp/reg.db --profile out.txt  # start only
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from hotline.service.registry import SNAPSHOT_FORMAT, RegistryProjection
from hotline.settings import Settings
from hotline.store import database, schema
from hotline.store import registry_snapshot as snapshot_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)
US = 1_700_000_000_000_000


def _site(i: int, rng: np.random.Generator) -> dict[str, Any]:
    lon, lat = float(rng.uniform(14.0, 45.0)), float(rng.uniform(41.0, 58.0))
    site: dict[str, Any] = {
        "names": {"en": f"Site {i}"},
        "category": "hospital",
        "reconfirm_by": (T0 + timedelta(days=60)).isoformat().replace("+00:00", "Z"),
    }
    if i % 5 == 4:
        size = float(rng.uniform(0.002, 0.02))
        n = int(rng.integers(4, 8))
        ring = [
            [lon + size * math.cos(2 * math.pi * k / n), lat + size * math.sin(2 * math.pi * k / n)]
            for k in range(n)
        ]
        site["geometry"] = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        site["buffer_m"] = float(rng.uniform(0, 1000))
    else:
        site["geometry"] = {"type": "Point", "coordinates": [lon, lat]}
        site["protection_radius_m"] = float(rng.uniform(300, 5000))
    notice = {"type": "site_notice", "notice_id": f"n{i}", "action": "add", "site_id": f"S{i}"}
    return {"type": "site_notice", "data": {**notice, "site": site}}


def _rows(start: int, n: int, rng: np.random.Generator) -> tuple[list[Any], list[Any]]:
    msgs, entries = [], []
    for i in range(start, start + n):
        at = US + i
        msgs.append(
            {
                "message_id": str(uuid.UUID(int=i + 1)),
                "direction": "in",
                "peer": "bravo",
                "channel": "deconfliction",
                "precedence": 2,
                "sequence": i + 1,
                "kind": 1,
                "type": "site_notice",
                "body": json.dumps(_site(i, rng)),
                "sent_at_us": at,
                "stored_at_us": at,
                "ack_required": False,
                "entry_idx": i,
            }
        )
        entries.append(
            {
                "idx": i,
                "kind": 1,
                "peer": "bravo",
                "peer_seq": i + 1,
                "envelope_hash": os.urandom(32),
                "recorded_at_us": at,
                "leaf": b"",
                "leaf_hash": os.urandom(32),
            }
        )
    return msgs, entries


def _fill(engine: sa.Engine, start: int, n: int, rng: np.random.Generator) -> None:
    step = 20_000
    for at in range(start, start + n, step):
        msgs, entries = _rows(at, min(step, start + n - at), rng)
        with engine.begin() as conn:
            conn.execute(schema.messages.insert(), msgs)
            conn.execute(schema.entries.insert(), entries)


def _timed_reload(
    proj: RegistryProjection, engine: sa.Engine, snap: bool, profile: Path | None = None
) -> tuple[float, float, int]:
    """Wall and CPU seconds of a start's reload, and the notices it replayed (CPU
    seconds say more than wall time on a shared machine: the reload is one thread).
    With ``profile``, under cProfile (slower), its 40 costliest calls written there."""
    prof = cProfile.Profile() if profile is not None else None
    t, c = time.perf_counter(), time.process_time()
    with engine.connect() as conn:
        if prof is not None:
            prof.enable()
        n = proj.reload(conn, use_snapshot=snap)
        if prof is not None:
            prof.disable()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if prof is not None and profile is not None:
        with profile.open("w") as out:
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(60)
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(40)
    return wall, cpu, n


def _has_snapshot(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(schema.registry_snapshot)).first() is not None


def _start_only(engine: sa.Engine, settings: Settings, profile: Path | None) -> None:
    """The start from a kept store's snapshot, alone (the store was filled before). A
    snapshot of another format is first replaced: full replay, then stored anew."""
    with engine.connect() as conn:
        head = snapshot_store.head(conn)
    if head is not None and head.format != SNAPSHOT_FORMAT:
        print(f"snapshot of format {head.format}, not {SNAPSHOT_FORMAT}: storing it anew")
        m, e, cut = schema.messages, schema.entries, head.valid_to_idx
        with engine.begin() as conn:  # the entries after it set aside meanwhile
            later_m = [r._asdict() for r in conn.execute(sa.select(m).where(m.c.entry_idx > cut))]
            later_e = [r._asdict() for r in conn.execute(sa.select(e).where(e.c.idx > cut))]
            conn.execute(m.delete().where(m.c.entry_idx > cut))
            conn.execute(e.delete().where(e.c.idx > cut))
        replay = RegistryProjection("alpha", settings)
        with engine.connect() as conn:
            replay.reload(conn, use_snapshot=False)
        with engine.begin() as conn:
            replay.save_snapshot(conn, US)
            conn.execute(m.insert(), later_m)
            conn.execute(e.insert(), later_e)
        del replay
    with engine.connect() as conn:
        sites = conn.execute(
            sa.select(sa.func.count()).where(schema.messages.c.type == "site_notice")
        ).scalar_one()
    proj = RegistryProjection("alpha", settings)
    load_s, load_cpu, after = _timed_reload(proj, engine, True, profile)
    load = os.getloadavg()[0]
    print(f"start from the snapshot + {after:,} later notices ({sites:,} sites): "
          f"{load_s:.1f} s ({load_cpu:.1f} s CPU), load {load:.1f}")  # fmt: skip
    print(json.dumps({"sites": sites, "start_from_snapshot_s": round(load_s, 2),
                      "start_from_snapshot_cpu_s": round(load_cpu, 2),
                      "replayed_after_snapshot": after, "load_avg_1m": round(load, 2),
                      "profiled": profile is not None}))  # fmt: skip
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="100,000 sites instead of 1,000,000")
    ap.add_argument("--sites", type=int, help="this many sites (overrides --quick)")
    ap.add_argument("--extra", type=int, default=1000, help="notices after the snapshot")
    ap.add_argument(
        "--no-check",
        action="store_true",
        help="skip the second full replay that checks the loaded registry (a 1M run)",
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--store",
        type=Path,
        help="keep the SQLite store in this file; when it already holds a snapshot, "
        "measure only the start from it (no fill, no replay)",
    )
    ap.add_argument(
        "--profile", type=Path, help="cProfile the start from the snapshot to this file"
    )
    args = ap.parse_args()
    n = args.sites or (100_000 if args.quick else 1_000_000)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        url = settings.store_url if args.store is None else f"sqlite:///{args.store}"
        engine = database.create(url, synchronous="OFF")
        database.migrate(engine)
        if args.store is not None and _has_snapshot(engine):
            _start_only(engine, settings, args.profile)
            return
        t = time.perf_counter()
        _fill(engine, 0, n, rng)
        print(f"store of {n:,} site notices written in {time.perf_counter() - t:.1f} s "
              f"({platform.machine()}, python {platform.python_version()})")  # fmt: skip

        replay = RegistryProjection("alpha", settings)
        replay_s, replay_cpu, replayed = _timed_reload(replay, engine, False)
        print(f"start, full replay of {replayed:,} notices: {replay_s:.1f} s "
              f"({replay_cpu:.1f} s CPU)")  # fmt: skip

        t, c = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            idx = replay.save_snapshot(conn, US)
        save_s, save_cpu = time.perf_counter() - t, time.process_time() - c
        with engine.connect() as conn:
            size = conn.execute(
                sa.select(sa.func.sum(sa.func.length(schema.registry_snapshot_parts.c.body)))
            ).scalar_one()
        print(f"snapshot stored (valid to entry {idx}): {save_s:.1f} s ({save_cpu:.1f} s CPU), "
              f"{size / 1e6:.0f} MB")  # fmt: skip

        _fill(engine, n, args.extra, rng)
        later = RegistryProjection("alpha", settings)
        load_s, load_cpu, after = _timed_reload(later, engine, True, args.profile)
        print(f"start from the snapshot + {after:,} later notices: {load_s:.1f} s "
              f"({load_cpu:.1f} s CPU)")  # fmt: skip
        load = os.getloadavg()[0]
        same: bool | None = None
        if not args.no_check:
            full = RegistryProjection("alpha", settings)
            _timed_reload(full, engine, False)
            a, b = later.registry, full.registry
            same = len(a.sites()) == len(b.sites()) == n + args.extra
            same = same and a.conflicts() == b.conflicts()
            if n <= 100_000:
                same = same and a.snapshot() == b.snapshot()
            print(f"same registry as a full replay: {same}")
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS: {rss_mb:.0f} MB")
        print(
            json.dumps(
                {
                    "sites": n,
                    "replay_s": round(replay_s, 2),
                    "replay_cpu_s": round(replay_cpu, 2),
                    "snapshot_store_s": round(save_s, 2),
                    "snapshot_store_cpu_s": round(save_cpu, 2),
                    "snapshot_mb": round(size / 1e6, 1),
                    "start_from_snapshot_s": round(load_s, 2),
                    "start_from_snapshot_cpu_s": round(load_cpu, 2),
                    "load_avg_1m": round(load, 2),
                    "replayed_after_snapshot": after,
                    "same": same,
                    "rss_mb": round(rss_mb, 1),
                }
            )
        )
        engine.dispose()


if __name__ == "__main__":
    main()
