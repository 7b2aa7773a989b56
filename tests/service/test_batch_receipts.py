"""One signature per writer batch: the receipts of envelopes stored together share one
signed root, each still checks alone at the sender, a copy inside the batch gets the
same receipt as the first, and an envelope refused mid-batch gets none."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import sqlalchemy as sa

from hotline.errors import HotlineError
from hotline.store import schema
from hotline.store.writer import WriteTx
from hotline.wire import batchreceipt
from tests.service import peerforge
from tests.service.conftest import Pair


async def _one_writer_batch(p: Pair, items: list[Any]) -> list[bytes | Exception]:
    """Store ``items`` at bravo in ONE writer batch: the writer is held busy by a unit
    until every ingest unit is queued behind it."""
    writer = p.bravo.writer
    started, gate = threading.Event(), threading.Event()

    def hold(_tx: WriteTx) -> None:
        started.set()
        gate.wait(30)

    held = asyncio.ensure_future(writer.submit(hold))
    await asyncio.to_thread(started.wait, 30)
    storing = asyncio.ensure_future(p.bravo.line.store_inbound(items))
    # each unit is queued by a task of its own, a few loop steps on (no timing: the
    # writer's thread queue has no awaitable event, and the writer is held meanwhile)
    while writer._queue.qsize() < len(items):  # noqa: ASYNC110
        await asyncio.sleep(0)
    gate.set()
    await held
    return await storing


def test_a_batch_shares_one_signed_root_and_each_receipt_checks_alone(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(5):
            await p.send(f"m{i}")
        raws = p.outbound(p.alpha, "bravo")
        # refused by the store: beyond the window (whatever the batch stores before it)
        far = peerforge.message(p, 10 + p.bravo.line.settings.max_sequence_ahead)
        check = p.bravo.line.check_inbound
        items = [check(raws[0]), check(raws[1]), check(far), check(raws[0]), check(raws[2])]
        items += [check(r) for r in raws[3:]]
        got = await _one_writer_batch(p, items)
        assert isinstance(got[2], HotlineError)
        assert got[2].code == "seq_window"
        receipts = [r for k, r in enumerate(got) if k != 2]
        assert all(isinstance(r, bytes) for r in receipts)
        assert got[3] == got[0]  # the copy gets the first one's receipt
        roots = {batchreceipt.decode(r).root_envelope for r in receipts}  # type: ignore[arg-type]
        assert len(roots) == 1  # one signature for the whole batch
        [root_env] = roots
        assert batchreceipt.open_receipt(
            receipts[0], p.bravo.line.card.card.signing_key, sender="bravo",  # type: ignore[arg-type]
            recipient="alpha", max_envelope_bytes=1 << 20,
        )[1].sequence == 1  # fmt: skip
        assert b'"count":5' in root_env
        # each stored receipt is the one answered, and each is recorded once at alpha
        i = schema.inbound
        with p.bravo.read_engine.connect() as conn:
            stored = dict(conn.execute(sa.select(i.c.sequence, i.c.receipt)).all())
        assert [stored[s] for s in (1, 2, 1, 3, 4, 5)] == receipts
        outcomes = await p.alpha.line.record_receipts("bravo", receipts)  # type: ignore[arg-type]
        assert outcomes == [True, True, False, True, True, True]
        assert p.outbound(p.alpha, "bravo") == []
        # a resent copy, later, gets the stored batch receipt back
        [again] = await p.bravo.line.store_inbound([check(raws[4])])
        assert again == receipts[-1]
        # alpha's rebuild verifies the five receipts' shared root once, not five times
        opened: list[bytes] = []
        real_parse = batchreceipt.parse_root

        def parse_root(plaintext: bytes) -> Any:  # called once per root verified
            opened.append(plaintext)
            return real_parse(plaintext)

        batchreceipt.parse_root = parse_root  # type: ignore[assignment]
        try:
            await p.alpha.writer.submit(lambda tx: p.alpha.line.rebuild_projections(tx.conn))
        finally:
            batchreceipt.parse_root = real_parse  # type: ignore[assignment]
        assert len(opened) == 1

    run_pair(scenario)


def test_a_batch_of_one_is_the_single_signed_receipt(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send("alone")
        [raw] = p.outbound(p.alpha, "bravo")
        [receipt] = await _one_writer_batch(p, [p.bravo.line.check_inbound(raw)])
        assert isinstance(receipt, bytes)
        assert not batchreceipt.is_batch(receipt)
        assert await p.alpha.line.record_receipt("bravo", receipt) is True

    run_pair(scenario)
