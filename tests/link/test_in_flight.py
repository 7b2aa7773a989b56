"""A path that carries several requests at once (``requests_at_once``, as the relay does):
the outbox fills that many requests in a round and keeps them in flight together; one
that fails in the middle hands only its envelopes to the next path, in the same round.

Both paths carry every byte to bravo's real peer endpoint in-process (tests/link/
conftest.py); the wrapper below only counts, holds or cuts requests, as a path would.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hotline.errors import PeerUnreachableError
from hotline.link import framing
from hotline.link.linktest import HealthRecorder
from hotline.link.outbox import Outbox
from hotline.store import operational
from hotline.wire.envelope import Precedence
from tests.link.conftest import Link
from tests.link.test_paths import Switchable


class InFlight(Switchable):
    """A path of ``width`` requests at once; the requests numbered in ``cut`` (from 1, in
    the order they start) fail as unreachable; with ``hold``, every request waits until
    ``width`` of them have started."""

    def __init__(self, inner: Any, path: str, width: int, cut: frozenset[int] = frozenset()):
        super().__init__(inner, path)
        self.requests_at_once = width
        self.cut = cut
        self.hold = False
        self.started = 0
        self.all_started = asyncio.Event()

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        self.started += 1
        n = self.started
        if self.started >= self.requests_at_once:
            self.all_started.set()
        if self.hold:
            await asyncio.wait_for(self.all_started.wait(), 10)
        if n in self.cut:
            raise PeerUnreachableError(f"request {n} on {self.path} is cut")
        return await super().deliver(envelopes)


def make_outbox(link: Link, paths: list[Any]) -> Outbox:
    recorder = HealthRecorder(link.alpha.line)
    recorder.register("bravo", [p.path for p in paths])
    return Outbox(link.alpha.line, paths, recorder, rng=random.Random(5), limits=link.limits)


async def one_round(box: Outbox) -> None:
    lane = next(x for x in box.lanes if int(Precedence.ROUTINE) in x.precedences)
    await box._lane_round(lane)


def test_a_round_fills_the_requests_a_path_carries_at_once(run_link: Any) -> None:
    """Two envelopes per request, three requests at once: seven messages take a round of
    six, in three requests all started before any ends (one after the other, the first
    would wait forever for the third); every receipt checks against its envelope."""

    async def scenario(link: Link) -> None:
        nats = InFlight(link.transport, "nats", 3)
        nats.hold = True
        box = make_outbox(link, [nats])
        sent = [await link.send(f"m{i}") for i in range(7)]
        await one_round(box)
        assert nats.started == 3
        assert len(nats.carried) == 6
        assert link.queued() == 1
        for s in sent[:6]:
            assert link.message(s.message_id)["state"] == "delivered"
        await one_round(box)
        assert link.queued() == 0

    run_link(scenario, max_batch_envelopes=2)


def test_a_request_failing_in_the_middle_hands_only_its_part_to_the_next_path(
    run_link: Any,
) -> None:
    """Of three requests in flight on nats, the second is cut: the first and third are
    delivered on nats, the second's envelopes on https in the same round; nats backs off
    once; bravo holds each message once."""

    async def scenario(link: Link) -> None:
        nats = InFlight(link.transport, "nats", 3, cut=frozenset({2}))
        https = Switchable(link.transport, "https")
        box = make_outbox(link, [nats, https])
        sent = [await link.send(f"m{i}") for i in range(6)]
        await one_round(box)
        assert link.queued() == 0
        paths = [link.message(s.message_id)["path"] for s in sent]
        assert paths == ["nats", "nats", "https", "https", "nats", "nats"]
        assert len(https.carried) == 2
        with link.alpha.read_engine.connect() as conn:
            health = operational.load_path_health(conn, "bravo")
        assert health["nats"].failures == 1
        assert health["nats"].last_error == "peer_unreachable"
        with link.bravo.read_engine.connect() as conn:
            n = conn.exec_driver_sql(
                "SELECT count(*) FROM messages WHERE direction = 'in'"
            ).scalar_one()
        assert n == 6

    run_link(scenario, max_batch_envelopes=2)
