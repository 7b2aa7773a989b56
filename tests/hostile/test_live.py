"""Every attack of the hostile peer against a live station, over pinned mutual TLS.

The target (alpha) is a real station process on SQLite or PostgreSQL; the peer's
identity is a station created for the test (mallory), whose card was added to the
running alpha with ``hotline peer add``; the scripted peer speaks with mallory's keys and
TLS certificate. The attacks run in order against the one live station of the module.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.hostile.attacks import ATTACKS
from tests.hostile.conftest import LiveRig

#: one worker runs the module (under ``--dist loadgroup``), so that one alpha and one
#: mallory per store kind serve every attack
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("hostile-live")]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack(live: LiveRig, name: str) -> None:
    async def main() -> None:
        async with live.target() as target:
            await ATTACKS[name](target)

    asyncio.run(main())
