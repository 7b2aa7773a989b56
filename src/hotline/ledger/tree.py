"""A Merkle tree kept as stored subtree hashes: O(log n) appends, roots and proofs.

Owns: the storage layout of the tree and the proofs generated from it. Every complete,
aligned subtree is stored once, keyed by ``(level, index)``: the node at level ``L``
and index ``i`` is the root of leaves ``[i * 2**L, (i + 1) * 2**L)``; level 0 holds the
leaf hashes. A node is written once, when it becomes complete, and never changes, so a
store is append-only and about ``2 n`` rows for ``n`` leaves (the same nodes C2SP
tlog-tiles groups into tiles).

- Appending is the pure function :func:`append_leaves`: given the current size, the
  in-memory *frontier* (roots of the right-edge perfect subtrees, largest first) and the
  new leaf hashes, it returns the nodes to persist and the new frontier. No reads.
- A root, an inclusion proof or a consistency proof for any size ``m <= n`` needs
  O(log n) stored nodes, fetched with ONE :meth:`NodeStore.get_nodes` call.

Must not touch: SQL, files, the network (a store implements :class:`NodeStore`);
entry encoding (see ``entry.py``). Proof verification lives in ``merkle.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hotline.errors import ProofError, StoreError
from hotline.ledger.merkle import (
    EMPTY_ROOT,
    HASH_LEN,
    frontier_levels,
    frontier_root,
    node_hash,
)

NodeKey = tuple[int, int]
"""(level, index) of a complete aligned subtree."""
Node = tuple[int, int, bytes]
"""(level, index, hash): one row to persist."""


class NodeStore(Protocol):
    """Read side of a tree's storage: the lead's SQL store and the in-memory one."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """Hashes for ``keys``, in the same order; raise if any is missing."""
        ...


# --- append -------------------------------------------------------------------------


def frontier_keys(size: int) -> list[NodeKey]:
    """Keys of the frontier of a tree of ``size`` (to reload it from a store at start)."""
    return [(level, (size >> level) - 1) for level in frontier_levels(size)]


def append_leaves(
    size: int, frontier: Sequence[bytes], leaf_hashes: Iterable[bytes]
) -> tuple[list[Node], list[bytes]]:
    """Append leaf hashes to a tree of ``size``; return (nodes to persist, new frontier).

    ``frontier`` must be the frontier of the tree of ``size`` (see :func:`frontier_keys`);
    it is not modified. The nodes come level by level in the order they complete, so a
    store can insert them as they are. Cost: O(1) amortised hashes per leaf, no reads.
    """
    if len(frontier) != size.bit_count():
        raise ProofError(
            f"frontier has {len(frontier)} nodes, a tree of size {size} needs {size.bit_count()}",
            code="bad_frontier",
        )
    front = list(frontier)
    nodes: list[Node] = []
    n = size
    for leaf in leaf_hashes:
        if len(leaf) != HASH_LEN:
            raise ProofError(f"leaf {n} is not a 32-byte hash", code="bad_hash")
        nodes.append((0, n, leaf))
        carry, level, m = leaf, 0, n
        while m & 1:
            carry = node_hash(front.pop(), carry)
            level += 1
            m >>= 1
            nodes.append((level, m, carry))
        front.append(carry)
        n += 1
    return nodes, front


# --- node plans for proofs ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """The stored nodes a proof needs, and the run of them to fold into one hash.

    ``keys[begin:end]`` (when ``begin < end``) cover the incomplete right-edge subtree,
    smallest first; they are folded into a single "ephemeral" node.
    """

    keys: tuple[NodeKey, ...]
    begin: int = 0
    end: int = 0

    def assemble(self, hashes: Sequence[bytes]) -> list[bytes]:
        if len(hashes) != len(self.keys):
            raise StoreError(f"store returned {len(hashes)} nodes for {len(self.keys)} keys")
        for h in hashes:
            if len(h) != HASH_LEN:
                raise StoreError("store returned a node that is not a 32-byte hash")
        if self.begin >= self.end:
            return list(hashes)
        acc = hashes[self.begin]
        for h in hashes[self.begin + 1 : self.end]:
            acc = node_hash(h, acc)
        return [*hashes[: self.begin], acc, *hashes[self.end :]]


def _range_keys(begin: int, end: int) -> list[NodeKey]:
    """Maximal aligned perfect subtrees covering leaves [begin, end), left to right."""
    keys: list[NodeKey] = []
    while begin < end:
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length() - 1
        while begin + (1 << level) > end:
            level -= 1
        keys.append((level, begin >> level))
        begin += 1 << level
    return keys


def _path_plan(index: int, level: int, size: int) -> ProofPlan:
    """Nodes proving node (level, index) inside the tree of ``size``, with that node first.

    Same construction as transparency-dev/merkle ``proof.nodes``: siblings up to the
    *fork* (the highest complete ancestor), then the right edge folded into one node,
    then the left siblings above.
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level, fork_index = level + inner, index >> inner
    begin, end = fork_index << fork_level, (fork_index + 1) << fork_level
    keys: list[NodeKey] = [(level, index)]
    lv, ix = level, index
    while lv < fork_level:
        keys.append((lv, ix ^ 1))
        lv, ix = lv + 1, ix >> 1
    right = _range_keys(end, size)
    r_begin = len(keys)
    keys.extend(reversed(right))
    r_end = len(keys)
    keys.extend(reversed(_range_keys(0, begin)))
    if r_end - r_begin > 0:
        return ProofPlan(tuple(keys), r_begin, r_end)
    return ProofPlan(tuple(keys))


def _check_sizes(size: int, tree_size: int) -> None:
    if size < 0 or size > tree_size:
        raise ProofError(f"size {size} is outside the tree of size {tree_size}", code="bad_size")


def inclusion_plan(index: int, size: int) -> ProofPlan:
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below size {size}", code="bad_index")
    plan = _path_plan(index, 0, size)
    return _skip_first(plan)


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    if not 0 <= size1 <= size2:
        raise ProofError(f"no consistency proof from {size1} to {size2}", code="bad_size")
    if size1 in (0, size2):
        return ProofPlan(())
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    plan = _path_plan(index, level, size2)
    return _skip_first(plan) if index == 0 else plan


def _skip_first(plan: ProofPlan) -> ProofPlan:
    if plan.begin < plan.end:
        return ProofPlan(plan.keys[1:], plan.begin - 1, plan.end - 1)
    return ProofPlan(plan.keys[1:])


# --- reads --------------------------------------------------------------------------


def root_at(store: NodeStore, size: int, tree_size: int) -> bytes:
    """Root of the first ``size`` leaves, from ``size.bit_count()`` stored nodes."""
    _check_sizes(size, tree_size)
    if size == 0:
        return EMPTY_ROOT
    keys = _range_keys(0, size)
    hashes = ProofPlan(tuple(keys)).assemble(store.get_nodes(keys))
    return frontier_root(hashes)


def inclusion_proof(store: NodeStore, index: int, size: int, tree_size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size <= tree_size``."""
    return inclusion_proofs(store, [(index, size)], tree_size)[0]


def inclusion_proofs(
    store: NodeStore, wanted: Sequence[tuple[int, int]], tree_size: int
) -> list[list[bytes]]:
    """``inclusion_proof`` of each (index, size) in ``wanted``, in order, from one read of
    the nodes they need together (proofs of nearby leaves share most of theirs)."""
    plans = []
    for index, size in wanted:
        _check_sizes(size, tree_size)
        plans.append(inclusion_plan(index, size))
    keys = list(dict.fromkeys(k for plan in plans for k in plan.keys))
    found = dict(zip(keys, store.get_nodes(keys) if keys else [], strict=True))
    return [plan.assemble([found[k] for k in plan.keys]) for plan in plans]


def consistency_proof(store: NodeStore, size1: int, size2: int, tree_size: int) -> list[bytes]:
    """RFC 9162 consistency proof from ``size1`` to ``size2 <= tree_size`` (empty if equal)."""
    _check_sizes(size2, tree_size)
    plan = consistency_plan(size1, size2)
    return plan.assemble(store.get_nodes(plan.keys) if plan.keys else [])


# --- in memory ----------------------------------------------------------------------


class MemoryNodeStore:
    """A NodeStore in memory: one ``bytearray`` of concatenated hashes per level.

    For tests and benchmarks. ``put_nodes`` accepts exactly what :func:`append_leaves`
    returns; re-writing an existing node with the same hash is a no-op.
    """

    def __init__(self) -> None:
        self._levels: list[bytearray] = []

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_LEN if self._levels else 0

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        for level, index, h in nodes:
            while len(self._levels) <= level:
                self._levels.append(bytearray())
            row = self._levels[level]
            have = len(row) // HASH_LEN
            if index == have:
                row += h
            elif index > have or row[index * HASH_LEN : (index + 1) * HASH_LEN] != h:
                raise StoreError(f"node ({level}, {index}) out of order or rewritten")

    def get_nodes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        out: list[bytes] = []
        for level, index in keys:
            row = self._levels[level] if level < len(self._levels) else b""
            start = index * HASH_LEN
            if index < 0 or start + HASH_LEN > len(row):
                raise StoreError(f"node ({level}, {index}) is not stored")
            out.append(bytes(row[start : start + HASH_LEN]))
        return out


class MemoryTree:
    """A tree over a :class:`MemoryNodeStore`: the smallest complete use of this module."""

    def __init__(self) -> None:
        self.store = MemoryNodeStore()
        self.size = 0
        self.frontier: list[bytes] = []

    def append(self, leaf_hashes: Iterable[bytes]) -> None:
        nodes, self.frontier = append_leaves(self.size, self.frontier, leaf_hashes)
        self.store.put_nodes(nodes)
        self.size = self.store.size

    def root(self, size: int | None = None) -> bytes:
        return root_at(self.store, self.size if size is None else size, self.size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.store, index, self.size if size is None else size, self.size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        s2 = self.size if size2 is None else size2
        return consistency_proof(self.store, size1, s2, self.size)
