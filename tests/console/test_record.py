"""The record tab and link health in a real browser: checkpoints of both stations and
the peer's cosignature, a transcript exported from the console that the project's
verifier accepts, link details with their history charts; and, without a browser,
fragments that refuse garbage peer names and the chart drawing itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.console.record import CHART_H, CHART_W, chart
from hotline.console.templates import environment
from hotline.service import transcripts
from hotline.store.linkhistory import LinkTest
from tests.console.conftest import PASSWORD, axe
from tests.integration.conftest import send, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("console-record")]


def cosigned_by(st_: Any) -> list[str]:
    try:
        got: list[str] = st_.api("GET", "/api/v1/ledger/checkpoint")["cosigned_by"]
    except Exception:  # 404 until a checkpoint is cosigned
        return []
    return got


def exchange(floor: Any) -> None:
    """A message each way, then both stations' newest checkpoints cosigned by the peer."""
    send(floor.alpha, "bravo", "record test from alpha")
    send(floor.bravo, "alpha", "record test from bravo")
    for st_, peer in ((floor.alpha, "bravo"), (floor.bravo, "alpha")):
        wait_until(f"{st_.station_id}'s checkpoint cosigned", lambda s=st_: cosigned_by(s),
                   lambda got, p=peer: p in got)  # fmt: skip


def open_record(page: Any) -> None:
    page.click("#tab-record")
    page.wait_for_selector("#tab .record #own-checkpoints")


def test_the_record_shows_checkpoints_of_both_stations_and_a_cosignature(
    floor: Any, login: Any
) -> None:
    exchange(floor)
    page = login(floor.alpha, "wo")
    open_record(page)
    # our checkpoint, with bravo's cosignature in words
    page.wait_for_selector("#own-checkpoints tr.cosigned .cosig[data-peer='bravo']")
    assert "COSIGNED by bravo" in page.inner_text("#own-checkpoints")
    # bravo's log: a checkpoint of it we checked (consistency) and cosigned
    peer = page.locator(".peer-record[data-peer='bravo']")
    page.wait_for_selector(".peer-record[data-peer='bravo'] tr.peer-checkpoint")
    assert "Last consistency check" in peer.inner_text()
    assert "cosigned" in peer.locator("tr.peer-checkpoint").first.inner_text()
    # no fork, no refusal: said in words
    assert "No fork found" in page.inner_text("#tab")
    # a watch officer may not export: the tab says who may
    assert page.locator("#export-transcript").count() == 0
    assert axe(page) == []


def test_a_transcript_exported_from_the_console_verifies(
    floor: Any, login: Any, tmp_path: Path
) -> None:
    exchange(floor)
    page = login(floor.bravo, "swo")
    open_record(page)
    with page.expect_download() as got:
        page.click("#export-transcript")
    download = got.value
    assert download.suggested_filename == "bravo.transcript.json"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    v = transcripts.verify(path.read_bytes())  # the verifier of `hotline verify`
    s = transcripts.summary(v)
    assert s["station"] == "bravo"
    assert s["unattested"] == 0
    assert s["cosignatures"] >= 1


def test_link_details_show_the_history_chart(floor: Any, login: Any) -> None:
    page = login(floor.alpha, "wo")
    open_record(page)
    # the pill names the line's state in words and opens the details
    page.wait_for_selector("#tab button[data-link='bravo']:has-text('UP')")
    # FAST_LINE tests the line twice a second: a few points soon
    page.wait_for_function(
        "() => fetch('/console/link/bravo').then(r => r.text())"
        ".then(t => (t.match(/spark-pt/g) || []).length >= 6)"
    )
    # FAST_LINE's tests wait 0.12 s at most: on a loaded machine one may fail and the line
    # read DEGRADED until the next test answers; open the details again until it reads UP
    details = page.locator("#details .link-details")
    for _ in range(40):
        page.click("#tab button[data-link='bravo']")
        page.wait_for_selector("#details .link-details[data-peer='bravo']")
        text = details.inner_text()
        if "State: UP" in text:
            break
        page.wait_for_timeout(250)
    assert page.locator("#details svg.spark circle.spark-pt").count() >= 6
    assert page.locator("#details figure.chart").count() == 2
    assert "State: UP" in text
    assert "Round trip" in text
    assert "Clock skew" in text
    assert "Last good test" in text
    assert "Last cosigned checkpoint" in text
    assert axe(page) == []


# --- without a browser: the fragments over HTTP, the chart ------------------------------


def session(st_: Any) -> httpx.Client:
    c = httpx.Client(base_url=st_.api_url, trust_env=False)
    r = c.post("/api/v1/session", json={"username": "wo", "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["Cookie"] = f"hotline_session={r.cookies['hotline_session']}"
    return c


#: peer names a fragment must refuse: anything but the peers (no "/", "?", "#", "%")
NAMES = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"),
    min_size=1,
    max_size=80,
).filter(lambda n: n not in ("alpha", "bravo", ".", ".."))


def test_garbage_peer_names_are_404_and_change_nothing(floor: Any) -> None:
    c = session(floor.alpha)
    try:
        before = c.get("/api/v1/link").json()

        @settings(max_examples=40, deadline=None)
        @given(name=NAMES)
        def refused(name: str) -> None:
            r = c.get("/console/link/" + quote(name, safe=""))
            assert r.status_code == 404, (name, r.status_code)
            assert "<script" not in r.text

        refused()
        assert c.get("/console/link/bravo").status_code == 200
        assert [ln["peer"] for ln in c.get("/api/v1/link").json()] == [ln["peer"] for ln in before]
    finally:
        c.close()


def test_fragments_need_a_session(floor: Any) -> None:
    with httpx.Client(base_url=floor.alpha.api_url, trust_env=False) as c:
        for path in ("/console/tab/record", "/console/link/bravo", "/console/wall"):
            assert c.get(path).status_code == 401
        assert c.get("/api/v1/transcript").status_code == 401


def t(at: int, rtt: int | None, skew: int | None = 0) -> LinkTest:
    return LinkTest(at, "UP" if rtt is not None else "DEGRADED", rtt is not None, rtt, skew, None)


def test_the_chart_puts_answered_tests_as_points_and_failures_as_ticks() -> None:
    c = chart("Round trip", "ms", [t(1, 10), t(2, None), t(3, 30)], "rtt_ms")
    assert len(c.dots) == 2
    assert len(c.fails) == 1
    assert (c.low, c.high, c.last) == (10, 30, 30)
    xs = [x for x, _, _ in c.dots]
    assert xs[0] < c.fails[0] < xs[1]
    # higher values are higher on the screen (smaller y)
    assert c.dots[1][1] < c.dots[0][1]
    for x, y, _ in c.dots:
        assert 0 <= x <= CHART_W
        assert 0 <= y <= CHART_H
    assert chart("Clock skew", "ms", [], "skew_ms").points == ""
    one = chart("Clock skew", "ms", [t(1, 5, -3)], "skew_ms")
    assert len(one.dots) == 1
    assert one.low == one.high == -3


EVIL = "<script>alert(1)</script>\"'&"


def test_the_tab_shows_forks_and_refusals_in_words_and_escapes_everything() -> None:
    env = environment()
    html = env.get_template("record/tab.html").render(
        station="alpha",
        me=None,
        can=lambda action: action == "export",
        settings=None,
        record={
            "ledger_size": 9,
            "checkpoints": [
                {"size": 9, "root": "ab" * 32, "issued_at_us": 1, "cosigned_by": [(EVIL, 2)]}
            ],
            "peers": [
                {
                    "peer": EVIL,
                    "witnessed_size": 4,
                    "witnessed_root": "cd" * 32,
                    "our_cosigned_size": 9,
                    "last_check": None,
                    "checks": [
                        {
                            "kind": "fork",
                            "entry": 7,
                            "at_us": 3,
                            "size": 4,
                            "root": "",
                            "detail": EVIL,
                        },
                    ],
                }
            ],
            "red": [
                {
                    "kind": "fork",
                    "peer": EVIL,
                    "raised_at_us": 3,
                    "cleared_at_us": None,
                    "detail": EVIL,
                    "severity": "CRITICAL",
                },
                {
                    "kind": "peer_refused",
                    "peer": "bravo",
                    "raised_at_us": 4,
                    "cleared_at_us": 5,
                    "detail": "bravo refused a message (too_large)",
                    "severity": "HIGH",
                },
            ],
        },
        links=[
            {
                "peer": EVIL,
                "state": "DOWN",
                "rtt_ms": None,
                "last_ok_at_us": None,
                "last_error": EVIL,
            }
        ],
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert html.count('class="bad red-row"') == 3
    assert "<strong>FORK</strong>" in html
    assert "<strong>REFUSED</strong>" in html
    assert "<strong>OPEN</strong>" in html
    assert "cleared" in html
    assert 'id="export-transcript" href="/api/v1/transcript" download' in html


def test_a_line_on_several_paths_shows_a_pill_per_path_and_a_paths_table() -> None:
    env = environment()
    paths = [
        {"path": "https", "state": "DOWN", "rtt_ms": None, "last_ok_at_us": None,
         "last_error": EVIL, "failures": 3},
        {"path": "nats", "state": "UP", "rtt_ms": 12, "last_ok_at_us": 5, "last_error": None,
         "failures": 0},
    ]  # fmt: skip
    line = {"peer": "bravo", "state": "UP", "rtt_ms": 12, "last_ok_at_us": 5,
            "last_error": None, "paths": paths}  # fmt: skip

    def tab(links: list[dict[str, Any]]) -> str:
        return env.get_template("record/tab.html").render(
            station="alpha", me=None, can=lambda action: False, settings=None,
            record={"ledger_size": 1, "checkpoints": [], "peers": [], "red": []},
            links=links,
        )  # fmt: skip

    html = tab([line])
    assert 'data-path="https">https DOWN</span>' in html
    assert 'data-path="nats">nats UP</span>' in html
    # one path: the line's pill says it all
    assert "data-path" not in tab([{**line, "paths": paths[1:]}])
    d = {"peer": "bravo", "health": {**line, "failures": 0, "skew_ms": 1, "refused": 0,
         "last_refused": None, "last_test_at_us": 5}, "paths": paths, "history": [],
         "last_good": None, "cosigned_size": None, "alarms": []}  # fmt: skip
    details = env.get_template("record/link.html").render(d=d, tests=0, failed=0, charts=[])
    assert '<tr data-path="https"><td>https</td>' in details
    assert EVIL not in details  # a peer's words are escaped
