"""The suite's PostgreSQL databases kept at the newest migration (tests/conftest.py
``new_migrated_pg_database``): one a station has written to, once emptied, holds what a
freshly migrated database holds (schema, every table's rows, every sequence's state), a
station opening it runs no migration, and one whose schema a test changed is not handed
out again as migrated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hotline.clock import FakeClock
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import database
from tests.conftest import (
    new_migrated_pg_database,
    new_pg_database,
    pg_state,
    release_migrated_pg_database,
    release_pg_database,
)
from tests.service.conftest import make_identity


def state_of(url: str) -> dict[str, Any]:
    eng = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with eng.connect() as conn:
            return pg_state(conn)
    finally:
        eng.dispose()


def freshly_migrated() -> dict[str, Any]:
    url = new_pg_database()
    try:
        engine = database.create(url, writer=True)
        try:
            database.migrate(engine)
        finally:
            engine.dispose()
        return state_of(url)
    finally:
        release_pg_database(url)


def dirty(url: str, root: Path) -> None:
    """A station on ``url`` adds a peer (rows in several tables); every sequence moves."""
    settings = Settings(data_dir=root, database_url=url)
    station = Station(settings, make_identity("alpha"), FakeClock())
    try:
        _card, unit = station.line.peer_add_unit(make_identity("bravo").card().to_text(), "t")
        station.writer.run_sync(unit)
    finally:
        station.close()
    eng = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with eng.begin() as conn:
            for seq in conn.execute(sa.text("SELECT sequencename FROM pg_sequences")).scalars():
                conn.execute(sa.text("SELECT nextval(:s)"), {"s": seq})
    finally:
        eng.dispose()


def test_an_emptied_database_is_as_a_freshly_migrated_one(tmp_path: Path) -> None:
    expected = freshly_migrated()
    assert len(expected["rows"]) > 30
    assert expected["rows"]["alembic_version"]  # the migrations' own row
    assert expected["sequences"]

    url = new_migrated_pg_database()
    assert state_of(url) == expected
    dirty(url, tmp_path)
    written = state_of(url)
    assert written["fingerprint"] == expected["fingerprint"]
    assert sum(map(len, written["rows"].values())) > sum(map(len, expected["rows"].values()))
    assert written["sequences"] != expected["sequences"]  # a sequence moved
    release_migrated_pg_database(url)

    again = new_migrated_pg_database()
    try:
        assert again == url  # the same database, emptied
        assert state_of(again) == expected
    finally:
        release_migrated_pg_database(again)


def test_a_station_on_an_emptied_database_migrates_nothing(tmp_path: Path) -> None:
    url = new_migrated_pg_database()
    try:
        dirty(url, tmp_path / "first")
        release_migrated_pg_database(url)
        url = new_migrated_pg_database()
        ran: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
            ran.append(statement)

        sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
        try:
            dirty(url, tmp_path / "second")
        finally:
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
        assert ran
        assert not [s for s in ran if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    finally:
        release_migrated_pg_database(url)


def test_a_database_whose_schema_changed_is_not_handed_out_as_migrated() -> None:
    url = new_migrated_pg_database()
    eng = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text("CREATE TABLE left_behind (x int)"))
    finally:
        eng.dispose()
    release_migrated_pg_database(url)
    again = new_migrated_pg_database()
    try:
        assert "left_behind" not in state_of(again)["rows"]
        assert state_of(again) == freshly_migrated()
    finally:
        release_migrated_pg_database(again)
