"""Ledger benchmark: appends, proofs, transcript verification, raw Ed25519.

Prints human-readable figures; the last line is one JSON object. ``--quick`` uses 1M
leaves and a small transcript (well under a minute); without it, 10M leaves.

- appends: leaf hashing + ``tree.append_leaves`` + storing the nodes, in batches, into
  the in-memory store and into a SQLite file NodeStore defined here (one table of
  ``(level, index) -> hash`` as one integer key, WAL, synchronous=NORMAL for the bench);
- inclusion proof generation (one batched read) and verification, p50 over random leaves;
- transcript verification: every entry carries an Ed25519-signed envelope, checked by a
  hook in a process pool over all cores while the tree is recomputed;
- raw Ed25519 verifications per second on one core (pre-parsed key), same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from hotline.crypto import primitives
from hotline.errors import SignatureError, StoreError
from hotline.ledger import checkpoint, merkle, note, transcript, tree
from hotline.ledger.entry import Entry, EntryKind

BATCH = 10_000
_KEY_SHIFT = 58


class SqliteNodeStore:
    """NodeStore over one SQLite table; key = level << 58 | index."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS node (k INTEGER PRIMARY KEY, h BLOB NOT NULL)")

    def put_nodes(self, nodes: Iterable[tree.Node]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO node (k, h) VALUES (?, ?)",
            ((lv << _KEY_SHIFT | ix, h) for lv, ix, h in nodes),
        )
        self.db.execute("COMMIT")

    def get_nodes(self, keys: Sequence[tree.NodeKey]) -> list[bytes]:
        ks = [lv << _KEY_SHIFT | ix for lv, ix in keys]
        marks = ",".join("?" * len(ks))
        rows = dict(self.db.execute(f"SELECT k, h FROM node WHERE k IN ({marks})", ks).fetchall())
        try:
            return [rows[k] for k in ks]
        except KeyError:
            raise StoreError("node missing") from None


def leaves(start: int, n: int) -> list[bytes]:
    h = hashlib.sha256
    return [h(b"\x00entry-%d" % i).digest() for i in range(start, start + n)]


def bench_appends(n: int, store: tree.MemoryNodeStore | SqliteNodeStore) -> float:
    size, frontier = 0, []
    t0 = time.perf_counter()
    while size < n:
        batch = min(BATCH, n - size)
        nodes, frontier = tree.append_leaves(size, frontier, leaves(size, batch))
        store.put_nodes(nodes)
        size += batch
    return n / (time.perf_counter() - t0)


def bench_proofs(store: tree.NodeStore, n: int, samples: int, root: bytes) -> tuple[float, float]:
    rng = random.Random(7)
    gen, ver = [], []
    for _ in range(samples):
        i = rng.randrange(n)
        leaf = leaves(i, 1)[0]
        t0 = time.perf_counter()
        proof = tree.inclusion_proof(store, i, n, n)
        t1 = time.perf_counter()
        merkle.verify_inclusion(leaf, i, n, proof, root)
        t2 = time.perf_counter()
        gen.append(t1 - t0)
        ver.append(t2 - t1)
    return statistics.median(gen) * 1e6, statistics.median(ver) * 1e6


# --- transcript verification -------------------------------------------------------

_SEED = b"S" * 32
_PUB = primitives.signing_public_key(_SEED)
_KEYS: dict[bytes, ed25519.Ed25519PublicKey] = {}


def envelope_hook(index: int, entry: Entry) -> None:
    """What the station's hook does per envelope: one Ed25519 verify with a cached key."""
    key = _KEYS.get(_PUB)
    if key is None:
        key = _KEYS[_PUB] = ed25519.Ed25519PublicKey.from_public_bytes(_PUB)
    try:
        key.verify(entry.data[:64], entry.data[64:])
    except Exception as exc:
        raise SignatureError(f"envelope {index} signature") from exc


def make_transcript(n: int, every: int) -> transcript.Transcript:
    signer = primitives.Signer(_SEED)
    log = note.NoteSigner("bench.example/log", b"L" * 32)
    raws, frontier, notes = [], [], []
    for i in range(n):
        body = b"envelope %d " % i + bytes(120)
        data = signer.sign(b"", body) + body
        raw = Entry(
            EntryKind.ENVELOPE_IN, "peer", i, hashlib.sha256(data).digest(), i, data
        ).encode()
        raws.append(raw)
        merkle.frontier_append(i, frontier, merkle.leaf_hash(raw))
        if (i + 1) % every == 0:
            cp = checkpoint.Checkpoint(log.name, i + 1, merkle.frontier_root(frontier))
            notes.append(checkpoint.sign_checkpoint(cp, log))
    return transcript.Transcript("bench", b"card", log.verifier.vkey, tuple(raws), tuple(notes))


def _warm() -> int:
    return os.getpid()


def bench_transcript(n: int, cores: int, runs: int) -> float:
    """Best of ``runs`` (the machine is shared; the best run is the least disturbed)."""
    t = make_transcript(n, 1000)
    best = 0.0
    with ProcessPoolExecutor(cores) as pool:
        for f in [pool.submit(_warm) for _ in range(cores * 2)]:
            f.result()
        for _ in range(runs):
            t0 = time.perf_counter()
            transcript.verify_transcript(
                t, envelope_hook, executor=pool, chunk_size=max(256, n // (cores * 16))
            )
            best = max(best, n / (time.perf_counter() - t0))
    return best


def bench_raw_ed25519(seconds: float, runs: int) -> float:
    """Best of ``runs`` windows of ``seconds``: verifications per second on one core."""
    key = ed25519.Ed25519PublicKey.from_public_bytes(_PUB)
    msg = b"envelope" + bytes(128)
    sig = primitives.sign(_SEED, b"", msg)
    best = 0.0
    for _ in range(runs):
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for _ in range(100):
                key.verify(sig, msg)
            count += 100
        best = max(best, count / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 1_000_000 if args.quick else 10_000_000
    n_tx = 20_000 if args.quick else 100_000
    cores = len(os.sched_getaffinity(0))

    mem = tree.MemoryNodeStore()
    append_mem = bench_appends(n, mem)
    print(f"appends (memory store, batches of {BATCH}): {append_mem:,.0f}/s over {n:,} leaves")
    root = tree.root_at(mem, n, n)
    gen_mem, ver = bench_proofs(mem, n, 2000, root)
    print(f"inclusion proof at {n:,}: generate p50 {gen_mem:.1f} us, verify p50 {ver:.1f} us")

    with tempfile.TemporaryDirectory() as tmp:
        sql = SqliteNodeStore(Path(tmp) / "nodes.db")
        append_sql = bench_appends(n, sql)
        print(f"appends (SQLite file store): {append_sql:,.0f}/s over {n:,} leaves")
        gen_sql, _ = bench_proofs(sql, n, 2000, root)
        print(f"inclusion proof from SQLite at {n:,}: generate p50 {gen_sql:.1f} us")
        sql.db.close()

    raw = bench_raw_ed25519(0.5 if args.quick else 1.0, 3)
    print(f"raw Ed25519 verify, one core (best of 3): {raw:,.0f}/s")
    rate = bench_transcript(n_tx, cores, 3)
    print(
        f"transcript verification (best of 3): {rate:,.0f} entries/s on {cores} cores "
        f"({rate / (raw * cores):.0%} of raw Ed25519 x cores)"
    )
    print(
        json.dumps(
            {
                "entries": n,
                "append_per_s": round(append_mem),
                "append_sqlite_per_s": round(append_sql),
                "proof_gen_us_p50": round(gen_mem, 1),
                "proof_gen_sqlite_us_p50": round(gen_sql, 1),
                "proof_verify_us_p50": round(ver, 1),
                "transcript_entries": n_tx,
                "verify_entries_per_s": round(rate),
                "ed25519_verify_per_s": round(raw),
                "cores_used": cores,
            }
        )
    )


if __name__ == "__main__":
    main()
