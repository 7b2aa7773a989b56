"""Benchmark of the console map's site source with 10,000 sites (server side).

Builds a registry of N point sites in memory, then times what ``GET /console/map/sites``
does for each request: ``service.mapview.sites_geojson`` and its JSON encoding (p50 and
p99 over 20 runs), and prints the body's size. Prints figures, then one JSON line.

    python bench/map_geojson.py            # 10,000 sites
    python bench/map_geojson.py --quick    # 1,000 sites
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from benchkit import machine, pct
from hotline.deconfliction.models import parse_payload
from hotline.deconfliction.registry import Registry
from hotline.service import mapview

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATEGORIES = ["hospital", "school", "substation", "nuclear_power_plant", "dam"]


def site(i: int) -> dict[str, Any]:
    return {
        "type": "site_notice",
        "notice_id": f"n{i}",
        "action": "add",
        "site_id": f"S{i}",
        "site": {
            "names": {"en": f"Site {i} <&>"},
            "category": CATEGORIES[i % len(CATEGORIES)],
            "geometry": {
                "type": "Point",
                "coordinates": [22.0 + (i % 100) * 0.17, 44.5 + (i // 100) * 0.07],
            },
            "protection_radius_m": 1000.0 + (i % 7) * 500,
            "reconfirm_by": "2026-12-31T00:00:00Z",
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    n = 1_000 if ap.parse_args().quick else 10_000
    reg = Registry()
    for i in range(n):
        notice = parse_payload(site(i))
        reg.apply(notice, "bravo", T0)  # type: ignore[arg-type]
    proj = SimpleNamespace(lock=threading.RLock(), registry=reg)
    times, size = [], 0
    for _ in range(20):
        t = time.perf_counter()
        body = json.dumps(
            mapview.sites_geojson(proj),  # type: ignore[arg-type]
            separators=(",", ":"),
            ensure_ascii=False,
        )
        times.append((time.perf_counter() - t) * 1000)
        size = len(body.encode())
    out = {
        "bench": "map_geojson",
        "sites": n,
        "p50_ms": round(pct(times, 50), 1),
        "p99_ms": round(pct(times, 99), 1),
        "bytes": size,
        "machine": machine(),
    }
    print(
        f"{n} sites: build + encode p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, "
        f"{size / 1e6:.2f} MB"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
