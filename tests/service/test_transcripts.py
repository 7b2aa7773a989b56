"""Transcripts of two in-process stations: export, offline verification, cross-check,
and every kind of tampering named.

The stations exchange messages both ways, acknowledge, and witness each other's logs
over several link tests (done by hand as in test_witnessing.py); each then signs a
checkpoint over its whole ledger, so that every entry is attested. Export and a clean
verification run on SQLite and PostgreSQL; the tamper cases work on the SQLite
transcripts, built once for the module.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from hotline.clock import FakeClock
from hotline.crypto import primitives
from hotline.crypto.keys import StationIdentity
from hotline.errors import HotlineError
from hotline.ledger import checkpoint as cps
from hotline.ledger.checkpoint import CheckpointFork
from hotline.ledger.cosignature import CosignatureVerifier, Cosigner
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.note import Ed25519Verifier, NoteSigner
from hotline.ledger.transcript import TranscriptError, parse_transcript
from hotline.service import transcripts
from hotline.service.witnessing import cosigner_of, origin_of
from hotline.settings import Settings
from hotline.station import Station
from tests.service.conftest import Pair, make_identity
from tests.service.test_witnessing import exchange

# --- building the record --------------------------------------------------------------


def export(station: Station) -> str:
    with station.read_engine.connect() as conn:
        return transcripts.export(conn, station.line.card)


async def rounds(p: Pair, n: int) -> None:
    """``n`` link tests each way, recorded in the ledger as LinkTester.test_once does."""
    for _ in range(n):
        for src, dst in ((p.alpha, p.bravo), (p.bravo, p.alpha)):
            _, _, result = await exchange(src, dst)
            await src.line.record_link_test(dst.line.station_id, {"ok": True} | result)


async def record(p: Pair) -> dict[str, Any]:
    """Traffic both ways, acknowledgements, two witnessing rounds each way; early exports
    around a last message; then a final round and a checkpoint over everything."""
    out: dict[str, Any] = {}
    sent = [await p.send(f"alpha says {i}") for i in range(3)]
    for i in range(2):
        await p.send(f"bravo says {i}", src=p.bravo, dst="alpha")
    await p.flush()
    await p.bravo.line.acknowledge(str(sent[0].message_id), "Maj. Ivanova", "understood")
    await p.flush()
    await rounds(p, 2)
    out["alpha_early"] = export(p.alpha)  # before alpha sent the last message
    await p.send("the last one")
    out["bravo_early"] = export(p.bravo)  # before bravo received it
    await p.flush()
    await rounds(p, 2)
    await p.alpha.witnessing.offer("bravo")  # signs a checkpoint, appends nothing
    await p.bravo.witnessing.offer("alpha")
    out["alpha"], out["bravo"] = export(p.alpha), export(p.bravo)
    out["alpha_identity"] = p.alpha.identity
    return out


def test_export_verify_and_cross_check_on_each_store(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        got = await record(p)
        a, b = transcripts.verify(got["alpha"]), transcripts.verify(got["bravo"])
        for v, name in ((a, "alpha"), (b, "bravo")):
            s = transcripts.summary(v)
            assert s["station"] == name
            assert s["unattested"] == 0
            assert s["attested_size"] == s["entries"]
            assert s["cosignatures"] >= 4
            assert s["envelopes_verified"] > 0
        # alpha: 4 messages out; 2 messages and 1 acknowledgement in; 4 receipts
        assert a.envelopes == 4 + 3 + 4
        # bravo: 2 messages and 1 acknowledgement out; 4 messages in; 3 receipts
        assert b.envelopes == 3 + 4 + 3
        cc = transcripts.cross_check(a, b)
        assert cc.clean, cc
        # the cosignatures are bravo's, over alpha's checkpoints
        bravo_key = CosignatureVerifier(cosigner_of("bravo"), p.bravo.line.card.card.cosign_key)
        for ci, cosig in a.report.cosignatures:
            assert cosig.name == bravo_key.name
            bravo_key.verify_line(a.report.checkpoints[ci].format(), _line(got["alpha"], ci))

    run_pair(scenario)


def _line(text: str, checkpoint: int) -> str:
    for c in json.loads(text)["cosignatures"]:
        if c["checkpoint"] == checkpoint:
            return str(c["line"])
    raise AssertionError(f"no cosignature for checkpoint {checkpoint}")


@dataclasses.dataclass(frozen=True)
class Record:
    alpha: str
    bravo: str
    alpha_early: str
    bravo_early: str
    alpha_identity: StationIdentity

    def doc(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.alpha)
        return result


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Record:
    """The transcripts of one SQLite pair (the same setup as ``run_pair``)."""
    tmp: Path = tmp_path_factory.mktemp("transcripts")
    clock = FakeClock()
    stations = []
    for name in ("alpha", "bravo"):
        (tmp / name).mkdir()
        s = Settings(data_dir=tmp / name, database_url=f"sqlite:///{tmp / (name + '.db')}")
        stations.append(Station(s, make_identity(name), clock))
    a, b = stations
    for me, other in ((a, b), (b, a)):
        _card, unit = me.line.peer_add_unit(other.line.card.to_text(), "test")
        me.writer.run_sync(unit)
    got: dict[str, Any] = {}

    async def main() -> None:
        for s in stations:
            s.writer.start()
        try:
            got.update(await record(Pair(a, b, clock)))
        finally:
            for s in stations:
                s.close()

    asyncio.run(main())
    return Record(**got)


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False)


def refused(text: str) -> TranscriptError:
    with pytest.raises(TranscriptError) as info:
        transcripts.verify(text)
    return info.value


def entries(doc: dict[str, Any]) -> list[Entry]:
    return [Entry.decode(base64.b64decode(e)) for e in doc["entries"]]


def with_entry(doc: dict[str, Any], i: int, raw: bytes) -> dict[str, Any]:
    new = [*doc["entries"]]
    new[i] = base64.b64encode(raw).decode()
    return doc | {"entries": new}


_RANGE = re.compile(r"entries (\d+)\.\.(\d+)")


def names_entry(exc: TranscriptError, i: int) -> bool:
    """The error names entry ``i``, or a checkpoint whose range of entries holds it."""
    if exc.entry is not None:
        return exc.entry == i and exc.where == f"entry {i}"
    m = _RANGE.search(exc.message)
    return exc.code == "bad_root" and m is not None and int(m[1]) <= i <= int(m[2])


# --- the untouched record -------------------------------------------------------------


def test_the_record_verifies_and_cross_checks_clean(rec: Record) -> None:
    a, b = transcripts.verify(rec.alpha), transcripts.verify(rec.bravo)
    assert transcripts.cross_check(a, b).clean
    assert transcripts.cross_check(b, a).clean
    assert a.peers["bravo"].card.signing_key == b.card.card.signing_key
    assert a.report.unattested == 0
    kinds = {e.kind for e in a.report.entries}
    assert kinds == set(EntryKind)  # every kind of entry is in the record under test


def test_parallel_verification_gives_the_same_report(rec: Record) -> None:
    doc = rec.doc()
    i = next(k for k, e in enumerate(entries(doc)) if e.kind is EntryKind.ENVELOPE_IN)
    raw = bytearray(base64.b64decode(doc["entries"][i]))
    raw[-1] ^= 1
    bad = dumps(with_entry(doc, i, bytes(raw)))
    with ProcessPoolExecutor(max_workers=2) as pool:
        assert transcripts.verify(rec.alpha, executor=pool).report.root == (
            transcripts.verify(rec.alpha).report.root
        )
        with pytest.raises(TranscriptError) as info:
            transcripts.verify(bad, executor=pool)
    assert info.value.entry == i


# --- cross-check ------------------------------------------------------------------------


def test_cross_check_lists_an_envelope_the_receiver_has_not_logged(rec: Record) -> None:
    a, b_early = transcripts.verify(rec.alpha), transcripts.verify(rec.bravo_early)
    cc = transcripts.cross_check(a, b_early)
    assert not cc.clean
    last = [e for e in a.report.entries if e.kind is EntryKind.ENVELOPE_OUT][-1]
    assert cc.a_to_b_missing == ((last.peer_seq, last.envelope_hash),)
    assert (cc.b_to_a_missing, cc.b_received_unsent, cc.a_received_unsent) == ((), (), ())
    assert cc.conflicts == ()


def test_cross_check_lists_an_envelope_received_that_the_sender_did_not_log(
    rec: Record,
) -> None:
    a_early, b = transcripts.verify(rec.alpha_early), transcripts.verify(rec.bravo)
    cc = transcripts.cross_check(a_early, b)
    last = [e for e in b.report.entries if e.kind is EntryKind.ENVELOPE_IN][-1]
    assert cc.b_received_unsent == ((last.peer_seq, last.envelope_hash),)
    assert (cc.a_to_b_missing, cc.b_to_a_missing, cc.a_received_unsent) == ((), (), ())


def test_cross_check_refuses_a_pair_that_does_not_hold_each_others_cards(rec: Record) -> None:
    a, b = transcripts.verify(rec.alpha), transcripts.verify(rec.bravo)
    with pytest.raises(TranscriptError, match="not a peer on its record"):
        transcripts.cross_check(a, a)
    wrong = dataclasses.replace(a, peers={"bravo": a.card})
    with pytest.raises(TranscriptError, match="not bravo's own card"):
        transcripts.cross_check(wrong, b)
    with pytest.raises(TranscriptError, match="not bravo's own card"):
        transcripts.cross_check(b, wrong)


# --- tampering: entries ---------------------------------------------------------------


def test_a_byte_changed_in_any_entry_names_that_entry(rec: Record) -> None:
    doc = rec.doc()
    for i in range(len(doc["entries"])):
        raw = bytearray(base64.b64decode(doc["entries"][i]))
        raw[-1] ^= 1  # the last byte of the data: a signature, ciphertext or JSON '}'
        exc = refused(dumps(with_entry(doc, i, bytes(raw))))
        assert (exc.where, exc.entry) == (f"entry {i}", i), (i, exc)


def test_envelope_entries_are_named_exactly_for_a_change_in_their_header(rec: Record) -> None:
    doc = rec.doc()
    for i, e in enumerate(entries(doc)):
        if e.kind not in (EntryKind.ENVELOPE_OUT, EntryKind.ENVELOPE_IN, EntryKind.RECEIPT_IN):
            continue
        for change in (
            dataclasses.replace(e, peer_seq=e.peer_seq + 1),
            dataclasses.replace(e, envelope_hash=primitives.sha256(b"other")),
            dataclasses.replace(e, peer="alpha" if e.peer != "alpha" else "bravo"),
        ):
            exc = refused(dumps(with_entry(doc, i, change.encode())))
            assert (exc.where, exc.entry) == (f"entry {i}", i), (i, change, exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_byte_changed_in_an_entry_is_caught_and_located(rec: Record, data: Any) -> None:
    doc = rec.doc()
    cards = peer_add_entries(doc)  # covered by the test below, which names a bug
    i = data.draw(
        st.integers(0, len(doc["entries"]) - 1).filter(lambda k: k not in cards), label="entry"
    )
    raw = bytearray(base64.b64decode(doc["entries"][i]))
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    exc = refused(dumps(with_entry(doc, i, bytes(raw))))
    assert names_entry(exc, i), exc


def test_a_dropped_entry_is_caught_in_the_range_that_held_it(rec: Record) -> None:
    doc = rec.doc()
    n = len(doc["entries"])
    for i in (2, n // 2, n - 1):
        assert i not in peer_add_entries(doc)
        new = [*doc["entries"][:i], *doc["entries"][i + 1 :]]
        exc = refused(dumps(doc | {"entries": new}))
        if i == n - 1:  # the last checkpoint now claims more entries than there are
            assert exc.code == "bad_root"
            assert f"has {n - 1} entries" in exc.message
        else:
            assert names_entry(exc, i), (i, exc)


def test_a_duplicated_envelope_entry_is_named(rec: Record) -> None:
    doc = rec.doc()
    i = next(k for k, e in enumerate(entries(doc)) if e.kind is EntryKind.ENVELOPE_OUT)
    new = [*doc["entries"][: i + 1], doc["entries"][i], *doc["entries"][i + 1 :]]
    exc = refused(dumps(doc | {"entries": new}))
    assert (exc.code, exc.entry) == ("duplicate_entry", i + 1)
    assert f"entry {i}" in exc.message


def test_a_duplicated_local_entry_breaks_the_root(rec: Record) -> None:
    doc = rec.doc()
    i = next(k for k, e in enumerate(entries(doc)) if e.kind is EntryKind.LINK_TEST)
    new = [*doc["entries"][: i + 1], doc["entries"][i], *doc["entries"][i + 1 :]]
    exc = refused(dumps(doc | {"entries": new}))
    assert names_entry(exc, i + 1), exc


def test_reordered_entries_are_caught(rec: Record) -> None:
    doc = rec.doc()
    n = len(doc["entries"])
    for i, j in ((0, 1), (n // 2, n // 2 + 1), (1, n - 1)):
        new = [*doc["entries"]]
        new[i], new[j] = new[j], new[i]
        exc = refused(dumps(doc | {"entries": new}))
        assert names_entry(exc, i), (i, j, exc)


def test_an_appended_entry_is_reported_unattested_not_hidden(rec: Record) -> None:
    """Entries after the last signed checkpoint cannot be vouched for; the report says so
    (docs/ledger.md: a station can still truncate its unwitnessed tail)."""
    doc = rec.doc()
    extra = Entry(EntryKind.LINK_TEST, "bravo", 0, bytes(32), 1, b'{"ok": true}').encode()
    v = transcripts.verify(dumps(doc | {"entries": [*doc["entries"], _b64(extra)]}))
    assert v.report.unattested == 1
    assert v.report.attested_size == len(doc["entries"])


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --- tampering: checkpoints and cosignatures ------------------------------------------


def test_a_checkpoint_signature_changed_is_named(rec: Record) -> None:
    doc = rec.doc()
    k = len(doc["checkpoints"]) // 2
    note = doc["checkpoints"][k]
    head, sig = note.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    new = [*doc["checkpoints"]]
    new[k] = f"{head} {_b64(bytes(raw))}\n"
    exc = refused(dumps(doc | {"checkpoints": new}))
    assert (exc.where, exc.checkpoint) == (f"checkpoint {k}", k)
    assert exc.code in ("bad_note_signature", "unverified_note")


def test_a_checkpoint_body_changed_is_named(rec: Record) -> None:
    doc = rec.doc()
    new = [*doc["checkpoints"]]
    origin, size, rest = new[0].split("\n", 2)
    new[0] = f"{origin}\n{int(size) + 1}\n{rest}"
    exc = refused(dumps(doc | {"checkpoints": new}))
    assert exc.where == "checkpoint 0"


def test_a_forked_checkpoint_signed_by_the_log_key_is_named_with_both_notes(
    rec: Record,
) -> None:
    doc = rec.doc()
    k = 1
    cp = cps.parse_checkpoint(doc["checkpoints"][k].split("\n\n")[0] + "\n")
    signer = NoteSigner(origin_of("alpha"), rec.alpha_identity.log_seed)
    other = cps.sign_checkpoint(
        cps.Checkpoint(cp.origin, cp.size, primitives.sha256(b"another history")), signer
    )
    n = len(doc["checkpoints"])
    with pytest.raises(CheckpointFork) as info:
        transcripts.verify(dumps(doc | {"checkpoints": [*doc["checkpoints"], other]}))
    assert f"checkpoints {k} and {n}" in info.value.message
    assert (info.value.first, info.value.second) == (doc["checkpoints"][k], other)


def test_a_checkpoint_of_another_log_is_refused(rec: Record) -> None:
    doc = rec.doc()
    bravo = json.loads(rec.bravo)
    exc = refused(dumps(doc | {"checkpoints": [*doc["checkpoints"], bravo["checkpoints"][0]]}))
    assert exc.where == f"checkpoint {len(doc['checkpoints'])}"


def test_a_cosignature_line_altered_is_named(rec: Record) -> None:
    doc = rec.doc()
    i = len(doc["cosignatures"]) - 1
    c = doc["cosignatures"][i]
    head, sig = c["line"].rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1  # the timestamp: the signature no longer covers it
    new = [*doc["cosignatures"]]
    new[i] = c | {"line": f"{head} {_b64(bytes(raw))}\n"}
    exc = refused(dumps(doc | {"cosignatures": new}))
    assert exc.where == f"cosignature {i} (checkpoint {c['checkpoint']})"
    # moved onto another checkpoint it does not sign
    other = (c["checkpoint"] + 1) % len(doc["checkpoints"])
    new[i] = c | {"checkpoint": other}
    exc = refused(dumps(doc | {"cosignatures": new}))
    assert exc.where == f"cosignature {i} (checkpoint {other})"
    new[i] = c | {"checkpoint": len(doc["checkpoints"])}
    exc = refused(dumps(doc | {"cosignatures": new}))
    assert "not in the transcript" in exc.message


def test_a_cosigner_key_not_on_record_is_refused(rec: Record) -> None:
    """A cosignature that verifies with the key listed beside it, but that key is not the
    cosigner key on the card alpha recorded for bravo (nor any peer's)."""
    doc = rec.doc()
    c = doc["cosignatures"][0]
    cp = cps.open_checkpoint(
        doc["checkpoints"][c["checkpoint"]], [Ed25519Verifier.from_vkey(doc["log_key"])]
    ).checkpoint
    for name in (cosigner_of("bravo"), cosigner_of("charlie")):
        stranger = Cosigner(name, primitives.new_signing_key())
        line = stranger.cosign(cp.format(), 1_767_225_600).line()
        new = [c | {"cosigner": stranger.verifier.vkey, "line": line}, *doc["cosignatures"][1:]]
        exc = refused(dumps(doc | {"cosignatures": new}))
        assert exc.where == "cosignature 0", exc
        assert "not a peer on record" in exc.message
    # the listed key changed, the line kept: the line does not verify with it
    other_key = primitives.signing_public_key(primitives.new_signing_key())
    other = CosignatureVerifier(cosigner_of("bravo"), other_key)
    exc = refused(dumps(doc | {"cosignatures": [c | {"cosigner": other.vkey}]}))
    assert exc.where.startswith("cosignature 0"), exc


def test_a_wrong_card_or_log_key_is_refused(rec: Record) -> None:
    doc = rec.doc()
    bravo = json.loads(rec.bravo)
    exc = refused(dumps(doc | {"card": bravo["card"]}))
    assert (exc.where, exc.message) == ("card", "card: the card is not the transcript's station's")
    # another station that calls itself alpha: its card does not hold alpha's log key
    other = make_identity("alpha")
    exc = refused(dumps(doc | {"card": _b64(_card_of(other).encode())}))
    assert exc.where == "log key"
    exc = refused(dumps(doc | {"log_key": bravo["log_key"]}))
    assert exc.where == "log key"
    exc = refused(dumps(doc | {"card": _b64(b"not a card")}))
    assert exc.where == "card"
    exc = refused(dumps(doc | {"station": "bravo"}))
    assert exc.where == "card"


def _card_of(identity: StationIdentity) -> str:
    return identity.card().to_text()


def peer_add_entries(doc: dict[str, Any]) -> list[int]:
    return [
        k
        for k, e in enumerate(entries(doc))
        if e.kind is EntryKind.OPERATOR_ACTION and b'"peer_add"' in e.data
    ]


def test_a_tampered_peer_add_entry_is_named_as_that_entry(rec: Record) -> None:
    """The peer_add entry carries the card bravo's keys come from. Tampering with it is
    caught, but must be named as that entry (or the checkpoint range that holds it),
    like any other entry: the verifier must not blame an honest cosignature, nor an
    honest envelope of bravo's ("entry 7: signature does not verify" tells a third party
    that alpha's log holds a forged envelope, when the signed roots show that the card
    entry is what changed)."""
    doc = rec.doc()
    [i] = peer_add_entries(doc)
    e = entries(doc)[i]
    action = json.loads(e.data)
    other_card = dataclasses.replace(
        e, data=json.dumps(action | {"card": _card_of(make_identity("bravo"))}).encode()
    )
    not_an_action = dataclasses.replace(e, kind=EntryKind.LINK_TEST)
    for name, text in (
        ("another card for bravo", dumps(with_entry(doc, i, other_card.encode()))),
        ("kind byte changed", dumps(with_entry(doc, i, not_an_action.encode()))),
        (
            "entry dropped",
            dumps(doc | {"entries": [*doc["entries"][:i], *doc["entries"][i + 1 :]]}),
        ),
    ):
        exc = refused(text)
        assert (
            names_entry(exc, i)
            or f"(entry {i})" in exc.message
            or "'bravo', not a peer on record" in exc.message
        ), f"{name}: named {exc.where!r} ({exc.message})"


# --- garbage --------------------------------------------------------------------------


def _parsed_equal_or_fewer_attestations(text: str, original: str) -> bool:
    got, want = parse_transcript(text), parse_transcript(original)
    return got in (want, dataclasses.replace(want, cosignatures=()))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_single_byte_changed_anywhere_never_verifies_silently(rec: Record, data: Any) -> None:
    """Any one byte of the JSON text changed: parsing or verification raises a
    HotlineError (never another exception), unless the change means nothing (JSON
    whitespace, a non-canonical base64 of the same bytes) or only drops attestations
    (renaming the optional "cosignatures" key): then what verifies is what was signed."""
    raw = bytearray(rec.alpha.encode())
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]), label="byte")
    raw[at] = new
    try:
        transcripts.verify(bytes(raw))
    except HotlineError:
        return
    assert _parsed_equal_or_fewer_attestations(bytes(raw).decode(), rec.alpha), (at, new)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_garbage_is_refused_with_a_transcript_error(blob: bytes) -> None:
    with pytest.raises(HotlineError):
        transcripts.verify(blob)
