"""Envelopes: layout, exact-bytes signatures, sealing bound to the header, and refusal of
anything malformed with a clear code."""

from __future__ import annotations

import contextlib
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives
from hotline.errors import DecryptError, EnvelopeError, HotlineError, SignatureError
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence

SEED = bytes(range(32))
ENC = bytes(range(32, 64))
SIGNER = primitives.Signer(SEED)
OPENER = primitives.Opener(ENC)
ENC_PUB = primitives.encryption_public_key(ENC)
LIMIT = 1 << 20


def header(**kw: object) -> Header:
    base = dict(
        kind=Kind.MESSAGE, precedence=Precedence.FLASH, suite=wire.DEFAULT_SUITE,
        sender="alpha", recipient="bravo", channel="working", sequence=7,
        message_id=uuid.UUID(int=1), sent_at_us=1_767_225_600_000_000,
    )  # fmt: skip
    base.update(kw)
    return Header(**base)  # type: ignore[arg-type]


def sealed(plaintext: bytes = b'{"type":"text","text":"hi"}', **kw: object) -> wire.Envelope:
    return wire.seal_envelope(header(**kw), plaintext, SIGNER, ENC_PUB)


def test_round_trip() -> None:
    env = sealed()
    got = wire.decode(env.raw, max_bytes=LIMIT).verify(SIGNER.public_key)
    assert got.header == env.header
    assert got.raw == env.raw
    assert got.open(OPENER) == b'{"type":"text","text":"hi"}'
    assert got.hash == primitives.sha256(env.raw)


def test_receipts_are_plain_and_signed() -> None:
    env = wire.seal_envelope(
        header(kind=Kind.RECEIPT, sequence=0, suite=primitives.SUITE_NONE), b"{}", SIGNER, None
    )
    got = wire.decode(env.raw, max_bytes=LIMIT).verify(SIGNER.public_key)
    assert got.open(OPENER) == b"{}"


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"kind": Kind.MESSAGE, "sequence": 0}, "sequence"),
        ({"kind": Kind.LINK_TEST, "sequence": 3}, "sequence"),
        ({"sender": "Alpha"}, "station id"),
        ({"recipient": "-x"}, "station id"),
        ({"channel": "c" * 65}, "64 bytes"),
    ],
)
def test_building_refuses_bad_headers(changes: dict[str, object], why: str) -> None:
    with pytest.raises(EnvelopeError, match=why):
        sealed(**changes)


def test_sealed_kinds_need_a_key_and_plain_kinds_refuse_a_suite() -> None:
    with pytest.raises(EnvelopeError):
        wire.seal_envelope(header(), b"x", SIGNER, None)
    with pytest.raises(EnvelopeError):
        wire.seal_envelope(header(kind=Kind.RECEIPT, sequence=0), b"x", SIGNER, None)


def _patch(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value) :]


CORRUPTIONS = [
    ("bad magic", lambda r: _patch(r, 0, b"XXXX"), "bad_envelope"),
    ("version 2", lambda r: _patch(r, 4, b"\x02"), "bad_version"),
    ("unknown kind", lambda r: _patch(r, 5, b"\x09"), "bad_envelope"),
    ("unknown precedence", lambda r: _patch(r, 6, b"\x07"), "bad_envelope"),
    ("reserved flags", lambda r: _patch(r, 7, b"\x01"), "bad_envelope"),
    ("unsupported suite", lambda r: _patch(r, 8, struct.pack(">H", 0x0010)), "bad_suite"),
    ("truncated", lambda r: r[:-1], "truncated"),
    ("trailing byte", lambda r: r + b"\x00", "truncated"),
    ("empty", lambda r: b"", "truncated"),
    ("too large", lambda r: r + bytes(LIMIT), "too_large"),
]


@pytest.mark.parametrize(("case", "corrupt", "code"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_malformed_envelopes_are_refused_with_a_code(case: str, corrupt, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvelopeError) as info:
        wire.decode(corrupt(sealed().raw), max_bytes=LIMIT)
    assert info.value.code == code


def test_unsigned_or_wrongly_signed_is_refused() -> None:
    raw = sealed().raw
    unsigned = raw[:-64] + bytes(64)
    with pytest.raises(SignatureError):
        wire.decode(unsigned, max_bytes=LIMIT).verify(SIGNER.public_key)
    other = primitives.Signer(bytes(32)).public_key
    with pytest.raises(SignatureError):
        wire.decode(raw, max_bytes=LIMIT).verify(other)


def test_payload_cannot_be_moved_under_another_header() -> None:
    a, b = sealed(sequence=1), sealed(sequence=2)
    # b's header with a's payload, validly re-signed by the sender: HPKE info differs
    signed = b.header_bytes + struct.pack(">I", len(a.payload)) + a.payload
    raw = signed + SIGNER.sign(wire.SIGN_CONTEXT, signed)
    env = wire.decode(raw, max_bytes=LIMIT).verify(SIGNER.public_key)
    with pytest.raises(DecryptError):
        env.open(OPENER)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_change_is_caught(data: st.DataObject) -> None:
    raw = sealed().raw
    i = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda v: v != raw[i]))
    bad = raw[:i] + bytes([new]) + raw[i + 1 :]

    def accept() -> bytes:
        return wire.decode(bad, max_bytes=LIMIT).verify(SIGNER.public_key).open(OPENER)

    with pytest.raises(HotlineError):
        accept()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_envelope_errors(raw: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        wire.decode(raw, max_bytes=LIMIT)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_random_bytes_after_a_valid_prefix(tail: bytes) -> None:
    raw = sealed().raw
    cut = raw[: len(raw) // 2] + tail
    try:
        wire.decode(cut, max_bytes=LIMIT).verify(SIGNER.public_key)
    except (EnvelopeError, SignatureError):
        pass
    else:  # pragma: no cover - would mean a forged envelope verified
        pytest.fail("a cut-and-spliced envelope verified")
