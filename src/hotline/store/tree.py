"""The ledger's Merkle tree as stored: leaf count, frontier, and the stored node hashes.

Owns the table ``ledger_nodes`` (the hash of every complete aligned subtree, keyed by
level and index) and the in-memory frontier (the right-edge perfect subtrees), so an
append costs O(log n) writes and nothing ever rehashes the whole log. The hashing rules
themselves live in ``hotline.ledger.merkle``. Must not touch: ``entries`` (the writer
inserts those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline.ledger import merkle
from hotline.store import schema


@dataclass(frozen=True, slots=True)
class _Mark:
    size: int
    frontier: tuple[tuple[int, int, bytes], ...]


class LedgerTree:
    def __init__(self, size: int, frontier: list[tuple[int, int, bytes]]) -> None:
        self.size = size
        self._frontier = frontier  # (level, index, hash), highest level first

    @classmethod
    def load(cls, conn: Connection) -> LedgerTree:
        size = int(
            conn.execute(sa.select(sa.func.count()).select_from(schema.entries)).scalar_one()
        )
        keys = frontier_keys(size)
        nodes = SqlNodeStore(conn).get_nodes(keys)
        return cls(size, [(lvl, i, h) for (lvl, i), h in zip(keys, nodes, strict=True)])

    def mark(self) -> _Mark:
        return _Mark(self.size, tuple(self._frontier))

    def restore(self, mark: _Mark) -> None:
        self.size, self._frontier = mark.size, list(mark.frontier)

    def append(self, conn: Connection, leaf: bytes) -> tuple[int, bytes]:
        """Store the nodes one more leaf completes; return (index, leaf hash)."""
        idx = self.size
        leaf_hash = merkle.leaf_hash(leaf)
        new = [(0, idx, leaf_hash)]
        level, i, h = 0, idx, leaf_hash
        while self._frontier and self._frontier[-1][0] == level:
            _, _, left = self._frontier.pop()
            level, i, h = level + 1, i // 2, merkle.node_hash(left, h)
            new.append((level, i, h))
        self._frontier.append((level, i, h))
        conn.execute(
            schema.ledger_nodes.insert(),
            [{"level": lv, "idx": ix, "hash": hh} for lv, ix, hh in new],
        )
        self.size = idx + 1
        return idx, leaf_hash

    def root(self) -> bytes:
        """Root hash of the whole tree from the frontier alone."""
        if not self._frontier:
            return merkle.EMPTY_ROOT
        acc = self._frontier[-1][2]
        for _, _, h in reversed(self._frontier[:-1]):
            acc = merkle.node_hash(h, acc)
        return acc


def frontier_keys(size: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees that make up a tree of ``size`` leaves."""
    keys: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            keys.append((level, start >> level))
            start += 1 << level
    return keys


class SqlNodeStore:
    """Reads stored subtree hashes in one query."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> list[bytes]:
        if not keys:
            return []
        t = schema.ledger_nodes
        wanted = set(keys)
        rows = self._conn.execute(
            sa.select(t.c.level, t.c.idx, t.c.hash).where(
                sa.tuple_(t.c.level, t.c.idx).in_(list(wanted))
            )
        ).all()
        found = {(r.level, r.idx): bytes(r.hash) for r in rows}
        missing = wanted - found.keys()
        if missing:
            from hotline.errors import StoreError

            raise StoreError(f"ledger nodes missing: {sorted(missing)[:3]}", code="ledger_corrupt")
        return [found[k] for k in keys]
