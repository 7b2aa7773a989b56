"""Fixtures of the message-stages tests: the in-process pair of tests/service (SQLite and
PostgreSQL), and officers built directly as principals."""

from __future__ import annotations

from hotline.service.roles import Principal, Role
from tests.service.conftest import Pair, run_pair, snapshot  # noqa: F401 (fixtures)

KIM = Principal("wo.kim", "Watch Officer Kim", frozenset({Role.WATCH_OFFICER}))
LEE = Principal("swo.lee", "Senior Watch Officer Lee", frozenset({Role.SENIOR_WATCH_OFFICER}))
AUDITOR = Principal("aud.park", "Auditor Park", frozenset({Role.AUDITOR}))
