"""The worked examples of docs/verifier.md (and the envelope of docs/wire.md), built from
fixed keys with hotline's own code, so that the documents cannot drift from the code.

Owns: the example keys (published in the doc; never use them), the example objects (two
station cards, a MESSAGE envelope and its RECEIPT, one ledger entry of every kind, a
checkpoint note with a cosignature, a whole example transcript), their rendering as the
doc's blocks, and rewriting those blocks (``python -m tests.docs_verifier.examples
--write``). ``test_verifier_docs.py`` regenerates them and compares with the docs.

Invariants: everything is deterministic. Ed25519 signatures are; HPKE sealing is not in
``cryptography`` (a fresh ephemeral key per seal), so :func:`hpke_seal_fixed` does RFC
9180 base-mode single-shot sealing with a fixed ephemeral key, and the test opens the
result with hotline's (i.e. ``cryptography``'s) HPKE to prove it is the same scheme.
Must not touch: src/ (it only calls it), anything outside docs/ when writing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hotline.crypto import primitives
from hotline.crypto.card import SignedCard, StationCard, sign_card
from hotline.ledger import checkpoint as cps
from hotline.ledger.cosignature import CosignatureVerifier, Cosigner
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.ledger.merkle import frontier_append, frontier_root, leaf_hash
from hotline.ledger.note import Ed25519Verifier, NoteSigner
from hotline.ledger.transcript import Transcript, TranscriptCosignature
from hotline.ledger.tree import MemoryTree
from hotline.ledger.witness import AddCheckpoint
from hotline.store.projections import action_bytes
from hotline.wire import envelope as wire
from hotline.wire.envelope import Header, Kind, Precedence
from hotline.wire.messages import LinkTestPayload, LinkTestReplyPayload, ReceiptPayload

ROOT = Path(__file__).resolve().parent.parent.parent
VERIFIER_MD = ROOT / "docs" / "verifier.md"
WIRE_MD = ROOT / "docs" / "wire.md"
TRANSCRIPT_JSON = ROOT / "docs" / "examples" / "alpha-transcript.json"

T0 = 1_767_225_600_000_000  #: 2026-01-01T00:00:00Z in microseconds
MESSAGE_ID = uuid.UUID("0b9a3c52-5d1e-4f7a-9c6b-2e8d4f1a7c30")
MESSAGE_TEXT = b'{"type":"text","text":"Confirm intentions.","ack_required":true}'


def key(label: str) -> bytes:
    """An example private key: SHA-256 of ``"hotline example key " + label``, except the
    two keys docs/wire.md published first (alpha's signing seed 00..1f, bravo's X25519
    private key 20..3f)."""
    if label == "alpha signing":
        return bytes(range(32))
    if label == "bravo encryption":
        return bytes(range(32, 64))
    return hashlib.sha256(b"hotline example key " + label.encode()).digest()


# --- RFC 9180 base mode with a fixed ephemeral key (test-only, for reproducibility) -----


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), b"HPKE-v1" + suite_id + label + ikm, "sha256").digest()


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, n: int) -> bytes:
    labeled = n.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
    out, block, i = b"", b"", 1
    while len(out) < n:
        block = hmac.new(prk, block + labeled + bytes((i,)), "sha256").digest()
        out, i = out + block, i + 1
    return out[:n]


def hpke_seal_fixed(ephemeral: bytes, recipient_public: bytes, info: bytes, pt: bytes) -> bytes:
    """DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, base mode,
    single shot, ephemeral key given: ``enc || ciphertext``."""
    sk = x25519.X25519PrivateKey.from_private_bytes(ephemeral)
    enc = sk.public_key().public_bytes_raw()
    dh = sk.exchange(x25519.X25519PublicKey.from_public_bytes(recipient_public))
    kem = b"KEM\x00\x20"
    eae_prk = _labeled_extract(kem, b"", b"eae_prk", dh)
    shared = _labeled_expand(kem, eae_prk, b"shared_secret", enc + recipient_public, 32)
    suite = b"HPKE\x00\x20\x00\x01\x00\x03"
    psk_id_hash = _labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(suite, shared, b"secret", b"")
    k = _labeled_expand(suite, secret, b"key", context, 32)
    nonce = _labeled_expand(suite, secret, b"base_nonce", context, 12)
    return enc + ChaCha20Poly1305(k).encrypt(nonce, pt, b"")


# --- the example objects -----------------------------------------------------------------


def _tls_cert(station: str) -> bytes:
    """A deterministic self-signed Ed25519 certificate naming ``station`` (DER)."""
    sk = ed25519.Ed25519PrivateKey.from_private_bytes(key(f"{station} tls"))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station)])
    ski = x509.SubjectKeyIdentifier.from_public_key(sk.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(sk.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 12, 31, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2035, 12, 31, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(station)]), critical=False)
        .add_extension(ski, critical=False)
        .sign(sk, None)
    )
    return cert.public_bytes(serialization.Encoding.DER)


def card_of(station: str) -> SignedCard:
    pub = primitives.signing_public_key
    card = StationCard(
        station_id=station,
        display_name=f"{station.capitalize()} HQ",
        signing_key=pub(key(f"{station} signing")),
        encryption_key=primitives.encryption_public_key(key(f"{station} encryption")),
        log_key=pub(key(f"{station} log")),
        cosign_key=pub(key(f"{station} cosign")),
        tls_cert_der=_tls_cert(station),
        endpoints=(f"https://{station}.example:8471",),
        created_at="2026-01-01T00:00:00Z",
    )
    return sign_card(card, key(f"{station} signing"))


def message_envelope() -> wire.Envelope:
    """alpha's FLASH message to bravo, sequence 1 (the example of docs/wire.md too)."""
    bravo = card_of("bravo").card
    h = Header(Kind.MESSAGE, Precedence.FLASH, wire.DEFAULT_SUITE, "alpha", "bravo",
               "working", 1, MESSAGE_ID, T0)  # fmt: skip
    header = wire.encode_header(h)
    payload = hpke_seal_fixed(
        key("alpha ephemeral 1"), bravo.encryption_key, wire.PAYLOAD_INFO + header, MESSAGE_TEXT
    )
    return _signed(h, header, payload, "alpha")


def _signed(h: Header, header: bytes, payload: bytes, station: str) -> wire.Envelope:
    signed = header + len(payload).to_bytes(4, "big") + payload
    raw = signed + primitives.Signer(key(f"{station} signing")).sign(wire.SIGN_CONTEXT, signed)
    return wire.Envelope(h, header, payload, raw)


STORED_AT = T0 + 250_000  #: bravo stored the message 0.25 s after it was sent


def receipt_envelope() -> wire.Envelope:
    """bravo's receipt for the message, stored at leaf 1 of bravo's log (size 2)."""
    msg = message_envelope()
    body = ReceiptPayload(
        envelope_hash=msg.hash.hex(), sender="alpha", sequence=1, message_id=MESSAGE_ID,
        stored_at_us=STORED_AT, leaf_index=1, tree_size=2,
    ).to_bytes()  # fmt: skip
    h = Header(Kind.RECEIPT, Precedence.FLASH, primitives.SUITE_NONE, "bravo", "alpha",
               "working", 0, MESSAGE_ID, STORED_AT)  # fmt: skip
    return _signed(h, wire.encode_header(h), body, "bravo")


COSIGNED_AT = 1_767_225_605  #: POSIX seconds of bravo's cosignatures
LINK_T1 = (COSIGNED_AT + 60) * 1_000_000 - 4_000  #: alpha's link test, just before the second
LINK_ID = uuid.UUID("5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f")
NONCE = "00112233445566778899aabbccddeeff"


def link_test_envelope(ex: Examples) -> wire.Envelope:
    """alpha's link test to bravo, offering its checkpoint at size 6 for witnessing, with
    the consistency proof from size 5 (the size bravo cosigned before)."""
    tree = MemoryTree()
    tree.append(leaf_hash(e.encode()) for e in ex.ledger)
    request = AddCheckpoint(5, tuple(tree.consistency_proof(5, 6)), ex.notes[1]).format()
    body = LinkTestPayload(nonce=NONCE, t1_us=LINK_T1, last_sequence=1,
                           witness=request.decode()).to_bytes()  # fmt: skip
    h = Header(Kind.LINK_TEST, Precedence.ROUTINE, wire.DEFAULT_SUITE, "alpha", "bravo",
               "link-test", 0, LINK_ID, LINK_T1)  # fmt: skip
    header = wire.encode_header(h)
    bravo = ex.cards["bravo"].card.encryption_key
    sealed = hpke_seal_fixed(key("alpha ephemeral 2"), bravo, wire.PAYLOAD_INFO + header, body)
    return _signed(h, header, sealed, "alpha")


def link_reply_envelope(ex: Examples) -> wire.Envelope:
    """bravo's reply: the cosignature of alpha's checkpoint at size 6."""
    body = LinkTestReplyPayload(nonce=NONCE, t1_us=LINK_T1, t2_us=LINK_T1 + 5_000,
                                t3_us=LINK_T1 + 6_000,
                                cosignature=ex.cosignature_lines[1]).to_bytes()  # fmt: skip
    h = Header(Kind.LINK_TEST_REPLY, Precedence.ROUTINE, wire.DEFAULT_SUITE, "bravo",
               "alpha", "link-test", 0, LINK_ID, LINK_T1 + 6_000)  # fmt: skip
    header = wire.encode_header(h)
    alpha = ex.cards["alpha"].card.encryption_key
    sealed = hpke_seal_fixed(key("bravo ephemeral 1"), alpha, wire.PAYLOAD_INFO + header, body)
    return _signed(h, header, sealed, "bravo")


def plaintext(env: wire.Envelope) -> bytes:
    """Open an example's sealed payload with the recipient's (published) example key."""
    opener = primitives.Opener(key(f"{env.header.recipient} encryption"))
    return env.open(opener)


@dataclass
class Examples:
    """Every example object, built once."""

    cards: dict[str, SignedCard] = field(default_factory=dict)
    message: wire.Envelope = field(default_factory=lambda: message_envelope())
    receipt: wire.Envelope = field(default_factory=lambda: receipt_envelope())
    entries: dict[str, Entry] = field(default_factory=dict)  #: by example name
    ledger: list[Entry] = field(default_factory=list)  #: alpha's example ledger
    notes: list[str] = field(default_factory=list)  #: alpha's signed checkpoints
    cosignature_lines: list[str] = field(default_factory=list)  #: bravo's, one per note


def build() -> Examples:
    ex = Examples()
    ex.cards = {s: card_of(s) for s in ("alpha", "bravo")}
    msg, rcpt = ex.message, ex.receipt
    signer = NoteSigner("hotline/alpha/log", key("alpha log"))
    cosigner = Cosigner("hotline/bravo/witness", key("bravo cosign"))
    peer_add = {
        "action": "peer_add", "station_id": "bravo", "card": ex.cards["bravo"].to_text(),
        "safety_number": _safety(ex), "operator": "duty officer",
    }  # fmt: skip
    send = {
        "action": "send", "message_id": str(MESSAGE_ID), "operator": "duty officer",
        "payload": json.loads(MESSAGE_TEXT),
    }  # fmt: skip
    link = {
        "test": "link", "peer": "bravo", "ok": True, "rtt_ms": 12.5, "skew_ms": 0.25,
        "state": "UP", "missing": [], "checkpoint_size": 5, "cosigned": True,
    }  # fmt: skip
    e = ex.entries
    e["peer_add"] = Entry(EntryKind.OPERATOR_ACTION, "bravo", 0, ZERO_HASH, T0 - 60_000_000,
                          action_bytes(peer_add))  # fmt: skip
    e["operator_action"] = Entry(EntryKind.OPERATOR_ACTION, "bravo", 1, ZERO_HASH, T0,
                                 action_bytes(send))  # fmt: skip
    e["envelope_out"] = Entry(EntryKind.ENVELOPE_OUT, "bravo", 1, msg.hash, T0, msg.raw)
    e["receipt_in"] = Entry(EntryKind.RECEIPT_IN, "bravo", 1, msg.hash, T0 + 300_000, rcpt.raw)
    e["link_test"] = Entry(EntryKind.LINK_TEST, "bravo", 0, ZERO_HASH, T0 + 5_000_000,
                           action_bytes(link))  # fmt: skip
    ex.ledger = [e[k] for k in ("peer_add", "operator_action", "envelope_out", "receipt_in",
                                "link_test")]  # fmt: skip
    first = cps.Checkpoint("hotline/alpha/log", 5, _root(ex.ledger))
    ex.notes.append(cps.sign_checkpoint(first, signer))
    ex.cosignature_lines.append(cosigner.cosign(first.format(), COSIGNED_AT).line())
    witness = {
        "witness": "cosigned_by_peer", "peer": "bravo", "size": 5, "root": first.root.hex(),
        "line": ex.cosignature_lines[0],
    }  # fmt: skip
    e["witness"] = Entry(EntryKind.WITNESS, "bravo", 0, ZERO_HASH, T0 + 5_100_000,
                         action_bytes(witness))  # fmt: skip
    ex.ledger.append(e["witness"])
    second = cps.Checkpoint("hotline/alpha/log", 6, _root(ex.ledger))
    ex.notes.append(cps.sign_checkpoint(second, signer))
    ex.cosignature_lines.append(cosigner.cosign(second.format(), COSIGNED_AT + 60).line())
    # bravo's own entry for the envelope it received (leaf 1 of bravo's log)
    e["envelope_in"] = Entry(EntryKind.ENVELOPE_IN, "alpha", 1, msg.hash, STORED_AT, msg.raw)
    return ex


def _safety(ex: Examples) -> str:
    from hotline.crypto.card import safety_number

    return safety_number(ex.cards["alpha"], ex.cards["bravo"])


def _root(entries: list[Entry]) -> bytes:
    frontier: list[bytes] = []
    for i, entry in enumerate(entries):
        frontier_append(i, frontier, leaf_hash(entry.encode()))
    return frontier_root(frontier)


def transcript(ex: Examples) -> str:
    """alpha's example transcript: its ledger, both checkpoints, bravo's cosignatures."""
    alpha = ex.cards["alpha"]
    bravo_cosigner = CosignatureVerifier("hotline/bravo/witness", ex.cards["bravo"].card.cosign_key)
    t = Transcript(
        station="alpha",
        card=alpha.to_text().encode(),
        log_key=Ed25519Verifier("hotline/alpha/log", alpha.card.log_key).vkey,
        entries=tuple(x.encode() for x in ex.ledger),
        checkpoints=tuple(ex.notes),
        cosignatures=tuple(
            TranscriptCosignature(i, bravo_cosigner.vkey, line)
            for i, line in enumerate(ex.cosignature_lines)
        ),
    )
    return t.to_json()


# --- rendering -----------------------------------------------------------------------


def hexdump(raw: bytes) -> str:
    return "".join(raw[i : i + 32].hex() + "\n" for i in range(0, len(raw), 32))


def _us(t: int) -> str:
    when = dt.datetime.fromtimestamp(t / 1_000_000, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rows(rows: list[tuple[str, str]]) -> str:
    """Aligned ``hex  meaning`` lines; a long hex field is shortened with an ellipsis."""
    cut = [(h if len(h) <= 34 else h[:16] + "…" + h[-8:], what) for h, what in rows]
    width = max(len(h) for h, _ in cut)
    return "".join(f"{h:<{width}}  {what}".rstrip() + "\n" for h, what in cut)


def entry_fields(entry: Entry) -> str:
    raw = entry.encode()
    peer = entry.peer.encode()
    data = entry.data
    if entry.kind in (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN, EntryKind.RECEIPT_IN):
        shown = f"data: the envelope ({len(data)} bytes)"
    else:
        shown = "data: UTF-8 JSON, shown below"
    rows = [
        (f"{raw[0]:02x}", "version 1"),
        (f"{raw[1]:02x}", f"kind {int(entry.kind)} {entry.kind.name}"),
        (f"{len(peer):02x} {peer.hex()}".rstrip(), f"peer {json.dumps(entry.peer)}"),
        (entry.peer_seq.to_bytes(8, "big").hex(), f"peer_seq {entry.peer_seq}"),
        (entry.envelope_hash.hex(), "envelope_hash"),
        (entry.recorded_at_us.to_bytes(8, "big", signed=True).hex(),
         f"recorded_at {entry.recorded_at_us} µs = {_us(entry.recorded_at_us)}"),
        (len(data).to_bytes(4, "big").hex(), f"len(data) {len(data)}"),
        (data[:8].hex() + "…", shown),
    ]  # fmt: skip
    text = _rows(rows)
    if entry.kind not in (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN, EntryKind.RECEIPT_IN):
        text += "\n" + data.decode() + "\n"
    return text


def envelope_fields(env: wire.Envelope) -> str:
    h = env.header
    raw = env.raw
    off = 14
    rows = [
        (raw[0:4].hex(), 'magic "HTLN"'),
        (f"{raw[4]:02x}", "version 1"),
        (f"{raw[5]:02x}", f"kind {int(h.kind)} {h.kind.name}"),
        (f"{raw[6]:02x}", f"precedence {int(h.precedence)} {h.precedence.name}"),
        (f"{raw[7]:02x}", "flags 0"),
        (f"{raw[8:10].hex()} {raw[10:12].hex()} {raw[12:14].hex()}",
         "HPKE suite " + ("X25519 / HKDF-SHA256 / ChaCha20-Poly1305" if h.kind.sealed
                          else "0/0/0: not sealed")),
    ]  # fmt: skip
    for name in ("sender", "recipient", "channel"):
        n = raw[off]
        value = json.dumps(getattr(h, name))
        rows.append((f"{n:02x} {raw[off + 1 : off + 1 + n].hex()}", f"{name} {value}"))
        off += 1 + n
    rows += [
        (raw[off : off + 8].hex(), f"sequence {h.sequence}"),
        (raw[off + 8 : off + 24].hex(), f"message_id {h.message_id}"),
        (raw[off + 24 : off + 32].hex(), f"sent_at {h.sent_at_us} µs = {_us(h.sent_at_us)}"),
        (raw[off + 32 : off + 36].hex(), f"payload length {len(env.payload)}"),
        (env.payload[:8].hex() + "…", "payload: " + (
            f"HPKE enc (32) || ciphertext and tag ({len(env.payload) - 32})" if h.kind.sealed
            else "plain UTF-8 JSON, shown below")),
        (raw[-64:-56].hex() + "…", "signature (64 bytes)"),
    ]  # fmt: skip
    text = _rows(rows)
    if not h.kind.sealed:
        text += "\n" + env.payload.decode() + "\n"
    return text


def blocks(ex: Examples) -> dict[str, str]:
    """Every generated block of docs/verifier.md, by name."""
    a, b = ex.cards["alpha"], ex.cards["bravo"]
    keys = []
    for s, c in (("alpha", a.card), ("bravo", b.card)):
        keys += [
            f"{s} card signing key   {c.signing_key.hex()}",
            f"{s} encryption key     {c.encryption_key.hex()}",
            f"{s} log vkey           {Ed25519Verifier(f'hotline/{s}/log', c.log_key).vkey}",
            f"{s} cosigner vkey      "
            f"{CosignatureVerifier(f'hotline/{s}/witness', c.cosign_key).vkey}",
        ]
    out = {
        "keys": "\n".join(keys) + "\n",
        "card": a.to_text(),
        "card-body": a.body.decode() + "\n",
        "card-signature": a.signature.hex() + "\n",
        "envelope": hexdump(ex.message.raw),
        "envelope-fields": envelope_fields(ex.message),
        "receipt": hexdump(ex.receipt.raw),
        "receipt-fields": envelope_fields(ex.receipt),
    }
    for name, env in (("link-test", link_test_envelope(ex)),
                      ("link-test-reply", link_reply_envelope(ex))):  # fmt: skip
        out[name] = hexdump(env.raw)
        out[name + "-fields"] = envelope_fields(env)
        out[name + "-plaintext"] = plaintext(env).decode() + "\n"
    for name in ("envelope_out", "envelope_in", "receipt_in", "operator_action", "link_test",
                 "witness"):  # fmt: skip
        slug = "entry-" + name.replace("_", "-")
        out[slug] = hexdump(ex.entries[name].encode())
        out[slug + "-fields"] = entry_fields(ex.entries[name])
    out["checkpoint"] = ex.notes[1] + ex.cosignature_lines[1]
    body = cps.parse_checkpoint(ex.notes[1].split("\n\n")[0] + "\n").format()
    out["cosigned-message"] = "cosignature/v1\ntime " + str(COSIGNED_AT + 60) + "\n" + body
    return out


# --- the documents ------------------------------------------------------------------------

BLOCK = re.compile(r"(<!-- example: (?P<name>[a-z0-9-]+) -->\n```[a-z]*\n)(?P<body>.*?)(```)", re.S)
WIRE_BLOCK = re.compile(r"(```hex\n)(?P<body>.*?)(```)", re.S)


def doc_blocks(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}


def render_verifier_md(text: str, ex: Examples) -> str:
    generated = blocks(ex)
    return BLOCK.sub(lambda m: m.group(1) + generated[m.group("name")] + m.group(4), text)


def render_wire_md(text: str, ex: Examples) -> str:
    dump = hexdump(ex.message.raw)
    return WIRE_BLOCK.sub(lambda m: m.group(1) + dump + m.group(3), text, count=1)


def main(argv: list[str]) -> int:
    ex = build()
    if argv[1:] == ["--write"]:
        VERIFIER_MD.write_text(render_verifier_md(VERIFIER_MD.read_text(), ex))
        WIRE_MD.write_text(render_wire_md(WIRE_MD.read_text(), ex))
        TRANSCRIPT_JSON.parent.mkdir(exist_ok=True)
        TRANSCRIPT_JSON.write_text(transcript(ex))
        return 0
    for name, body in blocks(ex).items():
        sys.stdout.write(f"--- {name}\n{body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
