"""The officer on whose behalf the current task acts: set by the operator API around a
use case, read by service/sender.py to put the sending officer in the sealed payload.

Owns one ``ContextVar`` and the context manager that sets it. Use cases that do not
build the payload themselves (notices, concerns: service/notices.py) get the officer
this way without a new parameter through every layer. Must not touch: anything else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from hotline.service.roles import Principal
from hotline.wire.messages import OfficerRef

ACTING: ContextVar[OfficerRef | None] = ContextVar("hotline_acting_officer", default=None)


def officer_ref(principal: Principal) -> OfficerRef:
    """What a peer is shown of ``principal``: name, display name, highest role."""
    return OfficerRef(
        username=principal.username[:64],
        display_name=(principal.display_name or principal.username)[:100],
        role=principal.role.value,
    )


@contextlib.contextmanager
def acting(principal: Principal) -> Iterator[OfficerRef | None]:
    """Within the block (and the coroutines it awaits), messages name ``principal``. The
    station's bootstrap token is no officer: its messages carry none (as before accounts)."""
    ref = None if principal.via == "station" else officer_ref(principal)
    token = ACTING.set(ref)
    try:
        yield ref
    finally:
        ACTING.reset(token)
