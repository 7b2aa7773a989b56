"""Who is asking, for the operator routes: the principal the gate authenticated.

Owns the FastAPI dependencies ``principal`` (the authenticated officer, or the station's
bootstrap token) and ``allowed(action)`` (the same, refused with 403 ``forbidden`` naming
the roles needed unless one of its roles allows ``action``; for a ``SENSITIVE`` action
changed from a browser session, also 403 ``reauth_required`` unless the password was given
within ``session_reauth_s``). Must not touch: credentials
(api/limits.py runs the ``authenticate`` seam; service/officers.py checks passwords,
tokens and sessions), the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from hotline.api.limits import PRINCIPAL_KEY
from hotline.errors import AuthError, PermissionDeniedError
from hotline.service.roles import SENSITIVE, Action, Principal, require

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def principal(request: Request) -> Principal:
    """The principal the gate put in the scope (a route behind the gate always has one)."""
    who = request.scope.get(PRINCIPAL_KEY)
    if not isinstance(who, Principal):
        raise AuthError("not authenticated")
    return who


def allowed(action: Action) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the principal, if one of its roles allows ``action``. A coroutine,
    though it never awaits: FastAPI runs a plain function dependency in a worker thread,
    two thread hand-offs for every request (docs/performance.md, "Cost per message")."""

    async def dependency(request: Request) -> Principal:
        who = principal(request)
        require(who, action)
        if action in SENSITIVE and not who.fresh and request.method in UNSAFE:
            raise PermissionDeniedError(
                f"{who.username} gave the password too long ago to {action.value} from a "
                "browser session",
                code="reauth_required",
                hint="enter the password again (the console asks for it; or POST "
                "/api/v1/session), then retry; the setting session_reauth_s says how long "
                "a password counts",
            )
        return who

    return dependency
