"""The bundle parser on garbage: anything refused is a ``HotlineError`` (never another
exception), and only a file signed by the sender's key for us opens."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives
from hotline.errors import HotlineError, UnknownPeerError
from hotline.wire import bundle as wire

SEED = bytes(range(32))
KEY = primitives.signing_public_key(SEED)
MAX = 1 << 20
#: signing and verifying take milliseconds: no deadline on a busy 2-core machine
GARBAGE = settings(max_examples=300, deadline=None, database=None)


def key_of(sid: str) -> bytes:
    if sid != "alpha":
        raise UnknownPeerError(f"{sid} is not a peer")
    return KEY


def good(envelopes: list[bytes], receipts: list[bytes]) -> bytes:
    return wire.encode(
        bundle_id="ab" * 16, sender="alpha", recipient="bravo", created_at_us=5,
        envelopes=envelopes, receipts=receipts, answers=None, signer=primitives.Signer(SEED),
    )  # fmt: skip


def open_(raw: bytes) -> wire.Bundle:
    return wire.open_bundle(raw, max_bytes=MAX, recipient="bravo", key_of=key_of)


records = st.lists(st.binary(min_size=1, max_size=64), max_size=5)


@GARBAGE
@given(records, records)
def test_a_good_file_opens_to_what_was_put_in(
    envelopes: list[bytes], receipts: list[bytes]
) -> None:
    b = open_(good(envelopes, receipts))
    assert list(b.envelopes) == envelopes
    assert list(b.receipts) == receipts
    assert b.header.sender == "alpha"


@GARBAGE
@given(st.binary(max_size=600))
def test_random_bytes_are_refused(raw: bytes) -> None:
    with pytest.raises(HotlineError):
        open_(raw)


@GARBAGE
@given(records, st.data())
def test_any_change_to_a_good_file_is_refused(envelopes: list[bytes], data: st.DataObject) -> None:
    raw = good(envelopes, [b"r"])
    at = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]))
    cut = data.draw(st.integers(0, len(raw) - 1))
    for bad in (raw[:at] + bytes([byte]) + raw[at + 1 :], raw[:cut], raw + raw[:1]):
        with pytest.raises(HotlineError):
            open_(bad)


@GARBAGE
@given(st.dictionaries(st.text(max_size=12), st.none() | st.integers() | st.text(max_size=40)),
       st.binary(max_size=64))  # fmt: skip
def test_garbage_headers_are_refused(header: dict[str, object], body: bytes) -> None:
    h = json.dumps(header).encode()
    signed = struct.pack(">8sBI", wire.MAGIC, wire.VERSION, len(h)) + h + body
    raw = signed + primitives.sign(SEED, wire.DOMAIN, signed)
    with pytest.raises(HotlineError):
        open_(raw)


@GARBAGE
@given(st.binary(max_size=200))
def test_a_signed_garbage_body_is_refused_or_opens_exactly(body: bytes) -> None:
    """Records are parsed only after the signature, but even a signed body of garbage
    is refused cleanly."""
    header = wire.BundleHeader("cd" * 16, "alpha", "bravo", 1, 0, 0, None, len(body)).to_bytes()
    signed = struct.pack(">8sBI", wire.MAGIC, wire.VERSION, len(header)) + header + body
    raw = signed + primitives.sign(SEED, wire.DOMAIN, signed)
    try:
        b = open_(raw)
    except HotlineError:
        return
    assert body == b""
    assert b.envelopes == ()
    assert b.receipts == ()


def test_the_wrong_recipient_and_a_stranger_are_refused() -> None:
    raw = good([b"e"], [])
    with pytest.raises(HotlineError) as wrong:
        wire.open_bundle(raw, max_bytes=MAX, recipient="charlie", key_of=key_of)
    assert wrong.value.code == "misaddressed"
    with pytest.raises(HotlineError) as stranger:
        wire.open_bundle(raw, max_bytes=MAX, recipient="bravo", key_of=lambda s: key_of("x"))
    assert stranger.value.code == "unknown_peer"
    with pytest.raises(HotlineError) as big:
        wire.open_bundle(raw, max_bytes=len(raw) - 1, recipient="bravo", key_of=key_of)
    assert big.value.code == "too_large"
