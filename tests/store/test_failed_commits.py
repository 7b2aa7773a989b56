"""Failed commits (issue 7, the line, item 7): after a COMMIT that fails, before or after
the database did commit (a PostgreSQL connection lost after COMMIT), the writer's
in-memory ledger state (next index, Merkle frontier) equals the database, and the next
appends follow on without a gap or a clash. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.errors import StoreError
from hotline.ledger import merkle
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.store import database, schema
from hotline.store.tree import LedgerTree
from hotline.store.writer import Writer, WriteTx


def entry(i: int) -> Entry:
    return Entry(EntryKind.OPERATOR_ACTION, "", 0, ZERO_HASH, i, f'{{"n":{i}}}'.encode())


@pytest.fixture
def writer(store_url: str) -> Iterator[Writer]:
    eng = database.create(store_url, writer=True)
    database.migrate(eng)
    w = Writer(eng, max_batch=64)
    yield w
    w.close()


class CommitFault:
    """Wraps the dialect's COMMIT: the next ``times`` commits fail, either before the
    database commits (``after=False``) or after it did (``after=True``, as a connection
    lost once COMMIT was sent)."""

    def __init__(self, w: Writer, *, after: bool) -> None:
        self.dialect = w._engine.dialect
        self.real: Callable[[Any], None] = self.dialect.do_commit
        self.after = after
        self.times = 0

    def __enter__(self) -> CommitFault:
        def do_commit(dbapi_conn: Any) -> None:
            if self.times > 0:
                self.times -= 1
                if self.after:
                    self.real(dbapi_conn)
                raise self.dialect.loaded_dbapi.OperationalError("connection lost at COMMIT")
            self.real(dbapi_conn)

        self.dialect.do_commit = do_commit  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.dialect.do_commit = self.real  # type: ignore[method-assign]


def stored(w: Writer) -> LedgerTree:
    with w._engine.connect() as conn:
        return LedgerTree.load(conn)


def assert_matches_database(w: Writer) -> None:
    db = stored(w)
    assert (w.tree.size, w.tree.root()) == (db.size, db.root())
    with w._engine.connect() as conn:
        leaves = conn.execute(sa.select(schema.entries.c.leaf).order_by(schema.entries.c.idx))
        hashes = [merkle.leaf_hash(bytes(x)) for x in leaves.scalars()]
    assert w.tree.root() == merkle.root_of(hashes)


def append(i: int) -> Callable[[WriteTx], int]:
    return lambda tx: tx.append(entry(i))


@pytest.mark.parametrize("after", [False, True], ids=["before-commit", "after-commit"])
def test_group_commit_failure_leaves_the_writer_equal_to_the_database(
    writer: Writer, after: bool
) -> None:
    async def main() -> None:
        writer.start()
        await writer.submit(append(0))
        with CommitFault(writer, after=after) as fault:
            fault.times = 1
            results = await asyncio.gather(
                *(writer.submit(append(i)) for i in range(1, 6)), return_exceptions=True
            )
        assert any(isinstance(r, StoreError) for r in results)
        assert_matches_database(writer)
        size = writer.tree.size
        assert size == (1 + sum(isinstance(r, (int, StoreError)) for r in results) if after
                        else 1 + sum(isinstance(r, int) for r in results))  # fmt: skip
        assert await writer.submit(append(99)) == size
        assert_matches_database(writer)

    asyncio.run(main())


@pytest.mark.parametrize("after", [False, True], ids=["before-commit", "after-commit"])
def test_run_sync_commit_failure_leaves_the_writer_equal_to_the_database(
    writer: Writer, after: bool
) -> None:
    writer.run_sync(append(0))
    with CommitFault(writer, after=after) as fault:
        fault.times = 1
        with pytest.raises(sa.exc.DBAPIError):
            writer.run_sync(append(1))
    assert writer.tree.size == (2 if after else 1)
    assert_matches_database(writer)
    assert writer.run_sync(append(2)) == writer.tree.size - 1
    assert_matches_database(writer)


def test_a_writer_that_cannot_reload_refuses_until_it_can(writer: Writer) -> None:
    async def main() -> None:
        writer.start()
        await writer.submit(append(0))
        real_load = LedgerTree.load
        with CommitFault(writer, after=True) as fault:
            fault.times = 1

            def broken(conn: Any) -> LedgerTree:
                raise sa.exc.OperationalError("load", {}, Exception("database gone"))

            LedgerTree.load = broken  # type: ignore[method-assign, assignment]
            try:
                with pytest.raises(StoreError):
                    await writer.submit(append(1))
                with pytest.raises(StoreError):  # stale: nothing appended on a guess
                    await writer.submit(append(2))
            finally:
                LedgerTree.load = real_load  # type: ignore[method-assign]
        assert await writer.submit(append(3)) == 2  # reloaded: entry 1 did commit
        assert_matches_database(writer)

    asyncio.run(main())


def test_current_is_the_running_units_transaction_and_none_outside(writer: Writer) -> None:
    """``Writer.current`` gives code a unit calls (a projection) the unit's ``WriteTx``, so
    that what it publishes waits for the commit; a unit that raises publishes nothing."""
    seen: list[object] = []

    def unit(tx: WriteTx) -> None:
        seen.append(writer.current() is tx)
        writer.current().after_commit(lambda: seen.append("published"))  # type: ignore[union-attr]

    def failing(tx: WriteTx) -> None:
        writer.current().after_commit(lambda: seen.append("never"))  # type: ignore[union-attr]
        raise ValueError("refused")

    async def main() -> None:
        writer.start()
        assert writer.current() is None
        await writer.submit(unit)
        with pytest.raises(ValueError, match="refused"):
            await writer.submit(failing)
        assert writer.current() is None

    asyncio.run(main())
    assert seen == [True, "published"]
