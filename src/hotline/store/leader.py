"""Which process of a station is active (PostgreSQL only): the election lock and the fence.

Owns the SQL of active/standby: the session advisory lock that elects the active process
(held on a dedicated connection for as long as the process is active), the ``leader``
row (the fencing epoch, and the active's name and addresses for the standby's 503
answers), and the epoch check that the writer runs in the same transaction as every
commit. A process whose epoch is no longer the row's cannot commit: a paused old active
that resumes after a takeover fails its first commit (``fenced``) and steps down.

Why it is sound: the check reads the row ``FOR SHARE`` as the last statement before
COMMIT. A promotion's UPDATE of the row waits for that share lock, so an old active's
commit either completes before the promotion's increment or sees the new epoch and
fails. A process paused while holding the share lock (or the election lock) is idle on
the server: ``idle_in_transaction_session_timeout`` and ``idle_session_timeout`` end its
sessions, so it cannot block a takeover for longer than those bounds. Must not touch:
anything but the ``leader`` row and the advisory locks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hotline.errors import StoreError
from hotline.store import schema

log = logging.getLogger(__name__)

#: the advisory lock keys (one database per station: constants suffice)
ELECTION_KEY = 0x686F746C  # "hotl"
MIGRATION_KEY = 0x686F746D  # "hotm"


class FencedError(StoreError):
    """A newer active process holds the station: this one must not commit anything."""

    code = "fenced"
    hint = "another process of this station was promoted; this one steps down"


@dataclass(frozen=True, slots=True)
class Active:
    epoch: int
    process_name: str
    api_url: str
    peer_url: str
    promoted_at_us: int


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


class ElectionLock:
    """The election's session lock on a dedicated connection (a pool of one, never
    shared): held from ``try_acquire`` until ``close`` or until the session ends.

    The session sets ``idle_session_timeout``: a process that stops answering (SIGSTOP, a
    hung host) loses its session, and with it the lock, after ``lease_s``; an active
    process keeps it by calling ``heartbeat`` more often than that.
    """

    def __init__(self, url: str, lease_s: float) -> None:
        self._engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self._lease_ms = max(int(lease_s * 1000), 100)
        self._conn: Connection | None = None
        self.held = False

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(sa.text(f"SET idle_session_timeout = {self._lease_ms}"))
            conn.execute(sa.text("SET application_name = 'hotline-election'"))
            self._conn = conn
        return self._conn

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        try:
            got = self._connection().execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ELECTION_KEY}
            )
            self.held = bool(got.scalar_one())
        except sa.exc.DBAPIError as exc:
            self._drop()
            raise StoreError(f"the election lock cannot be asked: {exc.orig}") from exc
        return self.held

    def heartbeat(self) -> None:
        """Prove the session (and so the lock) is still ours; raises ``FencedError`` when
        it is gone (the server ended it: a pause longer than the lease, a lost network)."""
        if not self.held or self._conn is None:
            raise FencedError("the election lock is not held")
        try:
            self._conn.execute(sa.text("SELECT 1"))  # a session lock lives as long as it
        except sa.exc.DBAPIError as exc:
            self._drop()
            raise FencedError(f"the election lock's session ended: {exc.orig}") from exc

    def _drop(self) -> None:
        self.held = False
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # the session is gone either way
                log.debug("closing the election connection failed", exc_info=True)
            self._conn = None

    def close(self) -> None:
        """Release the lock (closing the session releases it)."""
        self._drop()
        self._engine.dispose()


def promote(conn: Connection, process_name: str, api_url: str, peer_url: str, now_us: int) -> int:
    """Become the active process: the epoch grows by one; returns the new epoch. Call
    only while holding the election lock, in a transaction of its own."""
    row = conn.execute(
        sa.select(schema.leader.c.epoch).where(schema.leader.c.id == 1).with_for_update()
    ).scalar_one_or_none()
    epoch = (row or 0) + 1
    values = {
        "epoch": epoch,
        "process_name": process_name[:200],
        "api_url": api_url[:300],
        "peer_url": peer_url[:300],
        "promoted_at_us": now_us,
    }
    if row is None:
        conn.execute(schema.leader.insert().values(id=1, **values))
    else:
        conn.execute(schema.leader.update().where(schema.leader.c.id == 1).values(**values))
    return epoch


def active(conn: Connection) -> Active | None:
    """The process promoted last (it may have died since), or None before any."""
    row = conn.execute(sa.select(schema.leader).where(schema.leader.c.id == 1)).first()
    if row is None:
        return None
    return Active(row.epoch, row.process_name, row.api_url, row.peer_url, row.promoted_at_us)


def check_epoch(conn: Connection, epoch: int) -> None:
    """The fence: raises ``FencedError`` unless ``epoch`` is still the row's. Run as the
    last statement of a transaction, right before COMMIT (the share lock it takes makes
    a concurrent promotion wait for this commit)."""
    now = conn.execute(
        sa.select(schema.leader.c.epoch).where(schema.leader.c.id == 1).with_for_update(read=True)
    ).scalar_one_or_none()
    if now != epoch:
        raise FencedError(f"this process's epoch {epoch} is not the station's ({now})")


class Fence:
    """What the writer runs in each transaction: a bound on how long this process may sit
    idle inside it (a paused process must not hold rows a new active needs), then the
    epoch check right before COMMIT."""

    def __init__(self, epoch: int, idle_in_transaction_s: float) -> None:
        self.epoch = epoch
        self._idle_ms = max(int(idle_in_transaction_s * 1000), 100)

    def begin(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {self._idle_ms}")

    def check(self, conn: Connection) -> None:
        check_epoch(conn, self.epoch)


def migration_lock(conn: Connection) -> None:
    """Serialise migrations: a transaction-level advisory lock, released at its end."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_KEY})
