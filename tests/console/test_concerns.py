"""The Concerns tab in a real browser, across both stations' consoles: alpha raises the
draft concern of a conflict; bravo acknowledges and answers it in its console; alpha
sees each step arrive live (no reload) and closes it; bravo sees it closed. Who and when
at each step; the peer's words as text; axe-core on the tab and the details.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.console.conftest import axe
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-concerns")]

ZNPP = [34.5863, 47.5119]
NEAR = [34.585, 47.467]  # 4.9 km south of the plant
ANSWER = '<script>window.pwned=1</script> We move the battery 20 km east & "away".'


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def make_conflict(floor: Any) -> str:
    """bravo notifies the plant; alpha an activity near it: the draft concern's id."""
    now = dt.datetime.now(dt.UTC)
    site = {
        "type": "site_notice",
        "notice_id": "znpp-add-1",
        "action": "add",
        "site_id": "ZNPP",
        "site": {
            "names": {"en": "Zaporizhzhia NPP"},
            "category": "nuclear_power_plant",
            "geometry": {"type": "Point", "coordinates": ZNPP},
            "protection_radius_m": 5_000.0,
            "reconfirm_by": iso(now + dt.timedelta(days=90)),
        },
    }
    floor.bravo.api("POST", "/api/v1/notices", json={"notice": site})
    wait_until(
        "alpha holds the plant",
        lambda: floor.alpha.api("GET", "/api/v1/sites")["sites"],
        lambda sites: [s["id"] for s in sites] == ["ZNPP"],
    )
    start = now + dt.timedelta(hours=1)
    activity = {
        "type": "activity_notice",
        "notice_id": "act-1-add",
        "action": "add",
        "activity_id": "act-1",
        "activity": {
            "kind": "artillery",
            "geometry": {"type": "Point", "coordinates": NEAR},
            "radius_m": 500.0,
            "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
            "window": {"start": iso(start), "end": iso(start + dt.timedelta(hours=4))},
        },
    }
    floor.alpha.api("POST", "/api/v1/notices", json={"notice": activity})
    conflicts = [
        wait_until(
            f"{st.station_id} sees the conflict",
            lambda st=st: st.api("GET", "/api/v1/conflicts")["conflicts"],
            lambda cs: len(cs) == 1,
        )[0]
        for st in (floor.alpha, floor.bravo)
    ]
    ids = {c["draft_concern"]["concern_id"] for c in conflicts}
    assert len(ids) == 1
    return ids.pop()


def open_tab(page: Any) -> None:
    page.click("#tab-concerns")
    page.wait_for_selector("#concerns")


def press(page: Any, selector: str) -> None:
    """Take an action with the keyboard (a toast never covers it)."""
    page.focus(selector)
    page.keyboard.press("Enter")


def wf(page: Any, state: str) -> Any:
    """The done step ``state`` of the workflow in the details panel."""
    return page.locator(f"#concern-details li.wf-done[data-state='{state}']")


def test_a_concern_followed_to_closed_across_both_consoles(floor: Any, login: Any) -> None:
    cid = make_conflict(floor)
    alpha = login(floor.alpha, "wo")
    bravo = login(floor.bravo, "wo2")
    for page in (alpha, bravo):
        open_tab(page)

    # alpha: the draft, its text and conflict, and "Raise"
    card = alpha.locator(f"#concerns li[data-concern='{cid}']")
    card.wait_for()
    assert "DRAFTED" in card.inner_text()
    card.locator("button.concern-open").focus()
    alpha.keyboard.press("Enter")
    alpha.wait_for_selector(f"#concern-details[data-concern='{cid}']")
    details = alpha.inner_text("#details")
    assert "Zaporizhzhia NPP" in details  # the IAEA five-principles text
    assert "ZNPP" in details
    assert "act-1" in details
    assert axe(alpha) == []
    press(alpha, "#concern-details button:has-text('Raise')")
    wf(alpha, "raised").wait_for()
    assert "alpha · Watch Officer Ana" in wf(alpha, "raised").inner_text()
    assert "Waiting for the other side to acknowledge" in alpha.inner_text("#concern-details")

    # bravo: the concern arrives live in its tab, raised by alpha; acknowledge
    raised = bravo.locator(f"#concerns li.concern-raised[data-concern='{cid}']")
    raised.wait_for()
    assert "raised by alpha" in raised.inner_text()
    raised.locator("button.concern-open").focus()
    bravo.keyboard.press("Enter")
    bravo.wait_for_selector(f"#concern-details[data-concern='{cid}']")
    assert "alpha · Watch Officer Ana" in wf(bravo, "raised").inner_text()
    assert axe(bravo) == []
    press(bravo, "#concern-details button:has-text('Acknowledge')")
    wf(bravo, "acknowledged").wait_for()

    # alpha sees the acknowledgement without a reload
    wf(alpha, "acknowledged").wait_for()
    assert "bravo · Watch Officer Ben" in wf(alpha, "acknowledged").inner_text()

    # bravo answers (the peer's words, with markup in them)
    bravo.wait_for_selector("#concern-details form.concern-answer-form")
    bravo.fill("#concern-details textarea[name=text]", ANSWER)
    press(bravo, "#concern-details form.concern-answer-form button[type=submit]")
    wf(bravo, "answered").wait_for()

    # alpha sees the answer live, as text, and closes the concern
    wf(alpha, "answered").wait_for()
    answer = alpha.locator("#concern-details .concern-answer")
    answer.wait_for()
    assert answer.inner_text() == ANSWER
    assert alpha.evaluate("window.pwned === undefined")
    assert alpha.locator("#details script").count() == 0
    press(alpha, "#concern-details button:has-text('Close')")
    wf(alpha, "closed").wait_for()
    assert "Closed: nothing left to do" in alpha.inner_text("#concern-details")

    # bravo sees it closed; both tabs show the whole workflow with who and when
    wf(bravo, "closed").wait_for()
    bravo.locator(f"#concerns li.concern-closed[data-concern='{cid}']").wait_for()
    for page in (alpha, bravo):
        steps = page.locator(f"#concerns li[data-concern='{cid}'] li.wf-done")
        steps.last.wait_for()
        text = page.inner_text(f"#concerns li[data-concern='{cid}']")
        for state in ("raised", "acknowledged", "answered", "closed"):
            assert state.upper() in text.upper()
        assert "Z" in page.inner_text(f"#concerns li[data-concern='{cid}'] time")
        assert axe(page) == []
    for st in (floor.alpha, floor.bravo):
        assert st.api("GET", f"/api/v1/concerns/{cid}")["state"] == "closed"


def test_fragments_refuse_garbage_and_unknown_concerns(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "aud")
    open_tab(page)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=floor.alpha.api_url, trust_env=False) as c:
        c.headers["Cookie"] = f"hotline_session={cookies['hotline_session']}"
        for path in (
            "/console/concern/c-nope",
            "/console/concern/..%2f..",
            "/console/concern/%3Cscript%3E",
            "/console/concern/" + "x" * 200,
        ):
            r = c.get(path)
            assert 400 <= r.status_code < 500, (path, r.status_code)
