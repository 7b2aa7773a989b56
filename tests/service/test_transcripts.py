"""Transcripts of two in-process stations: export, offline verification, cross-check,
and every kind of tampering named.

The stations exchange messages both ways, acknowledge, and witness each other's logs
over several link tests (done by hand as in test_witnessing.py); alpha's log is also
cosigned by a third-party witness (an arbiter, in process). Each then signs a checkpoint
over its ledger and one more message leaves a tail after it, which the export signs.
The record is built once per store (SQLite and PostgreSQL) for the module; the tamper
corpus (tests/service/tamper.py) is made from it, each case refused with its code.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import functools
import json
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from hotline import arbiter as arb
from hotline.clock import FakeClock
from hotline.crypto import primitives
from hotline.crypto.card import parse_card
from hotline.crypto.keys import StationIdentity
from hotline.errors import HotlineError
from hotline.ledger import checkpoint as cps
from hotline.ledger import transcript as tlog
from hotline.ledger.checkpoint import CheckpointFork
from hotline.ledger.cosignature import CosignatureVerifier, Cosigner
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.note import Ed25519Verifier, NoteSigner
from hotline.ledger.transcript import EquivocationError, TranscriptError, parse_transcript
from hotline.service import transcripts
from hotline.service.arbitration import Arbitration
from hotline.service.witnessing import cosigner_of, origin_of
from hotline.settings import Settings
from hotline.station import Station
from hotline.store import arbiterdb
from tests.conftest import fresh_pg_database
from tests.service import tamper
from tests.service.conftest import Pair, make_identity
from tests.service.test_witnessing import exchange

WITNESS = Cosigner("hotline-arbiter", b"W" * 32)

# --- building the record --------------------------------------------------------------


def export(station: Station) -> str:
    with station.read_engine.connect() as conn:
        return transcripts.export(conn, station.line.card, station.witnessing.log_signer)


async def arbitrate(station: Station, tmp: Path) -> None:
    """One round with a third-party witness (the arbiter app, in process)."""
    engine = arbiterdb.open_store(f"sqlite:///{tmp / 'witness.db'}")
    logs = {origin_of(station.line.station_id): station.witnessing.log_signer.verifier}
    arbiter = arb.Arbiter(WITNESS, logs, engine, lambda: 1_767_225_600.0)
    transport = httpx.ASGITransport(app=arb.create_app(arbiter))
    witness = f"http://arbiter {WITNESS.verifier.vkey}"
    a = Arbitration(station.line, station.witnessing, witness, 60, 5, transport=transport)
    try:
        assert (await a.round())["cosigned"] is True
    finally:
        await a.aclose()
        engine.dispose()


async def rounds(p: Pair, n: int) -> None:
    """``n`` link tests each way, recorded in the ledger as LinkTester.test_once does."""
    for _ in range(n):
        for src, dst in ((p.alpha, p.bravo), (p.bravo, p.alpha)):
            _, _, result = await exchange(src, dst)
            await src.line.record_link_test(dst.line.station_id, {"ok": True} | result)


async def record(p: Pair, tmp: Path) -> dict[str, Any]:
    """Traffic both ways, acknowledgements, two witnessing rounds each way; early exports
    around a last message; then a final round, an arbiter's cosignature, a checkpoint
    over everything and one more message after it (the tail only the export signs)."""
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
    await arbitrate(p.alpha, tmp)
    await p.alpha.witnessing.offer("bravo")  # signs a checkpoint, appends nothing
    await p.bravo.witnessing.offer("alpha")
    await p.send("after the last checkpoint")
    await p.flush()
    out["alpha"], out["bravo"] = export(p.alpha), export(p.bravo)
    out["alpha_identity"], out["bravo_identity"] = p.alpha.identity, p.bravo.identity
    return out


def test_export_verify_and_cross_check_on_each_store(run_pair: Any, tmp_path: Path) -> None:
    async def scenario(p: Pair) -> None:
        got = await record(p, tmp_path)
        a, b = transcripts.verify(got["alpha"]), transcripts.verify(got["bravo"])
        for v, name in ((a, "alpha"), (b, "bravo")):
            s = transcripts.summary(v)
            assert s["station"] == name
            assert s["unattested"] == 0
            assert s["attested_size"] == s["entries"]
            assert s["cosignatures"] >= 4
            assert s["envelopes_verified"] > 0
        # alpha: 5 messages out; 2 messages and 1 acknowledgement in; 5 receipts
        assert a.envelopes == 5 + 3 + 5
        # bravo: 2 messages and 1 acknowledgement out; 5 messages in; 3 receipts
        assert b.envelopes == 3 + 5 + 3
        assert (len(a.witnesses), len(b.witnesses)) == (1, 0)
        cc = transcripts.cross_check(a, b)
        assert cc.clean, cc
        # the cosignatures are bravo's, over alpha's checkpoints
        bravo_key = CosignatureVerifier(cosigner_of("bravo"), p.bravo.line.card.card.cosign_key)
        for ci, cosig in a.report.cosignatures:
            if cosig.name == WITNESS.name:
                WITNESS.verifier.verify_line(
                    a.report.checkpoints[ci].format(), _line(got["alpha"], ci, WITNESS.name)
                )
                continue
            assert cosig.name == bravo_key.name
            line = _line(got["alpha"], ci, bravo_key.name)
            bravo_key.verify_line(a.report.checkpoints[ci].format(), line)

    run_pair(scenario)


def _line(text: str, checkpoint: int, name: str) -> str:
    for c in json.loads(text)["cosignatures"]:
        if c["checkpoint"] == checkpoint and c["cosigner"].startswith(name + "+"):
            return str(c["line"])
    raise AssertionError(f"no cosignature for checkpoint {checkpoint}")


@dataclasses.dataclass(frozen=True)
class Record:
    alpha: str
    bravo: str
    alpha_early: str
    bravo_early: str
    alpha_identity: StationIdentity
    bravo_identity: StationIdentity

    def doc(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.alpha)
        return result


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rec(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Record]:
    """The transcripts of one pair (the same setup as ``run_pair``), once per store."""
    tmp: Path = tmp_path_factory.mktemp("transcripts")
    with contextlib.ExitStack() as stack:
        urls = {
            name: f"sqlite:///{tmp / (name + '.db')}"
            if request.param == "sqlite"
            else stack.enter_context(fresh_pg_database())
            for name in ("alpha", "bravo")
        }
        clock = FakeClock()
        stations = []
        for name in ("alpha", "bravo"):
            (tmp / name).mkdir()
            s = Settings(data_dir=tmp / name, database_url=urls[name])
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
                got.update(await record(Pair(a, b, clock), tmp))
            finally:
                for s in stations:
                    s.close()

        asyncio.run(main())
        yield Record(**got)


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


def test_a_large_transcript_is_checked_on_every_core(
    rec: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = rec.doc()
    i = next(k for k, e in enumerate(entries(doc)) if e.kind is EntryKind.RECEIPT_IN)
    raw = bytearray(base64.b64decode(doc["entries"][i]))
    raw[-1] ^= 1
    serial = transcripts.verify(rec.alpha)
    monkeypatch.setattr(transcripts, "PARALLEL_BYTES", 0)  # every transcript is "large"
    monkeypatch.setattr(transcripts, "FORK_MIN_CHUNK", 1)  # chunks of a few entries
    assert transcripts.can_fork()  # by forked workers taking chunks from a counter
    assert transcripts.verify(rec.alpha).report == serial.report
    with pytest.raises(TranscriptError) as info:
        transcripts.verify(dumps(with_entry(doc, i, bytes(raw))))
    assert (info.value.entry, info.value.code) == (i, "bad_signature")


def _chunk_hook(t: Any) -> tlog.ChunkHook:
    own = parse_card(t.card).card.signing_key
    keys = {
        p: (c.card.signing_key, at)
        for p, (c, at) in transcripts._on_record(t.entries).peers.items()
    }
    return functools.partial(transcripts.check_chunk, t.station, own, keys)


def _flipped(t: Any, kind: EntryKind, nth: int = 0) -> tuple[int, tuple[bytes, ...]]:
    """The index of the ``nth`` entry of ``kind``, and the entries with its last byte
    (in the envelope's signature) flipped."""
    i = [k for k, raw in enumerate(t.entries) if raw[1] == kind][nth]
    raw = bytearray(t.entries[i])
    raw[-1] ^= 1
    return i, (*t.entries[:i], bytes(raw), *t.entries[i + 1 :])


def _finish(chunks: transcripts.ForkedChunks) -> tuple[int, str, str] | None:
    try:
        return chunks.finish()
    finally:
        chunks.close()


def test_forked_workers_name_the_earliest_failure_of_all_chunks(rec: Record) -> None:
    t = parse_transcript(rec.alpha)
    hook = _chunk_hook(t)
    assert _finish(transcripts.ForkedChunks(t.entries, hook, 2, 2)) is None
    i, bad = _flipped(t, EntryKind.ENVELOPE_IN)
    j, worse = _flipped(dataclasses.replace(t, entries=bad), EntryKind.RECEIPT_IN, 1)
    got = _finish(transcripts.ForkedChunks(worse, hook, 2, 2))
    assert got is not None
    assert got[0] == min(i, j)
    assert got == hook(0, worse)  # what one process checking them all says


def test_a_chunk_whose_worker_died_is_checked_by_the_verifying_process(rec: Record) -> None:
    """A worker that dies (here: each, in the first chunk it takes) never marks its chunk
    checked, so the verifying process checks it itself: a bad entry in it is named, and
    a good transcript still verifies."""
    t = parse_transcript(rec.alpha)
    hook, parent = _chunk_hook(t), os.getpid()

    def dies_in_workers(start: int, raws: Sequence[bytes]) -> tuple[int, str, str] | None:
        if os.getpid() != parent:
            os._exit(3)
        return hook(start, raws)

    i, bad = _flipped(t, EntryKind.ENVELOPE_IN)
    step = i + 1  # the bad entry is in the first chunk, which a worker takes and dies in
    refused = hook(0, bad)  # what one process checking them all says
    assert refused is not None
    assert refused[0] == i
    for entries, expected in ((t.entries, None), (bad, refused)):
        chunks = transcripts.ForkedChunks(entries, dies_in_workers, step, 2)
        for p in chunks.procs:  # each takes one chunk and dies with it
            p.join(timeout=60)
        assert [p.exitcode for p in chunks.procs] == [3, 3]
        assert _finish(chunks) == expected


class _DiesHoldingTheCounter(transcripts.ForkedChunks):
    def _drain(self, watch: bool = False) -> bool:
        if not watch:  # a worker: takes the counter's lock and dies with it
            self.taken.get_lock().acquire()
            os._exit(9)
        return super()._drain(watch)


def test_a_worker_dying_with_the_counter_held_stops_nothing(rec: Record) -> None:
    """The verifying process stops waiting for the lock once a worker is dead, kills the
    others and checks every chunk itself."""
    t = parse_transcript(rec.alpha)
    i, bad = _flipped(t, EntryKind.ENVELOPE_OUT)
    chunks = _DiesHoldingTheCounter(bad, _chunk_hook(t), 2, 2)
    chunks.procs[0].join(timeout=60)
    got = _finish(chunks)
    assert got is not None
    assert got[0] == i
    assert got == _chunk_hook(t)(0, bad)
    assert {p.exitcode for p in chunks.procs} <= {9, -9}


def _strict(t: Any, keys: dict[str, tuple[bytes, int]], i: int, raw: bytes) -> object:
    """What the per-entry check says of entry ``i`` (the reference the fast path keeps)."""
    own = parse_card(t.card).card.signing_key
    try:
        transcripts.check_entry(t.station, own, keys, i, Entry.decode(raw))
    except HotlineError as exc:
        return i, exc.code, exc.message
    except ValueError as exc:
        return i, "bad_entry", str(exc)
    return None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_chunk_check_refuses_exactly_what_the_entry_check_refuses(
    rec: Record, data: Any
) -> None:
    """The workers' fast path reads entry bytes with ``struct``; for any byte changed in
    an envelope or receipt entry it says what the strict per-entry check says."""
    t = parse_transcript(rec.alpha)
    own = parse_card(t.card).card.signing_key
    keys = {
        p: (c.card.signing_key, at)
        for p, (c, at) in transcripts._on_record(t.entries).peers.items()
    }
    assert transcripts.check_chunk(t.station, own, keys, 0, t.entries) is None
    signed = [k for k, raw in enumerate(t.entries) if raw[1] in (1, 2, 3)]
    i = data.draw(st.sampled_from(signed), label="entry")
    raw = bytearray(t.entries[i])
    at = data.draw(st.integers(0, len(raw) - 1), label="offset")
    raw[at] ^= data.draw(st.integers(1, 255), label="xor")
    got = transcripts.check_chunk(t.station, own, keys, i, [bytes(raw)])
    assert got == _strict(t, keys, i, bytes(raw))


def test_the_chunk_check_agrees_for_every_byte_of_entry_headers_and_envelope_heads(
    rec: Record,
) -> None:
    """The bytes no signature covers (the entry's own fields) and the envelope header the
    fast path reads, changed one at a time in one entry of each signed kind."""
    t = parse_transcript(rec.alpha)
    own = parse_card(t.card).card.signing_key
    keys = {
        p: (c.card.signing_key, at)
        for p, (c, at) in transcripts._on_record(t.entries).peers.items()
    }
    for kind in (1, 2, 3):
        i = next(k for k, raw in enumerate(t.entries) if raw[1] == kind)
        for at in range(min(len(t.entries[i]), 3 + t.entries[i][2] + 52 + 80)):
            raw = bytearray(t.entries[i])
            raw[at] ^= 0x01
            got = transcripts.check_chunk(t.station, own, keys, i, [bytes(raw)])
            assert got == _strict(t, keys, i, bytes(raw)), (kind, at)


# --- cross-check ------------------------------------------------------------------------


def test_an_older_peer_transcript_is_called_stale_not_accused(rec: Record) -> None:
    """bravo exported before it received alpha's last message: alpha holds bravo's
    receipt for it naming a tree larger than bravo's transcript. That is an older
    transcript, not a message bravo never received (today: 'not logged as received')."""
    a, b_early = transcripts.verify(rec.alpha), transcripts.verify(rec.bravo_early)
    cc = transcripts.cross_check(a, b_early)
    assert cc.codes == {"stale_transcript"}, cc
    [f] = cc.findings
    assert f.station == "bravo"
    assert "older" in f.message


def test_an_older_own_transcript_is_called_stale_not_a_forgery(rec: Record) -> None:
    """alpha exported before it sent its last message; bravo logged it, signed by alpha.
    Today: 'logged as received by bravo, never sent by alpha'."""
    a_early, b = transcripts.verify(rec.alpha_early), transcripts.verify(rec.bravo)
    cc = transcripts.cross_check(a_early, b)
    assert cc.codes == {"stale_transcript"}, cc
    assert {f.station for f in cc.findings} == {"alpha"}


def test_an_envelope_not_yet_logged_by_the_receiver_is_listed(rec: Record) -> None:
    """alpha's last envelope dropped from bravo's log and bravo's export re-signed, and
    alpha's receipt for it dropped: nothing shows bravo's transcript is older, so the
    envelope is listed as not received, with the envelope."""
    b = tamper.load(rec.bravo)
    ents = tamper.decoded(b)
    k = tamper.last_index(ents, EntryKind.ENVELOPE_IN)
    raws = tamper.raws(b)
    b2 = tamper.resign_tail(tamper.with_raws(b, raws[:k] + raws[k + 1 :]), rec.bravo_identity, k)
    a = tamper.load(rec.alpha)
    a_ents = tamper.decoded(a)
    r = tamper.last_index(a_ents, EntryKind.RECEIPT_IN)
    a_raws = tamper.raws(a)
    a2 = tamper.resign_tail(
        tamper.with_raws(a, a_raws[:r] + a_raws[r + 1 :]), rec.alpha_identity, r
    )
    cc = transcripts.cross_check(
        transcripts.verify(tamper.dump(a2)), transcripts.verify(tamper.dump(b2))
    )
    [f] = cc.of("not_received")
    assert (f.station, f.sequence) == ("bravo", ents[k].peer_seq)
    assert f.evidence == (_b64(ents[k].data),)


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
            assert exc.code == "missing_entries"
            assert f"has {n - 1} entries" in exc.message
        else:
            assert names_entry(exc, i), (i, exc)


def test_a_duplicated_envelope_entry_is_named(rec: Record) -> None:
    """Inserted into the file: the signed roots no longer hold (the range is named).
    Logged twice by the station itself (its export signed over it): duplicate_entry."""
    doc = rec.doc()
    i = next(k for k, e in enumerate(entries(doc)) if e.kind is EntryKind.ENVELOPE_OUT)
    new = [*doc["entries"][: i + 1], doc["entries"][i], *doc["entries"][i + 1 :]]
    exc = refused(dumps(doc | {"entries": new}))
    assert names_entry(exc, i + 1), exc
    signed = tamper.rewrite_history(doc | {"entries": new}, rec.alpha_identity)
    exc = refused(tamper.dump(signed))
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


def test_an_appended_entry_is_refused_unless_accepted_and_then_counted(rec: Record) -> None:
    """Entries after the last signed checkpoint cannot be vouched for: refused
    (``unattested``); with accept_unattested they are counted and the result says so."""
    doc = rec.doc()
    extra = Entry(EntryKind.LINK_TEST, "bravo", 0, bytes(32), 1, b'{"ok": true}').encode()
    text = dumps(doc | {"entries": [*doc["entries"], _b64(extra)]})
    exc = refused(text)
    assert exc.code == "unattested"
    assert exc.entry == len(doc["entries"])
    v = transcripts.verify(text, accept_unattested=True)
    assert v.report.unattested == 1
    assert v.accepted_unattested
    assert transcripts.summary(v)["accepted_unattested"] is True
    assert v.report.attested_size == len(doc["entries"])


def test_the_export_is_signed_at_its_own_size(rec: Record) -> None:
    """The record ends with a message after the last stored checkpoint: the export
    signs a checkpoint at its size, with alpha's log key, so nothing is unattested."""
    doc = rec.doc()
    n = len(doc["entries"])
    assert tamper.sizes(doc)[-1] == n
    assert max(s for s in tamper.sizes(doc)[:-1]) < n - 1
    assert transcripts.verify(rec.alpha).report.unattested == 0


# --- the tamper corpus ----------------------------------------------------------------


def corpus(rec: Record) -> list[tamper.Case]:
    return tamper.corpus(
        rec.alpha, rec.bravo, rec.alpha_early, rec.bravo_early,
        rec.alpha_identity, rec.bravo_identity,
    )  # fmt: skip


def test_the_corpus_covers_every_case_of_the_record(rec: Record) -> None:
    codes = {c.code for c in corpus(rec)}
    assert codes >= {
        "unattested", "missing_entries", "bad_root", "equivocation", "receipt_unsent",
        "receipt_mismatch", "fork", "stale_transcript", "unknown_cosigner",
    }  # fmt: skip


def test_every_tampered_transcript_is_refused_with_its_code(rec: Record) -> None:
    wrong = []
    for case in corpus(rec):
        got = tamper.refusals(case)
        if case.code not in got or got & case.not_codes:
            wrong.append((case.name, case.code, sorted(got)))
    assert not wrong, wrong


def test_the_unsigned_tail_cases_verify_only_when_accepted(rec: Record) -> None:
    """What verify accepted before (exit 0) is refused; accepted on request, it is
    reported as unattested."""
    for case in corpus(rec):
        if case.code != "unattested" or "reordered" in case.name:
            continue  # (a receipt moved before its envelope stays refused: receipt_unsent)
        assert tamper.refusals(case, accept_unattested=True) == set(), case.name
        v = transcripts.verify(case.a, accept_unattested=True)
        assert v.report.unattested > 0, case.name


def test_equivocation_names_both_envelopes(rec: Record) -> None:
    [one] = [c for c in corpus(rec) if c.name == "equivocation in one transcript"]
    with pytest.raises(EquivocationError) as info:
        transcripts.verify(one.a)
    doc = tamper.load(one.a)
    ents = tamper.decoded(doc)
    assert info.value.second == ents[-1].data
    assert info.value.first in {e.data for e in ents[:-1]}
    assert info.value.first != info.value.second
    for c in corpus(rec):
        if c.b is None or c.code != "equivocation":
            continue
        cc = transcripts.cross_check(transcripts.verify(c.a), transcripts.verify(c.b))
        [f] = cc.of("equivocation")
        assert f.station == "alpha"
        first, second = (base64.b64decode(e) for e in f.evidence)
        assert first != second
        key = rec.alpha_identity.card().card.signing_key
        for raw in (first, second):  # both signed by alpha, for one recipient and number
            assert _header(raw, key) == ("alpha", "bravo", f.sequence)


def _header(raw: bytes, key: bytes) -> tuple[str, str, int]:
    from hotline.wire import envelope as wire

    u = wire.decode(raw, max_bytes=len(raw))
    u.verify(key)
    return u.header.sender, u.header.recipient, u.header.sequence


def test_a_fork_is_reported_with_both_notes(rec: Record) -> None:
    for c in corpus(rec):
        if c.code != "fork":
            continue
        assert c.b is not None
        cc = transcripts.cross_check(transcripts.verify(c.a), transcripts.verify(c.b))
        forks = cc.of("fork")
        assert forks, c.name
        for f in forks:
            assert f.station == "alpha", c.name
            assert len(f.evidence) == 2, c.name
            log_key = Ed25519Verifier(origin_of("alpha"), rec.alpha_identity.card().card.log_key)
            got = [cps.open_checkpoint(n, [log_key]).checkpoint for n in f.evidence]
            assert got[0].root != got[1].root or got[0].size != got[1].size, c.name


def test_receipts_are_checked_against_the_peer_entries(rec: Record) -> None:
    for c in corpus(rec):
        if c.code != "receipt_mismatch":
            continue
        assert c.b is not None
        cc = transcripts.cross_check(transcripts.verify(c.a), transcripts.verify(c.b))
        [f] = cc.of("receipt_mismatch")
        assert f.station == "bravo", c.name
        assert f.evidence, c.name


def test_witness_cosignatures_are_exported_and_checked_against_the_key_on_record(
    rec: Record,
) -> None:
    v = transcripts.verify(rec.alpha)
    [(vkey, at)] = v.witnesses.items()
    assert vkey == WITNESS.verifier.vkey
    action = json.loads(v.report.entries[at].data)
    assert action["action"] == "witness_add"
    named = [cs for _, cs in v.report.cosignatures if cs.name == WITNESS.name]
    assert len(named) == 1


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
        assert exc.code == "unknown_cosigner"
        assert "neither a peer nor a witness on record" in exc.message
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


# --- the CLI ----------------------------------------------------------------------------


def test_verify_cli_refuses_unattested_unless_told_and_names_findings(
    rec: Record, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from hotline.cli import app

    runner = CliRunner()
    doc = rec.doc()
    extra = Entry(EntryKind.LINK_TEST, "bravo", 0, bytes(32), 1, b'{"ok": true}').encode()
    paths = {}
    for name, text in (
        ("tail", dumps(doc | {"entries": [*doc["entries"], _b64(extra)]})),
        ("alpha", rec.alpha),
        ("bravo_early", rec.bravo_early),
        ("bravo", rec.bravo),
    ):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(text)
    r = runner.invoke(app, ["verify", str(paths["tail"])])
    assert r.exit_code == 1
    assert "(unattested)" in r.output
    r = runner.invoke(app, ["verify", str(paths["tail"]), "--accept-unattested"])
    assert r.exit_code == 0, r.output
    assert "ACCEPTED UNATTESTED" in r.output
    assert "1 entries after the last signed checkpoint" in " ".join(r.output.split())
    r = runner.invoke(app, ["verify", str(paths["alpha"]), str(paths["bravo"])])
    assert r.exit_code == 0, r.output
    assert "✓ cross-check" in r.output
    assert "ACCEPTED UNATTESTED" not in r.output
    r = runner.invoke(app, ["verify", str(paths["alpha"]), str(paths["bravo_early"])])
    assert r.exit_code == 1
    assert "✗ stale_transcript (bravo)" in r.output
    assert "not_received" not in r.output
