"""What a standby answers (issue 10): 503 ``standby`` naming the active to any request,
whatever its method, path, headers or body (hypothesis garbage); ``/health`` its role
without authentication and without secrets. No database needed."""

from __future__ import annotations

import asyncio

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.api.standby import ActiveProcess, Health, create_standby_app

ACTIVE = ActiveProcess(
    process="alpha-1", api="http://10.0.0.1:8470", peer="https://10.0.0.1:8471", epoch=7
)
APP = create_standby_app(
    lambda: Health(role="standby", epoch=None, process="alpha-2", active=ACTIVE)
)


async def ask(method: str, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://standby") as c:
        return await c.request(method, path, content=body, headers=headers)


def test_health_names_the_role_and_the_active() -> None:
    r = asyncio.run(ask("GET", "/health", b"", {}))
    assert r.status_code == 503
    assert r.json() == {
        "role": "standby",
        "epoch": None,
        "process": "alpha-2",
        "active": ACTIVE.model_dump(),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80),
    body=st.binary(max_size=2000),
    header=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200),
)
def test_anything_else_is_503_naming_the_active(
    method: str, path: str, body: bytes, header: str
) -> None:
    r = asyncio.run(ask(method, "/" + path.lstrip("/"), body, {"x-garbage": header}))
    if r.status_code != 503:  # only GET /health answers otherwise, and then also 503
        raise AssertionError((method, path, r.status_code))
    if (method, "/" + path.lstrip("/")) != ("GET", "/health"):
        assert r.json()["error"]["code"] == "standby"
        assert r.json()["active"]["process"] == "alpha-1"
        assert r.headers["x-hotline-active"] == "alpha-1 http://10.0.0.1:8470 https://10.0.0.1:8471"
