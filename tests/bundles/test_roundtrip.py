"""Bundles between two stations with no network path: round trip, exactly once, and the
answering bundle clearing the sender's outbox (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.errors import InputError
from hotline.store import schema
from tests.bundles.conftest import Pair, bundles_of, run_pair, state
from tests.service.conftest import ledger_actions, make_identity

__all__ = ["run_pair"]


def test_round_trip_clears_both_outboxes(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(3):
            await p.send(f"from alpha {i} привет")
        await p.send("from bravo", src=p.bravo, dst="alpha")
        out = await bundles_of(p.alpha).export("bravo", "ko")
        assert out.sequences == (1, 2, 3)
        assert out.receipts == 0

        got = await bundles_of(p.bravo).import_(out.data, "li")
        assert got.stored == (1, 2, 3)
        assert got.duplicates == ()
        assert got.refused == {}
        answer = got.answer
        assert answer is not None
        assert answer.answers == out.bundle_id
        assert answer.sequences == (1,)
        assert answer.receipts == 3
        assert p.outbound(p.alpha, "bravo")  # alpha does not know yet

        back = await bundles_of(p.alpha).import_(answer.data, "ko")
        assert back.receipts_recorded == 3
        assert back.stored == (1,)
        assert back.answered == out.bundle_id
        assert p.outbound(p.alpha, "bravo") == []
        with p.alpha.read_engine.connect() as conn:  # the messages show what carried them
            rows = conn.execute(
                sa.select(schema.messages.c.message_id, schema.deliveries.c.path).join(
                    schema.deliveries,
                    schema.deliveries.c.entry_idx == schema.messages.c.entry_idx,
                )
            ).all()
        assert [path for _, path in rows] == ["bundle"] * 3
        assert back.answer is not None
        assert back.answer.receipts == 1

        last = await bundles_of(p.bravo).import_(back.answer.data, "li")
        assert last.receipts_recorded == 1
        assert p.outbound(p.bravo, "alpha") == []
        # an empty answer: it only tells alpha that bravo holds its receipt
        assert last.answer is not None
        assert last.answer.sequences == ()
        assert last.answer.receipts == 0
        end = await bundles_of(p.alpha).import_(last.answer.data, "ko")
        assert end.answer is None  # an empty bundle is not answered
        with pytest.raises(InputError) as nothing:
            await bundles_of(p.alpha).export("bravo", "ko")
        assert nothing.value.code == "nothing_to_carry"

        [exp, *_] = ledger_actions(p.alpha, "bundle_export")
        assert exp["bundle_id"] == out.bundle_id
        assert exp["sequences"] == [1, 2, 3]
        [imp] = ledger_actions(p.bravo, "bundle_import")[:1]
        assert imp["by"] == "li"
        assert imp["sequences"] == [1, 2, 3]

    run_pair(scenario)


def test_second_import_is_refused_and_changes_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send("once")
        out = await bundles_of(p.alpha).export("bravo", "ko")
        await bundles_of(p.bravo).import_(out.data, "li")
        before = state(p.bravo)
        with pytest.raises(InputError) as again:
            await bundles_of(p.bravo).import_(out.data, "li")
        assert again.value.code == "bundle_imported"
        assert state(p.bravo) == before

    run_pair(scenario)


def test_after_https_no_doubles_and_the_stored_receipt(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.send("first")
        await p.send("second")
        out = await bundles_of(p.alpha).export("bravo", "ko")
        # the same envelopes arrive over the network path first
        receipts = await p.deliver(p.alpha, p.bravo, p.outbound(p.alpha, "bravo"))
        rows = state(p.bravo)["inbound"]
        got = await bundles_of(p.bravo).import_(out.data, "li")
        assert got.stored == ()
        assert got.duplicates == (1, 2)
        assert state(p.bravo)["inbound"] == rows
        assert got.answer is not None
        from hotline.wire import bundle as wire

        opened = wire.open_bundle(
            got.answer.data,
            max_bytes=p.alpha.settings.bundle_max_bytes,
            recipient="alpha",
            key_of=lambda _sid: p.bravo.line.card.card.signing_key,
        )
        assert set(receipts) <= set(opened.receipts)  # the stored receipts, byte for byte
        back = await bundles_of(p.alpha).import_(got.answer.data, "ko")
        assert back.receipts_recorded == 0
        assert back.receipts_known == 2

    run_pair(scenario)


@pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)
def test_a_receive_only_peer_is_served_by_bundles(run_pair: Any) -> None:
    """A peer whose card names no endpoint has no network path at all: what we send it
    waits in the outbox, and bundles carry it."""

    async def scenario(p: Pair) -> None:
        lone = dataclasses.replace(make_identity("delta"), endpoints=())
        _card, unit = p.alpha.line.peer_add_unit(lone.card().to_text(), "ko")
        await p.alpha.writer.submit(unit)
        await p.send("to the island", dst="delta")
        out = await bundles_of(p.alpha).export("delta", "ko")
        assert out.sequences == (1,)

    run_pair(scenario)
