"""The link tester's side keeps the event loop free (SQLite, PostgreSQL): building a test
(it reads our next sequence number), the witnessing offer, checking the reply and taking
it (cosignature, inclusion proofs) run off the loop's thread; the loop never stalls.

Driven through the transport seam (tests/link/conftest.py), against bravo's real peer
endpoint in process: alpha's outbox delivers three messages (its round is watched too),
then alpha's ``LinkTester`` with witnessing runs twice, asking for and checking
inclusion proofs of the receipts. Before:
``Line.make_link_test`` read the store on the loop, and the reply was decoded, verified
and opened there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hotline.link.linktest import LinkTester
from hotline.service import linkproto, receipts
from tests.api.test_peer_endpoint_loop import link_round
from tests.link.conftest import Link
from tests.loopwatch import LoopWatch


def test_the_link_testers_side_never_reads_or_parses_on_the_loop(
    run_link: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(link: Link) -> None:
        watch = LoopWatch(asyncio.get_running_loop())
        watch.engine(link.alpha.read_engine)
        watch.engine(link.bravo.read_engine)
        for i in range(3):
            await link.send(f"message {i}")
        await link.round()  # one batch: the outbox's round is watched too
        assert await asyncio.to_thread(link.queued) == 0  # (the test's read: off the loop)
        missing: list[Any] = []
        replies: list[Any] = []
        tester = LinkTester(
            link.alpha.line,
            link.transport,
            link.recorder,
            link.alpha.settings.link_test_interval_s,
            on_missing=lambda peer, ranges: missing.append(ranges),
            witnessing=link.alpha.witnessing,
            limits=link.limits,
            on_reply=lambda peer, reply: replies.append(reply),
        )
        try:
            # alpha cosigns bravo's log (bravo asks, through alpha's endpoint), so that
            # alpha's test asks bravo for inclusion proofs of its receipts
            assert (await link_round(link.bravo, link.alpha))["cosigned"] is True
            for name in ("make_link_test", "check_link_reply"):
                monkeypatch.setattr(linkproto, name, watch.wrap(getattr(linkproto, name), name))
            first = await tester.test_once()
            second = await tester.test_once()
        finally:
            watch.close()
        for result in (first, second):
            assert result["ok"] is True, result
            assert result["cosigned"] is True, result
        assert first["receipts_proved"] == 3, first
        assert len(replies) == 2
        assert missing == []  # bravo holds everything alpha sent
        assert watch.seen == {"make_link_test", "check_link_reply"}
        assert watch.on_loop == []
        assert watch.off_loop > 0
        assert watch.stalls == 0

    run_link(scenario)


def test_receipts_are_decoded_and_verified_off_the_loop(
    run_link: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch brings up to 256 signed receipts: the outbox checks each one in a worker
    thread (before: on the loop, in ``receipts.record_receipt``)."""

    async def scenario(link: Link) -> None:
        watch = LoopWatch(asyncio.get_running_loop())
        monkeypatch.setattr(
            receipts, "check_receipt", watch.wrap(receipts.check_receipt, "check_receipt")
        )
        try:
            for i in range(3):
                await link.send(f"message {i}")
            await link.round()
        finally:
            watch.close()
        assert await asyncio.to_thread(link.queued) == 0  # all three delivered
        assert watch.seen == {"check_receipt"}
        assert watch.on_loop == []
        assert watch.off_loop > 0

    run_link(scenario)
