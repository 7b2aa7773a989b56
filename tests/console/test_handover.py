"""The Handover tab in a real browser: the outgoing officer writes the note and sees the
summary, the incoming officer (another browser) sees it arrive live and says "I have read
it", and the history shows who wrote and who read it, and when.
"""

from __future__ import annotations

from typing import Any

import pytest

from hotline.console.handover import item_text
from tests.console.conftest import axe

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-handover")]

NOTE = "Quiet night. <b>Watch</b> the dam sector; bravo's relief at 06:00Z."


def open_handover(page: Any) -> None:
    page.click("#tab-handover")
    page.wait_for_selector("#handover-history :is(.handover, p)")


def test_written_by_one_officer_read_by_another_live(floor: Any, login: Any) -> None:
    incoming = login(floor.alpha, "wo2")
    open_handover(incoming)
    outgoing = login(floor.alpha, "wo")
    open_handover(outgoing)
    # the station's summary of what is open now is shown before writing
    assert outgoing.locator(".handover-preview .summary-part").count() >= 6
    outgoing.fill("#handover-note", NOTE)
    outgoing.click("#handover-form button[type=submit]")
    mine = outgoing.wait_for_selector(".handover:has(.handover-writer:has-text('wo'))")
    assert NOTE in mine.inner_text()  # the note is text: the <b> stays as written
    assert outgoing.locator(".handover-note b").count() == 0
    # the writer cannot acknowledge their own handover
    assert outgoing.locator(".handover .handover-read").count() == 0
    assert "NOT YET READ" in mine.inner_text()

    # the incoming officer's open tab shows it without a reload
    card = incoming.wait_for_selector(".handover-open:has(.handover-writer:has-text('wo'))")
    assert "Overdue acknowledgements" in card.inner_text()
    # and every page of theirs says a handover waits, with a button that opens it
    banner = incoming.wait_for_selector(".banner-handover:has-text('Handover from wo')")
    assert "not yet read" in banner.inner_text()
    assert outgoing.locator(".banner-handover").count() == 0
    incoming.click("#tab-search")
    incoming.wait_for_selector("#search-q")
    incoming.click(".banner-handover button")
    incoming.wait_for_selector(".handover-open .handover-read")
    assert incoming.get_attribute("#tab-handover", "aria-selected") == "true"
    incoming.fill(".handover-open .handover-ack-form input[name=note]", "Got it, <i>thanks</i>")
    incoming.click(".handover-open .handover-read")
    incoming.wait_for_selector(".handover .handover-reader:has-text('wo2')")
    incoming.wait_for_selector(".banner-handover", state="detached")
    # and the writer sees who read it, and when, live
    outgoing.wait_for_selector(".handover .handover-reader:has-text('wo2')")
    ack = outgoing.inner_text(".handover .handover-ack")
    assert "Read by wo2" in ack
    assert "Got it, <i>thanks</i>" in ack
    assert outgoing.locator(".handover .handover-ack time[datetime$='Z']").count() >= 1
    assert outgoing.locator(".handover .handover-head time[datetime$='Z']").count() >= 1


def test_an_auditor_reads_handovers_but_cannot_write(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "aud")
    open_handover(page)
    assert page.locator("#handover-form").count() == 0
    assert page.locator(".handover-read").count() == 0


def test_handover_tab_has_no_serious_accessibility_violations(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "swo")
    open_handover(page)
    page.click(".handover-preview summary")
    assert axe(page) == []


def test_summary_items_are_lines_of_text() -> None:
    line = item_text("unacknowledged", {"precedence": "FLASH", "peer": "bravo",
                                        "channel": "working", "text": "<b>x</b>"})  # fmt: skip
    assert line == "FLASH from bravo on working: <b>x</b>"
    assert item_text("alarms", {"kind": "link_down", "peer": "bravo", "detail": "d"}) == (
        "link_down (bravo): d"
    )
    assert item_text("unknown", {"a": 1}) == "a: 1"
    assert item_text("alarms", "odd") == "odd"  # type: ignore[arg-type]
