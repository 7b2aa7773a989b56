"""The store on SQLite and PostgreSQL: migrations, the append-only ledger, group commit,
the stored Merkle tree."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hotline.errors import InputError, StoreError
from hotline.ledger import merkle
from hotline.ledger import tree as rules
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.store import database, schema, tree
from hotline.store.tree import LedgerTree, SqlNodeStore, frontier_keys
from hotline.store.writer import Writer, WriteTx


def entry(i: int) -> Entry:
    return Entry(EntryKind.OPERATOR_ACTION, "", 0, ZERO_HASH, i, f'{{"n":{i}}}'.encode())


def open_writer(url: str) -> Writer:
    eng = database.create(url, writer=True)
    database.migrate(eng)
    return Writer(eng, max_batch=64)


def test_migrations_match_the_schema_and_are_idempotent(store_url: str) -> None:
    eng = database.create(store_url, writer=True)
    database.migrate(eng)
    database.migrate(eng)
    with eng.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": lambda _o, name, *_: name not in schema.UNDECLARED}
        )
        diff = compare_metadata(context, schema.metadata)
    eng.dispose()
    assert diff == []


def test_entries_are_append_only(store_url: str) -> None:
    w = open_writer(store_url)
    w.run_sync(lambda tx: tx.append(entry(1)))
    for stmt in (
        schema.entries.update().values(peer="x"),
        schema.entries.delete(),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), w._engine.begin() as conn:
            conn.execute(stmt)
    with w._engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.entries)).scalar() == 1
    w.close()


def test_group_commit_batches_and_isolates_failing_units(store_url: str) -> None:
    w = open_writer(store_url)

    def ok(i: int) -> Any:
        return lambda tx: tx.append(entry(i))

    def bad(tx: WriteTx) -> None:
        tx.append(entry(-1))
        raise InputError("refused on purpose")

    async def main() -> list[Any]:
        w.start()
        units = [ok(i) if i % 10 else bad for i in range(200)]
        return await asyncio.gather(*(w.submit(u) for u in units), return_exceptions=True)

    results = asyncio.run(main())
    failures = [r for r in results if isinstance(r, InputError)]
    assert len(failures) == 20
    indices = [r for r in results if isinstance(r, int)]
    assert sorted(indices) == list(range(180))  # failed units left no gap and no trace
    assert w.batches < w.units == 200  # several units shared a commit
    with w._engine.connect() as conn:
        leaves = conn.execute(
            sa.select(schema.entries.c.leaf).order_by(schema.entries.c.idx)
        ).scalars()
        hashes = [merkle.leaf_hash(bytes(x)) for x in leaves]
        assert len(hashes) == 180
        assert w.tree.root() == merkle.root_of(hashes)
        assert LedgerTree.load(conn).root() == w.tree.root()
    w.close()


def test_stored_subtrees_are_the_perfect_subtree_roots(store_url: str) -> None:
    w = open_writer(store_url)
    for i in range(13):
        w.run_sync(lambda tx, i=i: tx.append(entry(i)))
    with w._engine.connect() as conn:
        leaves = [merkle.leaf_hash(entry(i).encode()) for i in range(13)]
        store = SqlNodeStore(conn)
        for level, idx in frontier_keys(13):
            span = leaves[idx << level : (idx + 1) << level]
            assert store.get_nodes([(level, idx)]) == [merkle.root_of(span)]
    w.close()


def test_stored_proofs_are_the_memory_trees_read_together_or_alone(store_url: str) -> None:
    w = open_writer(store_url)
    n = 37
    for i in range(n):
        w.run_sync(lambda tx, i=i: tx.append(entry(i)))
    mem = rules.MemoryTree()
    mem.append(merkle.leaf_hash(entry(i).encode()) for i in range(n))
    wanted = [(0, 1), (0, n), (5, 6), (12, 13), (30, 31), (36, n), (17, 32), (17, 32), (3, 9)]
    with w._engine.connect() as conn:
        together = tree.inclusion_proofs(conn, wanted, n)
        alone = [tree.inclusion_proof(conn, i, size, n) for i, size in wanted]
        assert together == alone == [mem.inclusion_proof(i, size) for i, size in wanted]
        assert tree.inclusion_proofs(conn, [], n) == []
        store = SqlNodeStore(conn)
        assert store.get_nodes([(0, 4), (2, 1), (0, 4)]) == [
            *mem.store.get_nodes([(0, 4), (2, 1)]),
            mem.store.get_nodes([(0, 4)])[0],
        ]
        with pytest.raises(StoreError) as info:
            store.get_nodes([(0, 4), (6, 0)])  # 64 leaves: not stored yet
        assert info.value.code == "ledger_corrupt"
    w.close()


def test_node_reads_search_the_primary_key(tmp_path: Any) -> None:
    """A proof's nodes are found through the primary key on SQLite: a row-value ``IN``
    made it scan the whole table (ms a proof once the ledger holds a few thousand
    entries, docs/performance.md "NATS relay, second pass")."""
    w = open_writer(f"sqlite:///{tmp_path / 'h.db'}")
    for i in range(20):
        w.run_sync(lambda tx, i=i: tx.append(entry(i)))
    seen: list[tuple[str, Any]] = []
    with w._engine.connect() as conn:

        def watch(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
            if "ledger_nodes" in statement:
                seen.append((statement, params))

        sa.event.listen(conn, "before_cursor_execute", watch)
        tree.inclusion_proofs(conn, [(3, 20), (11, 16), (19, 20)], 20)
        sa.event.remove(conn, "before_cursor_execute", watch)
        assert len(seen) == 1
        statement, params = seen[0]
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
    w.close()
    details = [str(row[-1]) for row in plan]
    assert not any(d.startswith("SCAN ledger_nodes") for d in details), details
    assert any("ledger_nodes USING" in d for d in details), details


@pytest.mark.parametrize(
    ("size", "keys"),
    [(0, []), (1, [(0, 0)]), (6, [(2, 0), (1, 2)]), (13, [(3, 0), (2, 2), (0, 12)])],
)
def test_frontier_keys(size: int, keys: list[tuple[int, int]]) -> None:
    assert frontier_keys(size) == keys


def test_a_failed_unit_restores_the_tree_for_run_sync(store_url: str) -> None:
    w = open_writer(store_url)
    w.run_sync(lambda tx: tx.append(entry(0)))
    root = w.tree.root()

    def bad(tx: WriteTx) -> None:
        tx.append(entry(1))
        raise InputError("no")

    with pytest.raises(InputError):
        w.run_sync(bad)
    assert w.tree.size == 1
    assert w.tree.root() == root
    w.close()
