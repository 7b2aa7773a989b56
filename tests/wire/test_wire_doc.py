"""docs/wire.md's worked example decodes, verifies and opens as documented."""

from __future__ import annotations

import re
import uuid

import pytest

from hotline.crypto import primitives
from hotline.errors import EnvelopeError
from hotline.wire import envelope as wire
from hotline.wire.envelope import Kind, Precedence
from tests.conftest import ROOT


def example() -> bytes:
    text = (ROOT / "docs" / "wire.md").read_text()
    block = re.search(r"```hex\n(.*?)```", text, re.S)
    assert block is not None, "docs/wire.md lost its hex example"
    return bytes.fromhex("".join(block.group(1).split()))


def test_documented_example_decodes() -> None:
    raw = example()
    assert len(raw) == 246
    signing_public = primitives.signing_public_key(bytes(range(32)))
    assert signing_public.hex() in (ROOT / "docs" / "wire.md").read_text()
    env = wire.decode(raw, max_bytes=1 << 20).verify(signing_public)
    h = env.header
    assert (h.kind, h.precedence, h.sender, h.recipient, h.channel, h.sequence) == (
        Kind.MESSAGE, Precedence.FLASH, "alpha", "bravo", "working", 1,
    )  # fmt: skip
    assert h.message_id == uuid.UUID("0b9a3c52-5d1e-4f7a-9c6b-2e8d4f1a7c30")
    assert h.sent_at_us == 1_767_225_600_000_000
    assert len(env.payload) == 112
    plaintext = env.open(primitives.Opener(bytes(range(32, 64))))
    assert plaintext == b'{"type":"text","text":"Confirm intentions.","ack_required":true}'


def test_a_channel_longer_than_documented_is_refused_when_parsed() -> None:
    """wire.md: the channel is "UTF-8, at most 64 bytes". A validly signed envelope with a
    65-byte channel is refused by ``decode``, before anything reaches the store (it used
    to pass and fail later, inside the writer, when the receipt was built)."""
    raw = example()
    assert raw[26:34] == b"\x07working"
    for n, refused in ((64, False), (65, True)):
        signed = raw[:26] + bytes((n,)) + b"c" * n + raw[34:-64]
        forged = signed + primitives.sign(bytes(range(32)), wire.SIGN_CONTEXT, signed)
        if refused:
            with pytest.raises(EnvelopeError) as caught:
                wire.decode(forged, max_bytes=1 << 20)
            assert caught.value.code == "bad_envelope"
        else:
            assert wire.decode(forged, max_bytes=1 << 20).header.channel == "c" * 64
