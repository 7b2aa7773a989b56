"""The hostile peer answers the target's envelopes with forged BATCH receipts.

One signed root over many receipt items (docs/wire.md "Batch receipts"): mallory signs a
root with its real key (or not) and hands alpha an item of it with a proof that lies: a
flipped proof hash, a root signed by another key, an item naming another envelope or
another sender, a proof of more than 64 hashes, an index beyond the count, truncated
bytes, trailing bytes, a root envelope over the limit. Each is refused with its code, the
store is exactly as it was and the message is still not delivered; a truthful batch
receipt is then recorded once (and its entry keeps the whole batch receipt).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.crypto import primitives
from hotline.errors import HotlineError
from hotline.ledger.entry import Entry, EntryKind
from hotline.store import schema
from hotline.wire import batchreceipt
from tests.crypto.helpers import new_identity
from tests.hostile.conftest import build_station, in_process_target
from tests.hostile.peer import HostilePeer
from tests.hostile.target import Target, diff
from tests.hostile.test_receipts import _sent_to

Forge = Callable[[HostilePeer, int, bytes], bytes]


def _flip_proof(p: HostilePeer, now: int, env: bytes) -> bytes:
    raw, _root, _items = p.batch_receipt_for(now, env)
    return raw[:-1] + bytes([raw[-1] ^ 1])  # the last proof hash


def _stranger(p: HostilePeer, now: int, env: bytes) -> bytes:
    seed = new_identity("mallory", "Not Mallory").signing_seed
    return p.batch_receipt_for(now, env, signing_seed=seed)[0]


def _other_item(p: HostilePeer, now: int, env: bytes) -> bytes:
    """A valid proof of ANOTHER item of the same signed root (another envelope)."""
    _raw, root, items = p.batch_receipt_for(now, env, index=0)
    _r, proofs = batchreceipt.tree(items)
    return batchreceipt.encode(root, items[1], 1, proofs[1])


def _other_sender(p: HostilePeer, now: int, env: bytes) -> bytes:
    return p.batch_receipt_for(now, env, sender="charlie")[0]


def _long_proof(p: HostilePeer, now: int, env: bytes) -> bytes:
    raw = p.batch_receipt_for(now, env)[0]
    b = batchreceipt.decode(raw)
    head = raw[: len(raw) - 1 - 32 * len(b.proof)]
    return head + bytes([65]) + b"\x00" * 32 * 65


def _beyond_count(p: HostilePeer, now: int, env: bytes) -> bytes:
    raw, root, _items = p.batch_receipt_for(now, env, index=0)
    b = batchreceipt.decode(raw)
    return batchreceipt.encode(root, b.item, 3, b.proof)


def _truncated(p: HostilePeer, now: int, env: bytes) -> bytes:
    return p.batch_receipt_for(now, env)[0][:-5]


def _trailing(p: HostilePeer, now: int, env: bytes) -> bytes:
    return p.batch_receipt_for(now, env)[0] + b"\x00"


def _huge_root(p: HostilePeer, now: int, env: bytes) -> bytes:
    raw = p.batch_receipt_for(now, env)[0]
    return raw[:4] + b"\x01" + (batchreceipt.MAX_ROOT_BYTES + 1).to_bytes(2, "big") + raw[7:]


def _count_lie(p: HostilePeer, now: int, env: bytes) -> bytes:
    """The root claims more items than its tree has: the proof shape no longer fits."""
    return p.batch_receipt_for(now, env, root_claims={"count": 9})[0]


def _bad_time(p: HostilePeer, now: int, env: bytes) -> bytes:
    return p.batch_receipt_for(now, env, stored_at_us=now + 3_600_000_000)[0]


CASES: list[tuple[str, Forge, str]] = [
    ("a flipped proof hash", _flip_proof, "bad_receipt_proof"),
    ("a root signed by another key", _stranger, "bad_signature"),
    ("an item naming another envelope", _other_item, "wrong_receipt"),
    ("an item naming another sender", _other_sender, "wrong_receipt"),
    ("a proof of 65 hashes", _long_proof, "bad_receipt_proof"),
    ("an index beyond the count", _beyond_count, "bad_receipt_proof"),
    ("a count the tree does not have", _count_lie, "bad_receipt_proof"),
    ("truncated bytes", _truncated, "bad_receipt"),
    ("trailing bytes", _trailing, "bad_receipt"),
    ("a root envelope over the limit", _huge_root, "too_large"),
    ("an item stored in an hour", _bad_time, "bad_time"),
]


def _receipt_entries(t: Target) -> list[bytes]:
    e = schema.entries
    with t.store.connect() as conn:
        leaves = conn.execute(
            sa.select(e.c.leaf).where(e.c.kind == int(EntryKind.RECEIPT_IN))
        ).scalars()
        return [Entry.decode(bytes(x)).data for x in leaves]


@pytest.mark.parametrize(("what", "forge", "code"), CASES, ids=[c[0] for c in CASES])
def test_a_forged_batch_receipt_is_refused_with_its_code(
    tmp_path: Path, store_url: str, what: str, forge: Forge, code: str
) -> None:
    station, peer = build_station(tmp_path, store_url)

    async def main() -> None:
        station.writer.start()
        async with in_process_target(station, peer) as t:
            sent = await t.send_to_peer("did you get this?")
            envelope = _sent_to(t, peer.station_id)
            now = t.now_us()
            raw = forge(peer, now, envelope)
            before = t.snapshot()
            # as the outbox hands them: with the hash of the envelope each answers
            [got] = await station.line.record_receipts(
                peer.station_id, [raw], expected=[primitives.sha256(envelope)]
            )
            assert isinstance(got, HotlineError), (what, got)
            assert got.code == code, (what, got)
            assert not diff(before, t.snapshot())
            msg = await t.operator("GET", f"/api/v1/messages/{sent['message_id']}")
            assert msg["state"] != "delivered"
            # a truthful batch receipt is then recorded, once, and kept whole on the ledger
            honest, _root, _items = peer.batch_receipt_for(now, envelope, index=1)
            assert await station.line.record_receipt(peer.station_id, honest) is True
            assert await station.line.record_receipt(peer.station_id, honest) is False
            assert _receipt_entries(t) == [honest]
            msg = await t.operator("GET", f"/api/v1/messages/{sent['message_id']}")
            assert msg["state"] == "delivered"
            await t.still_answers()

    try:
        asyncio.run(main())
    finally:
        station.close()


def test_many_receipts_of_one_root_verify_its_signature_once(
    tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Receipts sharing a root: the root's signature is checked once in one call."""
    station, peer = build_station(tmp_path, store_url)
    calls: list[Any] = []

    async def main() -> None:
        station.writer.start()
        async with in_process_target(station, peer) as t:
            await t.send_to_peer("did you get this?")
            envelope = _sent_to(t, peer.station_id)
            now = t.now_us()
            _raw, root, items = peer.batch_receipt_for(now, envelope, others=4, index=2)
            _r, proofs = batchreceipt.tree(items)
            raws = [batchreceipt.encode(root, it, k, proofs[k]) for k, it in enumerate(items)]
            real = primitives.verify

            def counting(*a: Any) -> None:
                calls.append(a)
                real(*a)

            monkeypatch.setattr(primitives, "verify", counting)
            got = await station.line.record_receipts(peer.station_id, raws)
            # the one naming alpha's envelope is recorded; the others name nothing queued
            assert got == [False, False, True, False, False]
            assert len(calls) == 1

    try:
        asyncio.run(main())
    finally:
        station.close()
