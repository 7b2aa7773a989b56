"""The two-person rule through the operator API, on SQLite and PostgreSQL.

The send route answers 202 with the held request on a two-person channel; the approval
queue lists, shows and decides requests. Officers other than the station's token are
authenticated by a test ``authenticate`` seam on the gate (an app holding the approvals
router behind ``OperatorGate``), so the role checks are real: an auditor cannot approve
(403 forbidden), the requester cannot approve their own (403 same_officer). Garbage
(hypothesis) on the bodies always gets a 4xx and sends nothing.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from starlette.types import Scope

from hotline.api.approvals import approvals_router
from hotline.api.errors import install_operator
from hotline.api.limits import OperatorGate
from hotline.service import approvals
from hotline.service.roles import Principal
from hotline.station import Station
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.api.test_operator_api import (
    GARBAGE,
    JSON,
    TOKEN,
    Api,
    error_of,
    on_thread,
    request_once,
    with_api,
)
from tests.approvals.conftest import (
    ALICE,
    AUDREY,
    BOB,
    CHANNEL,
    Pair,
    messages,
    run_pair,
    snapshot,
    two_person,
)

__all__ = ["run_pair"]
OFFICERS = {f"{p.username}-token": p for p in (ALICE, BOB, AUDREY)}


def officers_app(station: Station) -> FastAPI:
    """The approvals router behind the real gate, with a test seam mapping a bearer token
    ``NAME-token`` to that officer."""

    def authenticate(scope: Scope) -> Principal | None:
        for name, value in scope["headers"]:
            if name == b"authorization" and value.startswith(b"Bearer "):
                return OFFICERS.get(value[7:].decode(errors="replace"))
        return None

    app = FastAPI()
    install_operator(app)
    app.include_router(approvals_router(station.line))
    app.add_middleware(
        OperatorGate, token=TOKEN, rate_per_s=1e6, auth_failures_per_s=1e6,
        max_body_bytes=65536, authenticate=authenticate,
    )  # fmt: skip
    return app


def as_officer(app: FastAPI, who: Principal) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://station",
        headers={"authorization": f"Bearer {who.username}-token"},
    )


async def held_by(p: Pair, who: Principal = ALICE, text: str = "hold fire") -> str:
    held = await approvals.send_or_request(
        p.alpha.line.ctx, who, peer="bravo", channel=CHANNEL, precedence=Precedence.FLASH,
        payload=MessagePayload(text=text),
    )  # fmt: skip
    assert isinstance(held, approvals.Requested)
    return held.approval_id


def test_a_send_on_a_two_person_channel_answers_202_and_sends_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        two_person(api.pair.alpha)
        r = await api.alpha.post(
            "/api/v1/messages",
            json={"peer": "bravo", "channel": CHANNEL, "text": "hold", "precedence": "FLASH"},
        )
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["state"] == "pending"
        assert body["requester"] == "station"
        assert body["peers"] == ["bravo"]
        assert body["deadline_us"] == api.pair.clock.now_us() + 600_000_000
        assert messages(api.pair.alpha) == []
        one = (await api.alpha.get(f"/api/v1/approvals/{body['approval_id']}")).json()
        assert "state" in one, one
        assert (one["state"], one["text"], one["precedence"]) == ("pending", "hold", "FLASH")
        listed = (await api.alpha.get("/api/v1/approvals", params={"state": "pending"})).json()
        assert [a["id"] for a in listed] == [body["approval_id"]]
        assert (await api.alpha.get("/api/v1/approvals?state=approved")).json() == []
        # the station's token made it: the same officer may not approve it
        r = await api.alpha.post(f"/api/v1/approvals/{body['approval_id']}/approve")
        assert r.status_code == 403
        assert error_of(r)["code"] == "same_officer"
        r = await api.alpha.post(f"/api/v1/approvals/{body['approval_id']}/withdraw")
        assert r.json()["state"] == "withdrawn"
        # an ordinary channel still sends at once
        r = await api.alpha.post("/api/v1/messages", json={"peer": "bravo", "text": "hi"})
        assert r.status_code == 201

    with_api(run_pair, scenario)


def test_officers_approve_refuse_and_withdraw_by_role(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        app = officers_app(p.alpha)
        first, second, third = [await held_by(p, text=t) for t in ("one", "two", "three")]
        async with as_officer(app, ALICE) as alice, as_officer(app, BOB) as bob:
            async with as_officer(app, AUDREY) as audrey:
                assert len((await audrey.get("/api/v1/approvals")).json()) == 3
                r = await audrey.post(f"/api/v1/approvals/{first}/approve")
                assert r.status_code == 403
                err = error_of(r)
                assert err["code"] == "forbidden"
                assert "senior_watch_officer" in err["message"]
                r = await audrey.post(f"/api/v1/approvals/{first}/refuse", json={"reason": "x"})
                assert r.status_code == 403
            r = await alice.post(f"/api/v1/approvals/{first}/approve")  # a watch officer
            assert r.status_code == 403
            assert error_of(r)["code"] == "forbidden"
            own = await held_by(p, who=BOB)
            r = await bob.post(f"/api/v1/approvals/{own}/approve")
            assert r.status_code == 403
            assert error_of(r)["code"] == "same_officer"
            r = await bob.post(f"/api/v1/approvals/{first}/approve")
            assert r.status_code == 200, r.text
            assert (r.json()["state"], r.json()["decided_by"]) == ("approved", "bob")
            [sent] = messages(p.alpha)
            assert r.json()["message_ids"] == [sent["message_id"]]
            r = await bob.post(f"/api/v1/approvals/{first}/approve")
            assert r.status_code == 422
            assert error_of(r)["code"] == "approval_closed"
            r = await bob.post(f"/api/v1/approvals/{second}/refuse", json={"reason": "no"})
            assert (r.json()["state"], r.json()["reason"]) == ("refused", "no")
            r = await bob.post(f"/api/v1/approvals/{third}/withdraw")
            assert r.status_code == 403
            assert error_of(r)["code"] == "not_requester"
            r = await alice.post(f"/api/v1/approvals/{third}/withdraw")
            assert r.json()["state"] == "withdrawn"
            r = await bob.get("/api/v1/approvals/no-such-request")
            assert r.status_code == 404
            r = await bob.post("/api/v1/approvals/no-such-request/approve")
            assert r.status_code == 404
            anon = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s")
            async with anon:
                assert (await anon.get("/api/v1/approvals")).status_code == 401
        assert len(messages(p.alpha)) == 1

    run_pair(scenario)


def test_pending_requests_are_listed_first(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        app = officers_app(p.alpha)
        done = await held_by(p, text="decided")
        p.clock.advance(1)
        waiting = await held_by(p, text="waiting")
        await approvals.withdraw(p.alpha.line.ctx, ALICE, done)
        async with as_officer(app, BOB) as bob:
            listed = (await bob.get("/api/v1/approvals")).json()
            assert [a["id"] for a in listed] == [waiting, done]
            assert [a["state"] for a in listed] == ["pending", "withdrawn"]
            r = await bob.get("/api/v1/approvals", params={"state": "nonsense"})
            assert r.status_code == 422

    run_pair(scenario)


def test_garbage_refusals_and_sends_get_a_4xx_and_change_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        two_person(p.alpha)
        app = officers_app(p.alpha)
        target = await held_by(p)
        before = snapshot(p.alpha)

        @GARBAGE
        @given(
            body=JSON
            | st.fixed_dictionaries({"reason": JSON.filter(lambda v: not isinstance(v, str))})
            | st.fixed_dictionaries({"reason": st.just("") | st.text(min_size=2001)})
            | st.fixed_dictionaries({"reason": st.text(max_size=5)}, optional={"x": JSON}).filter(
                lambda d: "x" in d
            ),
            ident=st.text(max_size=40),
        )
        def garbage(body: Any, ident: str) -> None:
            r = request_once(app, "POST", f"/api/v1/approvals/{target}/refuse", json=body)
            assert 400 <= r.status_code < 500, (body, r.status_code, r.text[:300])
            r = request_once(app, "GET", "/api/v1/approvals", params={"state": ident})
            assert r.status_code in (200, 422), (ident, r.status_code)

        await on_thread(garbage)
        assert snapshot(p.alpha) == before
        async with as_officer(app, BOB) as bob:
            assert (await bob.get(f"/api/v1/approvals/{target}")).json()["state"] == "pending"

    run_pair(scenario)


def test_garbage_sends_on_a_two_person_channel_get_a_4xx(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        two_person(api.pair.alpha)
        before = snapshot(api.pair.alpha)
        app = api.apps["alpha"]

        @GARBAGE
        @given(
            body=st.fixed_dictionaries(
                {"peer": st.just("bravo"), "channel": st.just(CHANNEL)},
                optional={"precedence": JSON, "text": JSON | st.just("   "),
                          "type": JSON, "ack_required": JSON},
            ).filter(lambda d: not isinstance(d.get("text"), str) or not d["text"].strip())
        )  # fmt: skip
        def garbage(body: Any) -> None:
            r = request_once(app, "POST", "/api/v1/messages", json=body)
            assert 400 <= r.status_code < 500, (body, r.status_code, r.text[:300])

        await on_thread(garbage)
        assert snapshot(api.pair.alpha) == before
        assert (await api.alpha.get("/api/v1/approvals")).json() == []

    with_api(run_pair, scenario)
