"""Engine creation and migration for SQLite and PostgreSQL.

Owns connection settings (SQLite WAL, synchronous FULL, busy timeout, BEGIN IMMEDIATE
for the writer) and running the Alembic migrations to head (under a lock on
PostgreSQL). Must not touch: tables' content.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine

from hotline.errors import StoreError
from hotline.store import leader

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create(url: str, *, synchronous: str = "FULL", writer: bool = False) -> Engine:
    """An engine for ``url``; the writer engine begins SQLite transactions IMMEDIATE."""
    if is_sqlite(url):
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=sa.pool.QueuePool if not writer else sa.pool.SingletonThreadPool,
            pool_size=8 if not writer else 1,
        )
        mode = "BEGIN IMMEDIATE" if writer else "BEGIN"

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql(mode)

        return engine
    try:
        return sa.create_engine(url, pool_size=8, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use database URL: {exc}", code="bad_database_url") from exc


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent). On PostgreSQL under an
    advisory lock held for the migration's transaction: processes starting together (an
    active and its standby) migrate one after the other, the later finding nothing to do."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                leader.migration_lock(conn)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except sa.exc.OperationalError as exc:
        raise StoreError(f"cannot reach the database: {exc.orig}") from exc
