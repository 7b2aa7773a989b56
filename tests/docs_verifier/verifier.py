"""An independent transcript verifier, written from docs/verifier.md, docs/wire.md and
docs/transcript.md only.

Owns: decoding station cards, envelopes, ledger entries, signed checkpoint notes and
cosignature lines as those documents describe them, and :func:`verify_transcript`, which
walks the document's "Verification, step by step". It exists to prove that the documents
are enough: it imports nothing from hotline (``hashlib``, ``json``, ``base64``,
``struct`` and ``cryptography``'s Ed25519 public key only), and the tests run it on the
documented examples, on transcripts of a real exchange and on tampered copies.

Invariants: every check raises :class:`VerifyError` (``where``, ``code``); nothing
returns a bool to be forgotten. Transcript fields it does not need are ignored, so that
the format can grow. Must not touch: hotline's code (no import of it), files other than
the one it is given.

Usage: ``python tests/docs_verifier/verifier.py TRANSCRIPT.json [--accept-unattested]``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "hotline-transcript/v1"
CARD_CONTEXT = b"hotline-card/v1\x00"
ENVELOPE_CONTEXT = b"hotline-envelope/v1\x00"
COSIGNATURE_HEADER = b"cosignature/v1\ntime "
TYPE_ED25519 = 0x01
TYPE_COSIGNATURE = 0x04
EMPTY_ROOT = hashlib.sha256(b"").digest()
STATION_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}", re.ASCII)
DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
CARD_KEYS = {"v", "station_id", "display_name", "signing_key", "encryption_key", "log_key",
             "cosign_key", "tls_cert", "endpoints", "created_at"}  # fmt: skip

# envelope kinds and ledger entry kinds (docs/wire.md, docs/verifier.md)
MESSAGE, ACK, RECEIPT, LINK_TEST, LINK_TEST_REPLY = 1, 2, 3, 4, 5
SEALED_SUITE, NO_SUITE = (0x0020, 0x0001, 0x0003), (0, 0, 0)
ENVELOPE_OUT, ENVELOPE_IN, RECEIPT_IN, OPERATOR_ACTION, LINK_TEST_ENTRY, WITNESS = range(1, 7)


class VerifyError(Exception):
    def __init__(self, where: str, code: str, message: str) -> None:
        super().__init__(f"{where}: {code}: {message}")
        self.where, self.code, self.message = where, code, message


# --- primitives ---------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def b64decode(text: object, where: str, *, canonical: bool = False) -> bytes:
    if not isinstance(text, str):
        raise VerifyError(where, "bad_base64", "not a string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise VerifyError(where, "bad_base64", "not base64") from None
    if canonical and base64.b64encode(raw).decode("ascii") != text:
        raise VerifyError(where, "bad_base64", "not canonical base64")
    return raw


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes, where: str) -> None:
    if len(public_key) != 32 or len(signature) != 64:
        raise VerifyError(where, "bad_signature", "key or signature has the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise VerifyError(where, "bad_signature", "signature does not verify") from None


# --- names and keys -----------------------------------------------------------------


def key_id(name: str, key_type: int, public_key: bytes) -> int:
    digest = sha256(name.encode() + b"\n" + bytes((key_type,)) + public_key)
    return int.from_bytes(digest[:4], "big")


def vkey(name: str, key_type: int, public_key: bytes) -> str:
    encoded = base64.b64encode(bytes((key_type,)) + public_key).decode()
    return f"{name}+{key_id(name, key_type, public_key):08x}+{encoded}"


def parse_vkey(text: str, key_type: int, where: str) -> tuple[str, int, bytes]:
    """(name, key id, public key) of a verifier key of ``key_type``; key id checked."""
    parts = text.split("+", 2)
    if len(parts) != 3 or not parts[0] or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise VerifyError(where, "bad_key", "not name+keyid+key")
    raw = b64decode(parts[2], where, canonical=True)
    if len(raw) != 33 or raw[0] != key_type:
        raise VerifyError(where, "bad_key", f"not a 32-byte key of type 0x{key_type:02x}")
    if key_id(parts[0], key_type, raw[1:]) != int(parts[1], 16):
        raise VerifyError(where, "bad_key", "key id does not match the key")
    return parts[0], int(parts[1], 16), raw[1:]


def log_origin(station: str) -> str:
    return f"hotline/{station}/log"


def cosigner_name(station: str) -> str:
    return f"hotline/{station}/witness"


# --- station cards ------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    station_id: str
    signing_key: bytes
    encryption_key: bytes
    log_key: bytes
    cosign_key: bytes
    body: bytes  #: the exact signed bytes

    @property
    def log_vkey(self) -> str:
        return vkey(log_origin(self.station_id), TYPE_ED25519, self.log_key)

    @property
    def cosigner_vkey(self) -> str:
        return vkey(cosigner_name(self.station_id), TYPE_COSIGNATURE, self.cosign_key)


def parse_card(text: bytes | str, where: str = "card") -> Card:
    raw = text.encode() if isinstance(text, str) else text
    try:
        outer = json.loads(raw.strip(b" \t\r\n").decode(), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError):
        raise VerifyError(where, "bad_card", "not JSON") from None
    if not isinstance(outer, dict) or set(outer) != {"hotline_card", "body", "signature"}:
        raise VerifyError(where, "bad_card", "outer keys are not hotline_card, body, signature")
    if outer["hotline_card"] != 1 or isinstance(outer["hotline_card"], bool):
        raise VerifyError(where, "bad_card", "card version is not 1")
    body = b64decode(outer["body"], where, canonical=True)
    signature = b64decode(outer["signature"], where, canonical=True)
    try:
        fields = json.loads(body.decode(), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError):
        raise VerifyError(where, "bad_card", "body is not JSON") from None
    if not isinstance(fields, dict) or set(fields) != CARD_KEYS:
        raise VerifyError(where, "bad_card", "body has missing or unknown fields")
    keys = {k: b64decode(fields[k], f"{where} {k}", canonical=True)
            for k in ("signing_key", "encryption_key", "log_key", "cosign_key")}  # fmt: skip
    if any(len(k) != 32 for k in keys.values()) or len(set(keys.values())) != 4:
        raise VerifyError(where, "bad_card", "keys are not four different 32-byte keys")
    ed25519_verify(keys["signing_key"], signature, CARD_CONTEXT + body, where)
    sid = fields["station_id"]
    if fields["v"] != 1 or not isinstance(sid, str) or not STATION_ID.fullmatch(sid):
        raise VerifyError(where, "bad_card", "bad version or station id")
    return Card(sid, keys["signing_key"], keys["encryption_key"], keys["log_key"],
                keys["cosign_key"], body)  # fmt: skip


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("a key appears twice")
    return dict(pairs)


# --- envelopes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    kind: int
    precedence: int
    suite: tuple[int, int, int]
    sender: str
    recipient: str
    channel: str
    sequence: int
    message_id: bytes
    sent_at_us: int
    payload: bytes
    raw: bytes

    @property
    def hash(self) -> bytes:
        return sha256(self.raw)

    def verify(self, public_key: bytes, where: str) -> None:
        ed25519_verify(public_key, self.raw[-64:], ENVELOPE_CONTEXT + self.raw[:-64], where)


def decode_envelope(raw: bytes, where: str = "envelope") -> Envelope:
    def fail(message: str) -> VerifyError:
        return VerifyError(where, "bad_envelope", message)

    if len(raw) < 14:
        raise fail("truncated")
    magic, version, kind, prec, flags, kem, kdf, aead = struct.unpack_from(">4sBBBBHHH", raw)
    if magic != b"HTLN" or version != 1 or not 1 <= kind <= 5 or not 0 <= prec <= 3 or flags:
        raise fail("bad magic, version, kind, precedence or flags")
    suite = (kem, kdf, aead)
    if suite != (NO_SUITE if kind == RECEIPT else SEALED_SUITE):
        raise fail(f"suite {suite} is not the one for kind {kind}")
    off = 14
    strings = []
    for _ in range(3):
        if off >= len(raw) or off + 1 + raw[off] > len(raw):
            raise fail("truncated")
        strings.append(raw[off + 1 : off + 1 + raw[off]])
        off += 1 + raw[off]
    try:
        sender, recipient, channel = (s.decode() for s in strings)
    except UnicodeDecodeError:
        raise fail("a string is not UTF-8") from None
    if not (STATION_ID.fullmatch(sender) and STATION_ID.fullmatch(recipient)):
        raise fail("sender or recipient is not a station id")
    if len(strings[2]) > 64 or len(raw) < off + 36 + 64:
        raise fail("channel too long, or truncated")
    sequence, message_id, sent_at, n = struct.unpack_from(">Q16sqI", raw, off)
    off += 36
    if (kind in (MESSAGE, ACK)) != (sequence > 0):
        raise fail(f"sequence {sequence} not valid for kind {kind}")
    if len(raw) != off + n + 64:
        raise fail("length does not match the payload")
    return Envelope(kind, prec, suite, sender, recipient, channel, sequence, message_id,
                    sent_at, raw[off : off + n], raw)  # fmt: skip


# --- ledger entries ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    kind: int
    peer: str
    peer_seq: int
    envelope_hash: bytes
    recorded_at_us: int
    data: bytes


def decode_entry(raw: bytes, where: str = "entry") -> Entry:
    if len(raw) < 3 or raw[0] != 1 or not 1 <= raw[1] <= 6:
        raise VerifyError(where, "bad_entry", "truncated, or unknown version or kind")
    n = raw[2]
    if len(raw) < 3 + n + 52:
        raise VerifyError(where, "bad_entry", "truncated")
    try:
        peer = raw[3 : 3 + n].decode("ascii")
    except UnicodeDecodeError:
        raise VerifyError(where, "bad_entry", "peer is not ASCII") from None
    seq, env_hash, recorded, m = struct.unpack_from(">Q32sqI", raw, 3 + n)
    if len(raw) != 3 + n + 52 + m:
        raise VerifyError(where, "bad_entry", "length does not match the data")
    return Entry(raw[1], peer, seq, env_hash, recorded, raw[3 + n + 52 :])


def json_object(data: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        raise VerifyError(where, "bad_entry", "data is not JSON") from None
    if not isinstance(value, dict):
        raise VerifyError(where, "bad_entry", "data is not a JSON object")
    return value


# --- the Merkle tree (RFC 9162) --------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def root_of(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes: split at the largest power of two smaller than n."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes]) -> bytes | None:
    """RFC 9162 2.1.3.2: the root a proof implies, or None when its shape is wrong."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return r if sn == 0 else None


# --- receipts, single or batch (docs/verifier.md "Batch receipts") ---------------------------

RECEIPT_LEAF_PREFIX = b"hotline-receipt-item/v1\x00"


def open_receipt(data: bytes, key: bytes, where: str) -> tuple[Envelope, dict[str, Any]]:
    """A RECEIPT_IN entry's data, verified: (the signed envelope, the receipt JSON)."""
    if data[:4] != b"HTRB":
        env = decode_envelope(data, where)
        env.verify(key, where)
        return env, json_object(env.payload, where)

    def fail(message: str) -> VerifyError:
        return VerifyError(where, "bad_receipt", message)

    if len(data) < 7 or data[4] != 1:
        raise fail("truncated, or not version 1")
    (n_root,) = struct.unpack_from(">H", data, 5)
    off = 7 + n_root
    if n_root > 2048 or len(data) < off + 2:
        raise fail("root envelope too large, or truncated")
    env = decode_envelope(data[7:off], where)
    (n_item,) = struct.unpack_from(">H", data, off)
    off += 2
    if n_item > 8192 or len(data) < off + n_item + 5:
        raise fail("item too large, or truncated")
    item = data[off : off + n_item]
    index, n_proof = struct.unpack_from(">IB", data, off + n_item)
    off += n_item + 5
    if n_proof > 64 or len(data) != off + 32 * n_proof:
        raise fail("proof too long, or the length does not match")
    proof = [data[off + 32 * i : off + 32 * (i + 1)] for i in range(n_proof)]
    env.verify(key, where)
    root = json_object(env.payload, where)
    count = root.get("count")
    if (
        env.kind != RECEIPT
        or set(root) != {"format", "root", "count"}
        or root["format"] != "hotline-receipts/v1"
        or not isinstance(count, int)
        or isinstance(count, bool)
        or not isinstance(root["root"], str)
        or not re.fullmatch(r"[0-9a-f]{64}", root["root"])
    ):
        raise fail("the root envelope is not a receipts root")
    got = root_from_inclusion(leaf_hash(RECEIPT_LEAF_PREFIX + item), index, count, proof)
    if got is None or got.hex() != root["root"]:
        raise fail("the item is not included under the signed root")
    return env, json_object(item, where)


def verify_consistency(m: int, n: int, proof: list[bytes], old: bytes, new: bytes,
                       where: str) -> None:  # fmt: skip
    """RFC 9162 section 2.1.4.2."""

    def fail(message: str) -> VerifyError:
        return VerifyError(where, "bad_proof", message)

    if not 0 < m <= n or any(len(h) != 32 for h in proof):
        raise fail("sizes out of order, old size 0, or a hash not 32 bytes")
    if m == n:
        if proof or old != new:
            raise fail("equal sizes need an empty proof and equal roots")
        return
    if m & (m - 1) == 0:
        proof = [old, *proof]
    if not proof:
        raise fail("empty proof")
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise fail("proof too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old or sr != new:
        raise fail("proof does not verify")


# --- signed notes, checkpoints, cosignatures ----------------------------------------------------


def split_note(note: str, where: str) -> tuple[str, list[tuple[str, int, bytes]]]:
    """(note text, [(key name, key id, signature bytes)]) of a signed note."""
    if CONTROL.search(note):
        raise VerifyError(where, "bad_note", "control characters")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n") or split + 2 >= len(note):
        raise VerifyError(where, "bad_note", "no blank line, or no signature lines")
    text, sigs = note[: split + 1], []
    for line in note[split + 2 : -1].split("\n"):
        name, space, encoded = line.removeprefix("— ").partition(" ")
        if not line.startswith("— ") or not space or not name or "+" in name:
            raise VerifyError(where, "bad_note", "malformed signature line")
        raw = b64decode(encoded, where, canonical=True)
        if len(raw) < 5:
            raise VerifyError(where, "bad_note", "signature too short")
        sigs.append((name, int.from_bytes(raw[:4], "big"), raw[4:]))
    return text, sigs


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str  #: the signed note text (the checkpoint body)


def open_checkpoint(note: str, origin: str, log_key: bytes, where: str) -> Checkpoint:
    text, sigs = split_note(note, where)
    kid = key_id(origin, TYPE_ED25519, log_key)
    mine = [sig for name, k, sig in sigs if (name, k) == (origin, kid)]
    if not mine:
        raise VerifyError(where, "bad_checkpoint", "no signature by the log key")
    for sig in mine:
        ed25519_verify(log_key, sig, text.encode(), where)
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(not x for x in lines) or not DECIMAL.fullmatch(lines[1]):
        raise VerifyError(where, "bad_checkpoint", "body is not origin, size, root")
    if lines[0] != origin:
        raise VerifyError(where, "bad_origin", f"origin {lines[0]!r} is not {origin!r}")
    size, root = int(lines[1]), b64decode(lines[2], where, canonical=True)
    if size >= 2**64 or len(root) != 32 or (size == 0 and root != EMPTY_ROOT):
        raise VerifyError(where, "bad_checkpoint", "size or root out of range")
    return Checkpoint(origin, size, root, text)


def verify_cosignature(body: str, line: str, cosigner: str, where: str) -> tuple[str, int]:
    """Check a tlog-cosignature/v1 line over a checkpoint body; (name, timestamp)."""
    name, kid, public_key = parse_vkey(cosigner, TYPE_COSIGNATURE, where)
    _, sigs = split_note(body + "\n" + (line if line.endswith("\n") else line + "\n"), where)
    if len(sigs) != 1 or sigs[0][:2] != (name, kid) or len(sigs[0][2]) != 72:
        raise VerifyError(where, "bad_cosignature", "not one line by this cosigner")
    (timestamp,) = struct.unpack(">Q", sigs[0][2][:8])
    if timestamp >= 2**63:
        raise VerifyError(where, "bad_cosignature", "timestamp out of range")
    message = COSIGNATURE_HEADER + str(timestamp).encode() + b"\n" + body.encode()
    ed25519_verify(public_key, sigs[0][2][8:], message, where)
    return name, timestamp


# --- the transcript -------------------------------------------------------------------------------


@dataclass
class Report:
    station: str
    entries: int = 0
    root: str = ""
    checkpoints: list[tuple[int, str]] = field(default_factory=list)  #: (size, root hex)
    cosignatures: list[dict[str, Any]] = field(default_factory=list)
    envelopes: int = 0  #: envelope signatures verified
    peers: list[str] = field(default_factory=list)
    attested_size: int = 0
    unattested: int = 0


def _list(doc: dict[str, Any], key: str, *, optional: bool = False) -> list[Any]:
    value = doc.get(key, [] if optional else None)
    if not isinstance(value, list):
        raise VerifyError("transcript", "bad_transcript", f"{key!r} is missing or not a list")
    return value


def verify_transcript(data: bytes | str, *, accept_unattested: bool = False) -> Report:
    """Every step of docs/verifier.md "Verification, step by step"; the first failure raises."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise VerifyError("transcript", "bad_transcript", "not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise VerifyError("transcript", "bad_transcript", f"not a {FORMAT} document")
    station = doc.get("station")
    if not isinstance(station, str):
        raise VerifyError("transcript", "bad_transcript", "no station")
    report = Report(station)

    # 1. the station
    card = parse_card(b64decode(doc.get("card"), "card"))
    if card.station_id != station:
        raise VerifyError("card", "bad_card", "the card is not the transcript's station's")
    if doc.get("log_key") != card.log_vkey:
        raise VerifyError("log key", "bad_log_key", "the log key is not the one on the card")
    origin = log_origin(station)

    # 2. checkpoints
    checkpoints: list[Checkpoint] = []
    by_size: dict[int, int] = {}
    for i, note in enumerate(_list(doc, "checkpoints")):
        where = f"checkpoint {i}"
        if not isinstance(note, str):
            raise VerifyError(where, "bad_note", "not a string")
        cp = open_checkpoint(note, origin, card.log_key, where)
        j = by_size.setdefault(cp.size, i)
        if j != i and checkpoints[j].root != cp.root:
            raise VerifyError(where, "fork", f"checkpoints {j} and {i}: two roots for one size")
        checkpoints.append(cp)

    # 3. entries
    raws = [b64decode(e, f"entry {i}") for i, e in enumerate(_list(doc, "entries"))]
    entries = [decode_entry(raw, f"entry {i}") for i, raw in enumerate(raws)]
    peers: dict[str, Card] = {}
    for i, e in enumerate(entries):
        if e.kind == OPERATOR_ACTION:
            action = json_object(e.data, f"entry {i}")
            if action.get("action") == "peer_add":
                peer_card = parse_card(str(action.get("card")), f"entry {i} (peer card)")
                peers[peer_card.station_id] = peer_card
    report.peers = sorted(peers)
    lanes: dict[tuple[int, str, int], int] = {}
    for i, e in enumerate(entries):
        report.envelopes += _check_entry(i, e, station, card, peers, entries, lanes)

    # 4. the tree
    leaves = [leaf_hash(raw) for raw in raws]
    for i, cp in enumerate(checkpoints):
        if cp.size > len(leaves):
            raise VerifyError(f"checkpoint {i}", "truncated",
                              f"size {cp.size} but only {len(leaves)} entries")  # fmt: skip
        if root_of(leaves[: cp.size]) != cp.root:
            raise VerifyError(f"checkpoint {i}", "bad_root", "root does not match the entries")
        report.checkpoints.append((cp.size, cp.root.hex()))
    report.entries, report.root = len(leaves), root_of(leaves).hex()

    # 5. consistency proofs
    for i, p in enumerate(_list(doc, "proofs", optional=True)):
        where = f"proof {i}"
        if not isinstance(p, dict) or not all(isinstance(p.get(k), int) for k in ("old", "new")):
            raise VerifyError(where, "bad_proof", "not {old, new, proof}")
        if not (0 <= p["old"] < len(checkpoints) and 0 <= p["new"] < len(checkpoints)):
            raise VerifyError(where, "bad_proof", "names a checkpoint not in the transcript")
        a, b = checkpoints[p["old"]], checkpoints[p["new"]]
        hashes = [b64decode(h, where) for h in _list(p, "proof")]
        verify_consistency(a.size, b.size, hashes, a.root, b.root, where)

    # 6. cosignatures
    peer_cosigners = {c.cosigner_vkey: sid for sid, c in peers.items()}
    for i, c in enumerate(_list(doc, "cosignatures", optional=True)):
        where = f"cosignature {i}"
        if not isinstance(c, dict) or not isinstance(c.get("checkpoint"), int):
            raise VerifyError(where, "bad_cosignature", "not {checkpoint, cosigner, line}")
        if not 0 <= c["checkpoint"] < len(checkpoints):
            raise VerifyError(where, "bad_cosignature", "names a checkpoint not in the transcript")
        cosigner, line = c.get("cosigner"), c.get("line")
        if not isinstance(cosigner, str) or not isinstance(line, str):
            raise VerifyError(where, "bad_cosignature", "cosigner or line is not a string")
        name, ts = verify_cosignature(checkpoints[c["checkpoint"]].text, line, cosigner, where)
        report.cosignatures.append({
            "checkpoint": c["checkpoint"], "size": checkpoints[c["checkpoint"]].size,
            "cosigner": name, "timestamp": ts, "peer": peer_cosigners.get(cosigner),
        })  # fmt: skip

    # 7. attestation
    report.attested_size = max((cp.size for cp in checkpoints), default=0)
    report.unattested = len(entries) - report.attested_size
    if report.unattested and not accept_unattested:
        raise VerifyError(f"entries {report.attested_size}..{len(entries) - 1}", "unattested",
                          "entries after the largest signed checkpoint")  # fmt: skip
    return report


def _check_entry(i: int, e: Entry, station: str, card: Card, peers: dict[str, Card],
                 entries: list[Entry], lanes: dict[tuple[int, str, int], int]) -> int:  # fmt: skip
    """Step 3 for one entry; returns the number of envelope signatures it verified."""
    where = f"entry {i}"
    if e.kind in (OPERATOR_ACTION, LINK_TEST_ENTRY, WITNESS):
        json_object(e.data, where)
        return 0
    peer = peers.get(e.peer)
    if peer is None:
        raise VerifyError(where, "unknown_peer", f"{e.peer!r} has no card on record")
    if e.kind == RECEIPT_IN:
        env, receipt = open_receipt(e.data, peer.signing_key, where)
        if (
            env.kind != RECEIPT
            or (env.sender, env.recipient) != (e.peer, station)
            or receipt.get("envelope_hash") != e.envelope_hash.hex()
            or receipt.get("sequence") != e.peer_seq
        ):
            raise VerifyError(where, "mismatch", "receipt does not match its entry")
        j = lanes.get((ENVELOPE_OUT, e.peer, e.peer_seq))
        if j is None or entries[j].envelope_hash != e.envelope_hash:
            raise VerifyError(where, "receipt_unsent", "no envelope sent before it matches")
        return 1
    env = decode_envelope(e.data, where)
    if sha256(e.data) != e.envelope_hash:
        raise VerifyError(where, "mismatch", "envelope hash does not match its bytes")
    out = e.kind == ENVELOPE_OUT
    env.verify(card.signing_key if out else peer.signing_key, where)
    ends = (station, e.peer) if out else (e.peer, station)
    if env.kind not in (MESSAGE, ACK) or (env.sender, env.recipient) != ends \
            or env.sequence != e.peer_seq:  # fmt: skip
        raise VerifyError(where, "mismatch", "envelope header does not match its entry")
    j = lanes.setdefault((e.kind, e.peer, e.peer_seq), i)
    if j != i:
        same = entries[j].envelope_hash == e.envelope_hash
        raise VerifyError(where, "duplicate_entry" if same else "equivocation",
                          f"entries {j} and {i} hold one lane (kind, peer, sequence)")  # fmt: skip
    return 1


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    with open(argv[1], "rb") as f:
        data = f.read()
    try:
        report = verify_transcript(data, accept_unattested="--accept-unattested" in argv)
    except VerifyError as exc:
        print(f"NOT VERIFIED: {exc}")
        return 1
    print(json.dumps(report.__dict__, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
