"""The SQL of witnessing (store.witnessdb) and of the read side (store.reads), on SQLite
and PostgreSQL: what each function returns for rows put straight into the tables."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Connection

from hotline.ledger.entry import EntryKind
from hotline.store import database, reads, registry_snapshot, schema, witnessdb


@pytest.fixture
def conn(store_url: str) -> Iterator[Connection]:
    eng = database.create(store_url, writer=True)
    database.migrate(eng)
    try:
        with eng.begin() as c:
            yield c
    finally:
        eng.dispose()


def test_checkpoints_and_cosignatures(conn: Connection) -> None:
    assert witnessdb.newest_checkpoint(conn) is None
    assert witnessdb.newest_cosigned_checkpoint(conn) is None
    assert witnessdb.checkpoint_note(conn, 3) is None
    for size in (3, 5, 9):
        witnessdb.add_checkpoint(conn, size, bytes([size]) * 32, f"note {size}\n", 100 + size)
    assert witnessdb.checkpoint_note(conn, 5) == "note 5\n"
    assert witnessdb.newest_checkpoint(conn) == (9, "note 9\n")
    assert witnessdb.cosigned_size(conn, "bravo") is None
    witnessdb.add_cosignature(conn, "bravo", 3, "— bravo a\n", 1)
    witnessdb.add_cosignature(conn, "bravo", 5, "— bravo b\n", 2)
    witnessdb.add_cosignature(conn, "@arbiter", 5, "— arbiter\n", 3)
    assert witnessdb.cosigned_size(conn, "bravo") == 5
    assert witnessdb.has_cosignature(conn, "bravo", 3)
    assert not witnessdb.has_cosignature(conn, "bravo", 9)
    assert not witnessdb.has_cosignature(conn, "charlie", 3)
    # the newest cosigned one is 5, not the newest signed one (9)
    assert witnessdb.newest_cosigned_checkpoint(conn) == (5, "note 5\n")
    assert witnessdb.cosignature_lines(conn, 5) == [
        ("@arbiter", "— arbiter\n"),
        ("bravo", "— bravo b\n"),
    ]
    assert witnessdb.cosignature_lines(conn, 9) == []


def test_witness_state_inserted_then_updated(conn: Connection) -> None:
    assert witnessdb.witness_state(conn, "bravo") is None
    witnessdb.put_witness_state(conn, "bravo", 4, b"\x01" * 32, "n4", 10, new=True)
    assert witnessdb.witness_state(conn, "bravo") == (4, b"\x01" * 32, "n4")
    witnessdb.put_witness_state(conn, "bravo", 7, b"\x02" * 32, "n7", 11, new=False)
    assert witnessdb.witness_state(conn, "bravo") == (7, b"\x02" * 32, "n7")
    assert witnessdb.witness_state(conn, "charlie") is None


def _receipt(conn: Connection, seq: int, leaf_index: int, envelope_hash: bytes) -> None:
    conn.execute(
        schema.receipts.insert().values(
            peer="bravo",
            sequence=seq,
            envelope_hash=envelope_hash,
            leaf_index=leaf_index,
            tree_size=leaf_index + 1,
            stored_at_us=1000 + seq,
        )
    )


def test_unproved_receipts_and_proofs(conn: Connection) -> None:
    for seq in range(1, 7):
        _receipt(conn, seq, 10 * seq, bytes([seq]) * 32)
    # below 50: leaves 10..40; at most 3 of them, ascending
    assert witnessdb.unproved_receipts(conn, "bravo", 50, 3) == [10, 20, 30]
    assert witnessdb.proved_sequences(conn, "bravo", []) == set()
    witnessdb.add_receipt_proof(conn, "bravo", 2, 50, 9)
    assert witnessdb.proved_sequences(conn, "bravo", [1, 2, 3]) == {2}
    assert witnessdb.proved_sequences(conn, "charlie", [2]) == set()
    assert witnessdb.unproved_receipts(conn, "bravo", 50, 10) == [10, 30, 40]
    assert witnessdb.unproved_receipts(conn, "charlie", 50, 10) == []


def test_receipted_envelopes_join_our_outbound_entries(conn: Connection) -> None:
    for seq, kind in ((1, EntryKind.ENVELOPE_OUT), (2, EntryKind.ENVELOPE_IN)):
        h = bytes([seq]) * 32
        _receipt(conn, seq, 10 * seq, h)
        conn.execute(
            schema.entries.insert().values(
                idx=seq,
                kind=int(kind),
                peer="bravo",
                peer_seq=seq,
                envelope_hash=h,
                recorded_at_us=5,
                leaf=b"leaf%d" % seq,
                leaf_hash=b"\x00" * 32,
            )
        )
    rows = witnessdb.receipted_envelopes(conn, "bravo", [10, 20, 30])
    # the ENVELOPE_IN entry with the same hash is not ours: only sequence 1 joins
    assert [(r.sequence, r.leaf_index, r.stored_at_us, bytes(r.leaf)) for r in rows] == [
        (1, 10, 1001, b"leaf1")
    ]
    assert witnessdb.receipted_envelopes(conn, "bravo", []) == []


def _message(conn: Connection, n: int, **kw: object) -> None:
    values: dict[str, object] = {
        "message_id": f"m{n}",
        "direction": "out",
        "peer": "bravo",
        "channel": "ops",
        "precedence": 2,
        "sequence": n,
        "kind": 1,
        "type": "text",
        "body": "{}",
        "operator": None,
        "sent_at_us": n,
        "stored_at_us": n,
        "ack_required": False,
        "entry_idx": n,
    }
    conn.execute(schema.messages.insert().values(**{**values, **kw}))


def test_reads(conn: Connection) -> None:
    _message(conn, 1)
    _message(conn, 2, direction="in", ack_required=True, ack_deadline_us=50)
    _message(conn, 3, ack_required=True, ack_deadline_us=40, type="notice")
    _message(conn, 4, ack_required=True, ack_deadline_us=30, acknowledged_at_us=35, type="notice")
    _message(conn, 5, ack_required=True, ack_deadline_us=20, channel="air")
    conn.execute(
        schema.voids.insert().values(peer="bravo", direction="out", sequence=1, entry_idx=9)
    )
    assert (reads.message_count(conn, "out"), reads.message_count(conn, "in")) == (4, 1)
    assert reads.queued_count(conn) == 0
    assert reads.channels(conn) == [("air", 1, 5), ("ops", 4, 4)]
    assert [r.message_id for r in reads.overdue(conn, 45, 10)] == ["m5", "m3"]
    assert [r.message_id for r in reads.overdue(conn, 100, 2)] == ["m5", "m3"]
    assert [r.message_id for r in reads.messages(conn)] == ["m5", "m4", "m3", "m2", "m1"]
    assert [r.message_id for r in reads.messages(conn, unacknowledged=True)] == ["m5", "m3", "m2"]
    assert [r.message_id for r in reads.messages(conn, direction="in")] == ["m2"]
    assert [r.message_id for r in reads.messages(conn, channel="air", limit=1)] == ["m5"]
    assert [r.message_id for r in reads.messages(conn, peer="charlie")] == []
    one = reads.message(conn, "m1")
    assert one is not None
    assert (one.void_sequence, one.attempts) == (1, None)
    assert reads.message(conn, "nope") is None
    assert [r.message_id for r in reads.typed_messages(conn)] == ["m3", "m4"]
    acked = registry_snapshot.acknowledged(conn, "alpha", ("notice",))
    assert [tuple(r) for r in acked] == [("m4", "bravo", 35)]  # out: acknowledged by the peer
    assert reads.message_entry(conn, "m3") == 3
    assert reads.message_entry(conn, "nope") is None
