"""Fixtures shared by the whole suite: the vectors folder, and the store URL fixture that
runs a test on SQLite and on PostgreSQL.

PostgreSQL tests need a server at HOTLINE_TEST_PG (default
postgresql+psycopg://postgres@127.0.0.1:5432/test). Without one they skip with the
reason, except under CI=true, where a missing server fails the run.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline import localnet

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
PG_ADMIN_URL = os.environ.get(
    "HOTLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"

# each xdist worker picks station ports in its own slice of the range (localnet.free_port)
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw"):
    _workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")
    os.environ.setdefault("HOTLINE_PORT_SLICE", f"{_worker[2:]}/{_workers}")

# stations start from a fork server (hotline/forkserver.py: ~2.5 s of CPU less per
# start); HOTLINE_TEST_FORK=0 starts each as a new interpreter
localnet.use_fork_server(os.environ.get(localnet.FORK_ENV, "1") != "0")

_pg_reason: str | None = None
_pg_checked = False


def pg_unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it can."""
    global _pg_checked, _pg_reason
    if not _pg_checked:
        _pg_checked = True
        try:
            eng = sa.create_engine(PG_ADMIN_URL)
            with eng.connect() as conn:
                conn.execute(sa.text("select 1"))
            eng.dispose()
        except Exception as exc:  # any failure to connect means: no server here
            _pg_reason = f"no PostgreSQL at {PG_ADMIN_URL}: {type(exc).__name__}"
    return _pg_reason


def require_pg() -> None:
    reason = pg_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


#: this process's PostgreSQL databases (a worker's, under xdist): every one it created,
#: and those emptied and free for the next test. ``DROP DATABASE`` forces a checkpoint
#: (0.5 to 2.5 s on a shared machine, once per database per test: most of the suite's
#: time); emptying a database (``DROP SCHEMA public CASCADE``) takes milliseconds.
_pg_created: list[str] = []
_pg_free: list[str] = []
_pg_admin: sa.Engine | None = None


def _admin() -> sa.Engine:
    global _pg_admin
    if _pg_admin is None:
        _pg_admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    return _pg_admin


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def new_pg_database() -> str:
    """The URL of an empty PostgreSQL database: a new one, or one an earlier test of this
    process used and ``release_pg_database`` emptied (no table, sequence, type or schema
    of its own left; no connection left open). Give it back with ``release_pg_database``."""
    require_pg()
    if _pg_free:
        return _pg_url(_pg_free.pop())
    name = f"hotline_t_{uuid.uuid4().hex[:12]}"
    with _admin().connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    _pg_created.append(name)
    return _pg_url(name)


def _drop(name: str) -> None:
    with _admin().connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _disconnect(name: str) -> None:
    """End every connection to database ``name`` (what a test left connected)."""
    with _admin().connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )


def release_pg_database(url: str) -> None:
    """Empty the database at ``url`` for the next test (dropped instead if that fails)."""
    name = url.rsplit("/", 1)[1]
    try:
        _disconnect(name)
        eng = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        try:
            with eng.connect() as conn:
                conn.execute(sa.text("SET lock_timeout = '10s'"))
                schemas = conn.execute(
                    sa.text(
                        "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
                        " AND nspname <> 'information_schema'"
                    )
                ).scalars()
                for schema in list(schemas):
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                conn.execute(sa.text("CREATE SCHEMA public AUTHORIZATION pg_database_owner"))
                conn.execute(sa.text("GRANT USAGE ON SCHEMA public TO PUBLIC"))
        finally:
            eng.dispose()
    except sa.exc.SQLAlchemyError:
        _drop(name)
        _pg_created.remove(name)
        return
    _pg_free.append(name)


#: drops the databases named on its command line: its parent returns at once, the child
#: (a session of its own) drops them after the test run has ended. ``DROP DATABASE``
#: forces a checkpoint: 14 to 20 s of a worker's last teardown when done in the session
_DROPPER = """
import os, sys
if os.fork():
    os._exit(0)
os.setsid()
import sqlalchemy as sa
eng = sa.create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
for name in sys.argv[2:]:
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except sa.exc.SQLAlchemyError:
        pass
"""


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_databases() -> Iterator[None]:
    """At the end of the session, drop every database this process created (after the
    run: ``_DROPPER``)."""
    yield
    if _pg_admin is not None:
        _pg_admin.dispose()
    if _pg_created:  # dropped by a process the session does not wait for
        subprocess.run(
            [sys.executable, "-c", _DROPPER, PG_ADMIN_URL, *_pg_created],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )
    _pg_created.clear()
    _pg_free.clear()
    _pg_head_free.clear()


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the block (emptied again afterwards, and
    dropped at the end of the session)."""
    url = new_pg_database()
    try:
        yield url
    finally:
        release_pg_database(url)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    with fresh_pg_database() as url:
        yield url


# --- PostgreSQL databases kept at the newest migration -------------------------------

#: what a database holds right after the real migrations (taken from the first one this
#: process migrates): its schema's fingerprint, every table's rows, every sequence's state
_pg_head: dict[str, Any] | None = None
#: this process's databases at the newest migration, emptied and free for the next test
_pg_head_free: list[str] = []

_FINGERPRINT = """
SELECT md5(concat_ws(E'\\n',
  (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace
   WHERE nspname NOT LIKE 'pg\\_%temp\\_%'),
  (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension),
  (SELECT string_agg(concat_ws(':', table_name, column_name, data_type, column_default,
     is_nullable), ',' ORDER BY table_name, ordinal_position)
   FROM information_schema.columns WHERE table_schema = 'public'),
  (SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes
   WHERE schemaname = 'public'),
  (SELECT string_agg(concat_ws(' ', conrelid::regclass, conname, pg_get_constraintdef(c.oid)),
     ',' ORDER BY conrelid::regclass::text, conname)
   FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
   WHERE n.nspname = 'public'),
  (SELECT string_agg(pg_get_triggerdef(t.oid), ',' ORDER BY tgrelid::regclass::text, tgname)
   FROM pg_trigger t WHERE NOT tgisinternal),
  (SELECT string_agg(p.proname || ' ' || md5(p.prosrc), ',' ORDER BY p.proname, p.prosrc)
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'),
  (SELECT string_agg(viewname || ' ' || definition, ',' ORDER BY viewname) FROM pg_views
   WHERE schemaname = 'public'),
  (SELECT string_agg(relname || ' ' || relkind::text, ',' ORDER BY relname) FROM pg_class c
   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public')
))
"""

#: every table of the public schema emptied (triggers and foreign keys off for the
#: transaction: an append-only table's trigger refuses a DELETE) and every sequence
#: restarted; ``DELETE`` of the few rows a test leaves, not ``TRUNCATE``: truncating the
#: 40 tables took 0.5 to 0.6 s here (a new file per table), as long as migrating
_EMPTY = """
DO $$
DECLARE r record;
BEGIN
  SET LOCAL session_replication_role = replica;
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('DELETE FROM public.%I', r.tablename);
  END LOOP;
  FOR r IN SELECT sequencename, start_value FROM pg_sequences WHERE schemaname = 'public'
  LOOP
    PERFORM setval(format('public.%I', r.sequencename), r.start_value, false);
  END LOOP;
END $$
"""


def pg_state(conn: sa.Connection) -> dict[str, Any]:
    """A database's schema fingerprint, every table's rows (as JSON, ordered) and every
    sequence's ``last_value`` and ``is_called``: two databases with the same state answer
    every query of a store alike."""
    tables = conn.execute(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    ).scalars()
    sequences = conn.execute(
        sa.text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
    ).scalars()
    return {
        "fingerprint": conn.execute(sa.text(_FINGERPRINT)).scalar_one(),
        "rows": {
            t: conn.execute(
                sa.text(f"SELECT coalesce(json_agg(x ORDER BY x::text), '[]') FROM \"{t}\" x")
            ).scalar_one()
            for t in list(tables)
        },
        "sequences": {
            q: tuple(conn.execute(sa.text(f'SELECT last_value, is_called FROM "{q}"')).one())
            for q in list(sequences)
        },
    }


def new_migrated_pg_database() -> str:
    """The URL of a PostgreSQL database at the newest migration, as the real migrations
    leave it (a station opening it migrates nothing: about 0.5 s less per station): one
    an earlier test of this process used and ``release_migrated_pg_database`` emptied, or
    a new one migrated. tests/store/test_pg_head_pool.py compares an emptied one with a
    freshly migrated one."""
    global _pg_head
    require_pg()
    if _pg_head_free:
        return _pg_url(_pg_head_free.pop())
    from hotline.store import database

    url = new_pg_database()
    engine = database.create(url, writer=True)
    try:
        database.migrate(engine)
    finally:
        engine.dispose()
    if _pg_head is None:
        eng = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with eng.connect() as conn:
                _pg_head = pg_state(conn)
        finally:
            eng.dispose()
    return url


def release_migrated_pg_database(url: str) -> None:
    """Empty a database of ``new_migrated_pg_database`` back to its freshly migrated state
    for the next test: its rows deleted, the migrations' rows put back, its sequences
    restarted. A database whose schema a test changed (or that cannot be emptied) goes
    back to the pool of empty databases instead (``release_pg_database``)."""
    name = url.rsplit("/", 1)[1]
    head = _pg_head
    try:
        _disconnect(name)
        eng = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            with eng.begin() as conn:
                conn.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
                if (
                    head is None
                    or conn.execute(sa.text(_FINGERPRINT)).scalar_one() != head["fingerprint"]
                ):
                    raise _SchemaChanged(name)
                conn.execute(sa.text(_EMPTY))
                for table, rows in head["rows"].items():
                    if rows:
                        conn.execute(
                            sa.text(
                                f'INSERT INTO "{table}" SELECT * FROM '
                                f'json_populate_recordset(null::"{table}", CAST(:rows AS json))'
                            ),
                            {"rows": json.dumps(rows)},
                        )
                for seq, (last, called) in head["sequences"].items():
                    if called:
                        conn.execute(sa.text("SELECT setval(:s, :v, true)"), {"s": seq, "v": last})
        finally:
            eng.dispose()
    except (sa.exc.SQLAlchemyError, _SchemaChanged):
        release_pg_database(url)
        return
    _pg_head_free.append(name)


class _SchemaChanged(Exception):
    pass


@contextlib.contextmanager
def migrated_pg_database() -> Iterator[str]:
    """A PostgreSQL database at the newest migration, with only the migrations' rows, for
    the block."""
    url = new_migrated_pg_database()
    try:
        yield url
    finally:
        release_migrated_pg_database(url)


_sqlite_template: Path | None = None


def migrated_sqlite(path: Path) -> str:
    """The URL of a SQLite store at ``path`` already at the newest migration: a copy of a
    store this process migrated once with the real migrations (``database.migrate``), so
    that a station opening it finds nothing to do (0.1 s of CPU and 0.3 s of fsyncs less
    per station). tests/store/test_migrated_copy.py checks that the copy has the schema
    of a store migrated in place. Stores that a test expects empty use their own file."""
    global _sqlite_template
    if _sqlite_template is None:
        from hotline.store import database

        folder = Path(tempfile.mkdtemp(prefix="hotline-template-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "store.db"
        engine = database.create(f"sqlite:///{template}", writer=True)
        try:
            database.migrate(engine)
        finally:
            engine.dispose()
        if template.with_name("store.db-wal").exists():  # not checkpointed: not one file
            raise RuntimeError(f"{template} still has a write-ahead log")
        _sqlite_template = template
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL of an empty store: every store test runs on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
