"""The suite's migrated SQLite store (tests/conftest.py ``migrated_sqlite``): a copy of a
store migrated once per process has the schema of a store migrated in place, and a
station opening it runs no migration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hotline.clock import FakeClock
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import database
from tests.conftest import migrated_sqlite
from tests.service.conftest import make_identity


def schema_of(url: str) -> dict[str, Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            objects = conn.execute(
                sa.text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
            ).all()
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            rows = {
                name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for kind, name, _t, _s in objects
                if kind == "table" and name != "sqlite_sequence"
            }
            mode = conn.execute(sa.text("PRAGMA journal_mode")).scalar_one()
    finally:
        engine.dispose()
    return {"objects": objects, "version": version, "rows": rows, "journal_mode": mode}


def test_a_copy_has_the_schema_of_a_store_migrated_in_place(tmp_path: Path) -> None:
    in_place = f"sqlite:///{tmp_path / 'in_place.db'}"
    engine = database.create(in_place, writer=True)
    try:
        database.migrate(engine)
    finally:
        engine.dispose()
    copy = migrated_sqlite(tmp_path / "copy.db")
    expected = schema_of(in_place)
    assert len(expected["objects"]) > 30
    assert expected["version"]  # at a revision
    assert schema_of(copy) == expected


def test_a_station_on_a_copy_finds_nothing_to_migrate(tmp_path: Path) -> None:
    url = migrated_sqlite(tmp_path / "alpha.db")
    before = schema_of(url)
    assert before["version"]
    ran: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        ran.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        station = Station(
            Settings(data_dir=tmp_path, database_url=url), make_identity("alpha"), FakeClock()
        )
        station.close()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    assert not [s for s in ran if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert schema_of(url)["objects"] == before["objects"]
