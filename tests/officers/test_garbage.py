"""Garbage (hypothesis) on every body and credential the officers' routes take: always a
4xx, never a 5xx, and nothing on the record or in the officers' record changes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.service.roles import Role
from tests.api.test_operator_api import JSON, on_thread
from tests.officers.conftest import PASSWORD, Desk, run_pair, with_desks
from tests.service.conftest import Pair, snapshot

__all__ = ["run_pair"]
GARBAGE = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)

ROLE = st.sampled_from([r.value for r in Role]) | st.text(max_size=12)
TEXT = st.text(max_size=80)


def _not_all_roles(names: list[str]) -> bool:
    return not names or any(n not in {r.value for r in Role} for n in names)


BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/v1/session"): st.fixed_dictionaries(
        {}, optional={"username": TEXT | JSON, "password": TEXT | JSON, "totp": TEXT | JSON}
    ),
    ("POST", "/api/v1/officers"): st.fixed_dictionaries(
        {"username": TEXT, "display_name": TEXT | JSON, "roles": st.lists(ROLE, max_size=7)},
        optional={
            "languages": st.lists(TEXT, max_size=12) | JSON,
            "password": st.text(max_size=11) | JSON,
        },
    ),
    ("PUT", "/api/v1/officers/ko/roles"): st.fixed_dictionaries(
        {}, optional={"roles": st.lists(ROLE, max_size=7).filter(_not_all_roles) | JSON}
    ),
    ("POST", "/api/v1/officers/ko/password"): st.fixed_dictionaries(
        {}, optional={"password": st.text(max_size=11) | JSON, "current_password": TEXT | JSON}
    ),
    ("POST", "/api/v1/tokens"): st.fixed_dictionaries(
        {"label": st.text(min_size=101, max_size=120) | st.just("") | st.integers()},
        optional={"ttl_s": JSON},
    )
    | st.fixed_dictionaries(
        {
            "ttl_s": st.floats(max_value=0, allow_nan=False, allow_infinity=False)
            | st.floats(min_value=366 * 86_400 + 1, allow_infinity=False)
            | st.text()
        }
    ),
    ("POST", "/api/v1/me/totp/confirm"): st.fixed_dictionaries({}, optional={"code": TEXT | JSON}),
}


def request_once(app: Any, method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://s") as c:
            return await c.request(method, url, headers=headers, **kw)

    return asyncio.run(go())


@sqlite_only
def test_garbage_bodies_get_a_4xx_and_change_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        admin = await alpha.token("root", Role.ADMINISTRATOR)
        await alpha.officer("ko", Role.WATCH_OFFICER)
        before = snapshot(p.alpha)

        @GARBAGE
        @given(route=st.sampled_from(sorted(BODIES)), data=st.data())
        def garbage(route: tuple[str, str], data: st.DataObject) -> None:
            method, path = route
            body = data.draw(BODIES[route] | JSON.filter(lambda v: not isinstance(v, dict)))
            if isinstance(body, dict) and body.get("password") == PASSWORD:
                return  # the one right answer is not garbage
            r = request_once(alpha.app, method, path, admin, json=body)
            assert 400 <= r.status_code < 500, (method, path, body, r.text[:300])
            assert set(r.json()) == {"error"}

        await on_thread(garbage)
        assert snapshot(p.alpha) == before

    with_desks(run_pair, scenario, login_failures_before_backoff=100)


@sqlite_only
def test_garbage_credentials_are_no_one(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, _b: Desk) -> None:
        await alpha.token("ko", Role.WATCH_OFFICER)
        before = snapshot(p.alpha)

        @GARBAGE
        @given(
            auth=st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
            cookie=st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
            csrf=st.text(st.characters(max_codepoint=255), max_size=60),
        )
        def garbage(auth: str, cookie: str, csrf: str) -> None:
            for headers in ({"authorization": auth}, {"authorization": "Bearer hlo_" + auth},
                            {"cookie": cookie, "x-csrf-token": csrf},
                            {"cookie": "hotline_session=" + cookie}):  # fmt: skip
                try:
                    r = request_once(alpha.app, "POST", "/api/v1/tokens", headers, json={})
                except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
                    continue  # not a header httpx sends at all
                assert r.status_code == 401, (headers, r.text)

        await on_thread(garbage)
        assert snapshot(p.alpha) == before

    with_desks(run_pair, scenario)
