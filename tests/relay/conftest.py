"""Fixtures of the relay tests: a NATS server with JetStream, and names unique to a test.

The tests need a NATS server with JetStream at HOTLINE_TEST_NATS (default
nats://127.0.0.1:4222). Without one they skip with the reason, except under CI=true,
where a missing server fails the run (the PostgreSQL pattern of tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import nats
import pytest

from tests.conftest import IN_CI
from tests.integration.conftest import db, net  # noqa: F401 - real station processes

NATS_URL = os.environ.get("HOTLINE_TEST_NATS", "nats://127.0.0.1:4222")
NATS_SERVER = "/usr/sbin/nats-server"


def nats_unavailable() -> str | None:
    u = urlparse(NATS_URL)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), timeout=2):
            return None
    except OSError as exc:
        return f"no NATS server at {NATS_URL}: {type(exc).__name__}"


def require_nats() -> None:
    reason = nats_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


def require_nats_server_binary() -> None:
    if not os.access(NATS_SERVER, os.X_OK):
        reason = f"no nats-server at {NATS_SERVER}"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.fixture
def nats_url() -> str:
    require_nats()
    return NATS_URL


@pytest.fixture
def prefix() -> Iterator[str]:
    """A subject prefix of this test alone (its streams and subjects collide with none);
    the streams it made are deleted afterwards."""
    p = f"t{uuid.uuid4().hex[:12]}"
    yield p
    if nats_unavailable() is None:
        asyncio.run(_delete_streams(p.upper() + "_"))


async def _delete_streams(start: str) -> None:
    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            if info.config.name and info.config.name.startswith(start):
                await js.delete_stream(info.config.name)
    finally:
        await nc.close()
