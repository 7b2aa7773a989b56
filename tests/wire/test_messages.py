"""Payload schemas: strict parsing of opened payloads."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import EnvelopeError
from hotline.wire import messages
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


# --- the count of JSON values taken before a peer's payload is parsed ------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet=st.sampled_from('ab,[{"\\\\]}\u00e9\u0416 '), max_size=12),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(alphabet=st.sampled_from('k,[{"\\\\'), max_size=4), inner,
                      max_size=4),
    max_leaves=40,
)  # fmt: skip


def _structure(v: object) -> int:
    """Containers and separators of a parsed value: what the count must find."""
    if isinstance(v, list):
        return 1 + max(len(v) - 1, 0) + sum(_structure(x) for x in v)
    if isinstance(v, dict):
        return 1 + max(len(v) - 1, 0) + sum(_structure(x) for x in v.values())
    return 0


@given(_values, st.booleans(), st.booleans())
def test_the_value_count_is_the_parsed_structure_whatever_the_strings_hold(
    v: object, ascii_only: bool, compact: bool
) -> None:
    seps = (",", ":") if compact else (", ", ": ")
    raw = json.dumps(v, ensure_ascii=ascii_only, separators=seps).encode()
    n = _structure(v)
    assert messages.json_values_over(raw, -1) == n
    assert messages.json_values_over(raw, n) is None


def test_a_text_of_punctuation_is_not_over_and_a_huge_list_is() -> None:
    text = json.dumps({"text": '[,{\\"' * 30_000}).encode()
    assert messages.json_values_over(text, 1000) is None
    data = {"data": [[i, i] for i in range(10_000)]}
    huge = json.dumps(data).encode()
    assert messages.json_values_over(huge, 1000) == _structure(data) == 30_001
