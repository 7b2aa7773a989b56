"""RFC 9162 Merkle tree hashing and proof verification, over hashes only.

Owns: the leaf and node hash functions, the root of a list of leaf hashes, the compact
"frontier" (the roots of the perfect subtrees on the right edge of a tree), and the
verification of inclusion and consistency proofs (RFC 9162 sections 2.1.3.2 and 2.1.4.2).
Must not touch: storage (see ``tree.py`` for proofs generated from stored nodes), notes,
keys, the network.

Invariants: every hash that crosses this module's boundary is exactly 32 bytes, or the
call fails with ``ProofError``; ``verify_*`` return None or raise ``ProofError``; sizes
and indexes are non-negative integers below 2**64; degenerate input (a proof from the
empty tree, equal sizes of zero, an empty proof where one is needed) fails closed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from hotline.crypto.primitives import equal
from hotline.errors import ProofError

HASH_LEN = 32
MAX_SIZE = 2**64 - 1
#: The root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE + left + right).digest()


def check_hash(value: bytes, what: str) -> None:
    """Raise ``ProofError`` unless ``value`` is a 32-byte hash."""
    if not isinstance(value, bytes) or len(value) != HASH_LEN:
        raise ProofError(f"{what} is not a 32-byte hash", code="bad_hash")


def _check_size(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SIZE:
        raise ProofError(f"{what} is not an integer in [0, 2**64)", code="bad_size")


# --- frontier (compact range [0, size)) ----------------------------------------------


def frontier_levels(size: int) -> list[int]:
    """Levels of the perfect subtrees that make up a tree of ``size``, largest first."""
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def frontier_append(size: int, frontier: list[bytes], leaf: bytes) -> list[bytes]:
    """Append one leaf hash to the frontier of a tree of ``size``, in place; return it.

    ``frontier`` holds the perfect-subtree roots of the right edge, largest first, one per
    set bit of ``size``. Merging is O(number of trailing one bits of size).
    """
    carry = leaf
    n = size
    while n & 1:
        carry = node_hash(frontier.pop(), carry)
        n >>= 1
    frontier.append(carry)
    return frontier


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Root of the tree whose right-edge perfect subtrees are ``frontier`` (largest first)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for h in reversed(frontier[:-1]):
        root = node_hash(h, root)
    return root


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """Root of the tree with these leaf hashes, in O(n) hashing and O(log n) memory."""
    frontier: list[bytes] = []
    for size, h in enumerate(leaf_hashes):
        frontier_append(size, frontier, h)
    return frontier_root(frontier)


# --- inclusion ----------------------------------------------------------------------


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` in a tree of ``size``.

    Raises ``ProofError`` when the proof has the wrong shape for (index, size).
    """
    _check_size(index, "leaf index")
    _check_size(size, "tree size")
    check_hash(leaf, "leaf hash")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}", code="bad_index")
    for i, p in enumerate(proof):
        check_hash(p, f"proof element {i}")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long", code="bad_proof_length")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short", code="bad_proof_length")
    return r


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` with ``root``."""
    check_hash(root, "root")
    computed = root_from_inclusion_proof(leaf, index, size, proof)
    if not equal(computed, root):
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the root of size {size}",
            code="bad_inclusion",
        )


# --- consistency --------------------------------------------------------------------


def roots_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """The (old root, new root) that ``proof`` implies, for 0 < size1 < size2.

    ``root1`` is only used as the first proof node when size1 is a power of two (the
    proof then omits it). A caller that gets ``new`` equal to the trusted new root but
    ``old`` different from the trusted old root holds proof that the log forked.
    """
    _check_size(size1, "old size")
    _check_size(size2, "new size")
    check_hash(root1, "old root")
    if not 0 < size1 < size2:
        raise ProofError(
            f"no consistency proof is defined from size {size1} to size {size2}",
            code="bad_size",
        )
    if not proof:
        raise ProofError("consistency proof is empty", code="bad_proof_length")
    for i, p in enumerate(proof):
        check_hash(p, f"proof element {i}")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long", code="bad_proof_length")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short", code="bad_proof_length")
    return fr, sr


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the one of ``size1``.

    Equal non-zero sizes need an empty proof and equal roots. A proof from size 0 is
    refused (the empty tree is trivially consistent; a witness handles ``old 0`` itself).
    """
    _check_size(size1, "old size")
    _check_size(size2, "new size")
    check_hash(root1, "old root")
    check_hash(root2, "new root")
    if size1 > size2:
        raise ProofError(f"old size {size1} exceeds new size {size2}", code="bad_size")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless", code="bad_size")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof", code="bad_proof_length")
        if not equal(root1, root2):
            raise ProofError(f"two different roots for size {size1}", code="bad_consistency")
        return
    old, new = roots_from_consistency_proof(size1, size2, proof, root1)
    if not (equal(old, root1) and equal(new, root2)):
        raise ProofError(
            f"consistency proof from size {size1} to {size2} does not verify",
            code="bad_consistency",
        )
