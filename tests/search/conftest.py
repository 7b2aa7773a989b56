"""Search tests use the in-process pair of stations (tests/service/conftest.py) on
SQLite and PostgreSQL."""

from tests.service.conftest import Pair, run_pair, snapshot

__all__ = ["Pair", "run_pair", "snapshot"]
