"""Benchmark of what a refusal costs the deconfliction registry.

Builds a registry of N point sites (notices parsed as a reload parses them), then
measures: a full rebuild (what a rolled-back unit cost before the undo journal), the
undo of one rolled-back notice from the journal (p50, p99 over 200), and the time to
refuse a 10^6-vertex polygon notice on its size (before schema, shapely or pyproj).
Prints figures, then one JSON line.

    python bench/registry.py            # 2,000 sites
    python bench/registry.py --quick    # 500 sites
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from hotline.deconfliction.journal import Journal
from hotline.deconfliction.models import parse_payload
from hotline.deconfliction.registry import NoticeEntry, Registry
from hotline.errors import GeometryError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def site(i: int) -> dict[str, Any]:
    return {
        "type": "site_notice",
        "notice_id": f"n{i}",
        "action": "add",
        "site_id": f"S{i}",
        "site": {
            "names": {"en": f"Site {i}"},
            "category": "hospital",
            "geometry": {
                "type": "Point",
                "coordinates": [28.0 + (i % 50) * 0.25, 46.0 + (i // 50) * 0.2],
            },
            "protection_radius_m": 1000.0,
            "reconfirm_by": (T0 + timedelta(days=60)).isoformat(),
        },
    }


def activity(i: int) -> dict[str, Any]:
    return {
        "type": "activity_notice",
        "notice_id": f"a{i}",
        "action": "add",
        "activity_id": f"A{i}",
        "activity": {
            "kind": "artillery",
            "geometry": {"type": "Point", "coordinates": [28.1 + (i % 40) * 0.25, 46.1]},
            "radius_m": 20_000.0,
            "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
            "window": {
                "start": (T0 + timedelta(days=1)).isoformat(),
                "end": (T0 + timedelta(days=2)).isoformat(),
            },
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="500 sites instead of 2,000")
    ap.add_argument("--sites", type=int, default=None)
    args = ap.parse_args()
    n = args.sites or (500 if args.quick else 2_000)

    docs = [site(i) for i in range(n)]
    t = time.perf_counter()
    entries = [NoticeEntry(parse_payload(d), "ua", T0) for d in docs]  # type: ignore[arg-type]
    Registry.rebuild(entries)
    rebuild_s = time.perf_counter() - t

    journal = Journal()
    reg = Registry.rebuild(entries, journal=journal)
    journal.active = True
    undo_ms = []
    for i in range(200):
        notice = parse_payload(activity(i))
        mark = journal.mark()
        reg.apply(notice, "ru", T0)  # type: ignore[arg-type]
        t = time.perf_counter()
        journal.undo_to(mark)
        undo_ms.append((time.perf_counter() - t) * 1000)
    undo_ms.sort()

    big = site(0)
    big["site"].pop("protection_radius_m")
    big["site"]["geometry"] = {"type": "Polygon", "coordinates": [[[30.0, 50.0]] * 1_000_000]}
    t = time.perf_counter()
    try:
        parse_payload(big)
    except GeometryError as exc:
        code = exc.code
    refuse_ms = (time.perf_counter() - t) * 1000

    p50 = statistics.median(undo_ms)
    p99 = undo_ms[int(len(undo_ms) * 0.99) - 1]
    print(f"sites: {n}  ({platform.python_implementation()} {platform.python_version()})")
    print(f"full rebuild (a reload's replay, parse included): {rebuild_s * 1000:,.0f} ms")
    print(f"undo of one rolled-back notice from the journal: p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    print(f"refusal of a 10^6-vertex polygon ({code}): {refuse_ms:.2f} ms")
    print(
        json.dumps(
            {
                "bench": "registry",
                "sites": n,
                "rebuild_ms": round(rebuild_s * 1000, 1),
                "undo_p50_ms": round(p50, 4),
                "undo_p99_ms": round(p99, 4),
                "refuse_million_vertices_ms": round(refuse_ms, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
