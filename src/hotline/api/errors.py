"""Errors become HTTP responses here, and only here.

Operators get the code, the message and the hint. Peers get the code alone (terse), in
the ``x-hotline-error`` header; the detail goes to the local log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from hotline import errors

log = logging.getLogger(__name__)


class RequestTooLargeError(errors.InputError):
    """A request body over its limit, refused before it is read (HTTP 413)."""

    code = "too_large"
    hint = (
        "send a smaller body; the limits are the settings api_max_json_bytes (JSON requests), "
        "notice_max_bytes (notices), import_max_bytes (imports) and max_request_bytes (all)"
    )


_STATUS: list[tuple[type[errors.HotlineError], int]] = [
    (RequestTooLargeError, 413),
    (errors.AuthError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.RateLimitedError, 429),
    (errors.NotFoundError, 404),
    (errors.InputError, 422),
    (errors.TrustError, 400),
    (errors.TransportError, 502),
    (errors.StoreError, 503),
    (errors.ConfigError, 500),
]


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def status_of(exc: errors.HotlineError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(exc: errors.HotlineError) -> dict[str, dict[str, str]]:
    """The operator API's one error shape: ``{"error": {"code", "message", "hint"}}``."""
    return {"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}


def error_response(exc: errors.HotlineError) -> JSONResponse:
    """An error as the operator API answers it (also usable as a plain ASGI app)."""
    status = status_of(exc)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(exc), status_code=status, headers=headers)


def install_operator(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return JSONResponse(
            {
                "error": {
                    "code": "bad_input",
                    "message": f"{where}: {first.get('msg', 'invalid')}",
                    "hint": f"{len(problems)} problem(s) in the request; the schema is at "
                    "/openapi.json",
                }
            },
            status_code=422,
        )

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        """The framework's own refusals (no such route, wrong method) in the same shape."""
        code = _HTTP_CODES.get(exc.status_code, "bad_request")
        return JSONResponse(
            {
                "error": {
                    "code": code,
                    "message": str(exc.detail),
                    "hint": "the API is described at /openapi.json",
                }
            },
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(errors.HotlineError)
    async def _handler(request: Request, exc: errors.HotlineError) -> Response:
        return error_response(exc)


def peer_refusal(exc: errors.HotlineError, what: str) -> Response:
    log.warning("refused %s: %s", what, exc)
    return Response(status_code=status_of(exc), headers={"x-hotline-error": exc.code})
