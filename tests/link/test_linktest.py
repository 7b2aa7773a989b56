"""The link tester through the transport seam: a hung peer is DOWN within two link-test
intervals (a real loopback socket that accepts and never answers), every wait on the
peer is bounded, and each checked reply hands over the peer's limits and the reply."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hotline.link import framing
from hotline.link.client import PeerClient
from hotline.link.health import Timing
from hotline.link.linktest import HealthRecorder, LinkTester
from hotline.link.outbox import Outbox
from hotline.store import linkhistory
from hotline.wire.messages import LinkTestReplyPayload
from tests.link.conftest import Link

#: processing time allowed beyond the timing rule's worst case (writer commits, TLS
#: set-up on a loaded machine); the rule itself is checked exactly in test_link_parts
SLACK_S = 3.0
#: a short interval so that the test takes seconds (today: 3 x peer_timeout_s + 1 s + 2 s
#: = 33 s to DOWN; with the timing rule: 3 x 0.48 s + 2 x 0.13 s = 1.7 s)
FAST = {"link_test_interval_s": 2.0, "link_down_after_failures": 3, "peer_timeout_s": 10.0}

FAST_TIMING = {"interval_s": 2.0, "down_after": 3, "peer_timeout_s": 10.0}


@asynccontextmanager
async def hung_peer() -> AsyncIterator[str]:
    """A loopback TCP endpoint that accepts connections and never answers; its URL."""
    stop = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await stop.wait()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        stop.set()
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


def client_to(link: Link, url: str) -> PeerClient:
    """Alpha's HTTPS client to bravo, at ``url`` instead of bravo's endpoint."""
    s = link.alpha.settings
    timing = Timing(s.link_test_interval_s, s.link_down_after_failures, s.peer_timeout_s)
    card = dataclasses.replace(link.bravo.identity, endpoints=(url,)).card()
    return PeerClient(
        link.alpha.identity,
        card,
        timeout_s=s.peer_timeout_s,
        link_test_timeout_s=timing.test_timeout_s,
    )


def test_a_hung_peer_is_down_with_an_alarm_within_two_intervals(run_link: Any) -> None:
    """The peer hangs from the start: DOWN within two intervals of the first test (the
    rule's worst case is an interval less, checked exactly in test_link_parts; the rest
    is room for processing). Today each test waits peer_timeout_s (10 s) and the pauses
    between are 1 s and 2 s: DOWN after 33 s."""

    async def scenario(link: Link) -> None:
        s = link.alpha.settings
        assert Timing(**FAST_TIMING).worst_time_to_down_s() - s.link_test_interval_s < 2
        async with hung_peer() as url:
            client = client_to(link, url)
            tester = LinkTester(
                link.alpha.line, client, HealthRecorder(link.alpha.line), s.link_test_interval_s
            )
            task = asyncio.create_task(tester.run())
            try:
                async with asyncio.timeout(2 * s.link_test_interval_s):
                    while link.health().state != "DOWN":  # noqa: ASYNC110 - the store has no event
                        await asyncio.sleep(0.05)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await client.aclose()
        h = link.health()
        assert h.last_error == "peer_timeout"
        assert h.failures >= s.link_down_after_failures
        assert [(a["kind"], a["peer"]) for a in link.alarms()] == [("link_down", "bravo")]

    run_link(scenario, alpha=FAST)


class Hang:
    """A transport whose peer never answers anything."""

    peer = "bravo"
    path = "https"

    def __init__(self) -> None:
        self.calls = 0

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        self.calls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def link_test(self, envelope: bytes) -> bytes:
        self.calls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        return None


def test_a_link_test_waits_no_longer_than_its_share_of_the_interval(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        tester = LinkTester(link.alpha.line, Hang(), HealthRecorder(link.alpha.line), 1.0)
        async with asyncio.timeout(tester.timing.test_bound_s + SLACK_S):
            result = await tester.test_once()
        assert (result["ok"], result["error"]) == (False, "peer_timeout")

    run_link(scenario, alpha=FAST)


def test_a_delivery_to_a_hung_peer_is_bounded_and_backs_off(run_link: Any) -> None:
    """Today a transport that never answers holds the lane for ever."""

    async def scenario(link: Link) -> None:
        m = await link.send("hello")
        hang = Hang()
        box = Outbox(link.alpha.line, hang, link.recorder)
        async with asyncio.timeout(box.timing.delivery_timeout_s + SLACK_S):
            await box._lane_round(box.lanes[1])
        got = link.message(m.message_id)
        assert (got["state"], got["last_error"], got["attempts"]) == ("sent", "peer_timeout", 1)
        assert m.entry_idx in box.lanes[1].retry_at
        assert link.health().failures == 1

    run_link(scenario, alpha={"peer_timeout_s": 0.3, "link_test_interval_s": 0.5})


def test_each_checked_reply_hands_over_the_limits_and_the_reply(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        replies: list[tuple[str, LinkTestReplyPayload]] = []
        tester = LinkTester(
            link.alpha.line,
            link.transport,
            link.recorder,
            60.0,
            limits=link.limits,
            on_reply=lambda peer, reply: replies.append((peer, reply)),
        )
        assert link.limits.heard is None
        result = await tester.test_once()
        assert result["ok"] is True
        [(peer, reply)] = replies
        assert peer == "bravo"
        assert reply.limits is not None
        b = link.bravo.settings
        assert reply.limits.max_batch_envelopes == b.max_batch_envelopes == 7
        assert reply.limits.max_request_bytes == b.max_request_bytes
        assert reply.limits.max_envelope_bytes == b.max_envelope_bytes
        mine = link.alpha.settings
        assert link.limits.effective == framing.Limits(
            7, b.max_request_bytes, min(b.max_envelope_bytes, mine.max_envelope_bytes)
        )
        assert link.limits.version == 1
        await tester.test_once()
        assert len(replies) == 2
        assert link.limits.version == 1  # the same limits: no change

    run_link(scenario, bravo={"max_batch_envelopes": 7, "max_envelope_bytes": 4096})


def test_a_failed_link_test_calls_no_hook(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        replies: list[Any] = []
        tester = LinkTester(
            link.alpha.line, Hang(), link.recorder, 1.0, on_reply=lambda *a: replies.append(a)
        )
        assert (await tester.test_once())["ok"] is False
        assert replies == []

    run_link(scenario, alpha=FAST)


def test_each_link_test_goes_into_the_bounded_history(run_link: Any) -> None:
    """HealthRecorder writes every test into the peer's history ring (store/linkhistory.py)
    with the health, and the ring keeps ``link_history_size`` tests."""

    async def scenario(link: Link) -> None:
        good = LinkTester(link.alpha.line, link.transport, link.recorder, 60.0)
        bad = LinkTester(link.alpha.line, Hang(), link.recorder, 1.0)
        for tester in (good, good, bad, good, good):
            await tester.test_once()
        with link.alpha.read_engine.connect() as conn:
            kept = linkhistory.recent(conn, "bravo", 100)
            assert linkhistory.count(conn, "bravo") == 3
        assert [t.ok for t in kept] == [False, True, True]
        assert kept[0].error is not None
        assert kept[0].rtt_ms is None
        assert kept[-1].rtt_ms is not None
        assert kept[-1].state == link.health().state

    run_link(scenario, alpha={**FAST, "link_history_size": 3})
