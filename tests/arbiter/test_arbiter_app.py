"""The arbiter's HTTP app in process: the spec's status codes, its state, its evidence."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline import arbiter as arb
from hotline.crypto.keys import create_station, load_station
from hotline.errors import ConfigError
from hotline.ledger import checkpoint as c
from hotline.ledger import merkle, tree
from hotline.ledger import note as n
from hotline.ledger import witness as w
from hotline.ledger.cosignature import Cosigner
from hotline.store import arbiterdb

ORIGIN = "hotline/alpha/log"
LOG = n.NoteSigner(ORIGIN, b"L" * 32)
COSIGNER = Cosigner("hotline-arbiter", b"A" * 32)
TS = 1_700_000_000

HONEST = tree.MemoryTree()
HONEST.append([merkle.leaf_hash(b"e%d" % i) for i in range(20)])
FORKED = tree.MemoryTree()
FORKED.append([merkle.leaf_hash(b"e%d" % i) for i in range(6)])
FORKED.append([merkle.leaf_hash(b"f%d" % i) for i in range(6, 20)])


def note(t: tree.MemoryTree, size: int, signer: n.NoteSigner = LOG, origin: str = ORIGIN) -> str:
    return c.sign_checkpoint(c.Checkpoint(origin, size, t.root(size)), signer)


def request(old: int, size: int, t: tree.MemoryTree = HONEST) -> bytes:
    proof = t.consistency_proof(old, size) if 0 < old < size else []
    return w.AddCheckpoint(old, tuple(proof), note(t, size)).format()


def make(tmp_path: Path) -> arb.Arbiter:
    engine = arbiterdb.open_store(f"sqlite:///{tmp_path / 'w.db'}")
    return arb.Arbiter(COSIGNER, {ORIGIN: LOG.verifier}, engine, lambda: float(TS))


def post(a: arb.Arbiter, body: bytes, **kw: int) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=arb.create_app(a, **kw))
        async with httpx.AsyncClient(transport=transport, base_url="http://arbiter") as client:
            return await client.post("/add-checkpoint", content=body)

    return asyncio.run(go())


def stored(a: arb.Arbiter) -> list[tuple[str, int]]:
    with a.engine.connect() as conn:
        rows = conn.execute(
            sa.select(arbiterdb.state_table.c.origin, arbiterdb.state_table.c.size)
        ).all()
    return [(str(r.origin), int(r.size)) for r in rows]


def evidence(a: arb.Arbiter) -> list[sa.Row[tuple[str, str]]]:
    e = arbiterdb.evidence_table
    with a.engine.connect() as conn:
        return list(conn.execute(sa.select(e.c.cosigned_note, e.c.offered_note)).all())


def test_happy_path_cosigns_and_stores(tmp_path: Path) -> None:
    a = make(tmp_path)
    r = post(a, request(0, 7))
    assert r.status_code == 200
    assert r.text.startswith("— hotline-arbiter ")
    assert r.text.endswith("\n")
    cp = c.Checkpoint(ORIGIN, 7, HONEST.root(7))
    got = COSIGNER.verifier.verify_line(cp.format(), r.text)
    assert got.timestamp == TS
    assert stored(a) == [(ORIGIN, 7)]
    r = post(a, request(7, 12))
    assert r.status_code == 200
    assert stored(a) == [(ORIGIN, 12)]


def test_stale_old_size_is_a_409_with_the_stored_size_then_success(tmp_path: Path) -> None:
    a = make(tmp_path)
    assert post(a, request(0, 7)).status_code == 200
    r = post(a, request(0, 12))
    assert r.status_code == 409
    assert r.headers["content-type"] == "text/x.tlog.size"
    assert r.text == "7\n"
    assert post(a, request(int(r.text), 12)).status_code == 200
    assert stored(a) == [(ORIGIN, 12)]


def test_bad_signature_is_403(tmp_path: Path) -> None:
    a = make(tmp_path)
    other = n.NoteSigner(ORIGIN, b"X" * 32)
    body = w.AddCheckpoint(0, (), note(HONEST, 7, other)).format()
    assert post(a, body).status_code == 403
    assert stored(a) == []


def test_unknown_origin_is_404(tmp_path: Path) -> None:
    a = make(tmp_path)
    stranger = n.NoteSigner("hotline/bravo/log", b"B" * 32)
    body = w.AddCheckpoint(0, (), note(HONEST, 7, stranger, "hotline/bravo/log")).format()
    assert post(a, body).status_code == 404
    assert stored(a) == []


def test_old_size_above_size_is_400(tmp_path: Path) -> None:
    a = make(tmp_path)
    assert post(a, w.AddCheckpoint(9, (), note(HONEST, 7)).format()).status_code == 400


def test_fork_is_422_and_both_notes_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = make(tmp_path)
    assert post(a, request(0, 7)).status_code == 200
    with caplog.at_level(logging.CRITICAL, logger="hotline.arbiter"):
        r = post(a, request(7, 12, FORKED))
    assert r.status_code == 422
    assert any(rec.levelno == logging.CRITICAL for rec in caplog.records)
    assert stored(a) == [(ORIGIN, 7)]
    [row] = evidence(a)
    assert row.cosigned_note == note(HONEST, 7)
    assert row.offered_note == note(FORKED, 12)
    # two roots for one size is a fork too
    assert post(a, w.AddCheckpoint(7, (), note(FORKED, 7)).format()).status_code == 422
    assert len(evidence(a)) == 2


def test_a_proof_that_does_not_verify_is_422_without_evidence(tmp_path: Path) -> None:
    a = make(tmp_path)
    assert post(a, request(0, 7)).status_code == 200
    proof = [bytes(32), *HONEST.consistency_proof(7, 12)[1:]]
    r = post(a, w.AddCheckpoint(7, tuple(proof), note(HONEST, 12)).format())
    assert r.status_code == 422
    assert evidence(a) == []
    assert stored(a) == [(ORIGIN, 7)]


def test_request_size_limit(tmp_path: Path) -> None:
    a = make(tmp_path)
    assert post(a, request(0, 7), max_request_bytes=100).status_code == 413
    assert stored(a) == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.builds(
            lambda head, tail: head + tail,
            st.sampled_from([b"old 7\n\n", b"old 0\n\n", b"old 3\nAAAA\n\n", b""]),
            st.binary(max_size=200),
        ),
    )
)
def test_garbage_is_4xx_and_leaves_the_state_alone(tmp_path: Path, body: bytes) -> None:
    a = make(tmp_path)
    if not stored(a):
        assert post(a, request(0, 7)).status_code == 200
    r = post(a, body)
    assert 400 <= r.status_code < 500
    assert stored(a) == [(ORIGIN, 7)]


def test_directory_init_trust_load(tmp_path: Path) -> None:
    d = tmp_path / "arbiter"
    vkey = arb.init(d, "hotline-arbiter").vkey
    assert vkey.startswith("hotline-arbiter+")
    assert (d / arb.SEED_FILE).stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError):
        arb.init(d, "hotline-arbiter")
    create_station(tmp_path / "alpha", "alpha", "Alpha", ["https://127.0.0.1:1"])
    card = load_station(tmp_path / "alpha").card()
    assert arb.trust(d, card.to_text()) == ORIGIN
    a = arb.load(d)
    assert a.cosigner.verifier.vkey == vkey
    assert a.logs[ORIGIN].public_key == card.card.log_key
    (d / arb.SEED_FILE).chmod(0o644)
    with pytest.raises(ConfigError):
        arb.load(d)


def test_init_refuses_a_bad_name_and_load_a_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        arb.init(tmp_path / "x", "bad name")
    with pytest.raises(ConfigError):
        arb.load(tmp_path / "nowhere")
