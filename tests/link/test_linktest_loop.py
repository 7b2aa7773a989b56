"""The link tester's side keeps the event loop free (SQLite, PostgreSQL): building a test
(it reads our next sequence number), the witnessing offer, checking the reply and taking
it (cosignature, inclusion proofs) run off the loop's thread; the loop never stalls.

Driven through the transport seam (tests/link/conftest.py): alpha's ``LinkTester`` with
witnessing against bravo's real peer endpoint, in process, after messages were delivered
and receipted, so that the second test asks for and checks inclusion proofs. Before:
``Line.make_link_test`` read the store on the loop, and the reply was decoded, verified
and opened there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hotline.link.linktest import LinkTester
from hotline.service import linkproto
from tests.link.conftest import Link
from tests.loopwatch import LoopWatch


def test_the_link_testers_side_never_reads_or_parses_on_the_loop(
    run_link: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(link: Link) -> None:
        for i in range(3):
            await link.send(f"message {i}")
        await link.drain()
        assert link.queued() == 0
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
        watch = LoopWatch(asyncio.get_running_loop())
        watch.engine(link.alpha.read_engine)
        watch.engine(link.bravo.read_engine)
        for name in ("make_link_test", "check_link_reply"):
            monkeypatch.setattr(linkproto, name, watch.wrap(getattr(linkproto, name), name))
        try:
            first = await tester.test_once()  # bravo cosigns alpha's log
            # bravo's log, cosigned by alpha, so that alpha's next test asks for proofs
            await link.bravo.witnessing.offer("alpha")
            second = await tester.test_once()
        finally:
            watch.close()
        assert first["ok"] is True, first
        assert first["cosigned"] is True, first
        assert second["ok"] is True, second
        assert len(replies) == 2
        assert watch.seen == {"make_link_test", "check_link_reply"}
        assert watch.on_loop == []
        assert watch.off_loop > 0
        assert watch.stalls == 0

    run_link(scenario)
