"""The ledger's Merkle tree as stored: leaf count, frontier, and the stored node hashes.

Owns the table ``ledger_nodes`` (the hash of every complete aligned subtree, keyed by
level and index, written once when it completes) and the in-memory frontier, so an
append costs O(log n) writes and nothing ever rehashes the whole log. The tree's rules
(which nodes, which proofs) live in ``hotline.ledger.tree``; hashing in
``hotline.ledger.merkle``. Must not touch: ``entries`` (the writer inserts those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.errors import StoreError
from hotline.ledger import merkle
from hotline.ledger import tree as rules
from hotline.store import schema
from hotline.store.prepared import Prepared

frontier_keys = rules.frontier_keys


@dataclass(frozen=True, slots=True)
class Mark:
    size: int
    frontier: tuple[bytes, ...]


_INSERT_NODE = Prepared(schema.ledger_nodes.insert(), ("level", "idx", "hash"))


class LedgerTree:
    def __init__(self, size: int, frontier: list[bytes]) -> None:
        self.size = size
        self._frontier = frontier  # roots of the right-edge perfect subtrees, largest first

    @classmethod
    def load(cls, conn: Connection) -> LedgerTree:
        size = ledger_size(conn)
        return cls(size, SqlNodeStore(conn).get_nodes(rules.frontier_keys(size)))

    def reload(self, conn: Connection) -> None:
        """Become what the database holds (after a commit whose outcome is unknown)."""
        loaded = LedgerTree.load(conn)
        self.size, self._frontier = loaded.size, loaded._frontier

    def mark(self) -> Mark:
        return Mark(self.size, tuple(self._frontier))

    def restore(self, mark: Mark) -> None:
        self.size, self._frontier = mark.size, list(mark.frontier)

    def append(self, conn: Connection, leaf: bytes) -> tuple[int, bytes]:
        """Store the nodes one more leaf completes; return (index, leaf hash)."""
        idx = self.size
        leaf_hash = merkle.leaf_hash(leaf)
        nodes, self._frontier = rules.append_leaves(idx, self._frontier, [leaf_hash])
        _INSERT_NODE.run_many(conn, [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes])
        self.size = idx + 1
        return idx, leaf_hash

    def root(self) -> bytes:
        """Root hash of the whole tree, from the frontier alone."""
        return merkle.frontier_root(self._frontier) if self._frontier else merkle.EMPTY_ROOT


class SqlNodeStore:
    """Reads stored subtree hashes in one query (``hotline.ledger.tree.NodeStore``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes]:
        if not keys:
            return []
        t = schema.ledger_nodes
        by_level: dict[int, set[int]] = {}
        for level, idx in keys:
            by_level.setdefault(level, set()).add(idx)
        # one ``level = ? AND idx IN (...)`` term per level: SQLite searches the primary
        # key for each (a row-value ``(level, idx) IN (VALUES ...)`` scans the whole
        # table: 5-10 ms a proof at a few thousand entries, docs/performance.md "NATS
        # relay, second pass")
        rows = self._conn.execute(
            sa.select(t.c.level, t.c.idx, t.c.hash).where(
                sa.or_(
                    *(
                        sa.and_(t.c.level == level, t.c.idx.in_(sorted(idxs)))
                        for level, idxs in sorted(by_level.items())
                    )
                )
            )
        ).all()
        found = {(r.level, r.idx): bytes(r.hash) for r in rows}
        missing = set(keys) - found.keys()
        if missing:
            raise StoreError(f"ledger nodes missing: {sorted(missing)[:3]}", code="ledger_corrupt")
        return [found[k] for k in keys]


def ledger_size(conn: Connection) -> int:
    """Entries in the ledger as this connection sees it."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(schema.entries)).scalar_one())


def root_at(conn: Connection, size: int, tree_size: int) -> bytes:
    return rules.root_at(SqlNodeStore(conn), size, tree_size)


def inclusion_proof(conn: Connection, index: int, size: int, tree_size: int) -> list[bytes]:
    return rules.inclusion_proof(SqlNodeStore(conn), index, size, tree_size)


def inclusion_proofs(
    conn: Connection, wanted: Sequence[tuple[int, int]], tree_size: int
) -> list[list[bytes]]:
    """``inclusion_proof`` of each (index, size) in ``wanted``, their nodes read in one
    query (a link test asks for up to 64)."""
    return rules.inclusion_proofs(SqlNodeStore(conn), wanted, tree_size)


def consistency_proof(conn: Connection, size1: int, size2: int, tree_size: int) -> list[bytes]:
    return rules.consistency_proof(SqlNodeStore(conn), size1, size2, tree_size)
