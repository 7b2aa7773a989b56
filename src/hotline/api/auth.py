"""Who is asking, for the operator routes: the principal the gate authenticated.

Owns the FastAPI dependencies ``principal`` (the authenticated officer, or the station's
bootstrap token) and ``allowed(action)`` (the same, refused with 403 ``forbidden`` naming
the roles needed unless one of its roles allows ``action``). Must not touch: credentials
(api/limits.py runs the ``authenticate`` seam; service/officers.py checks passwords,
tokens and sessions), the store.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from hotline.api.limits import PRINCIPAL_KEY
from hotline.errors import AuthError
from hotline.service.roles import Action, Principal, require


def principal(request: Request) -> Principal:
    """The principal the gate put in the scope (a route behind the gate always has one)."""
    who = request.scope.get(PRINCIPAL_KEY)
    if not isinstance(who, Principal):
        raise AuthError("not authenticated")
    return who


def allowed(action: Action) -> Callable[[Request], Principal]:
    """A dependency: the principal, if one of its roles allows ``action``."""

    def dependency(request: Request) -> Principal:
        who = principal(request)
        require(who, action)
        return who

    return dependency
