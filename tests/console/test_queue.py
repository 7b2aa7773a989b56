"""The action queue, the message and approval details, and the alarm, in a real browser.

alpha and bravo are real station processes (the ``floor`` fixture); officers log in
through the login page. A FLASH from bravo appears in alpha's queue without a reload
and sounds the alarm; acknowledging it (button or the ``a`` key) clears the alarm and
bravo's sender sees who acknowledged; a message held by the two-person rule is approved
from the second officer's queue; a peer's markup is shown as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.console.templates import environment
from tests.console.conftest import PASSWORD, axe
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-queue")]

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> & "hi"'


def send_from(page: Any, **body: Any) -> dict[str, Any]:
    """A message sent by the officer logged in on ``page``, through the JSON API."""
    res: dict[str, Any] = page.evaluate(
        "async (b) => { const r = await Hotline.api('POST', '/api/v1/messages', b);"
        " return {status: r.status, data: r.data}; }",
        body,
    )
    assert res["status"] in (201, 202), res
    data: dict[str, Any] = res["data"]
    return data


def card(page: Any, ref: str) -> str:
    return f"#queue [data-card][data-ref='{ref}']"


def test_a_flash_arrives_live_sounds_the_alarm_and_its_ack_reaches_the_sender(
    floor: Any, login: Any
) -> None:
    alpha = login(floor.alpha, "wo")
    bravo = login(floor.bravo, "wo2")
    alpha.wait_for_selector("#queue [data-queue]", state="attached")
    alpha.wait_for_function("() => document.body.dataset.stream === 'open'")
    alpha.evaluate("window.__noReload = 1")

    sent = send_from(bravo, peer="alpha", precedence="FLASH", text="FLASH: convoy at the bridge")
    mid = sent["message_id"]
    alpha.wait_for_selector(card(alpha, mid))
    alpha.wait_for_selector("#alarm-indicator:not([hidden])")
    assert alpha.evaluate("window.__noReload") == 1  # no page load: a live update
    text = alpha.inner_text(card(alpha, mid))
    assert "FLASH" in text  # the precedence in words, not only a colour
    assert "Acknowledge" in text
    assert "convoy at the bridge" in text
    assert "Watch Officer Ben" in text  # from whom, as bravo's payload names its officer
    assert "left" in alpha.inner_text(card(alpha, mid) + " .countdown")

    # the sender watches its message's details on bravo
    bravo.evaluate(f"Hotline.details('/console/message/{mid}')")
    bravo.wait_for_selector(f"#details [data-message='{mid}'] li.stage-delivered")

    # alpha's officer opens it (read, told to bravo) and acknowledges it
    alpha.click(card(alpha, mid) + " [data-open]")
    alpha.wait_for_selector(f"#details [data-message='{mid}'] #details-ack")
    assert "convoy at the bridge" in alpha.inner_text("#details [data-text]")
    bravo.wait_for_selector("#details li.stage-read:has-text('wo')")
    alpha.click("#details-ack")
    alpha.wait_for_selector(card(alpha, mid), state="detached")
    alpha.wait_for_selector("#alarm-indicator", state="hidden")
    alpha.wait_for_selector("#details li.stage-acknowledged")
    assert alpha.query_selector("#details-ack") is None

    acked = bravo.wait_for_selector("#details li.stage-acknowledged")
    assert "by wo" in acked.inner_text()
    assert "acknowledged" in bravo.inner_text("#details .state")
    assert alpha.evaluate("window.__noReload") == 1


def test_the_a_key_acknowledges_the_selected_card(floor: Any, login: Any) -> None:
    alpha = login(floor.alpha, "wo2")
    alpha.wait_for_selector("#queue [data-queue]", state="attached")
    alpha.wait_for_function("() => document.body.dataset.stream === 'open'")
    sent = floor.bravo.api(
        "POST", "/api/v1/messages",
        json={"peer": "alpha", "precedence": "FLASH", "text": "second FLASH, by key"},
    )  # fmt: skip
    mid = sent["message_id"]
    alpha.wait_for_selector(card(alpha, mid))
    alpha.wait_for_selector("#alarm-indicator:not([hidden])")
    for _ in range(len(alpha.query_selector_all("#queue [data-card]"))):
        alpha.keyboard.press("j")
        if alpha.get_attribute("#queue [data-card].selected", "data-ref") == mid:
            break
    assert alpha.get_attribute("#queue [data-card][aria-current='true']", "data-ref") == mid
    alpha.keyboard.press("Enter")
    alpha.wait_for_selector(f"#details [data-message='{mid}']")
    alpha.keyboard.press("a")
    alpha.wait_for_selector(card(alpha, mid), state="detached")
    got = wait_until(
        "the acknowledgement on record",
        lambda: floor.alpha.api("GET", f"/api/v1/messages/{mid}"),
        lambda m: m["state"] == "acknowledged",
    )
    assert got["acknowledged_by"] == "wo2"
    alpha.wait_for_selector("#alarm-indicator", state="hidden")


def test_an_unacknowledged_flash_raises_the_alarm_on_page_load(floor: Any, login: Any) -> None:
    sent = floor.bravo.api(
        "POST", "/api/v1/messages",
        json={"peer": "alpha", "precedence": "FLASH", "text": "waiting FLASH"},
    )  # fmt: skip
    mid = sent["message_id"]
    wait_until(
        "the FLASH at alpha",
        lambda: floor.alpha.api("GET", f"/api/v1/messages/{mid}"),
        lambda m: m["direction"] == "in",
    )
    alpha = login(floor.alpha, "wo")
    alpha.wait_for_selector(card(alpha, mid))
    alpha.wait_for_selector("#alarm-indicator:not([hidden])")
    assert "ALARM" in alpha.title()
    # an auditor sees no work to do and no acknowledgement button
    aud = login(floor.alpha, "aud")
    aud.wait_for_selector("#queue [data-queue]", state="attached")
    assert aud.query_selector(card(aud, mid)) is None
    aud.evaluate(f"Hotline.details('/console/message/{mid}')")
    aud.wait_for_selector(f"#details [data-message='{mid}']")
    assert aud.query_selector("#details-ack") is None
    # acknowledged elsewhere (the API): the open console clears its alarm
    floor.alpha.api("POST", f"/api/v1/messages/{mid}/ack", json={"note": None})
    alpha.wait_for_selector(card(alpha, mid), state="detached")
    alpha.wait_for_selector("#alarm-indicator", state="hidden")


def agree_two_person(floor: Any, name: str) -> None:
    terms = {"name": name, "level": "working", "members": ["alpha", "bravo"], "two_person": True}
    floor.alpha.api("POST", "/api/v1/channels", json=terms)
    wait_until(
        "the proposal at bravo",
        lambda: [
            c["state"] for c in floor.bravo.api("GET", "/api/v1/channels") if c["name"] == name
        ],
        lambda states: "proposed" in states,
    )
    floor.bravo.api("POST", f"/api/v1/channels/{name}/accept")
    wait_until(
        "the channel agreed at alpha",
        lambda: [
            c["state"] for c in floor.alpha.api("GET", "/api/v1/channels") if c["name"] == name
        ],
        lambda states: "agreed" in states,
    )


def test_a_held_message_is_approved_from_the_second_officers_queue(floor: Any, login: Any) -> None:
    agree_two_person(floor, "pair")
    wo = login(floor.alpha, "wo")
    wo.wait_for_selector("#queue [data-queue]", state="attached")
    # the compose form is the threads tab's; any data-api form is sent the same way
    wo.evaluate(
        """() => {
        const f = document.createElement('form');
        f.id = 'compose-test';
        f.dataset.api = 'POST /api/v1/messages';
        f.dataset.done = 'Sent.';
        for (const [k, v] of [['peer', 'bravo'], ['channel', 'pair'],
                              ['precedence', 'IMMEDIATE'], ['text', 'Hold fire, grid 12']]) {
          const i = document.createElement('input'); i.name = k; i.value = v; f.append(i);
        }
        document.getElementById('details').append(f);
        f.requestSubmit();
        }"""
    )
    wo.wait_for_selector(".toast-ok:has-text('a second officer must approve it')")
    [held] = [
        a
        for a in floor.alpha.api("GET", "/api/v1/approvals?state=pending")
        if a["channel"] == "pair"
    ]
    assert held["requester"] == "wo"
    # the requester may withdraw but not approve its own
    wo.evaluate(f"Hotline.details('/console/approval/{held['id']}')")
    wo.wait_for_selector(f"#details [data-approval='{held['id']}'] #withdraw")
    assert wo.query_selector("#approve") is None

    swo = login(floor.alpha, "swo")
    swo.wait_for_selector(card(swo, held["id"]))
    assert "Approve" in swo.inner_text(card(swo, held["id"]))
    swo.click(card(swo, held["id"]))
    swo.wait_for_selector(f"#details [data-approval='{held['id']}'] #approve")
    assert "Hold fire, grid 12" in swo.inner_text("#details [data-text]")
    swo.click("#approve")
    swo.wait_for_selector(".toast-ok:has-text('Approved')")
    swo.wait_for_selector(card(swo, held["id"]), state="detached")
    swo.wait_for_selector("#details .state:has-text('approved')")
    decided = floor.alpha.api("GET", f"/api/v1/approvals/{held['id']}")
    assert decided["decided_by"] == "swo"
    [mid] = decided["message_ids"]
    got = wait_until(
        "the approved message at bravo",
        lambda: floor.bravo.api("GET", f"/api/v1/messages/{mid}"),
        lambda m: m["direction"] == "in",
    )
    assert got["body"]["text"] == "Hold fire, grid 12"
    # the requester's open details follow the decision
    wo.wait_for_selector("#details .state:has-text('approved')")


def test_a_peers_markup_is_shown_as_text(floor: Any, login: Any) -> None:
    sent = floor.bravo.api(
        "POST",
        "/api/v1/messages",
        json={"peer": "alpha", "precedence": "PRIORITY", "text": HOSTILE},
    )
    mid = sent["message_id"]
    alpha = login(floor.alpha, "wo")
    alpha.wait_for_selector(card(alpha, mid))
    assert "<script>" in alpha.inner_text(card(alpha, mid) + " .queue-summary")
    alpha.click(card(alpha, mid))
    alpha.wait_for_selector(f"#details [data-message='{mid}']")
    assert alpha.inner_text("#details [data-text]") == HOSTILE
    assert alpha.query_selector("#details img, #queue img, #details script") is None
    assert alpha.evaluate("window.__pwned") is None
    # the reply form sends on the message's channel, in reply to it
    alpha.click("#details-reply summary")
    alpha.fill("#details-reply textarea", "Received, as text.")
    alpha.click("#details-reply button[type=submit]")
    alpha.wait_for_selector(".toast-ok:has-text('Reply sent')")
    replies = wait_until(
        "the reply at bravo",
        lambda: [
            m
            for m in floor.bravo.api("GET", "/api/v1/messages?direction=in")
            if m["body"].get("in_reply_to") == mid
        ],
    )
    assert replies[0]["body"]["text"] == "Received, as text."
    # and the pass-on form records a dissemination
    alpha.click("#details-pass-on summary")
    alpha.fill("#details-pass-on input[name=to]", "the duty officer of sector 4")
    alpha.click("#details-pass-on button[type=submit]")
    alpha.wait_for_selector("#details li.stage-disseminated:has-text('sector 4')")


def test_the_queue_and_details_have_no_serious_accessibility_violations(
    floor: Any, login: Any
) -> None:
    sent = floor.bravo.api(
        "POST", "/api/v1/messages",
        json={"peer": "alpha", "precedence": "IMMEDIATE", "text": "for the axe check"},
    )  # fmt: skip
    mid = sent["message_id"]
    page = login(floor.alpha, "wo")
    page.wait_for_selector(card(page, mid))
    assert axe(page) == []
    page.click(card(page, mid))
    page.wait_for_selector(f"#details [data-message='{mid}'] #details-ack")
    assert axe(page) == []
    page.evaluate("document.documentElement.setAttribute('data-theme', 'dark')")
    assert axe(page) == []


# --- without a browser ----------------------------------------------------------------


@contextmanager
def session(st: Any, username: str = "wo") -> Iterator[httpx.Client]:
    """An httpx client with an officer's session cookie (GETs need no CSRF token)."""
    with httpx.Client(base_url=st.api_url, trust_env=False) as c:
        r = c.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        # (httpx keeps Secure cookies to https; a browser sends them to 127.0.0.1 too)
        c.headers["Cookie"] = f"hotline_session={r.cookies['hotline_session']}"
        yield c


def test_fragments_refuse_garbage_ids_and_change_nothing(floor: Any) -> None:
    def messages() -> tuple[Any, ...]:  # (link tests add ledger entries all the time)
        counts = floor.alpha.api("GET", "/api/v1/status")["counts"]
        return counts["sent"], counts["received"], counts["queued"]

    before = messages()
    with session(floor.alpha) as c:
        assert c.get("/console/queue").status_code == 200
        for path, code in [
            ("/console/message/not-a-message", 422),
            ("/console/message/" + "a" * 37, 422),
            ("/console/message/00000000-0000-0000-0000-000000000000", 404),
            ("/console/message/%3Cscript%3E", 422),
            ("/console/approval/%3Cimg%3E", 422),
            ("/console/approval/" + "b" * 37, 422),
            ("/console/approval/no-such-request", 404),
        ]:
            r = c.get(path)
            assert r.status_code == code, (path, r.status_code, r.text)
            assert "<script>" not in r.text
            assert "<img>" not in r.text
    with httpx.Client(base_url=floor.alpha.api_url, trust_env=False) as anon:
        assert anon.get("/console/queue").status_code == 401
        assert anon.get("/console/message/00000000").status_code == 401
    assert messages() == before


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ref=st.text(min_size=1, max_size=60).filter(lambda s: "/" not in s and s not in (".", "..")))
def test_any_id_is_refused_with_a_4xx(floor: Any, ref: str) -> None:
    with session(floor.alpha, "aud") as c:
        for kind in ("message", "approval"):
            r = c.get(f"/console/{kind}/{quote(ref, safe='')}")
            assert r.status_code in (404, 422), (kind, ref, r.status_code)


def test_the_details_template_escapes_a_peers_words() -> None:
    env = environment()
    message = {
        "message_id": "m1", "direction": "in", "peer": "bravo", "channel": "working",
        "precedence": "FLASH", "state": "received", "type": "text", "ack_overdue": False,
        "body": {"text": HOSTILE}, "operator": None, "sent_at_us": 1, "ack_required": True,
        "acknowledged_at_us": None, "ack_deadline_us": 2,
        "officer": {"username": "<b>x</b>", "display_name": "<i>y</i>", "role": "r"},
        "recipients": [{"summary": "received", "stages": [
            {"stage": "received", "at_us": 1, "by": "<u>bravo</u>", "claimed_at_us": None,
             "ref": None}]}],
        "disseminations": [],
    }  # fmt: skip
    html = env.get_template("queue/message.html").render(
        station="alpha", me=None, can=lambda a: True, settings=None, m=message,
        text=HOSTILE, inbound=True, may_ack=True, may_reply=True, may_disseminate=True,
        mark_read=True, precedences=["FLASH"], now_us=0,
    )  # fmt: skip
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    for markup in ("<b>x</b>", "<i>y</i>", "<u>bravo</u>"):
        assert markup not in html


def test_an_overdue_escalated_card_says_so_in_words() -> None:
    card = {
        "kind": "acknowledge", "ref": "m2", "asked": "Acknowledge", "precedence": "FLASH",
        "due_at_us": 1_000_000, "overdue": True, "summary": HOSTILE, "channel": "working",
        "from": "<b>Ben</b> (bravo)", "escalated_to": ["senior_watch_officer (step 1)"],
        "alarm": True, "details": "/console/message/m2",
    }  # fmt: skip
    html = environment().get_template("queue/queue.html").render(
        station="alpha", me=None, can=lambda a: True, settings=None, cards=[card], total=1,
        now_us=2_000_000,
    )  # fmt: skip
    assert 'class="card queue-card card-flash overdue"' in html
    assert "Escalated to senior_watch_officer (step 1)" in html
    assert 'data-alarm="msg:m2"' in html
    assert ">FLASH<" in html  # the precedence in words
    assert "<script>" not in html
    assert "<b>Ben</b>" not in html


def test_a_critical_alarm_event_sounds_the_alarm_until_acknowledged(floor: Any, login: Any) -> None:
    """The rule in static/queue.js, fed the events the stream would carry."""
    page = login(floor.alpha, "aud")
    page.wait_for_selector("#queue [data-queue]", state="attached")
    raised = {"kind": "fork", "severity": "CRITICAL", "peer": "bravo", "ref": "r1"}
    page.evaluate("(d) => Hotline.handlers['alarm.raised'].forEach(f => f(d))", raised)
    page.wait_for_selector("#alarm-indicator:not([hidden])")
    assert "CRITICAL fork" in page.inner_text("#alarm-reason")
    # a MEDIUM one does not sound
    page.evaluate(
        "(d) => Hotline.handlers['alarm.raised'].forEach(f => f(d))",
        {**raised, "severity": "MEDIUM", "ref": "r2"},
    )
    assert page.evaluate("Hotline.alarm.count()") == 1
    page.evaluate(
        "(d) => Hotline.handlers['alarm_acknowledged'].forEach(f => f(d))", {**raised, "id": 7}
    )
    page.wait_for_selector("#alarm-indicator", state="hidden")


def test_an_overdue_flash_turns_red_and_shows_its_escalation(floor: Any, login: Any) -> None:
    """bravo's channel gives a FLASH 1 s to be acknowledged, then alarms the senior watch
    officers on both sides: alpha's card goes red, says OVERDUE and to whom it climbed."""
    terms = {
        "name": "urgent", "level": "working", "members": ["alpha", "bravo"],
        "ack_deadlines_s": {"FLASH": 1.0},
        "escalation": [{"after_s": 0, "role": "senior_watch_officer", "both_sides": True}],
    }  # fmt: skip
    floor.bravo.api("POST", "/api/v1/channels", json=terms)
    wait_until(
        "the proposal at alpha",
        lambda: [c["state"] for c in floor.alpha.api("GET", "/api/v1/channels")
                 if c["name"] == "urgent"],
        lambda states: "proposed" in states,
    )  # fmt: skip
    floor.alpha.api("POST", "/api/v1/channels/urgent/accept")
    wait_until(
        "the channel agreed at bravo",
        lambda: [c["state"] for c in floor.bravo.api("GET", "/api/v1/channels")
                 if c["name"] == "urgent"],
        lambda states: "agreed" in states,
    )  # fmt: skip
    page = login(floor.alpha, "swo")
    page.wait_for_selector("#queue [data-queue]", state="attached")
    sent = floor.bravo.api(
        "POST", "/api/v1/messages",
        json={"peer": "alpha", "channel": "urgent", "precedence": "FLASH", "text": "climbing"},
    )  # fmt: skip
    mid = sent["message_id"]
    ack_card = f"#queue [data-card][data-kind='acknowledge'][data-ref='{mid}']"
    page.wait_for_selector(ack_card + ".overdue")
    assert "OVERDUE" in page.inner_text(ack_card + " .countdown")
    escalated = page.wait_for_selector(ack_card + " .escalated", timeout=60_000)
    assert "senior_watch_officer" in escalated.inner_text()
    page.click(ack_card + " button[data-main]")
    page.wait_for_selector(ack_card, state="detached")
    page.wait_for_selector("#alarm-indicator", state="hidden")
