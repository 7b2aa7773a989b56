"""docs/wire.md's worked example decodes, verifies and opens as documented."""

from __future__ import annotations

import re
import uuid

from hotline.crypto import primitives
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
