"""Every attack of the hostile peer against a station's real peer app, in-process.

The peer (mallory, valid keys, a real peer of the target) reaches the target's peer app
and operator app through ``httpx.ASGITransport``; the target's store is SQLite or
PostgreSQL (``store_url``). The attacks and what each must cause are in attacks.py and
README.md.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.hostile.attacks import ATTACKS


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack(run_in_process: Callable[..., None], name: str) -> None:
    run_in_process(ATTACKS[name])
