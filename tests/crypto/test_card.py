"""Station cards: round trip, tamper refusal, field rules, fingerprints, safety numbers."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.crypto import primitives, tls
from hotline.crypto.card import (
    MAX_CARD_BYTES,
    CardError,
    SignedCard,
    fingerprint,
    parse_card,
    safety_number,
)
from hotline.errors import ConfigError, HotlineError, SignatureError, TrustError

from .helpers import b64, body_fields, identity, signed_text

FINGERPRINT_RE = re.compile(r"\d{5}( \d{5}){11}")


def card_text() -> str:
    return identity().card().to_text()


# --- round trip -----------------------------------------------------------------------


def test_card_round_trips_through_text() -> None:
    ident = identity()
    signed = ident.card()
    parsed = parse_card(signed.to_text())
    assert parsed == signed
    assert parse_card(signed.to_text().encode()) == signed
    card = parsed.card
    assert card.station_id == "alpha"
    assert card.display_name == "Alpha HQ"
    assert card.signing_key == primitives.signing_public_key(ident.signing_seed)
    assert card.encryption_key == primitives.encryption_public_key(ident.encryption_private)
    assert card.log_key == primitives.signing_public_key(ident.log_seed)
    assert card.cosign_key == primitives.signing_public_key(ident.cosign_seed)
    assert card.tls_cert_der == tls.cert_der(ident.tls_cert_pem)
    assert card.endpoints == ("https://127.0.0.1:8471",)
    assert card.created_at == "2026-01-02T03:04:05Z"


def test_card_text_is_one_json_object_and_a_newline() -> None:
    text = card_text()
    assert text.endswith("}\n")
    assert text.count("\n") == 1
    outer = json.loads(text)
    assert list(outer) == ["hotline_card", "body", "signature"]
    assert outer["hotline_card"] == 1


def test_body_is_canonical_json_and_signature_is_over_exact_body() -> None:
    signed = identity().card()
    fields = json.loads(signed.body)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert signed.body == canonical.encode()
    primitives.verify(
        signed.card.signing_key, signed.signature, b"hotline-card/v1\x00", signed.body
    )


def test_card_is_deterministic_for_one_identity() -> None:
    assert identity().card().to_text() == identity().card().to_text()


def test_non_canonical_but_validly_signed_body_is_accepted_with_its_exact_bytes() -> None:
    ident = identity()
    fields = body_fields(ident)
    spaced = json.dumps(fields, indent=1).encode()  # never what we emit, still signed
    parsed = parse_card(signed_text(None, ident.signing_seed, raw_body=spaced))
    assert parsed.body == spaced
    assert parsed.card == ident.card().card


def test_surrounding_whitespace_is_tolerated() -> None:
    text = card_text()
    assert parse_card("\r\n  " + text.strip() + "\r\n\t") == identity().card()


# --- tampering and garbage ----------------------------------------------------------


def _changed(text: bytes, position: int, value: int) -> bytes:
    return text[:position] + bytes([value]) + text[position + 1 :]


def _assert_refused_or_same(changed: bytes, position: int, original: bytes) -> None:
    """Inside the JSON object every change is refused; at the trailing newline only a
    change to other whitespace may be accepted, and then it is the identical card."""
    try:
        parsed = parse_card(changed)
    except (CardError, SignatureError):
        return
    assert position == len(original) - 1, f"change at {position} accepted"
    assert changed[-1:] in (b" ", b"\t", b"\r", b"\n")
    assert parsed == parse_card(original)


def test_every_single_bit_flip_is_refused() -> None:
    original = card_text().encode()
    for position in range(len(original)):
        for bit in (0x01, 0x20):
            changed = _changed(original, position, original[position] ^ bit)
            _assert_refused_or_same(changed, position, original)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_refused(data: st.DataObject) -> None:
    original = card_text().encode()
    position = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != original[position]))
    _assert_refused_or_same(_changed(original, position, value), position, original)


def test_trailing_newline_replaced_by_non_space_is_refused() -> None:
    original = card_text().encode()
    with pytest.raises(CardError):
        parse_card(original[:-1] + b"x")


@settings(max_examples=300, deadline=None)
@given(garbage=st.one_of(st.binary(max_size=2048), st.text(max_size=2048)))
def test_garbage_never_raises_anything_but_a_hotline_error(garbage: bytes | str) -> None:
    with pytest.raises(HotlineError):
        parse_card(garbage)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_validly_signed_garbage_fields_never_raise_anything_but_a_hotline_error(
    data: st.DataObject,
) -> None:
    """Past the signature check: a key holder signing nonsense still gets a clean refusal."""
    ident = identity()
    fields = body_fields(ident)
    for name in data.draw(st.sets(st.sampled_from(sorted(fields)), min_size=1)):
        if name != "signing_key":
            fields[name] = data.draw(json_values)
    try:
        parse_card(signed_text(fields, ident.signing_seed))
    except HotlineError:
        return
    # hypothesis may redraw an acceptable value (e.g. a valid name); then it parsed


@settings(max_examples=100, deadline=None)
@given(
    outer=st.dictionaries(st.sampled_from(["hotline_card", "body", "signature", "x"]), json_values)
)
def test_garbage_outer_objects_are_refused(outer: dict[str, Any]) -> None:
    with pytest.raises(HotlineError):
        parse_card(json.dumps(outer))


# --- field rules (each case validly signed, so only the rule can refuse it) -----------


def _other_cert(station_id: str) -> str:
    return b64(tls.cert_der(tls.make_self_signed(station_id)[1]))


FIELD_CASES: list[tuple[str, str, Any]] = [
    ("id upper case", "station_id", "Alpha"),
    ("id empty", "station_id", ""),
    ("id too long", "station_id", "a" * 33),
    ("id with newline", "station_id", "alpha\n"),
    ("id leading hyphen", "station_id", "-alpha"),
    ("id not a string", "station_id", 7),
    ("name empty", "display_name", ""),
    ("name too long", "display_name", "x" * 101),
    ("name with bidi override", "display_name", "Alpha \u202eQH"),
    ("name with control char", "display_name", "Alpha\x07"),
    ("name with surrounding space", "display_name", " Alpha"),
    ("encryption key short", "encryption_key", b64(bytes(31))),
    ("log key long", "log_key", b64(bytes(33))),
    ("cosign key not base64", "cosign_key", "not base64!"),
    ("cosign key non-canonical base64", "cosign_key", b64(bytes(32))[:-2] + "B="),
    ("cert garbage", "tls_cert", b64(b"\x30\x03\x02\x01\x01")),
    ("cert of another station", "tls_cert", "OTHER"),
    ("endpoint http", "endpoints", ["http://127.0.0.1:8471"]),
    ("endpoint with user", "endpoints", ["https://u:p@127.0.0.1:8471"]),
    ("endpoint with query", "endpoints", ["https://127.0.0.1:8471/?a=1"]),
    ("endpoint with fragment", "endpoints", ["https://127.0.0.1:8471/#x"]),
    ("endpoint port 0", "endpoints", ["https://127.0.0.1:0"]),
    ("endpoint port too big", "endpoints", ["https://127.0.0.1:70000"]),
    ("endpoint no host", "endpoints", ["https:///x"]),
    ("endpoint with space", "endpoints", ["https://127.0.0.1:8471/a b"]),
    ("endpoint broken ipv6", "endpoints", ["https://[::1:8471"]),
    ("endpoint duplicate", "endpoints", ["https://a.example", "https://a.example"]),
    ("endpoints too many", "endpoints", [f"https://h{i}.example" for i in range(17)]),
    ("endpoints not a list", "endpoints", "https://a.example"),
    ("created_at local time", "created_at", "2026-01-02T03:04:05+01:00"),
    ("created_at impossible", "created_at", "2026-02-30T03:04:05Z"),
    ("version 2", "v", 2),
    ("version true", "v", True),
]


@pytest.mark.parametrize(("name", "field", "value"), FIELD_CASES, ids=[c[0] for c in FIELD_CASES])
def test_field_rules_refuse(name: str, field: str, value: Any) -> None:
    ident = identity()
    fields = body_fields(ident)
    fields[field] = _other_cert("bravo") if value == "OTHER" else value
    with pytest.raises(CardError) as info:
        parse_card(signed_text(fields, ident.signing_seed))
    assert info.value.message
    assert isinstance(info.value, TrustError)


def test_endpoints_may_be_empty_or_have_paths_and_names() -> None:
    ident = identity()
    for endpoints in (
        [],
        ["https://hotline.example.org/peer", "https://[::1]:8471", "https://10.0.0.1"],
    ):
        fields = body_fields(ident)
        fields["endpoints"] = endpoints
        assert parse_card(signed_text(fields, ident.signing_seed)).card.endpoints == tuple(
            endpoints
        )


def test_one_key_for_two_purposes_is_refused() -> None:
    ident = identity()
    fields = body_fields(ident)
    fields["cosign_key"] = fields["log_key"]
    with pytest.raises(CardError, match="reuses"):
        parse_card(signed_text(fields, ident.signing_seed))


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.pop("created_at"),
        lambda f: f.update(extra=1),
    ],
    ids=["missing field", "unknown field"],
)
def test_missing_or_unknown_body_fields_are_refused(change: Any) -> None:
    ident = identity()
    fields = body_fields(ident)
    change(fields)
    with pytest.raises(CardError, match="fields"):
        parse_card(signed_text(fields, ident.signing_seed))


def test_duplicate_keys_are_refused_in_body_and_outer_object() -> None:
    ident = identity()
    body = ident.card().body
    duplicated = body[:-1] + b',"station_id":"mallory"}'
    with pytest.raises(CardError, match="JSON"):
        parse_card(signed_text(None, ident.signing_seed, raw_body=duplicated))
    text = ident.card().to_text().strip()
    with pytest.raises(CardError, match="JSON"):
        parse_card(text[:-1] + ',"hotline_card":1}')


@pytest.mark.parametrize(
    "outer",
    [
        {"hotline_card": 2},
        {"hotline_card": True},
        {"hotline_card": 1.0},
        {"hotline_card": "1"},
    ],
)
def test_outer_version_must_be_integer_one(outer: dict[str, Any]) -> None:
    doc = json.loads(card_text())
    doc.update(outer)
    with pytest.raises(CardError):
        parse_card(json.dumps(doc))


def test_size_limit() -> None:
    doc = json.loads(card_text())
    padded = json.dumps(doc) + " " * MAX_CARD_BYTES
    with pytest.raises(CardError, match="larger"):
        parse_card(padded)


def test_body_signed_by_another_key_is_refused() -> None:
    mine, theirs = identity("alpha"), identity("bravo")
    fields = body_fields(mine)  # claims alpha's signing key, signed by bravo
    with pytest.raises(SignatureError, match="does not verify"):
        parse_card(signed_text(fields, theirs.signing_seed))


def test_signature_from_another_card_is_refused() -> None:
    a, b = identity("alpha").card(), identity("bravo").card()
    doc = json.loads(a.to_text())
    doc["signature"] = b64(b.signature)
    with pytest.raises(SignatureError):
        parse_card(json.dumps(doc))


def test_short_signature_is_refused() -> None:
    doc = json.loads(card_text())
    doc["signature"] = b64(bytes(63))
    with pytest.raises(SignatureError):
        parse_card(json.dumps(doc))


def test_sign_card_refuses_an_invalid_card() -> None:
    ident = identity()
    bad = ident.card().card
    from dataclasses import replace

    from hotline.crypto.card import sign_card

    with pytest.raises(CardError):
        sign_card(replace(bad, station_id="Not Valid"), ident.signing_seed)
    with pytest.raises(SignatureError):  # seed is not the card's signing key
        sign_card(bad, identity("bravo").signing_seed)


def test_check_station_id_raises_the_given_error() -> None:
    from hotline.crypto.card import check_station_id

    with pytest.raises(ConfigError):
        check_station_id("UPPER", ConfigError)
    assert check_station_id("a-1", ConfigError) == "a-1"


# --- fingerprints and safety numbers ------------------------------------------------


def _reference_fingerprint(key: bytes) -> str:
    """The documented algorithm, written again independently with hashlib."""
    h = hashlib.sha256(b"hotline-fingerprint/v1\x00" + key).digest()
    for _ in range(5200):
        h = hashlib.sha256(h + key).digest()
    stream = hashlib.sha256(h + b"\x01").digest() + hashlib.sha256(h + b"\x02").digest()
    return " ".join(
        f"{int.from_bytes(stream[5 * i : 5 * i + 5], 'big') % 100000:05d}" for i in range(12)
    )


def test_fingerprint_regression_vector() -> None:
    # Computed once from the algorithm in fingerprint()'s docstring; must never change.
    assert fingerprint(bytes(range(32))) == (
        "81846 60035 16388 23340 99767 94625 59256 98987 54012 30347 67796 79541"
    )
    assert fingerprint(bytes(32)) == (
        "97416 15054 68870 64386 20416 85596 65795 27080 89165 05359 98439 41588"
    )


@settings(max_examples=20, deadline=None)
@given(key=st.binary(min_size=32, max_size=32))
def test_fingerprint_format_and_algorithm(key: bytes) -> None:
    value = fingerprint(key)
    assert FINGERPRINT_RE.fullmatch(value)
    assert value == _reference_fingerprint(key)


def test_fingerprint_depends_on_signing_key_only() -> None:
    ident = identity()
    signed = ident.card()
    assert signed.fingerprint() == fingerprint(signed.card.signing_key)
    from dataclasses import replace

    moved = replace(ident, endpoints=("https://10.9.8.7:1234",), display_name="Renamed").card()
    assert moved.fingerprint() == signed.fingerprint()
    assert moved.to_text() != signed.to_text()
    assert identity("bravo").card().fingerprint() != signed.fingerprint()


def test_fingerprint_refuses_a_wrong_length_key() -> None:
    with pytest.raises(CardError):
        fingerprint(bytes(31))


def test_safety_number_is_symmetric_and_pair_specific() -> None:
    a, b, c = (identity(s).card() for s in ("alpha", "bravo", "charlie"))
    ab = safety_number(a, b)
    assert ab == safety_number(b, a)
    assert re.fullmatch(r"\d{5}( \d{5}){11}", ab)
    halves = [" ".join(card.fingerprint().split()[:6]) for card in (a, b)]
    assert ab == " ".join(sorted(halves))
    assert len({ab, safety_number(a, c), safety_number(b, c)}) == 3


def test_safety_number_of_a_station_with_itself_is_refused() -> None:
    a = identity().card()
    with pytest.raises(CardError):
        safety_number(a, a)


def test_signed_card_is_immutable() -> None:
    signed: SignedCard = identity().card()
    with pytest.raises(AttributeError):
        signed.body = b""  # type: ignore[misc]
