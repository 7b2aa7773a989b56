"""Officers in process: two stations (SQLite and PostgreSQL, tests/service/conftest.py),
each with its operator app, an ``Officers`` with a cheap Argon2id hasher (the default one
is slow on purpose), and helpers to add officers and get their tokens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from argon2 import PasswordHasher

from hotline.api.operator import create_operator_app
from hotline.service.officers import Officers
from hotline.service.roles import STATION, Principal, Role
from hotline.station import Station
from tests.service import conftest as service
from tests.service.conftest import Pair

run_pair = service.run_pair

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"
STATION_AUTH = {"authorization": f"Bearer {TOKEN}"}
PASSWORD = "correct horse battery staple"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
UNTHROTTLED = {"api_rate_per_s": 1_000_000.0, "api_auth_failures_per_s": 1_000_000.0}


@dataclass
class Desk:
    """One station's officers and its app."""

    station: Station
    officers: Officers
    app: Any

    def client(self, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="https://station",
            headers=headers,
        )

    async def officer(
        self, username: str, *roles: Role, password: str = PASSWORD, name: str | None = None
    ) -> Principal:
        """Add an officer (as the station token) and return its principal."""
        account = await self.officers.add(
            STATION,
            username=username,
            display_name=name or username.capitalize(),
            roles=frozenset(roles),
            password=password,
        )
        return account.principal("token")

    async def token(self, username: str, *roles: Role) -> dict[str, str]:
        """A new officer's bearer header."""
        who = await self.officer(username, *roles)
        issued = await self.officers.issue_token(who)
        return {"authorization": f"Bearer {issued.token}"}


def desk(station: Station, **kw: Any) -> Desk:
    officers = Officers(station.line.ctx, hasher=FAST)
    with station.read_engine.connect() as conn:
        officers.load(conn)
    app = create_operator_app(
        station.line,
        TOKEN,
        deconfliction=station.deconfliction,
        officers=officers,
        **kw,
    )
    return Desk(station, officers, app)


def with_desks(
    run: Any, scenario: Callable[[Pair, Desk, Desk], Awaitable[None]], **settings: Any
) -> None:
    async def outer(p: Pair) -> None:
        await scenario(p, desk(p.alpha), desk(p.bravo))

    run(outer, **(UNTHROTTLED | settings))


def error_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])
