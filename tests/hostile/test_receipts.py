"""The hostile peer answers the target's envelopes with forged receipts.

The other direction of the line: alpha (in-process, SQLite and PostgreSQL) sends mallory
a message; mallory answers with receipts it signs with its real key but lies in: a
stored time of 1970, 2^62 or 2^63+, in the future; the wrong sequence number; another
envelope's hash; addressed to another station; signed with another key; not a receipt
at all. Each is refused with its code (never a raw database error), the store is exactly
as it was and the message is still not delivered; a truthful receipt is then recorded
once. The receipts are handed to the line as the outbox hands them (the outbox only logs
a refused receipt and keeps the envelope queued).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.crypto import primitives
from hotline.errors import HotlineError
from hotline.ledger.entry import Entry, EntryKind
from hotline.store import schema
from hotline.wire.envelope import Kind
from tests.crypto.helpers import new_identity
from tests.hostile.attacks import Y2020_US
from tests.hostile.conftest import build_station, in_process_target
from tests.hostile.peer import HostilePeer
from tests.hostile.target import Target, diff


def _sent_to(t: Target, peer: str) -> bytes:
    """The one envelope alpha has sent ``peer``, as it is on the wire."""
    e = schema.entries
    with t.store.connect() as conn:
        [leaf] = conn.execute(
            sa.select(e.c.leaf).where(e.c.kind == int(EntryKind.ENVELOPE_OUT), e.c.peer == peer)
        ).scalars()
    return Entry.decode(bytes(leaf)).data


def _receipt(
    peer: HostilePeer,
    now: int,
    envelope: bytes,
    *,
    message_id: str,
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> bytes:
    """A receipt for ``envelope`` signed by ``peer``, with ``claims`` in its payload and
    ``header`` in its header."""
    doc: dict[str, Any] = {
        "envelope_hash": primitives.sha256(envelope).hex(),
        "sender": peer.target_id,
        "sequence": 1,
        "message_id": message_id,
        "stored_at_us": now,
        "leaf_index": 3,
        "tree_size": 4,
    }
    doc.update(claims)
    fields: dict[str, Any] = {
        "kind": int(Kind.RECEIPT),
        "suite": primitives.SUITE_NONE,
        "sequence": 0,
        "plaintext": json.dumps(doc).encode(),
        **(header or {}),
    }
    return peer.envelope(now, **fields)


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("stored in 1970", {"stored_at_us": 0}, "bad_time"),
    ("stored before 2020", {"stored_at_us": Y2020_US - 1}, "bad_time"),
    ("stored in an hour", {"stored_at_us": ("now", 3_600_000_000)}, "bad_time"),
    ("stored at 2^62", {"stored_at_us": 2**62}, "bad_time"),
    ("stored at 2^63", {"stored_at_us": 2**63}, "bad_time"),
    ("stored at 2^64+1", {"stored_at_us": 2**64 + 1}, "bad_time"),
    ("stored at -2^63-1", {"stored_at_us": -(2**63) - 1}, "bad_time"),
    ("the wrong sequence number", {"sequence": 2}, "bad_receipt"),
    ("dated in the future", {"header": {"sent_at_us": ("now", 3_600_000_000)}}, "clock_skew"),
    ("addressed to another station", {"header": {"recipient": "bravo"}}, "misaddressed"),
    ("not a receipt", {"header": {"kind": int(Kind.MESSAGE), "sequence": 5}}, "bad_kind"),
]


def _resolve(value: Any, now: int) -> Any:
    if isinstance(value, tuple) and value[0] == "now":
        return now + value[1]
    if isinstance(value, dict):
        return {k: _resolve(v, now) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("what", "lie", "code"), CASES, ids=[c[0] for c in CASES])
def test_a_forged_receipt_is_refused_with_its_code(
    tmp_path: Path, store_url: str, what: str, lie: dict[str, Any], code: str
) -> None:
    station, peer = build_station(tmp_path, store_url)

    async def main() -> None:
        station.writer.start()
        async with in_process_target(station, peer) as t:
            sent = await t.send_to_peer("did you get this?")
            envelope = _sent_to(t, peer.station_id)
            now = t.now_us()
            claims = _resolve(dict(lie), now)
            header = claims.pop("header", None)
            if header and header.get("kind") == int(Kind.MESSAGE):
                header["suite"] = peer.forged(now).suite
            raw = _receipt(
                peer, now, envelope, header=header, message_id=sent["message_id"], **claims
            )
            before = t.snapshot()
            with pytest.raises(HotlineError) as refused:
                await station.line.record_receipt(peer.station_id, raw)
            assert refused.value.code == code, (what, refused.value)
            assert not diff(before, t.snapshot())
            got = await t.operator("GET", f"/api/v1/messages/{sent['message_id']}")
            assert got["state"] != "delivered"
            # a truthful receipt is then recorded, once
            honest = _receipt(peer, now, envelope, message_id=sent["message_id"])
            assert await station.line.record_receipt(peer.station_id, honest) is True
            assert await station.line.record_receipt(peer.station_id, honest) is False
            got = await t.operator("GET", f"/api/v1/messages/{sent['message_id']}")
            assert got["state"] == "delivered"
            await t.still_answers()

    try:
        asyncio.run(main())
    finally:
        station.close()


def test_a_receipt_signed_with_another_key_is_refused(tmp_path: Path, store_url: str) -> None:
    station, peer = build_station(tmp_path, store_url)

    async def main() -> None:
        station.writer.start()
        async with in_process_target(station, peer) as t:
            sent = await t.send_to_peer("did you get this?")
            envelope = _sent_to(t, peer.station_id)
            stranger = HostilePeer(
                new_identity("mallory", "Not Mallory"), station.line.card, peer.next_seq
            )
            raw = _receipt(stranger, t.now_us(), envelope, message_id=sent["message_id"])
            before = t.snapshot()
            with pytest.raises(HotlineError) as refused:
                await station.line.record_receipt(peer.station_id, raw)
            assert refused.value.code == "bad_signature"
            assert not diff(before, t.snapshot())
            await t.still_answers()

    try:
        asyncio.run(main())
    finally:
        station.close()
