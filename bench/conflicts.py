"""Benchmark of the conflict engine on a synthetic registry.

Builds N sites (80 % points with a 0.3-5 km protection radius, 20 % small polygons of
0.2-2 km with a 0-1 km buffer) spread over Ukraine and its neighbours (14-45° E,
41-58° N), then measures: index build time; time to check one new activity polygon
(p50, p99 over 1,000 activities); throughput of a full re-check of 10,000 activities
(``Engine.check_activities``: one bulk query); peak RSS. Prints figures, then one JSON line.

    python bench/conflicts.py            # 1,000,000 sites
    python bench/conflicts.py --quick    # 100,000 sites
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import resource
import time

import numpy as np

from hotline.deconfliction import geometry
from hotline.deconfliction.engine import Engine, Volume

LON = (14.0, 45.0)
LAT = (41.0, 58.0)


def _polygon(rng: np.random.Generator, lon: float, lat: float, size_m: float) -> geometry.Shape:
    n = int(rng.integers(4, 8))
    ang = (np.arange(n) + rng.uniform(-0.3, 0.3, n)) * (2 * math.pi / n)
    rad = size_m * rng.uniform(0.5, 1.0, n)
    lons, lats = geometry.aeqd_inverse(lon, lat, rad * np.sin(ang), rad * np.cos(ang))
    ring = [[float(a), float(b)] for a, b in zip(lons, lats, strict=True)]
    ring.append(ring[0])
    return geometry.parse_geometry({"type": "Polygon", "coordinates": [ring]})


def make_sites(n: int, rng: np.random.Generator) -> list[Volume]:
    lons = rng.uniform(*LON, n)
    lats = rng.uniform(*LAT, n)
    out = []
    for i in range(n):
        if i % 5 == 4:
            shape = _polygon(rng, lons[i], lats[i], rng.uniform(200, 2000))
            reach = float(rng.uniform(0, 1000))
        else:
            shape = geometry.point_shape(lons[i], lats[i])
            reach = float(rng.uniform(300, 5000))
        out.append(Volume(f"S{i}", "ua", shape, reach))
    return out


def make_activities(n: int, rng: np.random.Generator) -> list[Volume]:
    out = []
    for i in range(n):
        lon, lat = rng.uniform(*LON), rng.uniform(*LAT)
        shape = _polygon(rng, lon, lat, rng.uniform(500, 5000))
        start = 1.7e9 + float(rng.uniform(0, 86400))
        out.append(Volume(f"A{i}", "ru", shape, 0.0, start, start + 7200, 0.0, 3000.0, "WGS84"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="100,000 sites instead of 1,000,000")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--freeze", action="store_true", help="gc.freeze() after loading")
    args = ap.parse_args()
    n = 100_000 if args.quick else 1_000_000
    rng = np.random.default_rng(args.seed)

    t = time.perf_counter()
    sites = make_sites(n, rng)
    gen_s = time.perf_counter() - t
    print(
        f"generated {n:,} sites in {gen_s:.1f} s "
        f"({platform.machine()}, python {platform.python_version()})"
    )

    engine = Engine()
    t = time.perf_counter()
    engine.sites.bulk_load(sites)
    build_s = time.perf_counter() - t
    del sites
    print(f"index build: {build_s:.2f} s")
    if args.freeze:
        gc.collect()
        gc.freeze()  # a long-lived registry: keep the collector off the million entries

    probes = make_activities(1000, rng)
    times, found = [], 0
    for a in probes:
        t = time.perf_counter()
        found += len(engine.check_activity(a))
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    print(
        f"check one activity: p50 {p50:.3f} ms, p99 {p99:.3f} ms "
        f"({found / 1000:.1f} conflicts each)"
    )

    recheck = make_activities(10_000, rng)
    t = time.perf_counter()
    total = sum(len(found) for found in engine.check_activities(recheck))
    rate = len(recheck) / (time.perf_counter() - t)
    print(
        f"full re-check of {len(recheck):,} activities: {rate:,.0f} activities/s "
        f"({total:,} conflicts)"
    )

    extra = make_sites(1, rng)[0]
    t = time.perf_counter()
    engine.sites.put(Volume("NEW", "ua", extra.shape, extra.reach_m))
    print(f"one new site live in the delta: {(time.perf_counter() - t) * 1000:.3f} ms")

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB")
    print(
        json.dumps(
            {
                "sites": n,
                "index_build_s": round(build_s, 3),
                "check_ms_p50": round(p50, 4),
                "check_ms_p99": round(p99, 4),
                "recheck_activities_per_s": round(rate, 1),
                "rss_mb": round(rss_mb, 1),
                "conflicts_per_check": round(found / 1000, 2),
                "gc_frozen": args.freeze,
            }
        )
    )


if __name__ == "__main__":
    main()
