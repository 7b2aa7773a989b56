"""The Search tab in a real browser: a word finds a message, a filter narrows it, a result
opens its details, "/" focuses the query box, a peer's words stay text; and, without a
browser, garbage in the query string is refused or finds nothing and changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import expect

from hotline.console.search import segments
from tests.console.conftest import PASSWORD, axe
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-search")]

HOSTILE = '<img src=x onerror="window.__pwned=1"><b>zebracrossing</b>'


def send(st: Any, peer: str, text: str, precedence: str = "ROUTINE") -> str:
    out = st.api(
        "POST", "/api/v1/messages", json={"peer": peer, "text": text, "precedence": precedence}
    )
    return str(out["message_id"])


def received(st: Any, mid: str) -> None:
    wait_until(
        f"message {mid} to arrive",
        lambda: st.api("GET", "/api/v1/search", params={"q": "", "direction": "in"})["items"],
        lambda items: any(i["message_id"] == mid for i in items),
    )


@pytest.fixture(scope="module")
def sent(floor: Any) -> dict[str, str]:
    """Messages from bravo to alpha: two with the word, of different precedence."""
    ids = {
        "routine": send(floor.bravo, "alpha", "the pelican convoy leaves at dawn"),
        "immediate": send(floor.bravo, "alpha", "pelican sighted near the dam", "IMMEDIATE"),
        "other": send(floor.bravo, "alpha", "nothing to see here"),
        "hostile": send(floor.bravo, "alpha", HOSTILE),
    }
    for mid in ids.values():
        received(floor.alpha, mid)
    return ids


def open_search(page: Any) -> None:
    page.click("#tab-search")
    page.wait_for_selector("#search-q")


def test_a_word_finds_messages_and_precedence_narrows_it(
    floor: Any, login: Any, sent: dict[str, str]
) -> None:
    page = login(floor.alpha, "wo")
    open_search(page)
    page.fill("#search-q", "pelican")
    page.press("#search-q", "Enter")
    page.wait_for_selector(f".hit[data-message-id='{sent['immediate']}']")
    ids = page.eval_on_selector_all(".hit", "els => els.map(e => e.dataset.messageId)")
    assert set(ids) == {sent["routine"], sent["immediate"]}
    # the matching word is marked, the card says the precedence in words
    assert page.inner_text(f".hit[data-message-id='{sent['routine']}'] mark").lower() == "pelican"
    assert "IMMEDIATE" in page.inner_text(f".hit[data-message-id='{sent['immediate']}']")
    page.select_option("select[name=precedence]", "IMMEDIATE")
    expect(page.locator(".hit")).to_have_count(1)
    expect(page.locator(".hit")).to_have_attribute("data-message-id", sent["immediate"])
    # nothing found with it acknowledged; found again when unacknowledged
    page.select_option("select[name=state]", "acknowledged")
    page.wait_for_selector(".search-count:has-text('Nothing found')")
    page.select_option("select[name=state]", "unacknowledged")
    expect(page.locator(".hit")).to_have_count(1)
    # a result opens in the details panel (the fragment is another area's)
    card = page.locator(f".hit[data-message-id='{sent['immediate']}']")
    assert card.get_attribute("data-details") == f"/console/message/{sent['immediate']}"
    with page.expect_request(f"**/console/message/{sent['immediate']}") as req:
        card.click()
    assert req.value.method == "GET"


def test_nothing_found_says_so(floor: Any, login: Any, sent: dict[str, str]) -> None:
    page = login(floor.alpha, "wo2")
    open_search(page)
    page.fill("#search-q", "xylophonically")
    page.press("#search-q", "Enter")
    page.wait_for_selector(".search-count:has-text('Nothing found')")
    assert page.locator(".hit").count() == 0


def test_slash_opens_search_and_focuses_the_query(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo")
    page.locator("body").focus()
    page.keyboard.press("/")
    expect(page.locator("#search-q")).to_be_focused()
    assert page.get_attribute("#tab-search", "aria-selected") == "true"
    # typed into the box, "/" is a character, not the shortcut
    page.keyboard.type("a/b")
    assert page.input_value("#search-q") == "a/b"


def test_a_peers_words_are_text_in_results(floor: Any, login: Any, sent: dict[str, str]) -> None:
    page = login(floor.alpha, "wo")
    open_search(page)
    page.fill("#search-q", "zebracrossing")
    page.press("#search-q", "Enter")
    card = page.wait_for_selector(f".hit[data-message-id='{sent['hostile']}']")
    assert "<img src=x" in card.inner_text()
    assert page.locator(".hit-text img, .hit-text b").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_the_printable_log_is_offered_to_who_may_export(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "swo")
    open_search(page)
    assert page.locator("#print-log").count() == 1
    assert page.get_attribute("#print-log", "action") == "/api/v1/log"
    assert page.input_value("#print-log input[name=format]") == "html"
    page = login(floor.alpha, "wo2")
    open_search(page)
    assert page.locator("#print-log").count() == 0


def test_search_tab_has_no_serious_accessibility_violations(
    floor: Any, login: Any, sent: dict[str, str]
) -> None:
    page = login(floor.alpha, "swo")
    open_search(page)
    page.fill("#search-q", "pelican")
    page.press("#search-q", "Enter")
    page.wait_for_selector(".hit")
    assert axe(page) == []


# --- without a browser ------------------------------------------------------------------


def test_segments_mark_the_words_and_keep_everything_else() -> None:
    parts = segments("Pelican near the pelicans' dam", "pelican")
    assert "".join(p for p, _ in parts) == "Pelican near the pelicans' dam"
    assert [p for p, hit in parts if hit] == ["Pelican", "pelican"]
    assert segments("text", '"unclosed') == [("text", False)]
    assert segments("text", "") == [("text", False)]


@pytest.fixture(scope="module")
def session(floor: Any) -> Any:
    c = httpx.Client(base_url=floor.alpha.api_url, timeout=30)
    r = c.post("/api/v1/session", json={"username": "wo", "password": PASSWORD})
    assert r.status_code == 200
    c.headers["Cookie"] = f"hotline_session={r.cookies['hotline_session']}"
    yield c
    c.close()


def messages(st: Any) -> tuple[int, int]:
    """Messages sent and received (the ledger itself grows with the link tests)."""
    counts = st.api("GET", "/api/v1/status")["counts"]
    return counts["sent"], counts["received"]


PARAMS = ["q", "channel", "peer", "precedence", "direction", "state", "from", "to", "cursor"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from([*PARAMS, "limit", "x"]), st.text(max_size=80), max_size=4))
def test_garbage_query_params_are_refused_or_find_nothing(
    floor: Any, session: Any, params: dict[str, str]
) -> None:
    before = messages(floor.alpha)
    r = session.get("/console/search", params=params)
    assert r.status_code in (200, 422), (params, r.status_code, r.text[:300])
    if r.status_code == 200:
        assert r.headers["content-type"].startswith("text/html")
    assert messages(floor.alpha) == before
