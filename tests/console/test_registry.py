"""The Registry tab in a real browser: sites and activities of both stations with their
history, stale flags and acknowledgements; a peer's names as text; the import with a
preview (counts, or the first bad feature named) before anything is sent; axe-core.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from tests.console.conftest import PASSWORD, axe
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-registry")]

HOSTILE = '<img src=x onerror="window.pwned=1">Plant & "Co"'


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def site_notice(site_id: str, name: str, reconfirm_by: dt.datetime) -> dict[str, Any]:
    return {
        "type": "site_notice",
        "notice_id": f"{site_id}-add",
        "action": "add",
        "site_id": site_id,
        "site": {
            "names": {"en": name},
            "category": "hospital",
            "geometry": {"type": "Point", "coordinates": [30.5, 50.4]},
            "protection_radius_m": 500.0,
            "reconfirm_by": iso(reconfirm_by),
        },
    }


def collection(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def feature(site_id: str, lat: float = 49.0) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [31.0, lat]},
        "properties": {"site_id": site_id, "name": f"School {site_id}", "category": "school",
                       "protection_radius_m": 300},
    }  # fmt: skip


def acknowledge_notices(st: Any) -> None:
    """``st``'s officer acknowledges every notice received (the queue's work, by API)."""
    for m in st.api("GET", "/api/v1/messages", params={"direction": "in", "unacknowledged": True}):
        if m["type"] in ("site_notice", "activity_notice"):
            st.api("POST", f"/api/v1/messages/{m['message_id']}/ack", json={"note": None})


def open_tab(page: Any) -> None:
    page.click("#tab-registry")
    page.wait_for_selector("#registry #sites-title")


def test_peer_sites_show_as_text_with_stale_flags_and_history(floor: Any, login: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    for notice in (
        site_notice("B-STALE", HOSTILE, now - dt.timedelta(days=2)),
        site_notice("B-FRESH", "Fresh clinic", now + dt.timedelta(days=60)),
    ):
        floor.bravo.api("POST", "/api/v1/notices", json={"notice": notice})
    wait_until(
        "alpha holds bravo's sites",
        lambda: floor.alpha.api("GET", "/api/v1/sites")["sites"],
        lambda sites: len(sites) == 2,
    )
    acknowledge_notices(floor.alpha)
    wait_until(
        "bravo holds alpha's acknowledgements",
        lambda: floor.bravo.api("GET", "/api/v1/sites")["sites"],
        lambda sites: all(s["versions"][-1]["acknowledged_by"] for s in sites),
    )
    page = login(floor.alpha, "wo")
    open_tab(page)
    stale = page.locator("#sites-table tr[data-site='B-STALE']")
    stale.wait_for()
    # the peer's name is text: shown literally, never markup
    assert HOSTILE in stale.locator(".site-name").inner_text()
    assert page.locator("#sites-table img").count() == 0
    assert page.evaluate("window.pwned === undefined")
    assert "STALE" in stale.inner_text()
    fresh = page.locator("#sites-table tr[data-site='B-FRESH']")
    assert "STALE" not in fresh.inner_text()
    assert "bravo" in fresh.inner_text()
    # bravo sees alpha's acknowledgement of its notice, per recipient
    bravo = login(floor.bravo, "wo2")
    open_tab(bravo)
    row = bravo.locator("#sites-table tr[data-site='B-FRESH']")
    row.wait_for()
    assert "acknowledged by alpha" in row.inner_text()
    assert "(ours)" in row.inner_text()
    # details: every version with who and when
    page.click("#sites-table button[data-details='/console/registry/site/B-STALE']")
    page.wait_for_selector("#details .registry-record[data-record='B-STALE']")
    details = page.inner_text("#details")
    assert "v1" in details
    assert "add by bravo" in details
    assert HOSTILE in details
    assert "STALE" in details
    assert "Z" in page.inner_text("#details .version")
    assert axe(page) == []


def test_a_new_peer_activity_appears_live(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo")
    open_tab(page)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    notice = {
        "type": "activity_notice",
        "notice_id": "b-ex-1-add",
        "action": "add",
        "activity_id": "b-ex-1",
        "activity": {
            "kind": "demining",
            "geometry": {"type": "Point", "coordinates": [36.0, 46.0]},
            "radius_m": 200.0,
            "altitude": {"lower_m": 0.0, "upper_m": 100.0},
            "window": {"start": iso(start), "end": iso(start + dt.timedelta(hours=2))},
        },
    }
    floor.bravo.api("POST", "/api/v1/notices", json={"notice": notice})
    row = page.locator("#activities-table tr[data-activity='b-ex-1']")
    row.wait_for()
    assert "bravo" in row.inner_text()


def test_import_preview_names_the_first_bad_feature_then_a_good_file_imports(
    floor: Any, login: Any
) -> None:
    floor.alpha.api(
        "POST",
        "/api/v1/officers",
        json={"username": "adm", "display_name": "Admin Eve", "roles": ["administrator"],
              "password": PASSWORD},
    )  # fmt: skip
    before = floor.alpha.api("GET", "/api/v1/sites", params={"include_ended": True})["sites"]
    page = login(floor.alpha, "adm")
    open_tab(page)
    bad = collection(feature("S-OK"), feature("S-BAD", lat=123.0), feature("S-WORSE", lat=99))
    page.set_input_files(
        "#import-file",
        files=[{"name": "bad.geojson", "mimeType": "application/json", "buffer": bad}],
    )
    page.click("#import-preview-btn")
    page.wait_for_selector("#import-preview.import-refused")
    text = page.inner_text("#import-preview")
    assert "feature 1 (S-BAD)" in text
    assert "REFUSED" in text
    assert page.locator("#import-send").is_hidden()
    assert (
        floor.alpha.api("GET", "/api/v1/sites", params={"include_ended": True})["sites"] == before
    )
    assert axe(page) == []

    good = collection(feature("S-1"), feature("S-2", lat=49.2))
    page.set_input_files(
        "#import-file",
        files=[{"name": "good.geojson", "mimeType": "application/json", "buffer": good}],
    )
    page.click("#import-preview-btn")
    page.wait_for_selector("#import-preview.import-ok")
    text = page.inner_text("#import-preview")
    assert "2 sites to notify to bravo" in text
    assert "school: 2" in text
    assert "S-1: School S-1" in text
    # a preview sends nothing
    assert (
        floor.alpha.api("GET", "/api/v1/sites", params={"include_ended": True})["sites"] == before
    )
    page.click("#import-send")
    page.wait_for_selector("#import-preview .import-done")
    page.wait_for_selector("#sites-table tr[data-site='S-2']")
    wait_until(
        "bravo holds the imported sites",
        lambda: {s["id"] for s in floor.bravo.api("GET", "/api/v1/sites")["sites"]},
        lambda ids: {"S-1", "S-2"} <= ids,
    )


def test_fragments_refuse_garbage_ids_and_a_watch_officer_sees_no_import(
    floor: Any, login: Any
) -> None:
    page = login(floor.alpha, "wo")
    open_tab(page)
    assert page.locator("#import-file").count() == 0
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=floor.alpha.api_url, trust_env=False) as c:
        c.headers["Cookie"] = f"hotline_session={cookies['hotline_session']}"
        for path in (
            "/console/registry/site/NOPE",
            "/console/registry/site/..%2f..",
            "/console/registry/activity/%3Cscript%3E",
            "/console/registry/site/" + "x" * 200,
        ):
            r = c.get(path)
            assert 400 <= r.status_code < 500, (path, r.status_code)
