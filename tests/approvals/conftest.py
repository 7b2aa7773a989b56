"""Fixtures of the two-person rule's tests: the in-process pair of tests/service (alpha
and bravo on SQLite and PostgreSQL, a FakeClock), officers as Principals built directly,
and a two-person channel agreed in-process."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hotline.service.roles import Principal, Role
from hotline.station import Station
from hotline.store import schema
from hotline.wire.channels import ChannelSpec
from tests.service.conftest import Pair, ledger_actions, run_pair, snapshot

__all__ = ["Pair", "ledger_actions", "run_pair", "snapshot"]

ALICE = Principal("alice", "Alice", frozenset({Role.WATCH_OFFICER}))
BOB = Principal("bob", "Bob", frozenset({Role.SENIOR_WATCH_OFFICER}))
CAROL = Principal("carol", "Carol", frozenset({Role.PRINCIPAL}))
AUDREY = Principal("audrey", "Audrey", frozenset({Role.AUDITOR}))
CHANNEL = "cos"


def two_person(station: Station, name: str = CHANNEL, deadline_s: float = 600.0) -> None:
    """Agree a two-person chiefs-of-staff channel between alpha and bravo in-process."""
    station.line.ctx.channels.agree(
        ChannelSpec(
            name=name, level="chiefs_of_staff", members=["alpha", "bravo"], two_person=True,
            approval_deadline_s=deadline_s,
        )
    )  # fmt: skip


def messages(station: Station, direction: str = "out") -> list[dict[str, Any]]:
    m = schema.messages
    with station.read_engine.connect() as conn:
        rows = conn.execute(sa.select(m).where(m.c.direction == direction)).all()
    return [dict(r._mapping) for r in rows]


def approvals_rows(station: Station) -> list[tuple[Any, ...]]:
    a = schema.approvals
    with station.read_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(a).order_by(a.c.id))]
