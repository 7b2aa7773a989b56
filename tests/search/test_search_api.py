"""The history API in process: GET /api/v1/search (typed pages, the error codes, garbage
queries that never give a 500) and GET /api/v1/log (typed JSON; text, Markdown and HTML
files that keep a peer's markup as text)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.errors import PermissionDeniedError
from hotline.service import printlog
from hotline.service.roles import Principal, Role
from tests.api.test_operator_api import GARBAGE, Api, error_of, on_thread, request_once, with_api
from tests.service.conftest import run_pair

__all__ = ["run_pair"]

sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)

HOSTILE = "<script>alert(1)</script> [bold red]ALARM[/] \x1b[2J & \u202eevil"


async def send(api: Api, text: str, **kw: Any) -> dict[str, Any]:
    r = await api.alpha.post("/api/v1/messages", json={"peer": "bravo", "text": text, **kw})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_search_pages_through_the_api(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        for i in range(5):
            await send(api, f"Колона {i} пройшла міст", precedence="IMMEDIATE")
        await send(api, "unrelated")
        await api.pair.flush()
        r = await api.bravo.get("/api/v1/search", params={"q": "колона міст", "limit": 2})
        assert r.status_code == 200, r.text
        page = r.json()
        got = [h["text"] for h in page["items"]]
        while page["next"]:
            page = (
                await api.bravo.get(
                    "/api/v1/search", params={"q": "колона", "limit": 2, "cursor": page["next"]}
                )
            ).json()
            got += [h["text"] for h in page["items"]]
        assert got == [f"Колона {i} пройшла міст" for i in reversed(range(5))]
        hit = (await api.bravo.get("/api/v1/search", params={"q": '"пройшла міст"'})).json()
        first = hit["items"][0]
        assert first["direction"] == "in"
        assert first["peer"] == "alpha"
        assert first["precedence"] == "IMMEDIATE"
        assert first["state"] == "received"
        params = {
            "q": "unrelated",
            "precedence": "ROUTINE",
            "from": "2020-01-01",
            "to": "2099-12-31",
        }
        assert len((await api.bravo.get("/api/v1/search", params=params)).json()["items"]) == 1

    with_api(run_pair, scenario)


@sqlite_only
def test_search_errors_are_documented_codes(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        for params, code in (
            ({"q": '"open'}, "bad_query"),
            ({"q": "..."}, "bad_query"),
            ({"q": "a", "cursor": "zzzz"}, "bad_cursor"),
            ({"q": "a", "from": "not a date"}, "bad_period"),
            ({"q": "a", "state": "lost"}, "bad_input"),
            ({"q": "a", "limit": "201"}, "bad_input"),
        ):
            r = await api.bravo.get("/api/v1/search", params=params)
            assert r.status_code == 422, (params, r.text)
            assert error_of(r)["code"] == code, params
            assert error_of(r)["hint"], params

    with_api(run_pair, scenario)


@sqlite_only
def test_arbitrary_queries_never_give_a_500(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        await send(api, "some text to find")
        await api.pair.flush()
        app = api.apps["bravo"]

        @GARBAGE
        @given(
            q=st.text(max_size=80),
            cursor=st.none() | st.text(max_size=20),
            frm=st.none() | st.text(max_size=12),
        )
        def prop(q: str, cursor: str | None, frm: str | None) -> None:
            params = {"q": q} | ({"cursor": cursor} if cursor is not None else {})
            params |= {"from": frm} if frm is not None else {}
            r = request_once(app, "GET", "/api/v1/search", params=params)
            assert r.status_code in (200, 422), (params, r.status_code, r.text)
            if r.status_code == 422:
                assert error_of(r)["code"] in (
                    "bad_query", "bad_cursor", "bad_period", "bad_input"
                )  # fmt: skip

        await on_thread(prop)

    with_api(run_pair, scenario)


def test_the_log_keeps_a_peers_markup_as_text(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        sent = await send(api, HOSTILE + "\nsecond line", precedence="FLASH")
        await api.pair.flush()
        await api.bravo.post(f"/api/v1/messages/{sent['message_id']}/ack",
                             json={"note": "Lt. <b>Shevchenko</b>"})  # fmt: skip
        await api.pair.flush()
        period = {"from": "2020-01-01", "to": "2099-12-31"}
        r = await api.alpha.get("/api/v1/log", params=period)
        assert r.status_code == 200, r.text
        log = r.json()
        assert log["station"]["station_id"] == "alpha"
        assert [p["station_id"] for p in log["peers"]] == ["bravo"]
        assert log["record_size"] > 0
        assert re.fullmatch(r"[0-9a-f]{64}", log["record_root"])
        [m] = log["messages"]
        assert (m["acknowledged_by"], m["ack_note"]) == ("station", "Lt. <b>Shevchenko</b>")
        assert m["text"].startswith("<script>")

        r = await api.alpha.get("/api/v1/log", params=period | {"format": "html"})
        assert r.headers["content-type"].startswith("text/html")
        assert "attachment" in r.headers["content-disposition"]
        page = r.text
        assert "<script" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "&lt;b&gt;Shevchenko&lt;/b&gt;" in page
        assert "\x1b" not in page
        assert "\u202e" not in page
        assert "src=" not in page
        assert "href=" not in page
        assert "default-src 'none'" in page
        assert log["record_root"] in page

        r = await api.alpha.get("/api/v1/log", params=period | {"format": "text"})
        assert r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert "[bold red]ALARM[/]" in text  # text, shown as written
        assert "\x1b" not in text
        assert "\\x1b[2J" in text
        assert "  | second line" in text
        assert "acknowledged by station" in text
        assert "note: Lt. <b>Shevchenko</b>" in text
        assert f"{log['record_size']} entries, root {log['record_root']}" in text

        r = await api.alpha.get("/api/v1/log", params=period | {"format": "md"})
        md = r.text
        assert "<script" not in md
        assert "\\[bold red\\]ALARM\\[/\\]" in md

        empty = (
            await api.alpha.get("/api/v1/log", params={"from": "2099-01-01", "to": "2099-01-02"})
        ).json()
        assert empty["messages"] == []
        bad = await api.alpha.get("/api/v1/log", params={"from": "2026-11-30", "to": "2026-11-01"})
        assert error_of(bad)["code"] == "bad_period"

    with_api(run_pair, scenario)


@sqlite_only
def test_the_log_needs_a_role_that_may_export(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        watch = Principal("olena", "Olena", frozenset({Role.WATCH_OFFICER}))
        line = api.pair.alpha.line
        with pytest.raises(PermissionDeniedError) as e:
            await printlog.build(line.reader, {}, 0, watch, "2026-11-01", "2026-11-30")
        assert "auditor" in e.value.message
        auditor = Principal("ivan", "Ivan", frozenset({Role.AUDITOR}))
        station = {"station_id": "alpha", "display_name": "Alpha"}
        log = await printlog.build(line.reader, station, 0, auditor, "2026-11-01", "2026-11-30")
        assert log["messages"] == []
        assert html.escape("<") in printlog.render_html(log | {"station": {
            "station_id": "<alpha>", "display_name": "x"}})  # fmt: skip

    with_api(run_pair, scenario)
