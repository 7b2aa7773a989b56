"""The wall view in a real browser: line state per peer in big words, live; no controls.

A floor of its own (``start_floor``): the test kills the peer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotline.console.templates import environment
from tests.console.conftest import axe, login_page, start_floor

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-wall")]


def test_the_wall_shows_the_line_in_words_and_goes_down_live(tmp_path: Path, browser: Any) -> None:
    f = start_floor(tmp_path)
    try:
        page = login_page(browser, f.alpha, "wo")
        page.goto(f.alpha.api_url + "/wall")
        line = ".wall-line[data-peer='bravo']"
        page.wait_for_selector(f"{line}[data-state='UP']")
        assert page.inner_text(f"{line} .wall-state") == "UP"
        text = page.inner_text("main")
        assert "No suspension in force" in text
        assert "Nothing overdue" in text or "OVERDUE" in text
        assert "No open conflict" in text or "CONFLICT" in text
        # the map's slot is there for static/map.js (the test does not wait for a drawing)
        assert page.locator("main .map[data-map='wall']").count() == 1
        # read-only: nothing in it to press or fill in
        assert page.locator("main button, main form, main input, main [data-api]").count() == 0
        assert axe(page) == []
        f.bravo.kill()
        # live, without a reload: the line goes DOWN, in words
        page.wait_for_selector(f"{line}[data-state='DOWN']", timeout=60_000)
        assert page.inner_text(f"{line} .wall-state") == "DOWN"
        assert "LINK DOWN" in page.inner_text("main")
        assert page.hl_errors == []
        page.context.close()
    finally:
        f.net.close()


def test_the_wall_fragment_escapes_peer_text_and_has_no_controls() -> None:
    evil = '<script>alert(1)</script>"'
    html = environment().get_template("wall/wall.html").render(
        station="alpha",
        me=None,
        can=lambda action: True,
        settings=None,
        links=[{"peer": evil, "state": "DOWN", "rtt_ms": 3, "last_ok_at_us": None}],
        overdue=[{"source": "deadline", "severity": "HIGH", "kind": "ack_overdue",
                  "detail": evil, "raised_at_us": 1}],
        overdue_more=2,
        conflicts=[{"activity_id": evil, "activity_station": evil, "site_id": evil,
                    "site_station": "alpha", "distance_m": 1500.0,
                    "protected_distance_m": 30000.0}],
        conflicts_more=0,
        suspended=[{"declared_by": evil, "scope": "channel", "channel": evil, "peer": evil,
                    "since_us": 1, "reason": evil}],
        now_us=2,
    )  # fmt: skip
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "SUSPENDED by" in html
    assert "OVERDUE" in html
    assert "and 2 more" in html
    assert "CONFLICT" in html
    assert "1.5 km" in html
    assert ">DOWN<" in html
    for control in ("<button", "<form", "<input", "data-api"):
        assert control not in html
