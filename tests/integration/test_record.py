"""The record between real station processes: transcripts of a demo exported and verified
by the installed command, and the ledger API of running stations checked with nothing but
the stations' cards (signed checkpoints, the peer's cosignatures, inclusion and
consistency proofs), and receipts proved in the peer's cosigned log."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.crypto.card import SignedCard
from hotline.crypto.keys import load_station
from hotline.errors import ProofError, SignatureError
from hotline.ledger import merkle
from hotline.ledger.checkpoint import Checkpoint, open_checkpoint
from hotline.ledger.cosignature import CosignatureVerifier
from hotline.ledger.entry import Entry, EntryKind
from hotline.ledger.note import Ed25519Verifier, open_note
from hotline.localnet import LocalStation
from hotline.service.witnessing import cosigner_of, origin_of
from hotline.settings import Settings
from hotline.store import schema
from tests.integration.conftest import Net, cli, cli_process, message, send, wait_until

pytestmark = pytest.mark.integration


def card_of(data_dir: Path) -> SignedCard:
    return load_station(data_dir).card()


def log_key(card: SignedCard) -> Ed25519Verifier:
    return Ed25519Verifier(origin_of(card.card.station_id), card.card.log_key)


def cosign_key(card: SignedCard) -> CosignatureVerifier:
    return CosignatureVerifier(cosigner_of(card.card.station_id), card.card.cosign_key)


def store_counts(data_dir: Path) -> dict[str, int]:
    """Rows of the receipts and receipt_proofs tables, read from the station's store (the
    SQLite file opened read-only, or its PostgreSQL database)."""
    url = Settings(data_dir=data_dir).store_url
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in (schema.receipts, schema.receipt_proofs)
            }
    finally:
        engine.dispose()


# --- hotline demo, export, verify -----------------------------------------------------


@pytest.mark.slow
def test_demo_transcripts_verify_and_a_changed_entry_is_named(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    done = cli_process("demo", "--once", "--dir", root, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # the demo's link tests prove at least its four messages each way (steps it adds after
    # its link tests may add receipts that are not proved yet)
    for name in ("alpha", "bravo"):
        counts = store_counts(root / name)
        assert counts["receipt_proofs"] >= 4, (name, counts)
        assert counts["receipt_proofs"] <= counts["receipts"], (name, counts)

    paths = {name: tmp_path / f"{name}.transcript.json" for name in ("alpha", "bravo")}
    for name, path in paths.items():
        r = cli("export", "--transcript", path, "-d", root / name)
        assert r.returncode == 0, r.stdout + r.stderr
        assert path.exists()
    # exporting over an existing file is refused
    again = cli("export", "--transcript", paths["alpha"], "-d", root / "alpha")
    assert again.returncode != 0

    ok = cli_process("verify", paths["alpha"], paths["bravo"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "✓ cross-check" in ok.stdout
    assert "everything alpha sent, bravo logged as received" in ok.stdout
    for name in ("alpha", "bravo"):
        assert f"station {name}," in ok.stdout

    # one byte of one envelope entry changed: refused, naming the entry
    doc = json.loads(paths["alpha"].read_text())
    kinds = [Entry.decode(base64.b64decode(e)).kind for e in doc["entries"]]
    i = kinds.index(EntryKind.ENVELOPE_OUT)
    raw = bytearray(base64.b64decode(doc["entries"][i]))
    raw[len(raw) // 2] ^= 0x01
    doc["entries"][i] = base64.b64encode(bytes(raw)).decode()
    bad = tmp_path / "alpha.changed.json"
    bad.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    for args in ((bad,), (bad, paths["bravo"]), (paths["bravo"], bad)):
        r = cli("verify", *args)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "NOT VERIFIED" in r.stderr
        assert f"entry {i}:" in r.stderr, r.stderr
        assert "cross-check" not in r.stdout

    # a file that cannot be read, and one that is not a transcript
    r = cli("verify", tmp_path / "missing.json")
    assert r.returncode == 2
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    r = cli("verify", junk)
    assert r.returncode == 1
    assert "NOT VERIFIED" in r.stderr


# --- the ledger API of running stations -----------------------------------------------


def link_test(src: LocalStation, dst: LocalStation) -> dict[str, Any]:
    result: dict[str, Any] = src.api("POST", f"/api/v1/link/{dst.station_id}/test")
    assert result["ok"], result
    assert result["cosigned"] is True, result
    return result


def checked_checkpoint(st: LocalStation, own: SignedCard, peer: SignedCard) -> Checkpoint:
    """GET the station's newest cosigned checkpoint; check the log's signature and the
    peer's cosignature with the keys on the two cards; return the checkpoint."""
    got = st.api("GET", "/api/v1/ledger/checkpoint")
    assert got["origin"] == origin_of(st.station_id)
    assert got["cosigned_by"] == [peer.card.station_id]
    assert got["size"] <= got["ledger_size"]
    cp = open_checkpoint(got["note"], [log_key(own)]).checkpoint
    assert cp.size == got["size"]
    _body, _, sigs = got["note"].partition("\n\n")
    lines = [ln + "\n" for ln in sigs.splitlines() if cosigner_of(peer.card.station_id) in ln]
    assert len(lines) == 1, got["note"]
    cosign_key(peer).verify_line(cp.format(), lines[0])
    # both signatures through the signed-note reader too
    assert len(open_note(got["note"], [log_key(own), cosign_key(peer)]).verified) == 2
    # the peer's cosignature is not alpha's own, nor valid under the station's own key
    with pytest.raises(SignatureError):
        cosign_key(own).verify_line(cp.format(), lines[0])
    return cp


def test_ledger_api_checkpoints_proofs_and_receipts_proved(net: Net) -> None:
    a, b = net.pair()
    a.start()
    b.start()
    cards = {st.station_id: card_of(st.data_dir) for st in (a, b)}
    sent = [send(a, "bravo", f"alpha to bravo {i}") for i in range(3)]
    sent += [send(b, "alpha", f"bravo to alpha {i}") for i in range(2)]
    owner = {m["message_id"]: (a if i < 3 else b) for i, m in enumerate(sent)}
    for mid, st in owner.items():
        wait_until(
            f"{mid} delivered",
            lambda st=st, mid=mid: message(st, mid)["state"],
            lambda s: s != "queued",
        )

    first: dict[str, Checkpoint] = {}
    proved: dict[str, int] = {"alpha": 0, "bravo": 0}
    for rnd in range(2):
        for src, dst in ((a, b), (b, a)):
            result = link_test(src, dst)
            proved[src.station_id] += result.get("receipts_proved") or 0
            assert result.get("receipts_failed", 0) == 0, result
            if rnd == 0:
                first[src.station_id] = checked_checkpoint(
                    src, cards[src.station_id], cards[dst.station_id]
                )

    # every receipt each station holds is proved in the peer's log it cosigned
    for st, n in ((a, 3), (b, 2)):
        counts = store_counts(st.data_dir)
        assert counts["receipts"] == n, counts
        assert counts["receipt_proofs"] == n, counts

    for st, peer in ((a, b), (b, a)):
        own, other = cards[st.station_id], cards[peer.station_id]
        cp = checked_checkpoint(st, own, other)
        old = first[st.station_id]
        assert old.size < cp.size
        # an inclusion proof of each of the station's messages, to the cosigned checkpoint
        for mid, sender in owner.items():
            if sender is not st:
                continue
            # ask at the checkpoint's size: a scheduled link test may cosign a newer one
            inc = st.api(
                "GET",
                "/api/v1/ledger/proof/inclusion",
                params={"message_id": mid, "size": cp.size},
            )
            assert inc["message_id"] == mid
            assert inc["tree_size"] == cp.size
            assert bytes.fromhex(inc["root"]) == cp.root
            proof = [bytes.fromhex(h) for h in inc["proof"]]
            leaf = bytes.fromhex(inc["leaf_hash"])
            merkle.verify_inclusion(leaf, inc["leaf_index"], cp.size, proof, cp.root)
            # and to the older checkpoint, which the same leaf was already in
            if inc["leaf_index"] < old.size:
                early = st.api(
                    "GET",
                    "/api/v1/ledger/proof/inclusion",
                    params={"message_id": mid, "size": old.size},
                )
                merkle.verify_inclusion(
                    leaf,
                    early["leaf_index"],
                    old.size,
                    [bytes.fromhex(h) for h in early["proof"]],
                    old.root,
                )
            # a proof does not verify for another leaf
            with pytest.raises(ProofError):
                merkle.verify_inclusion(
                    merkle.leaf_hash(b"another entry"), inc["leaf_index"], cp.size, proof, cp.root
                )
        # consistency from the first cosigned checkpoint to the latest, both signed
        con = st.api(
            "GET", "/api/v1/ledger/proof/consistency", params={"old": old.size, "new": cp.size}
        )
        assert (bytes.fromhex(con["old_root"]), bytes.fromhex(con["new_root"])) == (
            old.root,
            cp.root,
        )
        merkle.verify_consistency(
            old.size, cp.size, [bytes.fromhex(h) for h in con["proof"]], old.root, cp.root
        )

    # refusals of the ledger API (an InputError is 422, see hotline.api.errors)
    with a.client() as c:
        assert (
            c.get(
                "/api/v1/ledger/proof/inclusion", params={"message_id": "no-such-message"}
            ).status_code
            == 404
        )
        assert (
            c.get("/api/v1/ledger/proof/consistency", params={"old": 5, "new": 4}).status_code
            == 422
        )
        assert (
            c.get("/api/v1/ledger/proof/consistency", params={"old": 0, "new": 10**9}).status_code
            == 422
        )
        mid = next(m for m, s in owner.items() if s is a)
        assert (
            c.get(
                "/api/v1/ledger/proof/inclusion", params={"message_id": mid, "size": 10**9}
            ).status_code
            == 422
        )
    with b.client() as c:
        c.headers["authorization"] = "Bearer wrong"
        assert c.get("/api/v1/ledger/checkpoint").status_code == 401
