"""The MAP tab in a real browser: a conflict appears live, the officer reviews, edits and
raises its drafted concern; the time slider; nothing from another origin; axe-core.

alpha notifies a nuclear plant (to bravo); bravo notifies an activity near it; alpha's
map shows the conflict without a reload. Notices are sent through POST /api/v1/notices
with the station's token, as in tests/api/test_operator_api.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.console.conftest import axe
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-map")]

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ZNPP = [34.5863, 47.5119]
NEAR = [34.585, 47.467]  # 4.9 km south of the plant
FAR = [30.5, 50.45]  # Kyiv: far from every site


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def site_notice(site_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "site_notice",
        "notice_id": f"{site_id}-add",
        "action": "add",
        "site_id": site_id,
        "site": {
            "names": {"en": name},
            "category": "nuclear_power_plant",
            "geometry": {"type": "Point", "coordinates": ZNPP},
            "protection_radius_m": 5_000.0,
            "reconfirm_by": iso(T0 + dt.timedelta(days=400)),
        },
    }


def activity_notice(activity_id: str, where: list[float], day: int) -> dict[str, Any]:
    start = T0 + dt.timedelta(days=day)
    return {
        "type": "activity_notice",
        "notice_id": f"{activity_id}-add",
        "action": "add",
        "activity_id": activity_id,
        "activity": {
            "kind": "artillery",
            "geometry": {"type": "Point", "coordinates": where},
            "radius_m": 500.0,
            "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
            "window": {"start": iso(start), "end": iso(start + dt.timedelta(hours=4))},
        },
    }


def notify(st: Any, notice: dict[str, Any]) -> None:
    st.api("POST", "/api/v1/notices", json={"notice": notice})


def open_map(page: Any) -> Any:
    page.click("#tab-map")
    # the first drawing tiles the 1:10m basemap on a software GL: on a loaded machine
    # that is slow, so this one wait is long (it asserts that the map draws, not when)
    page.wait_for_selector("#map-main[data-ready='1']", timeout=90_000)
    page.wait_for_selector("body[data-map-ready='1']", state="attached")
    return page.locator("#map-main")


def rendered(page: Any, layer: str) -> list[str]:
    """Ids of the features MapLibre has drawn on ``layer`` once the map is idle."""
    return list(
        page.evaluate(
            """(layer) => new Promise((done) => {
                 const m = Hotline.map;
                 m.once('idle', () => done(m.queryRenderedFeatures({layers: [layer]})
                   .map((f) => f.properties.id)));
                 m.triggerRepaint();
               })""",
            layer,
        )
    )


def test_a_conflict_appears_live_and_the_officer_raises_the_edited_concern(
    floor: Any, login: Any
) -> None:
    alpha, bravo = floor.alpha, floor.bravo
    notify(alpha, site_notice("ZNPP", "Zaporizhzhia NPP <b>&</b>"))
    wait_until("the site at bravo", lambda: bravo.api("GET", "/api/v1/sites")["sites"], bool)
    page = login(alpha, "wo")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    box = open_map(page)
    page.wait_for_selector("#map-main[data-sites='1']")
    assert box.get_attribute("data-conflicts") == "0"
    assert "ZNPP" in rendered(page, "site-point")
    assert "No open conflict." in page.inner_text("#map-conflict-list")
    # the legend says in words what the colours say
    assert "Nuclear power plant (large magenta ring)" in page.inner_text(".map-legend")

    # bravo's activity near the plant: the conflict appears on alpha's map, live
    notify(bravo, activity_notice("act-near", NEAR, day=1))
    page.wait_for_selector("#map-main[data-conflicts='1']")
    entry = page.locator("#map-conflict-list button.map-conflict")
    entry.wait_for()
    text = entry.inner_text()
    assert "NUCLEAR" in text
    assert "Zaporizhzhia NPP <b>&</b> (ZNPP)" in text
    assert "act-near" in text
    assert "concern DRAFT" in text

    # click the conflict line on the map: its details with the drafted concern
    line = page.evaluate(
        """() => new Promise((done) => {
             const m = Hotline.map, f = Hotline.mapData.conflicts.features[0];
             const [a, b] = f.geometry.coordinates;
             const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
             m.once('idle', () => done(m.project(mid)));
             m.jumpTo({center: mid, zoom: 11});
           })"""
    )
    canvas = box.bounding_box()
    assert canvas is not None
    page.mouse.click(canvas["x"] + line["x"], canvas["y"] + line["y"])
    page.wait_for_selector("#details #conflict-detail")
    details = page.inner_text("#details")
    assert "DRAFT" in details
    assert "protected distance 5,500 m" in details
    asked = page.input_value("#concern-asked")
    assert "comes within" in asked
    assert "IAEA" in page.input_value("#concern-text") or "IAEA" in details

    # the officer edits the draft and raises it
    edited = "Edited on the watch floor: keep the activity 10 km clear of the plant."
    page.fill("#concern-asked", edited)
    page.click("#concern-raise")
    page.wait_for_selector("#details #concern-state:has-text('RAISED')")
    cid = page.get_attribute("#details #conflict-detail", "data-conflict")
    [concern] = alpha.api("GET", "/api/v1/concerns")["concerns"]
    assert (concern["concern_id"], concern["state"]) == (cid, "raised")
    assert concern["raised"]["asked"] == edited
    assert concern["raised_by"] == "alpha"
    wait_until(
        "bravo has the raised concern",
        lambda: bravo.api("GET", "/api/v1/concerns")["concerns"],
        lambda cs: [c["state"] for c in cs] == ["raised"],
    )
    page.wait_for_selector("#map-conflict-list button:has-text('concern RAISED')")

    # bravo cancels its activity: the conflict leaves the map and the list, live, and
    # its open details say it ended
    cancel = {
        "type": "activity_notice",
        "notice_id": "act-near-cancel",
        "action": "cancel",
        "activity_id": "act-near",
    }
    notify(bravo, cancel)
    page.wait_for_selector("#map-main[data-conflicts='0']")
    page.wait_for_selector("#map-conflict-list:has-text('No open conflict.')")
    page.wait_for_selector("#details #conflict-ended")

    # nothing came from another origin: no tiles, glyphs, sprites or scripts
    origin = alpha.api_url
    assert any(u.endswith("/static/vendor/maplibre-gl-csp.js") for u in requests)
    assert any(u.endswith("/static/vendor/countries-10m.json") for u in requests)
    strangers = [u for u in requests if not u.startswith(origin + "/")]
    assert strangers == []


def test_time_slider_layers_wall_and_accessibility(floor: Any, login: Any) -> None:
    alpha, bravo = floor.alpha, floor.bravo
    notify(bravo, activity_notice("act-early", FAR, day=10))
    notify(bravo, activity_notice("act-late", FAR, day=12))
    wait_until(
        "the activities at alpha",
        lambda: {a["id"] for a in alpha.api("GET", "/api/v1/activities")["activities"]},
        lambda ids: {"act-early", "act-late"} <= ids,
    )
    page = login(alpha, "wo2")
    box = open_map(page)
    wait_until(
        "both activities on the map",
        lambda: int(box.get_attribute("data-activities") or 0),
        lambda n: n >= 2,
    )
    every = int(box.get_attribute("data-activities") or 0)
    assert box.get_attribute("data-activities-shown") == str(every)
    assert {"act-early", "act-late"} <= set(rendered(page, "act-dot"))

    # the slider at day 10 + 1 h: act-late (day 12) is hidden, act-early shown
    at = int((T0 + dt.timedelta(days=10, hours=1)).timestamp())
    page.check("#map-time-on")
    page.evaluate(
        """(at) => { const r = document.querySelector('#map-time');
                     r.value = String(at); r.dispatchEvent(new Event('input')); }""",
        at,
    )
    assert page.inner_text("#map-time-out") == "2026-01-11 01:00Z"
    page.wait_for_selector("#map-main[data-activities-shown='1']")
    drawn = rendered(page, "act-dot")
    assert "act-early" in drawn
    assert "act-late" not in drawn
    page.uncheck("#map-time-on")
    page.wait_for_selector(f"#map-main[data-activities-shown='{every}']")

    # a layer toggle hides the protected sites
    page.uncheck("input[data-map-layer='sites']")
    assert page.evaluate("Hotline.map.getLayoutProperty('site-point', 'visibility')") == "none"
    page.check("input[data-map-layer='sites']")

    # a wall map appearing after a swap is drawn too (read-only)
    page.evaluate(
        """() => { const d = document.createElement('div');
                   d.className = 'map'; d.dataset.map = 'wall'; d.id = 'wall-map';
                   document.querySelector('#tab').appendChild(d);
                   document.body.dispatchEvent(new CustomEvent('htmx:afterSettle',
                     {bubbles: true})); }"""
    )
    page.wait_for_selector("#wall-map[data-ready='1']")
    assert page.get_attribute("#wall-map", "data-activities") == str(every)
    page.evaluate("document.querySelector('#wall-map').remove()")

    # axe-core on the tab with an activity's details open
    page.evaluate("Hotline.details('/console/activity/act-early')")
    page.wait_for_selector("#details [data-activity-id='act-early']")
    assert "2026-01-11 00:00:00Z to 2026-01-11 04:00:00Z" in page.inner_text("#details")
    assert axe(page) == []
    page.click("#theme-toggle")  # the night watch's theme too
    page.wait_for_selector("html[data-theme]", state="attached")
    assert axe(page) == []
