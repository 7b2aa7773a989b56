"""Batch receipts (docs/wire.md): the byte format, the tree over items, the proofs."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives
from hotline.errors import EnvelopeError, HotlineError, MisaddressedError
from hotline.ledger import merkle
from hotline.wire import batchreceipt as br
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence

SIGNER = primitives.Signer(bytes(range(32)))
KEY = SIGNER.public_key
T0 = 1_767_225_600_000_000


def item(k: int) -> bytes:
    return json.dumps({
        "envelope_hash": primitives.sha256(b"%d" % k).hex(), "sender": "alpha",
        "sequence": k + 1, "message_id": str(uuid.UUID(int=k)), "stored_at_us": T0,
        "leaf_index": k, "tree_size": k + 1,
    }).encode()  # fmt: skip


def root_envelope(
    root: bytes, count: int, *, kind: Kind = Kind.RECEIPT, to: str = "alpha"
) -> bytes:
    payload = br.ReceiptRootPayload(format=br.FORMAT, root=root.hex(), count=count)
    sealed = kind is not Kind.RECEIPT
    suite = primitives.SUITE_X25519_CHACHA if sealed else primitives.SUITE_NONE
    h = Header(kind, Precedence.ROUTINE, suite, "bravo", to, "working", 0,
               uuid.UUID(bytes=root[:16]), T0)  # fmt: skip
    key = primitives.encryption_public_key(bytes(range(32, 64))) if sealed else None
    return wire.seal_envelope(h, payload.to_bytes(), SIGNER, key).raw


def batch(n: int) -> tuple[list[bytes], bytes]:
    items = [item(k) for k in range(n)]
    root, proofs = br.tree(items)
    env = root_envelope(root, n)
    return [br.encode(env, it, k, proofs[k]) for k, it in enumerate(items)], root


def open_(raw: bytes, roots: br.RootCache | None = None) -> object:
    return br.open_receipt(raw, KEY, sender="bravo", recipient="alpha",
                           max_envelope_bytes=1 << 16, roots=roots)[1]  # fmt: skip


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13, 64, 100])
def test_every_item_proves_under_the_root_and_the_root_is_rfc9162(n: int) -> None:
    items = [item(k) for k in range(n)]
    root, proofs = br.tree(items)
    hashes = [merkle.leaf_hash(br.LEAF_PREFIX + i) for i in items]
    assert root == merkle.root_of(hashes)  # the tree is RFC 9162's over prefixed leaves
    for k, it in enumerate(items):
        merkle.verify_inclusion(br.leaf_hash(it), k, n, proofs[k], root)
        assert len(proofs[k]) <= (n - 1).bit_length()


def test_a_round_trip_and_the_item_it_opens() -> None:
    raws, _root = batch(5)
    roots: br.RootCache = {}
    for k, raw in enumerate(raws):
        b = br.decode(raw)
        assert b.encode() == raw
        assert b.index == k
        got = open_(raw, roots)
        assert got == br.item_of(raw)
        assert got.sequence == k + 1  # type: ignore[attr-defined]
    assert len(roots) == 1  # one root, verified once


def test_leaf_prefix_separates_receipt_items_from_ledger_leaves() -> None:
    assert br.leaf_hash(b"x") != merkle.leaf_hash(b"x")


def test_each_item_is_bound_to_its_index() -> None:
    raws, _root = batch(4)
    b = br.decode(raws[1])
    with pytest.raises(EnvelopeError) as e:
        open_(br.encode(b.root_envelope, b.item, 2, b.proof))
    assert e.value.code == "bad_receipt_proof"


def test_a_root_for_another_station_or_of_another_kind_is_refused() -> None:
    items = [item(0), item(1)]
    root, proofs = br.tree(items)
    to_charlie = br.encode(root_envelope(root, 2, to="charlie"), items[0], 0, proofs[0])
    with pytest.raises(MisaddressedError):
        open_(to_charlie)
    ack = br.encode(root_envelope(root, 2, kind=Kind.LINK_TEST), items[0], 0, proofs[0])
    with pytest.raises(EnvelopeError) as e:
        open_(ack)
    assert e.value.code == "bad_kind"


def test_a_root_payload_with_another_format_is_refused() -> None:
    with pytest.raises(EnvelopeError) as e:
        br.parse_root(b'{"format":"x","root":"' + b"0" * 64 + b'","count":1}')
    assert e.value.code == "bad_payload"


def test_sizes_are_checked_before_parsing() -> None:
    raws, _root = batch(2)
    with pytest.raises(EnvelopeError) as e:
        br.decode(raws[0] + b"\x00" * br.MAX_BYTES)
    assert e.value.code == "too_large"
    big_item = raws[0][:4] + b"\x01" + raws[0][5:7]
    root_len = int.from_bytes(raws[0][5:7], "big")
    rest = raws[0][7:]
    forged = big_item + rest[:root_len] + (br.MAX_ITEM_BYTES + 1).to_bytes(2, "big")
    with pytest.raises(EnvelopeError) as e:
        br.decode(forged)
    assert e.value.code == "too_large"
    with pytest.raises(EnvelopeError) as e:
        br.decode(b"HTRB\x02\x00\x00")
    assert e.value.code == "bad_version"


def test_the_single_form_is_still_opened() -> None:
    body = item(0)
    h = Header(Kind.RECEIPT, Precedence.ROUTINE, primitives.SUITE_NONE, "bravo", "alpha",
               "working", 0, uuid.UUID(int=0), T0)  # fmt: skip
    raw = wire.seal_envelope(h, body, SIGNER, None).raw
    assert not br.is_batch(raw)
    assert open_(raw) == br.item_of(raw)
    assert br.signed_header(raw, max_envelope_bytes=1 << 16).sender == "bravo"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_parses_as_anything_but_a_refusal(data: bytes) -> None:
    for raw in (data, b"HTRB\x01" + data):
        with contextlib.suppress(EnvelopeError):
            br.decode(raw)
        with contextlib.suppress(HotlineError):
            open_(raw)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_of_a_batch_receipt_is_refused(pos: int, xor: int) -> None:
    raws, _root = batch(3)
    raw = raws[1]
    pos %= len(raw)
    if xor == 0:
        xor = 1
    bad = raw[:pos] + bytes([raw[pos] ^ xor]) + raw[pos + 1 :]
    with pytest.raises(HotlineError):
        open_(bad)
