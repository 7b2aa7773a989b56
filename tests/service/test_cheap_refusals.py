"""Refusals are cheap (issue 7, the line, item 3): a batch mixing a peer's replays,
duplicates and other refusals with honest envelopes is decided without rolling anything
back; the honest ones are stored in the same commit, each refusal is answered with its
code, and nothing reloads the deconfliction registry."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from hotline.crypto import primitives
from hotline.errors import HotlineError
from hotline.wire import envelope as wire
from tests.service import peerforge
from tests.service.conftest import Pair, snapshot


def test_refusals_in_a_batch_roll_nothing_back_and_reload_nothing(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(3):
            await p.send(f"m{i}")
        first = p.outbound(p.alpha, "bravo")
        await p.deliver(p.alpha, p.bravo, first)
        rollbacks: list[Any] = []
        reloads: list[Any] = []
        p.bravo.writer.on_rollback.append(rollbacks.append)
        p.bravo.registry.reload = reloads.append  # type: ignore[method-assign]
        for i in range(3):
            await p.send(f"n{i}")
        honest = p.outbound(p.alpha, "bravo")

        def replay_of(raw: bytes) -> bytes:  # same sequence, other bytes: equivocation
            u = wire.decode(raw, max_bytes=1 << 20)
            return wire.seal_envelope(
                dataclasses.replace(u.header, message_id=uuid.uuid4()),
                b'{"type":"text","text":"other"}',
                primitives.Signer(p.alpha.identity.signing_seed),
                p.bravo.line.card.card.encryption_key,
            ).raw

        hostile = [replay_of(r) for r in first] + [peerforge.message(p, 10_000)]
        batch = [hostile[0], honest[0], first[1], hostile[1], honest[1], hostile[2],
                 honest[2], hostile[3]]  # fmt: skip
        results = await p.bravo.line.store_inbound([p.bravo.line.check_inbound(r) for r in batch])
        codes = [r.code if isinstance(r, HotlineError) else type(r).__name__ for r in results]
        assert codes == ["replay", "bytes", "bytes", "replay", "bytes", "replay", "bytes",
                         "seq_window"]  # fmt: skip
        assert rollbacks == []
        assert reloads == []
        for result in (results[1], results[4], results[6]):
            assert isinstance(result, bytes)
            assert await p.alpha.line.record_receipt("bravo", result)
        assert p.outbound(p.alpha, "bravo") == []

    run_pair(scenario)


def test_a_receipt_naming_the_wrong_sequence_is_refused_without_a_rollback(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        from hotline.errors import EnvelopeError
        from hotline.wire.envelope import Kind
        from hotline.wire.messages import ReceiptPayload

        await p.send()
        [raw] = p.outbound(p.alpha, "bravo")
        h = wire.decode(raw, max_bytes=1 << 20).header
        body = ReceiptPayload(
            envelope_hash=primitives.sha256(raw).hex(), sender="alpha", sequence=h.sequence + 1,
            message_id=h.message_id, stored_at_us=p.clock.now_us(), leaf_index=3, tree_size=4,
        ).to_bytes()  # fmt: skip
        bad = peerforge.seal(p, Kind.RECEIPT, body, src="bravo", sequence=0)
        rollbacks: list[Any] = []
        p.alpha.writer.on_rollback.append(rollbacks.append)
        before = snapshot(p.alpha)
        with pytest.raises(EnvelopeError) as info:
            await p.alpha.line.record_receipt("bravo", bad)
        assert info.value.code == "bad_receipt"
        assert rollbacks == []
        assert snapshot(p.alpha) == before

    run_pair(scenario)


def test_a_message_over_the_envelope_limit_is_refused_without_a_rollback(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair) -> None:
        from hotline.errors import InputError

        rollbacks: list[Any] = []
        p.alpha.writer.on_rollback.append(rollbacks.append)
        before = snapshot(p.alpha)
        with pytest.raises(InputError) as info:
            await p.send("x" * 3000)
        assert info.value.code == "too_large"
        assert rollbacks == []
        assert snapshot(p.alpha) == before
        await p.send("fits")

    run_pair(scenario, max_envelope_bytes=1024)


def test_payload_values_limit_is_computed_once_per_settings(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox's pre-parse bound on a payload's JSON values is computed once per settings
    object, not for every envelope, and follows settings replaced on the context."""
    from hotline.service import context

    calls: list[Any] = []
    real = context.payload_values_limit

    def counted(settings: Any) -> int:
        calls.append(settings)
        return real(settings)

    monkeypatch.setattr(context, "payload_values_limit", counted)

    async def scenario(p: Pair) -> None:
        for i in range(3):
            await p.send(f"m{i}")
        raws = p.outbound(p.alpha, "bravo")
        ctx = p.bravo.line.ctx
        for raw in raws:
            p.bravo.line.check_inbound(raw)
        assert calls == [ctx.settings]
        assert ctx.payload_values_most == real(ctx.settings)
        vertices = ctx.settings.geometry_max_vertices * 10
        ctx.settings = ctx.settings.model_copy(update={"geometry_max_vertices": vertices})
        p.bravo.line.check_inbound(raws[0])
        assert calls[1:] == [ctx.settings]
        assert ctx.payload_values_most == real(ctx.settings) > real(calls[0])

    run_pair(scenario)
