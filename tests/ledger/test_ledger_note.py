"""Signed notes: the golang sumdb/note and C2SP vectors byte for byte, keys, garbage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import NoteError
from hotline.ledger import note as n

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
V = json.loads((VECTORS_DIR / "signed-note" / "signed_note_vectors.json").read_text())
G = V["golang_sumdb_note"]
PETER = n.Ed25519Verifier.from_vkey(G["peter_vkey"])
ENOCH = n.Ed25519Verifier.from_vkey(G["enoch_vkey"])
BY_NAME = {"peter": PETER, "enoch": ENOCH}


def test_signer_key_signs_the_expected_note_byte_for_byte() -> None:
    signer = n.NoteSigner.from_skey(G["signer_key"])
    assert signer.verifier.vkey == G["peter_vkey"]
    assert signer.signature_line(G["text"].encode()) == G["peter_signature_line"]
    assert n.sign_note(G["text"], [signer]) == G["expected_signed_note_by_peter"]
    seed = n.b64decode_strict(G["signer_key"].split("+", 4)[4], "seed")[1:]
    assert n.format_skey(signer.name, seed) == G["signer_key"]


def test_vkeys_round_trip() -> None:
    for vkey in (G["peter_vkey"], G["enoch_vkey"], V["c2sp_signed_note_example"]["vkey"]):
        assert n.Ed25519Verifier.from_vkey(vkey).vkey == vkey


def _want_ok(want: str) -> bool:
    return want.startswith("ok")


@pytest.mark.parametrize("case", G["open_cases"], ids=lambda c: c["want"][:40])
def test_open_cases(case: dict[str, object]) -> None:
    verifiers = [BY_NAME[str(v)] for v in case["verifiers"]]  # type: ignore[attr-defined]
    want = str(case["want"])
    if _want_ok(want):
        opened = n.open_note(str(case["msg"]), verifiers)
        assert opened.text == G["text"]
        assert {s.name for s in opened.verified} == {v.name for v in verifiers}
        if "UnverifiedSigs=[enoch]" in want:
            assert [s.name for s in opened.unverified] == ["EnochRoot"]
    else:
        with pytest.raises(NoteError):
            n.open_note(str(case["msg"]), verifiers)


def test_error_codes_say_why() -> None:
    cases = G["open_cases"]
    with pytest.raises(NoteError) as e:
        n.open_note(cases[2]["msg"], [])
    assert e.value.code == "unverified_note"
    with pytest.raises(NoteError) as e:
        n.open_note(cases[3]["msg"], [PETER])
    assert e.value.code == "bad_note_signature"
    with pytest.raises(NoteError) as e:
        n.open_note(cases[4]["msg"], [PETER])
    assert e.value.code == "bad_note"


@pytest.mark.parametrize("msg", G["malformed_notes"], ids=range(len(G["malformed_notes"])))
def test_malformed_notes(msg: str) -> None:
    with pytest.raises(NoteError):
        n.open_note(msg, [PETER])


def test_invalid_utf8_is_malformed() -> None:
    msg = b"\xff" + G["text"].encode() + b"\n" + G["peter_signature_line"].encode()
    with pytest.raises(NoteError):
        n.open_note(msg, [PETER])


@pytest.mark.parametrize("vkey", G["bad_vkeys"])
def test_bad_vkeys(vkey: str) -> None:
    with pytest.raises(NoteError):
        n.Ed25519Verifier.from_vkey(vkey)


def _mutations(s: str) -> list[str]:
    out = {s[i:j] for i in range(len(s)) for j in range(i, len(s) + 1)} - {s}
    out |= {s[:i] + chr(ord(s[i]) + 1) + s[i + 1 :] for i in range(len(s))}
    return sorted(out)


def test_every_substring_and_increment_of_a_good_vkey_is_refused() -> None:
    for bad in _mutations(G["peter_vkey"]):
        with pytest.raises(NoteError):
            n.Ed25519Verifier.from_vkey(bad)


def test_c2sp_example() -> None:
    ex = V["c2sp_signed_note_example"]
    v = n.Ed25519Verifier.from_vkey(ex["vkey"])
    assert n.open_note(ex["note"], [v]).text == "This is an example message.\n"


def test_unknown_key_sharing_name_or_id_is_ignored_not_verified() -> None:
    msg = G["expected_signed_note_by_peter"]
    impostor = n.Ed25519Verifier("PeterNeumann", bytes(range(32)))  # same name, other id
    with pytest.raises(NoteError) as e:
        n.open_note(msg, [impostor])
    assert e.value.code == "unverified_note"
    # a second signature line from the same known key that does not verify rejects the note
    bad = n.parse_note(G["open_cases"][3]["msg"]).signatures[0].line()
    with pytest.raises(NoteError):
        n.open_note(msg + bad, [PETER])


def test_sixteen_signatures_are_accepted_and_limit_is_enforced() -> None:
    signers = [n.NoteSigner(f"k{i}.example", bytes([i]) * 32) for i in range(16)]
    msg = n.sign_note("hello\n", signers)
    assert len(n.open_note(msg, [s.verifier for s in signers]).verified) == 16
    with pytest.raises(NoteError):
        n.open_note(msg, [signers[0].verifier], max_signatures=15)


def test_add_signature_lines_appends_once() -> None:
    a, b = n.NoteSigner("a.example", b"a" * 32), n.NoteSigner("b.example", b"b" * 32)
    msg = n.sign_note("hi\n", [a])
    line = b.signature_line(b"hi\n")
    both = n.add_signature_lines(msg, [line, line])
    assert both == msg + line
    assert len(n.open_note(both, [a.verifier, b.verifier]).verified) == 2
    with pytest.raises(NoteError):
        n.add_signature_lines(msg, ["not a signature"])


@pytest.mark.parametrize(
    ("name", "seed"), [("", b"x" * 32), ("a b", b"x" * 32), ("a+b", b"x" * 32), ("a", b"x")]
)
def test_bad_signer_inputs(name: str, seed: bytes) -> None:
    with pytest.raises(NoteError):
        n.NoteSigner(name, seed)


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEX+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
        "PRIVATE+KEY+PeterNeumann+C74F20A3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    ],
)
def test_bad_signer_keys(skey: str) -> None:
    with pytest.raises(NoteError):
        n.NoteSigner.from_skey(skey)


def test_sign_note_refuses_bad_text() -> None:
    s = n.NoteSigner("a.example", b"a" * 32)
    for text in ("no newline", "ctrl\x01\n", "\ud800\n"):
        with pytest.raises(NoteError):
            n.sign_note(text, [s])
    with pytest.raises(NoteError):
        n.sign_note("ok\n", [])


note_alphabet = st.sampled_from([*list("ab \n—+=/\x01\x7fé"), "— Peter", "\n\n", "x08go/=="])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.lists(note_alphabet, max_size=60).map("".join)))
def test_garbage_is_refused_with_note_error(msg: bytes | str) -> None:
    with pytest.raises(NoteError):
        n.open_note(msg, [PETER, ENOCH])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_garbage_vkeys_and_skeys_are_refused_with_note_error(text: str) -> None:
    with pytest.raises(NoteError):
        n.Ed25519Verifier.from_vkey(text)
    with pytest.raises(NoteError):
        n.NoteSigner.from_skey("PRIVATE+KEY+" + text)
