"""The operator app's hot route first (api/operator.py ``route_first``): moved only when
the move cannot change which route answers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from hotline.api.operator import route_first


def app_with(router_path: str) -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/api")
    router.add_api_route(router_path, lambda: {"by": "router"}, methods=["POST"])
    app.include_router(router)
    app.add_api_route("/api/messages", lambda: {"by": "app"}, methods=["POST"])
    app.add_api_route("/api/messages", lambda: {"by": "app-get"}, methods=["GET"])
    return app


def call(app: FastAPI, method: str, path: str) -> Any:
    async def go() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return (await c.request(method, path)).json()

    return asyncio.run(go())


def test_the_route_moves_first_and_still_answers() -> None:
    app = app_with("/other")
    route_first(app, "POST", "/api/messages")
    assert getattr(app.router.routes[0], "path", None) == "/api/messages"
    assert call(app, "POST", "/api/messages") == {"by": "app"}
    assert call(app, "GET", "/api/messages") == {"by": "app-get"}  # GET still found
    assert call(app, "POST", "/api/other") == {"by": "router"}


def test_refused_when_an_earlier_route_answers_the_request() -> None:
    app = app_with("/{anything}")  # the router's route answered POST /api/messages
    before = list(app.router.routes)
    with pytest.raises(ValueError, match="earlier route"):
        route_first(app, "POST", "/api/messages")
    assert app.router.routes == before
    assert call(app, "POST", "/api/messages") == {"by": "router"}


def test_refused_when_no_route_serves_it() -> None:
    with pytest.raises(ValueError, match="0 routes"):
        route_first(app_with("/other"), "PUT", "/api/messages")
