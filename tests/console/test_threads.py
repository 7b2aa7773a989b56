"""The threads tab in a real browser: channels by level with unread counts, a thread as
cards with stages, replies indented, the composer (word count against the brevity limit,
the two-person note), live arrival on the other station without a reload, a peer's markup
shown as text, channel proposals answered from the list; and, without a browser, an
unknown or garbage channel refused with a 4xx fragment that changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.console.conftest import PASSWORD, axe
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-threads")]


def open_thread(page: Any, channel: str = "working") -> None:
    page.wait_for_selector(f".channel-link[data-channel='{channel}']")
    page.click(f".channel-link[data-channel='{channel}']")
    page.wait_for_selector(f".thread[data-channel='{channel}']")


def send(page: Any, text: str, precedence: str = "ROUTINE") -> None:
    page.select_option("#composer-precedence", precedence)
    page.fill("#composer-text", text)
    page.click("#composer button[type=submit]")


def channel_state(st_: Any, name: str) -> str:
    rows = [c for c in st_.api("GET", "/api/v1/channels") if c["name"] == name]
    return rows[-1]["state"] if rows else "absent"


def test_a_message_from_the_composer_arrives_live_and_peer_markup_is_text(
    floor: Any, login: Any
) -> None:
    bravo = login(floor.bravo, "wo")
    bravo.wait_for_selector(".thread[data-channel='working']")  # the default thread
    bravo.evaluate("window.__noReload = 1")
    alpha = login(floor.alpha, "wo")
    alpha.wait_for_selector("#composer")
    text = "Convoy at km 12 <b>bold</b> <script>window.__pwned=1</script> 0400Z"
    send(alpha, text)
    mine = alpha.wait_for_selector(".thread-card:has-text('Convoy at km 12')")
    assert "Watch Officer Ana" in mine.inner_text()
    assert "alpha" in mine.inner_text()
    theirs = bravo.wait_for_selector(".thread-card:has-text('Convoy at km 12')")
    # no reload: the flag set on this very page is still there
    assert bravo.evaluate("window.__noReload") == 1
    assert text in theirs.inner_text()
    assert bravo.locator(".thread-card .text b").count() == 0
    assert bravo.locator(".thread-card script").count() == 0
    assert bravo.evaluate("window.__pwned") is None
    # the sender's officer and role, the precedence word and stage chips in words
    head = theirs.inner_text()
    assert "ROUTINE" in head
    assert "Watch Officer Ana" in head
    assert "watch officer" in head
    assert "received" in head
    # the sender's card reaches "delivered" live
    alpha.wait_for_selector(".thread-card:has-text('Convoy at km 12') .chip-done.stage-delivered")
    details = bravo.locator(".thread-card:has-text('Convoy at km 12')").first
    assert (details.get_attribute("data-details") or "").startswith("/console/message/")


def test_a_reply_is_indented_under_what_it_answers(floor: Any, login: Any) -> None:
    floor.alpha.api(
        "POST", "/api/v1/messages", json={"peer": "bravo", "text": "Question: status of bridge 4?"}
    )
    bravo = login(floor.bravo, "wo2")
    card = bravo.wait_for_selector(".thread-card:has-text('status of bridge 4')")
    card.query_selector(".reply-button").click()
    bravo.wait_for_selector("#composer-replying:not([hidden])")
    assert "status of bridge 4" in bravo.inner_text("#composer-replying")
    bravo.fill("#composer-text", "Bridge 4 intact, open to traffic")
    bravo.click("#composer button[type=submit]")
    reply = bravo.wait_for_selector(".thread-card.depth-1:has-text('Bridge 4 intact')")
    assert "reply" in reply.inner_text()
    # the reply is right after its parent, one level deeper
    order = bravo.eval_on_selector_all(
        ".thread-card", "cs => cs.map(c => [c.dataset.depth, c.innerText.slice(0, 300)])"
    )
    i = next(n for n, (_, t) in enumerate(order) if "status of bridge 4" in t)
    assert order[i][0] == "0"
    assert order[i + 1][0] == "1"
    assert "Bridge 4 intact" in order[i + 1][1]
    assert bravo.is_hidden("#composer-replying")
    # and at the asking station too, live
    alpha = login(floor.alpha, "wo2")
    alpha.wait_for_selector(".thread-card.depth-1:has-text('Bridge 4 intact')")


def test_brevity_two_person_and_a_proposal_answered_from_the_list(floor: Any, login: Any) -> None:
    floor.bravo.api(
        "POST",
        "/api/v1/officers",
        json={"username": "prin", "display_name": "Principal Pia", "roles": ["principal"],
              "password": PASSWORD},
    )  # fmt: skip
    terms = {"name": "brief", "level": "chiefs_of_staff", "members": ["alpha", "bravo"],
             "brevity_words": 5}  # fmt: skip
    floor.alpha.api("POST", "/api/v1/channels", json=terms)
    floor.alpha.api(
        "POST",
        "/api/v1/channels",
        json={"name": "twoman", "level": "ministers", "members": ["alpha", "bravo"],
              "two_person": True},
    )  # fmt: skip
    floor.alpha.api(
        "POST",
        "/api/v1/channels",
        json={"name": "nope", "level": "working", "members": ["alpha", "bravo"]},
    )
    for name in ("brief", "nope"):
        wait_until(f"{name} at bravo", lambda name=name: channel_state(floor.bravo, name),
                   lambda s: s == "proposed")  # fmt: skip
    wait_until("proposals at bravo", lambda: channel_state(floor.bravo, "twoman"),
               lambda s: s == "proposed")  # fmt: skip
    # a watch officer sees the proposal but no buttons; a principal answers it
    wo = login(floor.bravo, "wo")
    wo.wait_for_selector(".proposal[data-proposal='brief']")
    assert wo.locator(".proposal[data-proposal='brief'] button").count() == 0
    prin = login(floor.bravo, "prin")
    prin.click(".proposal[data-proposal='brief'] button:has-text('Accept')")
    prin.wait_for_selector(".proposal[data-proposal='twoman'] button:has-text('Accept')")
    prin.click(".proposal[data-proposal='twoman'] button:has-text('Accept')")
    for st_ in (floor.alpha, floor.bravo):
        for name in ("brief", "twoman"):
            wait_until(f"{name} agreed", lambda st_=st_, name=name: channel_state(st_, name),
                       lambda s: s == "agreed")  # fmt: skip
    prin.wait_for_selector(".proposal[data-proposal='brief']", state="detached")
    prin.click(".proposal[data-proposal='nope'] button:has-text('Decline')")
    wait_until("nope declined", lambda: channel_state(floor.alpha, "nope"),
               lambda s: s == "declined")  # fmt: skip
    prin.wait_for_selector(".proposal[data-proposal='nope']", state="detached")
    # grouped by level
    levels = prin.text_content("#channel-list") or ""
    assert levels.index("chiefs of staff") < levels.index("brief") < levels.index("ministers")

    alpha = login(floor.alpha, "wo")
    open_thread(alpha, "brief")
    alpha.select_option("#composer-precedence", "FLASH")
    alpha.fill("#composer-text", "one two three four five six")
    assert "6 words of at most 5 for FLASH (too long)" in alpha.inner_text("#composer-count")
    alpha.click("#composer button[type=submit]")
    alpha.wait_for_selector("#composer-error:not([hidden])")
    assert "at most 5" in alpha.inner_text("#composer-error")
    assert alpha.locator(".thread-card:has-text('one two three')").count() == 0
    # at ROUTINE the limit does not apply
    alpha.select_option("#composer-precedence", "ROUTINE")
    assert "too long" not in alpha.inner_text("#composer-count")
    assert alpha.is_hidden("#composer-error")
    # the station's own refusal (past the page's check) shows as a toast
    alpha.evaluate(
        "Hotline.api('POST', '/api/v1/messages', {channel: 'brief', precedence: 'FLASH',"
        " text: 'a b c d e f g'})"
    )
    alpha.wait_for_selector(".toast-error:has-text('at most 5 words')")
    # within the limit it goes, to every other member, shown once
    send(alpha, "Ceasefire holds at 0600Z", "FLASH")
    card = alpha.wait_for_selector(".thread-card:has-text('Ceasefire holds')")
    assert "FLASH" in card.inner_text()

    # the two-person channel says so, and a send is held for approval
    open_thread(alpha, "twoman")
    assert "Needs a second officer" in alpha.inner_text("#composer")
    alpha.evaluate("() => document.getElementById('toasts').replaceChildren()")  # earlier sends'
    send(alpha, "Request ministerial call at 1200Z")
    alpha.wait_for_selector(".toast:has-text('Held for approval')")
    assert alpha.locator(".toast:text-is('Sent.')").count() == 0
    assert alpha.locator(".thread-card:has-text('ministerial call')").count() == 0


def test_unread_counts_change_after_reading(floor: Any, login: Any) -> None:
    for n in range(2):
        floor.alpha.api(
            "POST", "/api/v1/messages", json={"peer": "bravo", "text": f"Unread check {n}"}
        )
    wait_until(
        "both at bravo",
        lambda: floor.bravo.api("GET", "/api/v1/messages?channel=working&direction=in"),
        lambda rows: sum("Unread check" in (r["body"].get("text") or "") for r in rows) == 2,
    )
    page = login(floor.bravo, "swo")
    count = page.wait_for_selector(".channel-link[data-channel='working'] .count-unread")
    before = int(count.get_attribute("data-unread") or 0)
    assert before >= 2
    assert f"{before} unread" in count.inner_text()
    card = page.wait_for_selector(".thread-card.unread:has-text('Unread check 0')")
    card.query_selector(".read-button").click()
    page.wait_for_selector(
        f".channel-link[data-channel='working'] .count-unread[data-unread='{before - 1}']"
    )
    page.wait_for_selector(".thread-card:not(.unread):has-text('Unread check 0')")
    # the sender sees the read live, in words
    alpha = login(floor.alpha, "aud")
    alpha.wait_for_selector(".thread-card:has-text('Unread check 0') .chip-done.stage-read")


def test_the_threads_tab_has_no_serious_accessibility_violations(floor: Any, login: Any) -> None:
    floor.alpha.api("POST", "/api/v1/messages", json={"peer": "bravo", "text": "axe check"})
    page = login(floor.bravo, "wo")
    page.wait_for_selector(".thread-card")
    page.wait_for_selector("#composer")
    assert axe(page) == []
    page.keyboard.press("c")
    assert page.evaluate("document.activeElement.id") == "composer-text"
    page.keyboard.press("Escape")
    # select a card, then r: the composer replies to it
    page.click(".thread-card:has-text('axe check') .text")
    page.wait_for_selector(".thread-card.selected:has-text('axe check')")
    page.keyboard.press("r")
    page.wait_for_selector("#composer-replying:not([hidden])")
    assert "axe check" in page.inner_text("#composer-replying")
    assert page.evaluate("document.activeElement.id") == "composer-text"
    # the dark theme is checked too
    page.evaluate("document.documentElement.setAttribute('data-theme', 'dark')")
    assert axe(page) == []


# --- without a browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def session(floor: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=floor.alpha.api_url, timeout=30) as c:
        r = c.post("/api/v1/session", json={"username": "wo", "password": PASSWORD})
        assert r.status_code == 200
        c.headers["Cookie"] = f"hotline_session={r.cookies['hotline_session']}"
        yield c


def test_an_unknown_channel_is_a_404_fragment_that_says_so(session: httpx.Client) -> None:
    for route in ("thread", "thread-cards"):
        r = session.get(f"/console/{route}/no-such-channel")
        assert r.status_code == 404
        assert "No channel “no-such-channel”" in r.text
        assert "working" in r.text  # the channels that do exist
    ok = session.get("/console/thread/working")
    assert ok.status_code == 200
    assert 'id="composer"' in ok.text
    tab = session.get("/console/tab/threads")
    assert tab.status_code == 200
    assert "working" in tab.text


def test_thread_fragments_escape_a_channel_name(session: httpx.Client) -> None:
    r = session.get("/console/thread/" + quote("<script>alert(1)</script>", safe=""))
    assert r.status_code == 404
    assert "<script>alert" not in r.text
    assert "&lt;script&gt;" in r.text


def test_a_channel_the_officer_may_not_read_is_not_listed_and_refused(
    floor: Any, session: httpx.Client
) -> None:
    terms = {
        "name": "seniors",
        "level": "ministers",
        "members": ["alpha", "bravo"],
        "roles": {"alpha": {"read": ["senior_watch_officer"]}},
    }
    floor.alpha.api("POST", "/api/v1/channels", json=terms)
    wait_until("the proposal at bravo", lambda: channel_state(floor.bravo, "seniors"),
               lambda s: s == "proposed")  # fmt: skip
    floor.bravo.api("POST", "/api/v1/channels/seniors/accept")
    wait_until("agreed at alpha", lambda: channel_state(floor.alpha, "seniors"),
               lambda s: s == "agreed")  # fmt: skip
    r = session.get("/console/thread/seniors")  # wo: a watch officer
    assert r.status_code == 403
    assert "not yours to read" in r.text
    assert "senior_watch_officer" in r.text
    assert 'data-channel="seniors"' not in session.get("/console/threads/channels").text
    with httpx.Client(base_url=floor.alpha.api_url, timeout=30) as c:
        s = c.post("/api/v1/session", json={"username": "swo", "password": PASSWORD})
        c.headers["Cookie"] = f"hotline_session={s.cookies['hotline_session']}"
        assert 'data-channel="seniors"' in c.get("/console/threads/channels").text
        assert c.get("/console/thread/seniors").status_code == 200


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=st.text(min_size=1, max_size=80))
def test_garbage_channel_names_are_refused_and_change_nothing(
    floor: Any, session: httpx.Client, name: str
) -> None:
    assume(
        name.strip("/") not in ("working", "deconfliction", "brief", "twoman", "seniors", "nope")
    )
    assume(name not in (".", ".."))  # dot segments: httpx removes them before sending
    before = floor.alpha.api("GET", "/api/v1/status")["counts"]
    for route in ("thread", "thread-cards"):
        r = session.get(f"/console/{route}/" + quote(name, safe=""))
        assert 400 <= r.status_code < 500, (name, r.status_code)
    after = floor.alpha.api("GET", "/api/v1/status")["counts"]
    assert (after["sent"], after["received"]) == (before["sent"], before["received"])
