"""Keeps an in-memory projection's undo journal in step with the writer's transactions.

Owns :class:`TransactionUndo`: it listens to the writer engine's connection events
(begin, savepoint, release, rollback to a savepoint, commit, rollback) and drives a
:class:`~hotline.deconfliction.journal.Journal` with them. A savepoint rolled back
undoes the changes made since it began; a transaction rolled back undoes all of them; a
transaction committed forgets them. So a refused unit costs what it changed, not a
replay of the registry (a 64-envelope batch of refused replays at 2,000 sites once
froze a writer for 17 s).

When the journal cannot say what the database holds, it says so instead of guessing:
a commit that raised (the database may or may not have committed, e.g. a connection
lost after COMMIT) or a change that failed half-way leaves :meth:`needs_reload` True,
and the owner rebuilds from the database (the writer's rollback hook asks).

Invariants: only the writer engine is watched, and only the connection of the
transaction that began last is followed; every journal operation runs under the
projection's lock. Must not touch: SQL, the writer's own state.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hotline.deconfliction.journal import Journal


class TransactionUndo:
    """Drives ``journal`` from the transactions of one engine (the writer's)."""

    def __init__(self, journal: Journal, lock: threading.RLock) -> None:
        self.journal = journal
        self._lock = lock
        self._conn: Connection | None = None
        self._savepoints: list[int] = []  # journal marks, innermost last
        self._committing = False
        self._stale = False
        self._engine: Engine | None = None

    def watch(self, engine: Engine) -> None:
        """Follow ``engine``'s transactions (once; the writer's engine)."""
        if self._engine is not None:
            return
        self._engine = engine
        sa.event.listen(engine, "begin", self._begin)
        sa.event.listen(engine, "savepoint", self._savepoint)
        sa.event.listen(engine, "release_savepoint", self._release)
        sa.event.listen(engine, "rollback_savepoint", self._rollback_savepoint)
        sa.event.listen(engine, "commit", self._commit)
        sa.event.listen(engine, "rollback", self._rollback)

    # --- what the owner asks ------------------------------------------------------------

    def mark_stale(self) -> None:
        """A change failed half-way: only a rebuild from the database can be trusted."""
        with self._lock:
            self._stale = True

    def needs_reload(self) -> bool:
        """After a rollback: True when the journal could not restore the state the
        database holds (a failed commit, a change that failed half-way)."""
        with self._lock:
            return self._stale or self._committing

    def reloaded(self) -> None:
        """The owner rebuilt from the database: start afresh. A rebuild inside an open
        transaction read its uncommitted rows, so the next rollback rebuilds again."""
        with self._lock:
            self.journal.forget()
            self._committing = False
            self._stale = self._conn is not None
            self.journal.active = self._conn is not None

    # --- connection events (on the writer thread) ---------------------------------------

    def _begin(self, conn: Connection) -> None:
        with self._lock:
            if self._committing:  # the last commit returned: it is durable
                self._committing = False
            self.journal.forget()
            self._conn, self._savepoints = conn, []
            self.journal.active = True

    # Savepoints nest: a release or rollback always ends the innermost one (the event
    # of a new savepoint does not carry its name yet, so marks are kept as a stack).

    def _savepoint(self, conn: Connection, name: str | None) -> None:
        with self._lock:
            if conn is self._conn:
                self._savepoints.append(self.journal.mark())

    def _release(self, conn: Connection, name: str, context: Any) -> None:
        with self._lock:
            if conn is self._conn and self._savepoints:
                self._savepoints.pop()

    def _rollback_savepoint(self, conn: Connection, name: str, context: Any) -> None:
        with self._lock:
            if conn is self._conn and self._savepoints:
                self.journal.undo_to(self._savepoints.pop())

    def _commit(self, conn: Connection) -> None:
        with self._lock:
            if conn is self._conn:
                # until the outcome is known: the next begin (durable), or the writer's
                # rollback hook (the commit raised: needs_reload; the database decides)
                self._committing = True
                self.journal.forget()
                self._end()

    def _rollback(self, conn: Connection) -> None:
        with self._lock:
            if self._committing or conn is not self._conn:
                return  # after a failed commit the database decides (needs_reload)
            self.journal.undo_to(0)
            self.journal.forget()
            self._end()

    def _end(self) -> None:
        self._conn, self._savepoints = None, []
        self.journal.active = False
