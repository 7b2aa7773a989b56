"""bench/console.py's generated registry is one a station accepts: the map bench's
sites across Europe (nuclear plants among them) pass the GeoJSON import's checks, so
the merged console's bench does not stop at its import."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from hotline.deconfliction.exchange import import_geojson

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # as `python bench/console.py` has it (benchkit)
    try:
        spec = importlib.util.spec_from_file_location("bench_console", BENCH / "console.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def test_the_map_benchs_sites_pass_the_import() -> None:
    data = _bench().sites_geojson(2_000)
    notices = import_geojson(data, now=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
                             notice_prefix="bench")  # fmt: skip
    assert len(notices) == 2_000
    categories = {n.site.category for n in notices}
    assert "nuclear_power_plant" in categories
    assert len(categories) >= 8
    lons = [f["geometry"]["coordinates"][0] for f in data["features"]]
    assert min(lons) < 0 < 30 < max(lons)  # across Europe, west to east
