"""Checkpoint bodies and cosignature/v1: vectors, round trips, strict parsing, garbage."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import NoteError, SignatureError
from hotline.ledger import checkpoint as c
from hotline.ledger import cosignature as co
from hotline.ledger import merkle
from hotline.ledger import note as n

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
V = json.loads((VECTORS_DIR / "signed-note" / "signed_note_vectors.json").read_text())
LOG = n.NoteSigner("example.org/log", b"L" * 32)
WIT = co.Cosigner("example.org/witness", b"W" * 32)


def test_go_sum_tree_note_body_golden() -> None:
    g = V["golang_sumdb_note"]["gosum_tree_note_body_golden"]
    cp = c.Checkpoint("go.sum database tree", g["N"], merkle.leaf_hash(b"hello world"))
    assert cp.format() == g["body"]
    assert c.parse_checkpoint(g["body"]) == cp


def test_c2sp_checkpoint_example_parses() -> None:
    parsed = n.parse_note(V["c2sp_checkpoint_example_no_key_published"])
    cp = c.parse_checkpoint(parsed.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.format() == parsed.text


def test_cosigned_message_matches_the_spec_example() -> None:
    body = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    msg = co.cosigned_message(body.encode(), 1679315147)
    assert msg.decode() == V["c2sp_cosignature_v1_signed_message_example"]


def test_cosigner_key_id_uses_type_0x04() -> None:
    v = WIT.verifier
    assert v.key_id == n.key_id(v.name, 0x04, v.public_key)
    assert v.key_id != n.key_id(v.name, 0x01, v.public_key)
    assert co.CosignatureVerifier.from_vkey(v.vkey) == v
    with pytest.raises(NoteError):
        co.CosignatureVerifier.from_vkey(LOG.verifier.vkey)  # a 0x01 key is not a cosigner
    with pytest.raises(NoteError):
        n.Ed25519Verifier.from_vkey(v.vkey)  # and a cosigner key does not sign notes


def test_signed_checkpoint_with_cosignature_opens_with_both_keys() -> None:
    cp = c.Checkpoint("example.org/log", 5, merkle.root_of([merkle.leaf_hash(b"x")] * 5))
    signed = c.sign_checkpoint(cp, LOG)
    cosig = WIT.cosign(cp.format(), 1_700_000_000)
    assert cosig.line().startswith("— example.org/witness ")
    both = n.add_signature_lines(signed, [cosig.line()])
    opened = c.open_checkpoint(both, [LOG.verifier])
    assert opened.checkpoint == cp
    assert len(opened.opened.unverified) == 1  # the cosignature, ignored by the log key
    note = n.open_note(both, [LOG.verifier, WIT.verifier])
    assert len(note.verified) == 2
    got = WIT.verifier.verify_line(cp.format(), cosig.line())
    assert got == cosig
    assert got.timestamp == 1_700_000_000


def test_cosignature_refusals() -> None:
    cp = c.Checkpoint("example.org/log", 0, merkle.EMPTY_ROOT)
    line = WIT.cosign(cp.format(), 5).line()
    other = co.Cosigner("example.org/other", b"O" * 32)
    with pytest.raises(SignatureError):
        other.verifier.verify_line(cp.format(), line)  # not this cosigner's line
    with pytest.raises(SignatureError):
        WIT.verifier.verify_line(cp.format().replace("0\n", "1\n", 1), line)  # other body
    with pytest.raises(SignatureError):
        WIT.verifier.verify_line(cp.format(), "garbage")
    with pytest.raises(SignatureError):
        WIT.verifier.verify_line(cp.format(), line + line)
    with pytest.raises(SignatureError):
        WIT.verifier.verify(cp.format().encode(), bytes(71))
    with pytest.raises(SignatureError):
        WIT.verifier.verify(cp.format().encode(), b"\xff" * 8 + bytes(64))  # ts > 2**63-1
    with pytest.raises(SignatureError):
        co.cosigned_message(b"", -1)
    # timestamp is signed: changing it breaks the signature
    raw = n.parse_note(cp.format() + "\n" + line).signatures[0].signature
    tampered = (int.from_bytes(raw[:8], "big") + 1).to_bytes(8, "big") + raw[8:]
    with pytest.raises(SignatureError):
        WIT.verifier.verify(cp.format().encode(), tampered)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", None),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\next\n", None),
        ("o\n01\n" + base64.b64encode(bytes(32)).decode() + "\n", "bad_checkpoint"),
        ("o\n+1\n" + base64.b64encode(bytes(32)).decode() + "\n", "bad_checkpoint"),
        ("o\n1_0\n" + base64.b64encode(bytes(32)).decode() + "\n", "bad_checkpoint"),
        ("o\n١\n" + base64.b64encode(bytes(32)).decode() + "\n", "bad_checkpoint"),
        (
            "o\n18446744073709551616\n" + base64.b64encode(bytes(32)).decode() + "\n",
            "bad_checkpoint",
        ),
        ("o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n", "bad_checkpoint"),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode(), "bad_checkpoint"),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n", "bad_checkpoint"),
        ("o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\next\n", "bad_checkpoint"),
        ("\n1\n" + base64.b64encode(bytes(32)).decode() + "\n", "bad_checkpoint"),
        ("o\n1\n", "bad_checkpoint"),
        ("o\n0\n" + base64.b64encode(bytes(32)).decode() + "\n", "bad_empty_root"),
        ("o\n0\n" + base64.b64encode(merkle.EMPTY_ROOT).decode() + "\n", None),
    ],
)
def test_checkpoint_parsing_is_strict(text: str, code: str | None) -> None:
    if code is None:
        assert c.parse_checkpoint(text).format() == text
    else:
        with pytest.raises(NoteError) as e:
            c.parse_checkpoint(text)
        assert e.value.code == code


def test_open_checkpoint_checks_origin_and_key() -> None:
    cp = c.Checkpoint("example.org/other-log", 0, merkle.EMPTY_ROOT)
    signed = c.sign_checkpoint(cp, LOG)
    with pytest.raises(NoteError) as e:
        c.open_checkpoint(signed, [LOG.verifier])
    assert e.value.code == "bad_origin"
    opened = c.open_checkpoint(signed, [LOG.verifier], origin="example.org/other-log")
    assert opened.checkpoint == cp
    with pytest.raises(NoteError):
        c.open_checkpoint(signed, [])
    with pytest.raises(NoteError):
        c.open_checkpoint(signed, [n.NoteSigner("example.org/log", b"X" * 32).verifier])


def test_checkpoint_constructor_refuses_bad_values() -> None:
    for args in [("", 1, bytes(32)), ("a\nb", 1, bytes(32)), ("o", -1, bytes(32)), ("o", 1, b"")]:
        with pytest.raises(NoteError):
            c.Checkpoint(*args)
    with pytest.raises(NoteError):
        c.Checkpoint("o", 1, bytes(32), ("",))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(["o", "0", "1", "01", "\n", "AAAA", "=", "é", "+"]), max_size=30
        ).map("".join),
    )
)
def test_garbage_checkpoint_text_is_refused_with_note_error(text: str) -> None:
    try:
        cp = c.parse_checkpoint(text)
    except NoteError:
        return
    assert cp.format() == text  # whatever parses round-trips exactly


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_signed_checkpoints_are_refused_with_note_error(raw: bytes) -> None:
    with pytest.raises(NoteError):
        c.open_checkpoint(raw, [LOG.verifier])
