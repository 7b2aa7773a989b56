"""The shell's top bar and banners in a real browser: who is on watch once the rota names
them, a pill per peer that opens the link's details, and a suspension declared by the peer
shown as a full-width banner, live, until it is resumed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

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
    floor.bravo.api("POST", "/api/v1/suspensions/resume", json={"peer": "alpha"})
    page.wait_for_selector(".banner-suspension", state="detached")
