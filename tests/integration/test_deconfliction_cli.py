"""Deconfliction end to end through the installed ``hotline`` command, between two real
station processes (localnet; SQLite and PostgreSQL): bravo notifies the reference sites,
alpha notifies artillery near the Zaporizhzhia NPP and is told of the conflict, bravo
sees it and raises the drafted concern, which runs to closed; an import with a bad
feature changes nothing; the registry exports as ED-318.

Notification is information, never permission: the CLI says so with every notice.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hotline.localnet import LocalStation
from tests.integration.conftest import Net, cli, cli_process, wait_until

pytestmark = pytest.mark.integration

NOTE = "Notification is information, never permission."


def ok(*args: str | Path) -> str:
    r = cli(*args)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def refused(*args: str | Path) -> subprocess.CompletedProcess[str]:
    r = cli(*args)
    assert r.returncode != 0, (args, r.stdout)
    assert "error:" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r


def sites(st: LocalStation) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = st.api("GET", "/api/v1/sites")["sites"]
    return result


def concern_state(st: LocalStation, cid: str) -> str | None:
    for c in st.api("GET", "/api/v1/concerns", params={"all": True})["concerns"]:
        if c["concern_id"] == cid:
            return str(c["state"])
    return None


def when(hours: float) -> str:
    t = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%MZ")


def conflict_ids(st: LocalStation) -> list[str]:
    return [c["activity_id"] for c in st.api("GET", "/api/v1/conflicts")["conflicts"]]


# PostgreSQL is covered in process (tests/service/test_registry_service.py); here the CLI
# and real processes, on SQLite only, to keep the run short
@pytest.mark.parametrize("db", ["sqlite"])
def test_conflict_concern_import_and_export_through_the_cli(net: Net, tmp_path: Path) -> None:
    a, b = net.pair()
    a.start()
    b.start()
    da, db = a.data_dir, b.data_dir

    out = ok("sites", "reference", "-d", db)
    assert "38 reference sites notified" in out
    assert NOTE in out
    wait_until("alpha to hold bravo's 38 sites", lambda: sites(a), lambda s: len(s) == 38)
    assert {s["owner"] for s in sites(a)} == {"bravo"}
    listed = ok("sites", "list", "-d", da)
    assert "UA-NPP-ZNPP" in listed
    assert "Zaporizhzhia NPP" in listed

    # artillery 4.9 km from the plant (reference protection radius 5 km)
    out = ok("activity", "notify", "--point", "47.467,34.585", "--radius-km", "0.5",
             "--from", when(6), "--to", when(10), "--kind", "artillery", "-d", da)  # fmt: skip
    assert "CONFLICT" in out
    assert "UA-NPP-ZNPP" in out
    [aid] = re.findall(r"activity id: (\S+)", out)

    wait_until("bravo to hold the conflict", lambda: conflict_ids(b), lambda ids: aid in ids)
    seen = ok("conflicts", "-d", db)
    assert "CONFLICT" in seen
    assert "UA-NPP-ZNPP (bravo)" in seen
    assert f"{aid} (alpha)" in seen
    [cid] = re.findall(r"draft concern (c-[0-9a-f]+)", seen)
    alarms = [x for x in b.api("GET", "/api/v1/alarms") if x["kind"] == "conflict"]
    assert [x["severity"] for x in alarms] == ["CRITICAL"]

    # the concern: raised by bravo, acknowledged and answered by alpha, closed by bravo
    assert NOTE in ok("concern", "raise", "--draft", cid, "-d", db)
    wait_until("alpha to see the concern raised", lambda: concern_state(a, cid), "raised".__eq__)
    r = refused("concern", "close", cid, "-d", da)  # not raised by alpha, not answered
    assert cid in r.stderr
    ok("concern", "ack", cid, "-d", da)
    wait_until("bravo to see it acknowledged", lambda: concern_state(b, cid),
               "acknowledged".__eq__)  # fmt: skip
    ok("concern", "answer", cid, "--text", "The activity moves 25 km east.", "-d", da)
    wait_until("bravo to see it answered", lambda: concern_state(b, cid), "answered".__eq__)
    ok("concern", "close", cid, "-d", db)
    wait_until("alpha to see it closed", lambda: concern_state(a, cid), "closed".__eq__)
    assert cid not in ok("concern", "list", "-d", da)

    # an import with one bad feature: named, refused whole, nothing notified
    bad = tmp_path / "BAD.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [30.5, 50.4]},
         "properties": {"site_id": "H-OK", "name": "Good", "category": "hospital",
                        "protection_radius_m": 500}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [30.5, 95.0]},
         "properties": {"site_id": "H-BAD", "name": "Bad", "category": "hospital",
                        "protection_radius_m": 500}},
    ]}))  # fmt: skip
    before = sites(a), sites(b), ok("sites", "list", "-d", da)
    r = refused("sites", "import", bad, "-d", db)
    assert "feature 1 (H-BAD)" in r.stderr
    assert "nothing was imported" in r.stderr
    assert (sites(a), sites(b), ok("sites", "list", "-d", da)) == before
    assert len(sites(a)) == 38

    # export as ED-318: one zone per site
    out_file = tmp_path / "zones.json"
    ok("sites", "export", out_file, "--format", "ed318", "-d", da)
    doc = json.loads(out_file.read_text())
    zones = {f["properties"]["identifier"]: f for f in doc["features"]}
    assert len(zones) == 38
    znpp = zones["UA-NPP-ZNPP"]
    assert znpp["geometry"]["extent"]["radius"] == 5000
    ok("sites", "export", tmp_path / "conflicts.json", "--format", "conflicts", "-d", db)
    assert len(json.loads((tmp_path / "conflicts.json").read_text())["features"]) == 1

    # the activity is cancelled: the conflict ends on both stations
    ok("activity", "cancel", aid, "-d", da)
    assert conflict_ids(a) == []
    wait_until("bravo to have no conflict", lambda: conflict_ids(b), lambda ids: ids == [])
    assert "no open conflicts" in ok("conflicts", "-d", db)


def test_cli_refusals_without_a_station(tmp_path: Path) -> None:
    """What the CLI refuses before it reaches a station: a red line, no traceback."""
    r = refused("activity", "notify", "--from", when(1), "--to", when(2), "-d", tmp_path)
    assert "--point" in r.stderr
    r = cli_process("activity", "notify", "--point", "x,y", "--from", when(1), "--to", when(2),
            "-d", tmp_path)  # fmt: skip
    assert r.returncode != 0
    assert "LAT,LON" in r.stderr
    r = cli("activity", "notify", "--point", "47,34", "--from", "tomorrow", "--to", when(2),
            "-d", tmp_path)  # fmt: skip
    assert r.returncode != 0
    assert "ISO 8601" in r.stderr
    r = refused("sites", "import", tmp_path / "missing.geojson", "-d", tmp_path)
    assert "cannot read" in r.stderr
    r = refused("sites", "list", "-d", tmp_path)
    assert "no station is running" in r.stderr


def test_activity_file_that_is_not_json_is_a_clean_refusal(tmp_path: Path) -> None:
    """``activity notify --file`` parses the file with json.loads outside any error
    handling: a file that is not JSON, or that is missing, ends in a traceback."""
    not_json = tmp_path / "area.geojson"
    not_json.write_text("{not json")
    for f in (not_json, tmp_path / "missing.geojson"):
        refused("activity", "notify", "--file", f, "--from", when(1), "--to", when(2),
                "-d", tmp_path)  # fmt: skip
