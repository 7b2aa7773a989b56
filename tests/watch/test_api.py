"""The watch's operator API in process (SQLite and PostgreSQL): rota, handovers and
escalations through HTTP, each route refused without its role, the handover summary
showing a real open item, and garbage bodies (hypothesis) always answered 4xx with
nothing recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.api.limits import OperatorGate
from hotline.api.operator import create_operator_app
from hotline.service.escalation import Escalator
from hotline.service.roles import Principal, Role
from hotline.station import Station
from tests.service.conftest import ledger_actions
from tests.watch.conftest import ROUTINE_S, Pair, officer, rebuilt_equals_live

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"
H = 3600 * 1_000_000
OFFICERS = {
    "wanda": officer("wanda", Role.WATCH_OFFICER),
    "willa": officer("willa", Role.WATCH_OFFICER),
    "sasha": officer("sasha", Role.SENIOR_WATCH_OFFICER),
    "audrey": officer("audrey", Role.AUDITOR),
}
GARBAGE = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def app_of(station: Station) -> Any:
    """The operator app, its gate authenticating ``Bearer officer:NAME`` as that officer
    (the station token stays the station)."""
    app = create_operator_app(station.line, TOKEN)

    def authenticate(scope: Any) -> Principal | None:
        for key, value in scope.get("headers", []):
            if key == b"authorization" and value.startswith(b"Bearer officer:"):
                return OFFICERS.get(value.removeprefix(b"Bearer officer:").decode())
        return None

    for m in app.user_middleware:
        if m.cls is OperatorGate:
            m.kwargs["authenticate"] = authenticate
    return app


def as_(app: Any, name: str | None) -> httpx.AsyncClient:
    token = TOKEN if name is None else f"officer:{name}"
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://station",
                             headers={"authorization": f"Bearer {token}"})  # fmt: skip


def with_app(run: Any, scenario: Callable[[Pair, Any], Awaitable[None]], **kw: Any) -> None:
    async def outer(p: Pair) -> None:
        await scenario(p, app_of(p.alpha))

    unthrottled = {"api_rate_per_s": 1_000_000.0, "api_auth_failures_per_s": 1_000_000.0}
    run(outer, **(unthrottled | kw))


def code(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def test_rota_routes(run_pair: Any) -> None:
    async def scenario(p: Pair, app: Any) -> None:
        t0 = p.clock.now_us()
        body = {"username": "olena", "role": "watch_officer", "from_us": t0, "to_us": t0 + H}
        async with as_(app, "sasha") as senior, as_(app, "wanda") as watch:
            r = await watch.put("/api/v1/rota/day", json=body)
            assert r.status_code == 403, r.text
            assert code(r) == "forbidden"
            assert "senior_watch_officer" in r.json()["error"]["message"]
            r = await senior.put("/api/v1/rota/day", json=body)
            assert r.status_code == 200, r.text
            assert r.json()["set_by"] == "sasha"
            r = await watch.get("/api/v1/rota", params={"at_us": t0})
            assert [e["username"] for e in r.json()] == ["olena"]
            r = await watch.get("/api/v1/rota/now")
            assert r.json()["roles"]["watch_officer"] == ["olena"]
            r = await senior.put("/api/v1/rota/bad", json=body | {"to_us": t0})
            assert r.status_code == 422
            assert code(r) == "bad_rota"
            assert (await senior.delete("/api/v1/rota/day")).json() == {
                "entry_id": "day", "cleared": True,
            }  # fmt: skip
            r = await senior.delete("/api/v1/rota/day")
            assert r.status_code == 404
        assert [a["officer"] for a in ledger_actions(p.alpha, "rota_clear")] == ["sasha"]

    with_app(run_pair, scenario)


def test_handover_round_trip_with_a_real_open_item(run_pair: Any) -> None:
    async def scenario(p: Pair, app: Any) -> None:
        sent = await p.send("bridge at grid 41 closed", src=p.bravo, dst="alpha")
        await p.flush()
        async with as_(app, "wanda") as out, as_(app, "willa") as inc, as_(app, "audrey") as aud:
            r = await aud.post("/api/v1/handovers", json={"note": "x"})
            assert r.status_code == 403, r.text
            r = await out.post("/api/v1/handovers", json={"note": "quiet night; see bridge"})
            assert r.status_code == 201, r.text
            h = r.json()
            assert h["written_by"] == "wanda"
            unacked = h["summary"]["unacknowledged"]
            assert unacked["count"] == 1
            assert unacked["items"][0]["message_id"] == str(sent.message_id)
            assert unacked["items"][0]["text"] == "bridge at grid 41 closed"
            assert [x["peer"] for x in h["summary"]["links"]] == ["bravo"]
            hid = h["handover_id"]
            r = await out.post(f"/api/v1/handovers/{hid}/acknowledge")
            assert r.status_code == 422
            assert code(r) == "own_handover"
            r = await inc.post(f"/api/v1/handovers/{hid}/acknowledge", json={"note": "ok"})
            assert r.status_code == 200, r.text
            assert (r.json()["acknowledged_by"], r.json()["ack_note"]) == ("willa", "ok")
            r = await inc.post(f"/api/v1/handovers/{hid}/acknowledge")
            assert code(r) == "already_acknowledged"
            r = await aud.get(f"/api/v1/handovers/{hid}")
            assert r.json()["summary"] == h["summary"]
            r = await aud.get("/api/v1/handovers/00000000-0000-0000-0000-000000000000")
            assert r.status_code == 404
            await out.post("/api/v1/handovers", json={"note": "second"})
            listed = (await aud.get("/api/v1/handovers")).json()
            assert [x["note"] for x in listed] == ["second", "quiet night; see bridge"]
        [written] = ledger_actions(p.alpha, "handover")[:1]
        assert written["summary"] == h["summary"]
        [acked] = ledger_actions(p.alpha, "handover_ack")
        assert acked["officer"] == "willa"
        await rebuilt_equals_live(p)

    with_app(run_pair, scenario)


def test_escalations_route(run_pair: Any) -> None:
    async def scenario(p: Pair, app: Any) -> None:
        sent = await p.send("escalate")
        await p.flush()
        p.clock.advance(ROUTINE_S + 1)
        await Escalator(p.alpha.line.ctx).check()
        async with as_(app, "audrey") as aud:
            [e] = (await aud.get("/api/v1/escalations", params={"open": "true"})).json()
        assert (e["message_id"], e["origin"], e["role"]) == (
            str(sent.message_id), "local", "senior_watch_officer",
        )  # fmt: skip
        assert e["acknowledged"] is False
        assert e["precedence"] == "ROUTINE"

    with_app(run_pair, scenario, ack_deadline_routine_s=ROUTINE_S)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)
ROTA_BODY = st.fixed_dictionaries(
    {}, optional={"username": JSONISH, "role": JSONISH, "from_us": JSONISH, "to_us": JSONISH,
                  "extra": JSONISH},
)  # fmt: skip


def test_garbage_bodies_are_refused_and_change_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair, app: Any) -> None:

        @GARBAGE
        @given(rota_body=ROTA_BODY | JSONISH, handover_body=JSONISH)
        def check(rota_body: Any, handover_body: Any) -> None:
            async def go() -> None:
                async with as_(app, "sasha") as c:
                    r = await c.put("/api/v1/rota/e1", content=json.dumps(rota_body),
                                    headers={"content-type": "application/json"})  # fmt: skip
                    assert 400 <= r.status_code < 500, r.text
                    r = await c.post("/api/v1/handovers", content=json.dumps(handover_body),
                                     headers={"content-type": "application/json"})  # fmt: skip
                    assert 400 <= r.status_code < 500 or (
                        isinstance(handover_body, dict)
                        and set(handover_body) == {"note"}
                        and isinstance(handover_body["note"], str)
                    ), r.text

            asyncio.run(go())

        await asyncio.to_thread(check)
        assert ledger_actions(p.alpha, "rota_set") == []
        assert all(a["note"].strip() for a in ledger_actions(p.alpha, "handover"))

    with_app(run_pair, scenario)
