"""The operator app's routers put on the app itself (api/routers.py ``include``): the same
spec, routes and answers as FastAPI's ``include_router``, and refused for a router whose
routes ``include`` could not serve or name the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from hotline.api import openapi
from hotline.api.auth import principal
from hotline.api.channels import channels_router
from hotline.api.errors import install_operator
from hotline.api.ledger import ledger_router, transcript_router
from hotline.api.officers import officers_router
from hotline.api.registry import registry_router
from hotline.api.routers import api_router, include
from hotline.api.standby import Health, health_router
from hotline.service.officers import Officers
from hotline.station import Station
from tests.service.conftest import station_with_bravo


async def auth(request: Request) -> Any:
    return principal(request)


def routers_of(s: Station) -> list[APIRouter]:
    officers = Officers(s.line.ctx)
    with s.line.reader.connect() as conn:
        officers.load(conn)
    single = Health(role="single", epoch=None, process="alpha")
    return [
        health_router(lambda: single),
        ledger_router(s.line, auth),
        transcript_router(s.line, auth),
        officers_router(officers, auth),
        channels_router(s.line, auth),
        registry_router(s.deconfliction, auth),
    ]


def app_from(routers: list[APIRouter], put: Callable[[FastAPI, APIRouter], None]) -> FastAPI:
    app = FastAPI(generate_unique_id_function=openapi.operation_id)
    install_operator(app)  # errors in the one shape (401 here: no gate puts a principal)
    for r in routers:
        put(app, r)

    @app.get("/after", dependencies=[Depends(auth)])
    async def after() -> dict[str, str]:
        return {"by": "app"}

    return app


def flat(app: FastAPI) -> list[tuple[str, tuple[str, ...]]]:
    """Each route (an included router's in turn) as (path, methods), in serving order."""
    out = []
    for r in app.routes:
        routes = r.original_router.routes if hasattr(r, "original_router") else [r]
        out.extend((x.path, tuple(sorted(getattr(x, "methods", None) or ()))) for x in routes)
    return out


def get(app: FastAPI, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get(path)

    return asyncio.run(go())


def test_include_gives_the_spec_routes_and_answers_of_include_router(tmp_path: Path) -> None:
    station = station_with_bravo(tmp_path)
    try:
        included = app_from(routers_of(station), lambda app, r: app.include_router(r))
        put = app_from(routers_of(station), include)
        assert put.openapi() == included.openapi()
        assert flat(put) == flat(included)
        assert len(flat(put)) > 20
        assert all(not hasattr(r, "original_router") for r in put.routes)  # on the app itself
        for path in ("/health", "/api/v1/channels", "/after", "/nowhere"):
            a, b = get(put, path), get(included, path)
            assert (a.status_code, a.content) == (b.status_code, b.content), path
        assert get(put, "/health").status_code == 200
        assert get(put, "/api/v1/channels").status_code == 401  # the router's dependency
    finally:
        station.close()


def plain() -> APIRouter:
    router = APIRouter(prefix="/p")
    router.add_api_route("/x", lambda: {}, methods=["GET"])
    return router


def nested() -> APIRouter:
    router = api_router(prefix="/n")
    router.include_router(plain())
    return router


@pytest.mark.parametrize("make", [plain, nested])
def test_include_refuses_a_router_it_would_serve_or_name_differently(
    make: Callable[[], APIRouter],
) -> None:
    app = FastAPI(generate_unique_id_function=openapi.operation_id)
    with pytest.raises(ValueError, match="api_router"):
        include(app, make())
    assert not [r for r in app.routes if getattr(r, "path", "").startswith(("/p", "/n"))]
