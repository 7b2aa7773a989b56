"""The package carries the console: its templates, scripts and the front-end libraries.

``pip install`` must bring everything the console serves (the station works air-gapped),
so a built wheel is opened and its files named; and the libraries in
``static/vendor`` are exactly the ones frontend/build.mjs copied from the npm lockfile
(their SHA-256 against vendor/MANIFEST.json: no node needed).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "src" / "hotline" / "console"
VENDOR = CONSOLE / "static" / "vendor"

#: what the wheel must hold, under hotline/console/
IN_THE_WHEEL = [
    "static/vendor/maplibre-gl-csp.js",
    "static/vendor/maplibre-gl-csp-worker.js",
    "static/vendor/maplibre-gl.css",
    "static/vendor/countries-10m.json",
    "static/vendor/htmx.min.js",
    "static/vendor/topojson-client.min.js",
    "static/vendor/MANIFEST.json",
    "static/vendor/LICENSE.maplibre-gl",
    "static/vendor/LICENSE.htmx",
    "static/console.js",
    "static/console.css",
]


def test_the_vendored_libraries_are_the_ones_in_the_manifest() -> None:
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    files = manifest["files"]
    assert {"htmx.min.js", "maplibre-gl-csp.js", "countries-10m.json"} <= set(files)
    for name, entry in files.items():
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], (
            f"static/vendor/{name} differs from MANIFEST.json: "
            "cd frontend && npm ci && node build.mjs"
        )
        assert entry["version"], name
        assert entry["license"], name
    # every file in vendor/ is accounted for (a manifest or a licence), none is extra
    present = {p.name for p in VENDOR.iterdir()}
    assert present - set(files) - {"MANIFEST.json"} == set()
    for pkg in {e["package"] for e in files.values()}:
        licence = f"LICENSE.{pkg.removesuffix('.org')}"
        assert licence in files, f"no {licence} for {pkg} in static/vendor"


@pytest.mark.slow
def test_the_wheel_carries_the_console(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(tmp_path)],
        check=True,
        timeout=280,
    )  # fmt: skip
    [wheel] = tmp_path.glob("hotline-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    missing = [f for f in IN_THE_WHEEL if f"hotline/console/{f}" not in names]
    assert not missing, f"the wheel lacks {missing}"
    templates = {Path(n).name for n in names if n.startswith("hotline/console/templates/")}
    assert {p.name for p in (CONSOLE / "templates").rglob("*.html")} <= templates
    assert {"console.html", "login.html", "wall.html", "_macros.html"} <= templates
