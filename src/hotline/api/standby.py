"""The health endpoint and what a standby process answers (active/standby on PostgreSQL).

Owns ``GET /health`` (no authentication, no secrets: the process's role, the fencing
epoch and the process's name, for a load balancer: 200 when active, 503 when not) and
the app a standby serves on both its ports until it is promoted: 503 ``standby`` to every
request, naming the active process in the JSON body and in the ``X-Hotline-Active``
header. Must not touch: the station's parts (a standby has none built) or the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from hotline.api.openapi import errors
from hotline.api.routers import api_router

HEALTH_PATH = "/health"
ACTIVE_HEADER = "X-Hotline-Active"


class ActiveProcess(BaseModel):
    """The process promoted last, as it recorded itself."""

    model_config = ConfigDict(extra="forbid")
    process: str
    api: str
    peer: str
    epoch: int


class Health(BaseModel):
    """A process's role: ``active`` (it writes the station's store) or ``standby``
    (``stepped_down``: it was fenced and is leaving)."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["active", "standby", "stepped_down", "single"]
    epoch: int | None
    process: str
    active: ActiveProcess | None = None


def health_router(health: Callable[[], Health]) -> APIRouter:
    router = api_router()

    @router.get(
        HEALTH_PATH,
        response_model=Health,
        responses={
            **errors(),
            503: {"model": Health, "description": "this process is not active (its role)"},
        },
    )
    async def get_health() -> Response:
        """This process's role and epoch, without authentication: 200 when it is the
        active process (or a single station), 503 otherwise. For a load balancer."""
        now = health()
        code = 200 if now.role in ("active", "single") else 503
        return JSONResponse(now.model_dump(), status_code=code)

    return router


def active_header(active: ActiveProcess | None) -> str:
    if active is None:
        return "none"
    return f"{active.process} {active.api} {active.peer}"


def create_standby_app(health: Callable[[], Health]) -> FastAPI:
    """The app of a standby process: ``/health``, and 503 naming the active to anything
    else (its operator API and its peer endpoint serve this until it is promoted)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(health))

    @app.middleware("http")
    async def standby(request: Request, call_next: Callable[[Request], object]) -> Response:
        if request.url.path == HEALTH_PATH and request.method == "GET":
            return await call_next(request)  # type: ignore[misc,no-any-return]
        now = health()
        body = {
            "error": {
                "code": "standby",
                "message": "this process is a standby: the station is served by its active process",
                "hint": "ask the active process named in 'active' (or the load balancer)",
            },
            "active": now.active.model_dump() if now.active is not None else None,
        }
        return JSONResponse(
            body, status_code=503, headers={ACTIVE_HEADER: active_header(now.active)}
        )

    return app
