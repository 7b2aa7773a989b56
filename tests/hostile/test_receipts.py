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
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import Response

from hotline.errors import HotlineError
from hotline.ledger.entry import Entry, EntryKind
from hotline.link import framing
from hotline.link.client import PeerClient
from hotline.link.outbox import Outbox
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
            raw = peer.receipt_for(now, envelope, header=header, **claims)
            before = t.snapshot()
            with pytest.raises(HotlineError) as refused:
                await station.line.record_receipt(peer.station_id, raw)
            assert refused.value.code == code, (what, refused.value)
            assert not diff(before, t.snapshot())
            got = await t.operator("GET", f"/api/v1/messages/{sent['message_id']}")
            assert got["state"] != "delivered"
            # a truthful receipt is then recorded, once
            honest = peer.receipt_for(now, envelope)
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
            await t.send_to_peer("did you get this?")
            envelope = _sent_to(t, peer.station_id)
            stranger = HostilePeer(
                new_identity("mallory", "Not Mallory"), station.line.card, peer.next_seq
            )
            raw = stranger.receipt_for(t.now_us(), envelope)
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


# --- through the transport seam: alpha's real outbox delivers to the scripted peer ------


def lying_peer_app(peer: HostilePeer, now_us: Any, **claims: Any) -> Any:
    """Mallory's peer endpoint, scripted: takes every envelope and answers each with a
    receipt that lies in ``claims``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/peer/v1/envelopes")
    async def envelopes(request: Request) -> Response:
        raws = framing.decode_batch(await request.body(), max_items=256, max_item_bytes=1 << 24)
        results = [
            framing.Result(receipt=peer.receipt_for(now_us(), raw, **claims)) for raw in raws
        ]
        return Response(framing.encode_results(results), media_type=framing.CONTENT_TYPE)

    return app


@pytest.mark.parametrize(
    "claims",
    [{"stored_at_us": 2**63}, {"stored_at_us": 0}, {"sequence": 99}],
    ids=["stored at 2^63", "stored in 1970", "wrong sequence"],
)
def test_lying_receipts_through_the_outbox_deliver_nothing(
    tmp_path: Path, store_url: str, claims: dict[str, Any]
) -> None:
    """alpha's outbox delivers to mallory through the transport seam; every receipt
    mallory answers with lies. The message stays undelivered and nothing is recorded but
    the attempt itself (``deliveries``: the operational record that a transmission took
    place, exempt for that reason and checked to name this message only)."""
    station, peer = build_station(tmp_path, store_url)

    async def main() -> None:
        station.writer.start()
        async with in_process_target(station, peer) as t:
            sent = await t.send_to_peer("did you get this?")
            app = lying_peer_app(peer, t.now_us, **claims)
            client = PeerClient(
                station.identity,
                peer.identity.card(),
                timeout_s=10,
                transport=httpx.ASGITransport(app=app),
            )
            box = Outbox(station.line, client, station.recorder)
            before = t.snapshot()
            task = asyncio.create_task(box.run())
            try:
                for _ in range(300):
                    got = await t.operator("GET", f"/api/v1/messages/{sent['message_id']}")
                    if got["attempts"]:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError("the outbox never tried to deliver")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await client.aclose()
            changes = diff(before, t.snapshot())
            assert set(changes) <= {"deliveries"}, changes
            assert got["state"] != "delivered"
            assert got["delivered_at_us"] is None
            await t.still_answers()

    try:
        asyncio.run(main())
    finally:
        station.close()
