"""The suspension and dissemination routes in process, over two in-process stations
(SQLite and PostgreSQL): round trips through the operator app, the roles each route
needs (a small app that authenticates a principal from a header), typed answers, and
garbage bodies (hypothesis) that always get a 4xx."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send

from hotline.api.errors import install_operator
from hotline.api.limits import PRINCIPAL_KEY
from hotline.api.operator import create_operator_app
from hotline.api.suspension import suspension_router
from hotline.service.line import Line
from hotline.service.roles import Principal
from tests.service.conftest import Pair
from tests.suspension.conftest import AUDITOR, SENIOR, WATCH

TOKEN = "suspension-test-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}
UNTHROTTLED = {"api_rate_per_s": 1_000_000.0, "api_auth_failures_per_s": 1_000_000.0}
GARBAGE = settings(
    max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=8,
)


def client(app: Any, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://station", headers=headers
    )


class AsPrincipal:
    """Puts the principal named by the ``x-who`` header in the scope (the gate's seam)."""

    def __init__(self, app: ASGIApp, people: dict[str, Principal]) -> None:
        self.app, self.people = app, people

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            who = dict(scope["headers"]).get(b"x-who", b"").decode()
            if who in self.people:
                scope[PRINCIPAL_KEY] = self.people[who]
        await self.app(scope, receive, send)


def officers_app(line: Line) -> FastAPI:
    app = FastAPI()
    install_operator(app)
    app.include_router(suspension_router(line))
    app.add_middleware(AsPrincipal, people={"senior": SENIOR, "watch": WATCH, "audit": AUDITOR})
    return app


def with_apps(run: Any, scenario: Callable[[Pair, Any, Any], Awaitable[None]]) -> None:
    async def outer(p: Pair) -> None:
        a_app = create_operator_app(p.alpha.line, TOKEN)
        b_app = create_operator_app(p.bravo.line, TOKEN)
        async with client(a_app, AUTH) as a, client(b_app, AUTH) as b:
            await scenario(p, a, b)

    run(outer, **UNTHROTTLED)


def code_of(r: httpx.Response) -> str:
    return str(r.json()["error"]["code"])


def test_suspend_and_resume_through_the_api(run_pair: Any) -> None:
    async def scenario(p: Pair, a: Any, b: Any) -> None:
        r = await a.post("/api/v1/suspensions", json={"peer": "bravo", "reason": "talks"})
        assert r.status_code == 201, r.text
        [s] = r.json()
        assert (s["side"], s["scope"], s["officer"]) == ("ours", "line", "station")
        await p.flush()
        theirs = (await b.get("/api/v1/suspensions")).json()
        assert theirs["standing_allow"] == ["FLASH"]
        [t] = theirs["active"]
        assert (t["side"], t["declared_by"], t["reason"]) == ("theirs", "alpha", "talks")
        # the peer's send is refused with the documented code; FLASH goes
        body = {"peer": "alpha", "text": "hello", "precedence": "ROUTINE"}
        r = await b.post("/api/v1/messages", json=body)
        assert (r.status_code, code_of(r)) == (422, "suspended")
        assert "talks" in r.json()["error"]["hint"]
        r = await b.post("/api/v1/messages", json={**body, "precedence": "FLASH"})
        assert r.status_code == 201
        r = await b.post("/api/v1/suspensions/resume", json={"peer": "alpha"})
        assert (r.status_code, code_of(r)) == (422, "not_yours")
        r = await a.post("/api/v1/suspensions", json={"peer": "bravo", "reason": "again"})
        assert (r.status_code, code_of(r)) == (422, "already_suspended")
        r = await a.post("/api/v1/suspensions/resume", json={"peer": "bravo"})
        assert r.status_code == 200, r.text
        assert r.json() == {"peers": ["bravo"], "channel": None, "state": "resumed"}
        r = await a.post("/api/v1/suspensions/resume", json={"peer": "bravo"})
        assert (r.status_code, code_of(r)) == (404, "not_suspended")
        await p.flush()
        assert (await b.get("/api/v1/suspensions")).json()["active"] == []
        hist = (await b.get("/api/v1/suspensions/history", params={"peer": "alpha"})).json()
        assert [(h["state"], h["outcome"]) for h in hist] == [
            ("resumed", "applied"), ("suspended", "applied"),
        ]  # fmt: skip
        r = await a.post("/api/v1/suspensions", json={"peer": "zulu", "reason": "x"})
        assert (r.status_code, code_of(r)) == (404, "not_found")

    with_apps(run_pair, scenario)


def test_disseminate_through_the_api(run_pair: Any) -> None:
    async def scenario(p: Pair, a: Any, b: Any) -> None:
        sent = (await a.post("/api/v1/messages", json={"peer": "bravo", "text": "convoy"})).json()
        mid = sent["message_id"]
        await p.flush()
        at = "2026-01-01T00:00:30Z"
        p.clock.advance(60)
        r = await b.post(
            f"/api/v1/messages/{mid}/disseminations",
            json={"to": "2nd brigade ops cell", "at": at, "note": "radio"},
        )
        assert r.status_code == 201, r.text
        done = r.json()
        assert done["passed_at_us"] == 1_767_225_630_000_000
        assert (done["direction"], done["officer"], done["outcome"]) == (
            "out", "station", "recorded",
        )  # fmt: skip
        await p.flush()
        [back] = (await a.get(f"/api/v1/messages/{mid}/disseminations")).json()
        assert (back["direction"], back["to"], back["note"]) == ("in", "2nd brigade ops cell",
                                                                 "radio")  # fmt: skip
        got = (await a.get(f"/api/v1/messages/{mid}")).json()
        assert [d["to"] for d in got["disseminations"]] == ["2nd brigade ops cell"]
        listed = (await b.get("/api/v1/messages", params={"direction": "in"})).json()
        [there] = [m for m in listed if m["message_id"] == mid]
        assert there["disseminations"][0]["direction"] == "out"
        thread = (await a.get("/api/v1/channels/working/thread")).json()
        [shown] = [m for m in thread if m["type"] == "dissemination"]
        assert shown["body"]["data"]["message_id"] == mid
        for bad, code in (
            ({"to": "x", "at": "2030-01-01T00:00:00Z"}, "bad_time"),
            ({"to": "x", "at": "2020-01-01T00:00:00Z"}, "bad_time"),
            ({"to": "x", "at": "2026-01-01T00:00:00"}, "bad_input"),  # no zone
            ({"to": ""}, "bad_input"),
            ({"to": "x", "officer": "someone else"}, "bad_input"),  # never from the body
        ):
            r = await b.post(f"/api/v1/messages/{mid}/disseminations", json=bad)
            assert (r.status_code, code_of(r)) == (422, code), (bad, r.text)
        r = await a.post(f"/api/v1/messages/{mid}/disseminations", json={"to": "x"})
        assert (r.status_code, code_of(r)) == (404, "not_found")

    with_apps(run_pair, scenario)


def test_each_route_needs_its_role(run_pair: Any) -> None:
    async def scenario(p: Pair, a: Any, b: Any) -> None:
        sent = await p.send("to pass on")
        await p.flush()
        mid = str(sent.message_id)
        app = officers_app(p.bravo.line)
        async with client(app) as c:

            async def as_(who: str, method: str, url: str, **kw: Any) -> httpx.Response:
                return await c.request(method, url, headers={"x-who": who}, **kw)

            suspend = {"json": {"peer": "alpha", "reason": "r"}}
            r = await as_("watch", "POST", "/api/v1/suspensions", **suspend)
            assert (r.status_code, code_of(r)) == (403, "forbidden")
            assert "senior_watch_officer" in r.json()["error"]["message"]
            r = await as_("audit", "POST", f"/api/v1/messages/{mid}/disseminations",
                          json={"to": "x"})  # fmt: skip
            assert (r.status_code, code_of(r)) == (403, "forbidden")
            r = await as_("nobody", "GET", "/api/v1/suspensions")
            assert r.status_code == 401
            assert (await as_("audit", "GET", "/api/v1/suspensions")).status_code == 200
            r = await as_("watch", "POST", f"/api/v1/messages/{mid}/disseminations",
                          json={"to": "x"})  # fmt: skip
            assert r.status_code == 201
            assert r.json()["officer"] == "lt.shevchenko"
            r = await as_("senior", "POST", "/api/v1/suspensions", **suspend)
            assert r.status_code == 201
            assert r.json()[0]["officer"] == "maj.kovalenko"
            r = await as_("audit", "GET", f"/api/v1/messages/{mid}/disseminations")
            assert [d["officer"] for d in r.json()] == ["lt.shevchenko"]

    with_apps(run_pair, scenario)


def request_once(app: Any, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request in its own event loop (called from a hypothesis worker thread)."""

    async def go() -> httpx.Response:
        async with client(app, AUTH) as c:
            return await c.request(method, url, **kw)

    return asyncio.run(go())


def test_garbage_bodies_get_a_4xx(run_pair: Any) -> None:
    async def scenario(p: Pair, a: Any, b: Any) -> None:
        sent = await p.send("to pass on")
        await p.flush()
        mid = str(sent.message_id)
        app = create_operator_app(p.bravo.line, TOKEN)
        fields = st.fixed_dictionaries(
            {},
            optional={"peer": JSON | st.just("alpha"), "channel": JSON | st.just("working"),
                      "reason": JSON, "to": JSON, "at": JSON, "note": JSON},
        )  # fmt: skip
        bodies = fields | JSON
        urls = st.sampled_from([
            "/api/v1/suspensions", "/api/v1/suspensions/resume",
            f"/api/v1/messages/{mid}/disseminations",
        ])  # fmt: skip

        @GARBAGE
        @given(url=urls, body=bodies)
        def garbage(url: str, body: Any) -> None:
            r = request_once(app, "POST", url, json=body)
            assert r.status_code < 500, (url, body, r.text)
            if r.status_code >= 400:
                assert set(r.json()["error"]) == {"code", "message", "hint"}

        await asyncio.to_thread(garbage)

    with_apps(run_pair, scenario)
