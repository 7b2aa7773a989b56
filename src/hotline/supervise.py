"""Keeping a station's background loops alive.

Owns one rule: a round of a background loop (a delivery lane, a link test, a witness
round) that fails in a way nobody planned for is logged with its traceback and tried
again after a pause; it does not bring the station down, because a line on watch must
keep working while the cause is looked into. Cancellation still stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def forever(
    name: str, round_: Callable[[], Awaitable[None]], *, pause_s: float = 5.0
) -> None:
    """Run ``round_`` again and again until cancelled."""
    while True:
        try:
            await round_()
        except Exception:
            log.exception("%s failed unexpectedly; trying again in %.0f s", name, pause_s)
            await asyncio.sleep(pause_s)
