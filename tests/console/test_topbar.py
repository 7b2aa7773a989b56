"""The shell's top bar and banners in a real browser: who is on watch once the rota names
them, a pill per peer that opens the link's details, and a suspension declared by the peer
shown as a full-width banner, live, until it is resumed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.console.conftest import axe

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-topbar")]

HOUR_US = 3600 * 1_000_000


def test_the_top_bar_shows_who_is_on_watch_after_the_rota_names_them(
    floor: Any, login: Any
) -> None:
    page = login(floor.alpha, "wo2")
    page.wait_for_selector("#on-watch:has-text('the rota names nobody')")
    now = int(time.time() * 1_000_000)
    floor.alpha.api(
        "PUT",
        "/api/v1/rota/night-1",
        json={"username": "wo", "role": "watch_officer", "from_us": now - HOUR_US,
              "to_us": now + 8 * HOUR_US},
    )  # fmt: skip
    page.wait_for_selector("#on-watch:has-text('wo (watch officer)')")
    floor.alpha.api("DELETE", "/api/v1/rota/night-1")
    page.wait_for_selector("#on-watch:has-text('the rota names nobody')")


def test_a_pill_per_peer_in_words_opens_the_link(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo")
    pill = page.wait_for_selector("#topbar .pill:has-text('bravo: UP')")
    assert pill.get_attribute("data-details") == "/console/link/bravo"
    assert "ms" in pill.inner_text()
    assert page.locator("#topbar .pill time[datetime$='Z']").count() == 1
    assert page.inner_text("#alarm-bell").startswith("Alarms: ")
    with page.expect_request("**/console/link/bravo"):
        pill.click()


def test_a_suspension_by_the_peer_is_a_banner_until_resumed(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo")
    assert page.locator(".banner-suspension").count() == 0
    floor.bravo.api(
        "POST", "/api/v1/suspensions", json={"peer": "alpha", "reason": "ceasefire talks"}
    )
    banner = page.wait_for_selector(".banner-suspension")
    text = banner.inner_text()
    assert "SUSPENDED by bravo" in text
    assert "the whole line with bravo" in text
    assert "ceasefire talks" in text
    assert "Link tests continue" in text
    assert page.locator(".banner-suspension time[datetime$='Z']").count() == 1
    assert axe(page) == []
    floor.bravo.api("POST", "/api/v1/suspensions/resume", json={"peer": "alpha"})
    page.wait_for_selector(".banner-suspension", state="detached")


# --- without a browser ------------------------------------------------------------------

HOSTILE = '<script>alert(1)</script><img src=x onerror="x()">'


class Me:
    username = "wo"
    display_name = "Watch <b>Officer</b>"
    role = "watch_officer"


def render(name: str, **values: Any) -> str:
    from hotline.console.templates import environment

    return (
        environment()
        .get_template(name)
        .render(station="alpha", me=Me(), can=lambda _a: True, settings=None, **values)
    )


def test_banners_name_who_suspended_what_and_keep_a_peers_words_as_text() -> None:
    since = 1_700_000_000_000_000
    theirs = {"peer": "bravo", "scope": "channel", "channel": HOSTILE, "declared_by": "bravo",
              "side": "theirs", "reason": HOSTILE, "officer": None, "since_us": since,
              "message_id": "m"}  # fmt: skip
    ours = {**theirs, "scope": "line", "channel": None, "declared_by": "alpha",
            "side": "ours", "reason": "drill", "officer": "swo"}  # fmt: skip
    down = {"peer": "bravo", "state": "DOWN", "last_ok_at_us": None, "last_error": HOSTILE}
    unread = {"handover_id": "h1", "written_by": HOSTILE, "written_at_us": since}
    html = render("banners.html", suspensions=[theirs, ours], links=[down], handovers=[unread])
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "SUSPENDED by bravo" in html
    assert "with bravo" in html
    assert "SUSPENDED by alpha (officer swo)" in html
    assert "the whole line with bravo" in html
    assert html.count("Link tests continue") == 3
    assert "2023-11-14T22:13:20Z" in html  # since when, in UTC with its Z
    assert "Line to bravo is DOWN" in html
    assert "is not yet read" in html


def test_the_top_bar_escapes_and_says_states_in_words() -> None:
    link = {"peer": "bravo", "state": "DEGRADED", "rtt_ms": 412, "last_ok_at_us": None}
    html = render(
        "topbar.html",
        alarms=[{"kind": HOSTILE, "peer": None}],
        links=[link],
        now_us=0,
        on_watch=[("watch_officer", [HOSTILE, "wo"])],
    )
    assert "<script>" not in html
    assert "<img" not in html
    assert "<b>Officer" not in html
    assert "bravo: DEGRADED 412 ms" in html
    assert 'data-details="/console/link/bravo"' in html
    assert "(watch officer)" in html
    assert "Alarms: 1" in html
