"""The one writer: every append to a station's ledger goes through here, with group commit.

A unit of work is a plain function ``unit(tx) -> T`` that appends ledger entries and
updates projections through ``tx``. The writer thread takes every unit waiting (up to
``max_batch``), runs them in ONE database transaction, each inside its own savepoint so
that a unit that raises leaves no trace while the others go through, commits once (one
fsync for the batch), and only then answers each caller. Callers in asyncio await
``submit``; the thread never touches the event loop except to hand back results.

Owns: the ledger's next index and the Merkle frontier, kept in memory. When a unit
raises and its transaction is rolled back, they go back to a mark taken before it. When
a COMMIT fails they are reloaded from the database instead, because the outcome is
unknown (a PostgreSQL connection lost after COMMIT may have committed): the in-memory
state always equals the database. If even the reload fails, the writer is stale and
reloads before its next batch (which fails with ``store`` until it can). Units decide a
peer's refusal by returning it as a value, never by raising, so a refusal never rolls
back a batch. With a ``fence`` (active/standby on PostgreSQL, store/leader.py) every
transaction checks the process's epoch right before COMMIT; once a commit is fenced the
writer refuses every later unit (``fenced``) and tells ``on_fenced``: the process must
step down. A unit may hand an item to a before-commit hook (``WriteTx.before_commit``):
each hook runs once per batch, with the items of the units that went through, right
before COMMIT (one signature over a whole batch of receipts: service/receipts.py).
Must not touch: business rules (units bring those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from hotline.errors import HotlineError, StoreError
from hotline.ledger.entry import Entry
from hotline.store import schema
from hotline.store.leader import Fence, FencedError
from hotline.store.prepared import Prepared
from hotline.store.tree import LedgerTree, Mark

log = logging.getLogger(__name__)
T = TypeVar("T")


_INSERT_ENTRY = Prepared(
    schema.entries.insert(),
    ("idx", "kind", "peer", "peer_seq", "envelope_hash", "recorded_at_us", "leaf", "leaf_hash"),
)


class WriteTx:
    """What a unit of work sees: the connection and the ledger append."""

    def __init__(self, conn: Connection, tree: LedgerTree) -> None:
        self.conn = conn
        self._tree = tree
        self._after: list[Callable[[], None]] = []
        self._before: list[tuple[BatchHook, Any]] = []

    @property
    def size(self) -> int:
        """Entries in the ledger, including those appended in this transaction."""
        return self._tree.size

    def append(self, entry: Entry) -> int:
        """Append one entry; returns its leaf index."""
        leaf = entry.encode()
        idx, leaf_hash = self._tree.append(self.conn, leaf)
        _INSERT_ENTRY.run(
            self.conn,
            {
                "idx": idx,
                "kind": int(entry.kind),
                "peer": entry.peer,
                "peer_seq": entry.peer_seq,
                "envelope_hash": entry.envelope_hash,
                "recorded_at_us": entry.recorded_at_us,
                "leaf": leaf,
                "leaf_hash": leaf_hash,
            },
        )
        return idx

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the event loop once the batch holding this unit is durable."""
        self._after.append(fn)

    def before_commit(self, hook: BatchHook, item: Any) -> None:
        """Hand ``item`` to ``hook`` right before the batch commits: the hook runs once per
        batch (on the writer thread, in the batch's transaction) with the items of every
        unit that went through, in order; a unit rolled back contributes none. Its error
        fails the whole batch like a failed COMMIT."""
        self._before.append((hook, item))


#: a before-commit hook: (the batch's connection, the items its units handed it)
BatchHook = Callable[[Connection, list[Any]], None]


def _run_before(conn: Connection, pending: list[tuple[BatchHook, Any]]) -> None:
    """Each hook once, with its items in unit order."""
    by_hook: dict[BatchHook, list[Any]] = {}
    for hook, item in pending:
        by_hook.setdefault(hook, []).append(item)
    for hook, items in by_hook.items():
        hook(conn, items)


@dataclass
class _Job:
    unit: Callable[[WriteTx], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    after: list[Callable[[], None]] = field(default_factory=list)
    result: Any = None
    error: BaseException | None = None


_STOP = object()


class Writer:
    def __init__(self, engine: Engine, *, max_batch: int = 512) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._current: WriteTx | None = None
        with engine.connect() as conn:
            self.tree = LedgerTree.load(conn)
        #: the in-memory tree may differ from the database (a reload after a failed
        #: commit failed too): reload before anything else is appended
        self._stale = False
        self.batches = 0
        self.units = 0
        #: called on the writer thread after a unit or a whole batch was rolled back, so that
        #: in-memory state kept beside projections can reload: with the batch's connection
        #: (after a unit's savepoint rolled back), or None (the batch itself failed)
        self.on_rollback: list[Callable[[Connection | None], None]] = []
        #: the epoch check of an active process sharing its database with a standby
        self.fence: Fence | None = None
        #: set once a commit was fenced: nothing more is written by this process
        self.fenced: FencedError | None = None
        #: called (on the writer thread) once, when a commit is fenced
        self.on_fenced: list[Callable[[FencedError], None]] = []

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hotline-writer", daemon=True)
            self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._thread = None
        self._engine.dispose()

    async def submit(self, unit: Callable[[WriteTx], T]) -> T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            raise StoreError("the writer is not running", code="writer_stopped")
        self._queue.put(_Job(unit, fut, loop))
        return await fut

    def run_sync(self, unit: Callable[[WriteTx], T]) -> T:
        """Run one unit in its own transaction on the calling thread (CLI, tests, before
        the writer thread starts). Never call while the writer thread runs."""
        if self._thread is not None:
            raise StoreError("run_sync while the writer thread runs", code="writer_busy")
        if self.fenced is not None:
            raise self.fenced
        self._ensure_fresh()
        mark = self.tree.mark()
        committing = False
        try:
            with self._engine.connect() as conn:
                trans = conn.begin()
                self._begin(conn)
                tx = WriteTx(conn, self.tree)
                result = unit(tx)
                _run_before(conn, tx._before)
                committing = True
                self._finish(conn, trans)
        except BaseException:
            if committing:
                self._reload()
            else:
                self.tree.restore(mark)
            for reload in self.on_rollback:
                reload(None)
            raise
        for fn in tx._after:
            fn()
        return result

    def _reload(self) -> None:
        """Make the in-memory tree equal the database (after a commit that failed)."""
        try:
            with self._engine.connect() as conn:
                self.tree.reload(conn)
            self._stale = False
        except Exception:
            log.exception("reloading the ledger tree failed: reloading before the next batch")
            self._stale = True

    def _ensure_fresh(self) -> None:
        if self._stale:
            self._reload()
            if self._stale:
                raise StoreError("the ledger state could not be reloaded from the database")

    # --- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)  # type: ignore[arg-type]
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        """Commit a batch: first all units in one plain transaction; only if a unit raises,
        roll everything back and run them again each in its own savepoint (savepoints cost
        a fifth of the writer's time when nothing fails, which is nearly always)."""
        try:
            if self.fenced is not None:
                raise self.fenced
            self._ensure_fresh()
        except StoreError as exc:
            for job in batch:
                job.error = exc
                job.loop.call_soon_threadsafe(_settle, job)
            return
        failed = self._all_or_nothing(batch)
        if failed is not None:
            if len(batch) == 1:
                batch[0].error, batch[0].after = failed, []
            else:
                self._unit_by_unit(batch)
        self.batches += 1
        self.units += len(batch)
        for job in batch:
            job.loop.call_soon_threadsafe(_settle, job)

    def _apply_unit(self, job: _Job, tx: WriteTx) -> Any:
        self._current = tx
        try:
            return job.unit(tx)
        finally:
            self._current = None

    def current(self) -> WriteTx | None:
        """The unit's ``WriteTx`` while the writer thread runs a unit, else None: for code
        a unit calls that is not handed the transaction (projection extensions) and needs
        ``after_commit``. Only meaningful on the writer thread, inside a unit."""
        return self._current

    def _all_or_nothing(self, batch: list[_Job]) -> BaseException | None:
        """Run every unit in one transaction without savepoints; on a unit's error roll all
        back, restore in-memory state and return that error (nothing is settled)."""
        start = self.tree.mark()
        try:
            with self._engine.connect() as conn:
                trans = conn.begin()
                self._begin(conn)
                before: list[tuple[BatchHook, Any]] = []
                for job in batch:
                    tx = WriteTx(conn, self.tree)
                    try:
                        job.result = self._apply_unit(job, tx)
                    except BaseException as exc:
                        trans.rollback()
                        self._rolled_back(start, batch)
                        return exc
                    job.after = tx._after
                    before += tx._before
                _run_before(conn, before)
                self._finish(conn, trans)
        except Exception as exc:
            self._failed_commit(batch, exc)
        return None

    def _unit_by_unit(self, batch: list[_Job]) -> None:
        """Each unit in its own savepoint: a unit that raises leaves no trace."""
        try:
            with self._engine.connect() as conn:
                trans = conn.begin()
                self._begin(conn)
                before: list[tuple[BatchHook, Any]] = []
                for job in batch:
                    mark = self.tree.mark()
                    tx = WriteTx(conn, self.tree)
                    savepoint = conn.begin_nested()
                    try:
                        job.result = self._apply_unit(job, tx)
                        savepoint.commit()
                        job.after = tx._after
                        before += tx._before
                    except BaseException as exc:  # the unit's error goes to its caller only
                        savepoint.rollback()
                        self.tree.restore(mark)
                        for fn in self.on_rollback:
                            fn(conn)
                        job.error = exc
                _run_before(conn, before)
                self._finish(conn, trans)
        except Exception as exc:
            self._failed_commit(batch, exc)

    def _begin(self, conn: Connection) -> None:
        if self.fence is not None:
            self.fence.begin(conn)

    def _finish(self, conn: Connection, trans: Any) -> None:
        """The fence's check (when there is one), then COMMIT. A fenced check rolls the
        transaction back: nothing of it is written, and nothing after it will be."""
        if self.fence is not None:
            try:
                self.fence.check(conn)
            except FencedError as exc:
                self._step_down(exc)
                with contextlib.suppress(Exception):
                    trans.rollback()
                raise
        _commit(conn, trans)

    def _step_down(self, exc: FencedError) -> None:
        if self.fenced is not None:
            return
        self.fenced = exc
        log.critical("fenced: %s; this process writes nothing more and steps down", exc)
        for fn in self.on_fenced:
            try:
                fn(exc)
            except Exception:
                log.exception("a step-down hook failed")

    def _rolled_back(self, start: Mark, batch: list[_Job]) -> None:
        """A unit raised and the transaction was rolled back: nothing was written."""
        self.tree.restore(start)
        self._forget(batch)

    def _forget(self, batch: list[_Job]) -> None:
        for fn in self.on_rollback:
            fn(None)
        for job in batch:
            job.result, job.after, job.error = None, [], None

    def _failed_commit(self, batch: list[_Job], exc: Exception) -> None:
        """The commit (or the connection) failed: whether anything was written is
        unknown, so the tree is reloaded from the database, never restored to a mark."""
        log.exception("group commit of %d units failed", len(batch))
        # state kept beside the projections reloads first: it must learn of the failed
        # commit before this writer's next transaction begins (the tree's reload)
        for fn in self.on_rollback:
            try:
                fn(None)
            except Exception:
                log.exception("reloading in-memory state after a failed commit failed")
        self._reload()
        self._forget(batch)
        err = exc if isinstance(exc, HotlineError) else StoreError(f"commit failed: {exc}")
        for job in batch:
            job.error = err


def _commit(conn: Connection, trans: Any) -> None:
    """COMMIT; when it fails, drop the DBAPI connection: a failed COMMIT can leave it
    inside its transaction (SQLite does, on BUSY or an I/O error), where every later
    BEGIN would fail."""
    try:
        trans.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            conn.invalidate()
        raise


def _settle(job: _Job) -> None:
    if not job.future.done():
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
    for fn in job.after:
        try:
            fn()
        except Exception:
            log.exception("after-commit hook failed")
