"""Suspension and dissemination between two running stations (real processes, real TLS),
on SQLite and PostgreSQL, through the CLI and the API: a suspension seen and enforced on
both sides while link tests go on and the line stays UP; resumption; a dissemination
record arriving at the sender, in its thread; a conflict notice not passed on raising
not_disseminated in the running station until it is."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from hotline.localnet import LocalStation
from tests.integration.conftest import (
    FAST_LINE,
    Net,
    cli,
    cli_process,
    link_of,
    messages,
    send,
    wait_until,
)
from tests.service.test_registry_service import activity_notice, away, iso, site_notice

pytestmark = pytest.mark.integration


def ok(*args: object) -> str:
    r = cli(*map(str, args))
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def active(st: LocalStation) -> list[dict[str, object]]:
    result: list[dict[str, object]] = st.api("GET", "/api/v1/suspensions")["active"]
    return result


def refused_code(st: LocalStation, body: dict[str, object]) -> str:
    with st.client() as c:
        r: httpx.Response = c.post("/api/v1/messages", json=body)
    assert r.status_code == 422, r.text
    return str(r.json()["error"]["code"])


def test_suspension_and_dissemination_between_running_stations(net: Net) -> None:
    a, b = net.pair(FAST_LINE, FAST_LINE)
    a.start()
    b.start()
    wait_until("the line to be UP", lambda: link_of(a, "bravo")["state"], lambda s: s == "UP")

    out = ok("suspend", "--peer", "bravo", "--reason", "ceasefire talks", "-d", a.data_dir)
    assert "suspended" in out
    [theirs] = wait_until("bravo to see the suspension", lambda: active(b))
    assert (theirs["side"], theirs["declared_by"], theirs["reason"]) == (
        "theirs", "alpha", "ceasefire talks",
    )  # fmt: skip
    assert "ceasefire talks" in ok("suspensions", "-d", b.data_dir)
    # both sides enforce it; FLASH goes and is delivered
    assert refused_code(b, {"peer": "alpha", "text": "routine"}) == "suspended"
    assert refused_code(a, {"peer": "bravo", "text": "routine"}) == "suspended"
    r = cli_process("resume", "--peer", "alpha", "-d", b.data_dir)
    assert r.returncode == 1
    assert "not_yours" in r.stderr
    flash = send(b, "alpha", "FLASH still goes", precedence="FLASH")
    wait_until(
        "the FLASH message to arrive",
        lambda: [m for m in messages(a, direction="in") if m["message_id"] == flash["message_id"]],
    )
    # link tests go on and the line stays UP while suspended
    before = link_of(a, "bravo")
    tested = a.api("POST", "/api/v1/link/bravo/test")
    assert tested["ok"] is True
    wait_until(
        "more link tests while suspended",
        lambda: link_of(a, "bravo"),
        lambda ln: ln["state"] == "UP" and ln["last_ok_at_us"] > before["last_ok_at_us"],
    )

    ok("resume", "--peer", "bravo", "-d", a.data_dir)
    wait_until("bravo to see the resumption", lambda: active(b), lambda s: s == [])
    assert active(a) == []

    # dissemination: bravo passes alpha's message on; the record arrives at alpha
    sent = send(a, "bravo", "convoy of 12 trucks on route M14 at 06:00")
    mid = sent["message_id"]
    wait_until("bravo to receive it", lambda: [m for m in messages(b) if m["message_id"] == mid])
    out = ok("disseminate", mid, "--to", "3rd brigade operations cell", "--note", "by phone",
             "-d", b.data_dir)  # fmt: skip
    assert "recorded" in out
    [record] = wait_until(
        "the dissemination record at alpha",
        lambda: a.api("GET", f"/api/v1/messages/{mid}/disseminations"),
    )
    assert (record["direction"], record["peer"], record["to"], record["outcome"]) == (
        "in", "bravo", "3rd brigade operations cell", "recorded",
    )  # fmt: skip
    assert record["officer"] == "station"
    thread = a.api("GET", "/api/v1/channels/working/thread")
    [shown] = [m for m in thread if m["type"] == "dissemination"]
    assert shown["body"]["in_reply_to"] == mid
    assert "3rd brigade operations cell" in ok("disseminations", mid, "-d", a.data_dir)


def test_a_conflict_notice_not_passed_on_raises_an_alarm_until_it_is(net: Net) -> None:
    a, b = net.pair({**FAST_LINE, "dissemination_deadline_s": 2.0}, FAST_LINE)
    a.start()
    b.start()
    wait_until("the line to be UP", lambda: link_of(a, "bravo")["state"], lambda s: s == "UP")
    now = dt.datetime.now(dt.UTC)
    hospital = site_notice(
        "HOSP-9", category="hospital", radius_m=1_000.0,
        valid_from=now - dt.timedelta(hours=1), valid_until=now + dt.timedelta(days=30),
    )  # fmt: skip
    hospital["site"]["reconfirm_by"] = iso(now + dt.timedelta(days=60))
    b.api("POST", "/api/v1/notices", json={"notice": hospital})
    mid = wait_until(
        "alpha to receive the hospital",
        lambda: [m["message_id"] for m in messages(a, direction="in")
                 if m["type"] == "site_notice"],
    )[0]  # fmt: skip
    a.api("POST", "/api/v1/notices", json={"notice": activity_notice(
        "fire-1", point=away(1.2), start=now + dt.timedelta(hours=1))})  # fmt: skip
    [alarm] = wait_until(
        "the not_disseminated alarm",
        lambda: [x for x in a.api("GET", "/api/v1/alarms") if x["kind"] == "not_disseminated"],
    )
    assert (alarm["ref"], alarm["peer"]) == (mid, "bravo")
    ok("disseminate", mid, "--to", "1st artillery battalion fire control", "-d", a.data_dir)
    assert [x for x in a.api("GET", "/api/v1/alarms") if x["kind"] == "not_disseminated"] == []
    [record] = wait_until(
        "the record at bravo, the notifying side",
        lambda: b.api("GET", f"/api/v1/messages/{mid}/disseminations"),
    )
    assert (record["to"], record["outcome"]) == ("1st artillery battalion fire control", "recorded")
