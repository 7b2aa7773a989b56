"""Payload schemas: strict parsing of opened payloads."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import EnvelopeError
from hotline.wire.envelope import Kind
from hotline.wire.messages import AckPayload, MessagePayload, parse_payload


def test_round_trips() -> None:
    m = MessagePayload(text="hello", in_reply_to=uuid.UUID(int=5))
    assert parse_payload(Kind.MESSAGE, m.to_bytes()) == m
    a = AckPayload(message_id=uuid.UUID(int=1), officer="Maj. K", acknowledged_at_us=5)
    assert parse_payload(Kind.ACK, a.to_bytes()) == a


@pytest.mark.parametrize(
    ("kind", "raw", "where"),
    [
        (Kind.MESSAGE, b'{"type":"text","text":"x","extra":1}', "extra"),
        (Kind.MESSAGE, b'{"type":"poem"}', "type"),
        (Kind.ACK, b'{"message_id":"nope","officer":"a","acknowledged_at_us":1}', "message_id"),
        (
            Kind.ACK,
            b'{"message_id":"00000000-0000-0000-0000-000000000001","officer":"",'
            b'"acknowledged_at_us":1}',
            "officer",
        ),
        (Kind.RECEIPT, b"{}", "envelope_hash"),
        (Kind.LINK_TEST, b'{"nonce":"zz","t1_us":1}', "nonce"),
    ],
)
def test_invalid_payloads_name_the_field(kind: Kind, raw: bytes, where: str) -> None:
    with pytest.raises(EnvelopeError, match=where) as info:
        parse_payload(kind, raw)
    assert info.value.code == "bad_payload"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Kind)), st.binary(max_size=200))
def test_garbage_payloads_only_raise_envelope_errors(kind: Kind, raw: bytes) -> None:
    with contextlib.suppress(EnvelopeError):
        parse_payload(kind, raw)
