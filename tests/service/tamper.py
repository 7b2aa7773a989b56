"""A corpus of tampered transcripts, made from the transcripts of a real exchange.

Owns the tampering: each :class:`Case` is what a hostile station (holding its own keys,
as the counterpart does), a courier or an editor of a file could hand an auditor, with
the refusal code ``hotline verify`` must give (docs/transcript.md). Cases that need
both transcripts carry the other one. The transcripts come from
``tests/service/test_transcripts.py`` (two in-process stations exchanging messages,
acknowledgements and link tests with cosigning, one third-party witness, a tail of
entries after the last stored checkpoint). Must not touch: anything but the texts it is
given; it verifies nothing itself (:func:`refusals` asks ``hotline.service.transcripts``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from hotline.crypto import primitives
from hotline.crypto.keys import StationIdentity
from hotline.errors import HotlineError
from hotline.ledger import checkpoint as cps
from hotline.ledger import merkle
from hotline.ledger.cosignature import Cosigner
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.note import NoteSigner
from hotline.service import transcripts
from hotline.service.witnessing import origin_of
from hotline.wire import envelope as wire
from hotline.wire.envelope import Kind
from hotline.wire.messages import ReceiptPayload, parse_payload

Doc = dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    code: str  #: the refusal code verify must give
    a: str  #: the transcript verified first
    b: str | None = None  #: the other side's transcript, for a cross-check
    #: codes that must NOT be among the findings (a fork is not "missing messages")
    not_codes: frozenset[str] = frozenset()


def refusals(case: Case, *, accept_unattested: bool = False) -> set[str]:
    """The codes verify gives for ``case``: the single-transcript refusal, or every
    cross-check finding; empty when it verifies clean."""
    verified = []
    for text in (case.a, case.b):
        if text is None:
            continue
        try:
            verified.append(transcripts.verify(text, accept_unattested=accept_unattested))
        except HotlineError as exc:
            return {exc.code}
    if len(verified) == 2:
        try:
            return transcripts.cross_check(verified[0], verified[1]).codes
        except HotlineError as exc:
            return {exc.code}
    return set()


# --- editing a transcript ----------------------------------------------------------


def load(text: str) -> Doc:
    doc: Doc = json.loads(text)
    return doc


def dump(doc: Doc) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def raws(doc: Doc) -> list[bytes]:
    return [base64.b64decode(e) for e in doc["entries"]]


def decoded(doc: Doc) -> list[Entry]:
    return [Entry.decode(r) for r in raws(doc)]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def with_raws(doc: Doc, new: list[bytes]) -> Doc:
    return doc | {"entries": [b64(r) for r in new]}


def sizes(doc: Doc) -> list[int]:
    return [int(note.split("\n")[1]) for note in doc["checkpoints"]]


def without_checkpoints_from(doc: Doc, size: int) -> Doc:
    """Drop every checkpoint of ``size`` or more, and the cosignatures on them."""
    keep = [i for i, s in enumerate(sizes(doc)) if s < size]
    new_index = {old: new for new, old in enumerate(keep)}
    cos = [
        c | {"checkpoint": new_index[c["checkpoint"]]}
        for c in doc["cosignatures"]
        if c["checkpoint"] in new_index
    ]
    return doc | {"checkpoints": [doc["checkpoints"][i] for i in keep], "cosignatures": cos}


def root(doc: Doc, size: int) -> bytes:
    frontier: list[bytes] = []
    for i, raw in enumerate(raws(doc)[:size]):
        merkle.frontier_append(i, frontier, merkle.leaf_hash(raw))
    return merkle.frontier_root(frontier)


def sign_at(doc: Doc, identity: StationIdentity, size: int) -> str:
    signer = NoteSigner(origin_of(identity.station_id), identity.log_seed)
    cp = cps.Checkpoint(signer.name, size, root(doc, size))
    return cps.sign_checkpoint(cp, signer)


def resign_tail(doc: Doc, identity: StationIdentity, since: int) -> Doc:
    """The station re-signs its export after changing entries from ``since`` on: every
    checkpoint from there is dropped and one is signed at the new size."""
    out = without_checkpoints_from(doc, since)
    n = len(out["entries"])
    return out | {"checkpoints": [*out["checkpoints"], sign_at(out, identity, n)]}


def rewrite_history(doc: Doc, identity: StationIdentity, keep_sizes: bool = True) -> Doc:
    """The station rewrites its log and re-signs every checkpoint (at the same sizes, or
    only one at the end); the peers' cosignatures no longer fit and are left out."""
    n = len(doc["entries"])
    wanted = sorted({s for s in sizes(doc) if s <= n} | {n}) if keep_sizes else [n]
    return doc | {
        "checkpoints": [sign_at(doc, identity, s) for s in wanted],
        "cosignatures": [],
        "proofs": [],
    }


def other_envelope(raw: bytes, identity: StationIdentity) -> bytes:
    """Another envelope with the same header, validly signed by the same sender: one
    payload byte changed and signed again (what an equivocating station sends)."""
    u = wire.decode(raw, max_bytes=len(raw))
    signed = bytearray(raw[: -wire.SIGNATURE_LEN])
    signed[-1] ^= 1
    sig = primitives.Signer(identity.signing_seed).sign(wire.SIGN_CONTEXT, bytes(signed))
    assert u.header.sequence > 0
    return bytes(signed) + sig


def lying_receipt(raw: bytes, identity: StationIdentity, **changes: Any) -> bytes:
    """The receipt envelope ``raw``, its payload changed and signed again by its signer."""
    u = wire.decode(raw, max_bytes=len(raw))
    receipt: ReceiptPayload = parse_payload(Kind.RECEIPT, u.payload)
    payload = receipt.model_copy(update=changes).to_bytes()
    signer = primitives.Signer(identity.signing_seed)
    return wire.seal_envelope(u.header, payload, signer, None).raw


def _leaf_of(raw: bytes) -> int:
    receipt: ReceiptPayload = parse_payload(
        Kind.RECEIPT, wire.decode(raw, max_bytes=len(raw)).payload
    )
    return receipt.leaf_index


def entry_with(entry: Entry, **changes: Any) -> bytes:
    return dataclasses.replace(entry, **changes).encode()


def last_index(entries: list[Entry], kind: EntryKind, since: int = 0) -> int:
    return max(i for i, e in enumerate(entries) if e.kind is kind and i >= since)


def first_index(entries: list[Entry], kind: EntryKind, since: int = 0) -> int:
    return min(i for i, e in enumerate(entries) if e.kind is kind and i >= since)


# --- the corpus --------------------------------------------------------------------


def corpus(
    alpha: str,
    bravo: str,
    alpha_early: str,
    bravo_early: str,
    alpha_id: StationIdentity,
    bravo_id: StationIdentity,
) -> list[Case]:
    """Every case of "The record" (issue 7), each with its refusal code."""
    a, b = load(alpha), load(bravo)
    ents, n = decoded(a), len(a["entries"])
    stored = max(s for s in sizes(a) if s < n)  # alpha's last stored checkpoint
    assert stored < n - 1, "the record needs a tail after the last stored checkpoint"
    tail_out = last_index(ents, EntryKind.ENVELOPE_OUT)
    tail_receipt = last_index(ents, EntryKind.RECEIPT_IN)
    tail_send = last_index(ents, EntryKind.OPERATOR_ACTION)
    assert stored <= tail_send < tail_out < tail_receipt, (stored, tail_send, tail_out)
    unsigned = without_checkpoints_from(a, n)  # the export's own checkpoint removed
    r = raws(a)
    cases: list[Case] = []

    # 1. the tail: with the export's checkpoint kept, and with it removed
    retimed = entry_with(ents[tail_receipt], recorded_at_us=ents[tail_receipt].recorded_at_us + 1)
    action = json.loads(ents[tail_send].data)
    edited = entry_with(
        ents[tail_send],
        data=json.dumps(action | {"channel": "edited"}, sort_keys=True).encode(),
    )
    swapped = [*r]
    swapped[tail_out], swapped[tail_receipt] = swapped[tail_receipt], swapped[tail_out]
    tails = {
        "dropped": r[:-1],
        "reordered": swapped,
        "retimed": [*r[:tail_receipt], retimed, *r[tail_receipt + 1 :]],
        "edited": [*r[:tail_send], edited, *r[tail_send + 1 :]],
    }
    for name, new in tails.items():
        code = "missing_entries" if name == "dropped" else "bad_root"
        cases.append(Case(f"tail {name}, export checkpoint kept", code, dump(with_raws(a, new))))
        cases.append(Case(f"tail {name}, unsigned", "unattested", dump(with_raws(unsigned, new))))
    appended = [*r, entry_with(ents[tail_send], recorded_at_us=ents[tail_send].recorded_at_us + 9)]
    cases.append(
        Case("entry appended after the export", "unattested", dump(with_raws(a, appended)))
    )
    cases.append(Case("export checkpoint removed", "unattested", dump(unsigned)))

    # 2. equivocation: in one transcript, and across two
    twin = entry_with(ents[tail_out], **_as_envelope(other_envelope(ents[tail_out].data, alpha_id)))
    one = resign_tail(with_raws(a, [*r, twin]), alpha_id, n)
    cases.append(Case("equivocation in one transcript", "equivocation", dump(one)))
    b_ents = decoded(b)
    b_in = first_index(b_ents, EntryKind.ENVELOPE_IN)
    b_twin = entry_with(b_ents[b_in], **_as_envelope(other_envelope(b_ents[b_in].data, alpha_id)))
    b_raws = raws(b)
    b_forked = rewrite_history(
        with_raws(b, [*b_raws[:b_in], b_twin, *b_raws[b_in + 1 :]]), bravo_id
    )
    cases.append(
        Case(
            "equivocation across two (logged one, delivered another)",
            "equivocation",
            alpha,
            dump(b_forked),
        )
    )
    # alpha's tail: the envelope bravo received replaced by another, its receipt dropped
    tail_twin = [*r[:tail_out], twin, *r[tail_out + 1 : tail_receipt], *r[tail_receipt + 1 :]]
    cases.append(
        Case(
            "equivocation across two, in the unwitnessed tail",
            "equivocation",
            dump(resign_tail(with_raws(a, tail_twin), alpha_id, stored + 1)),
            bravo,
        )
    )

    # 3. receipts
    no_send = [*r[:tail_out], *r[tail_out + 1 :]]
    cases.append(
        Case(
            "receipt for no sent envelope",
            "receipt_unsent",
            dump(resign_tail(with_raws(a, no_send), alpha_id, stored + 1)),
        )
    )
    rc = ents[tail_receipt]
    for label, change in (
        ("leaf index of another entry", {"leaf_index": 0}),
        ("a tree size that does not hold its leaf", {"tree_size": _leaf_of(rc.data)}),
        ("another time", {"stored_at_us": 1}),
    ):
        lie = lying_receipt(rc.data, bravo_id, **change)
        new = [*r[:tail_receipt], entry_with(rc, data=lie), *r[tail_receipt + 1 :]]
        text = dump(resign_tail(with_raws(a, new), alpha_id, stored + 1))
        cases.append(Case(f"receipt naming {label}", "receipt_mismatch", text, bravo))

    # 4. forks: alpha rewrites what bravo cosigned
    early_action = first_index(ents, EntryKind.OPERATOR_ACTION, 1)
    action = json.loads(ents[early_action].data)
    changed = entry_with(
        ents[early_action], data=json.dumps(action | {"note": "rewritten"}).encode()
    )
    rewritten = with_raws(a, [*r[:early_action], changed, *r[early_action + 1 :]])
    cases.append(
        Case(
            "fork: two roots for one size",
            "fork",
            dump(rewrite_history(rewritten, alpha_id)),
            bravo,
        )
    )
    cases.append(
        Case(
            "fork: a root inconsistent with a later one",
            "fork",
            dump(rewrite_history(rewritten, alpha_id, keep_sizes=False)),
            bravo,
        )
    )
    cases.append(
        Case(
            "fork: the peer's transcript checked against a forked one",
            "fork",
            bravo,
            dump(rewrite_history(rewritten, alpha_id)),
        )
    )
    first_out = first_index(ents, EntryKind.ENVELOPE_OUT)
    dropped = [
        raw
        for i, (raw, e) in enumerate(zip(r, ents, strict=True))
        if not (
            e.peer_seq == ents[first_out].peer_seq and e.kind in _ALPHA_LANE and e.peer == "bravo"
        )
    ]
    cases.append(
        Case(
            "fork: a message erased from history",
            "fork",
            dump(rewrite_history(with_raws(a, dropped), alpha_id)),
            bravo,
            not_codes=frozenset({"not_received", "received_unsent"}),
        )
    )
    # fork evidence held in bravo's log: alpha signed another root for a cosigned size
    size = sizes(a)[1]
    forged = sign_at(rewritten, alpha_id, size)
    evidence = {
        "witness": "fork_evidence",
        "peer": "alpha",
        "error": "fork",
        "detail": "two roots",
        "cosigned_note": a["checkpoints"][1],
        "offered_note": forged,
        "envelope": None,
        "old_size": size,
        "proof": [],
    }
    last = b_ents[-1]
    held = Entry(
        EntryKind.WITNESS,
        "alpha",
        0,
        bytes(32),
        last.recorded_at_us + 1,
        json.dumps(evidence, sort_keys=True).encode(),
    )
    b_held = resign_tail(with_raws(b, [*b_raws, held.encode()]), bravo_id, len(b_raws))
    cases.append(Case("fork evidence held in the peer's log", "fork", alpha, dump(b_held)))

    # 5. stale transcripts: say so, accuse no one
    quiet = frozenset({"not_received", "received_unsent"})
    cases.append(
        Case(
            "the peer's transcript is older",
            "stale_transcript",
            alpha,
            bravo_early,
            not_codes=quiet,
        )
    )
    cases.append(
        Case(
            "this station's transcript is older",
            "stale_transcript",
            alpha_early,
            bravo,
            not_codes=quiet,
        )
    )

    # 6. third-party witnesses: a cosigner not on record, a witness line altered
    wi = next(
        i for i, c in enumerate(a["cosignatures"]) if c["cosigner"].startswith("hotline-arbiter")
    )
    c = a["cosignatures"][wi]
    cp = cps.parse_checkpoint(a["checkpoints"][c["checkpoint"]].split("\n\n")[0] + "\n")
    stranger = Cosigner("hotline-arbiter", primitives.new_signing_key())
    line = stranger.cosign(cp.format(), 1_767_225_600).line()
    cos = [*a["cosignatures"]]
    cos[wi] = c | {"cosigner": stranger.verifier.vkey, "line": line}
    cases.append(
        Case(
            "witness cosignature by a key not on record",
            "unknown_cosigner",
            dump(a | {"cosignatures": cos}),
        )
    )
    head, sig = c["line"].rstrip("\n").rsplit(" ", 1)
    raw_sig = bytearray(base64.b64decode(sig))
    raw_sig[-1] ^= 1
    cos[wi] = c | {"line": f"{head} {b64(bytes(raw_sig))}\n"}
    cases.append(
        Case("witness cosignature altered", "bad_signature", dump(a | {"cosignatures": cos}))
    )
    return cases


_ALPHA_LANE = (EntryKind.ENVELOPE_OUT, EntryKind.RECEIPT_IN)


def _as_envelope(raw: bytes) -> dict[str, Any]:
    return {"data": raw, "envelope_hash": primitives.sha256(raw)}
