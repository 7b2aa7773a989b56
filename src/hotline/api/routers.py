"""How the operator app's routers are made and put on the app.

FastAPI (0.165) serves an included router through a second copy of each of its routes,
built when a request first walks past them: the route's dependencies and models are
analysed again (pydantic type adapters for every parameter and response), though the
router's own route already holds all of it. That second build was about half the CPU of
building the operator app (docs/performance.md, "Test suite, second pass"), paid by the
station once and by every test that builds an app. ``include`` puts the router's routes
on the app itself instead: a route added to a router is already complete (the router's
prefix, tags, dependencies and responses are merged into it when it is added); only its
operation id would come from the app, so the router is made by ``api_router`` with the
app's operation ids, and ``include`` refuses any other.

Invariant: the app's routes, their order and /openapi.json are what ``include_router``
gave (``tests/api/test_openapi.py`` compares the two specs). Must not touch: what a route
does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from hotline.api.openapi import operation_id


def api_router(**options: Any) -> APIRouter:
    """An ``APIRouter`` (``options`` as its own) whose routes take the operator app's
    operation ids, so that ``include`` may put them on the app as they are."""
    return APIRouter(generate_unique_id_function=operation_id, **options)


def include(app: FastAPI, router: APIRouter) -> None:
    """Put ``router``'s routes on ``app`` in their order, as ``app.include_router`` would
    serve them. Refused (ValueError) for a route that is not a plain ``APIRoute`` made by
    ``api_router``: a nested router, a mount or another operation id would be served or
    named differently than by ``include_router``."""
    for route in router.routes:
        if not isinstance(route, APIRoute) or route.generate_unique_id_function is not (
            operation_id
        ):
            raise ValueError(f"{route!r} was not made by api_router")
    for route in router.routes:
        app.router.routes.append(route)
