"""Several paths to one peer: failover, per-path health and alarms, FLASH on every path.

Alpha's outbox holds two transports to bravo, ``https`` (preferred) and ``nats``, both
carrying every byte to bravo's real peer endpoint in-process (tests/link/conftest.py);
each can be cut (the peer is unreachable on it) or hung (it never answers), as a path
that fails would be.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.errors import PeerUnreachableError
from hotline.link import framing, health
from hotline.link.linktest import HealthRecorder, LinkTester
from hotline.link.outbox import Outbox
from hotline.service import queries
from hotline.store import operational, schema
from hotline.wire.envelope import Precedence
from tests.link.conftest import Link


class Switchable:
    """One path to bravo: passes everything on, unless ``mode`` is "cut" (unreachable) or
    "hang" (never answers). Remembers what it carried."""

    def __init__(self, inner: Any, path: str) -> None:
        self.inner, self.peer, self.path = inner, inner.peer, path
        self.mode = "up"
        self.carried: list[bytes] = []
        self.entered = asyncio.Event()

    async def _fault(self) -> None:
        self.entered.set()
        if self.mode == "cut":
            raise PeerUnreachableError(f"the {self.path} path is cut")
        if self.mode == "hang":
            await asyncio.Event().wait()

    async def deliver(self, envelopes: list[bytes]) -> list[framing.Result]:
        await self._fault()
        results: list[framing.Result] = await self.inner.deliver(envelopes)
        self.carried += envelopes
        return results

    async def link_test(self, envelope: bytes) -> bytes:
        await self._fault()
        reply: bytes = await self.inner.link_test(envelope)
        return reply

    async def aclose(self) -> None:
        return None


class Paths:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.https = Switchable(link.transport, "https")
        self.nats = Switchable(link.transport, "nats")
        self.recorder = HealthRecorder(link.alpha.line)
        self.recorder.register("bravo", ["https", "nats"])
        self.outbox = Outbox(
            link.alpha.line, [self.https, self.nats], self.recorder, rng=random.Random(3)
        )
        interval = link.alpha.settings.link_test_interval_s
        self.testers = {
            t.path: LinkTester(link.alpha.line, t, self.recorder, interval)
            for t in (self.https, self.nats)
        }

    async def round(self, prec: Precedence = Precedence.ROUTINE) -> None:
        lane = next(x for x in self.outbox.lanes if int(prec) in x.precedences)
        await self.outbox._lane_round(lane)

    def alarms(self, kind: str) -> list[dict[str, Any]]:
        return [a for a in self.link.alarms() if a["kind"] == kind]

    def received_by_bravo(self) -> list[str]:
        m = schema.messages
        with self.link.bravo.read_engine.connect() as conn:
            rows = conn.execute(sa.select(m.c.message_id).where(m.c.direction == "in"))
            return sorted(str(r) for r in rows.scalars())

    def line_status(self) -> dict[str, Any]:
        with self.link.alpha.read_engine.connect() as conn:
            return queries.link_status(conn, ["bravo"])[0]


def test_a_cut_path_hands_the_batch_to_the_next_in_the_same_round(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        p = Paths(link)
        p.https.mode = "cut"
        sent = [await link.send(f"m{i}") for i in range(3)]
        await p.round()
        assert link.queued() == 0
        assert p.https.carried == []
        assert len(p.nats.carried) == 3
        for s in sent:
            got = link.message(s.message_id)
            assert (got["state"], got["path"]) == ("delivered", "nats")
        assert p.received_by_bravo() == sorted(str(s.message_id) for s in sent)
        with link.alpha.read_engine.connect() as conn:
            paths = operational.load_path_health(conn, "bravo")
        assert paths["https"].failures == 1
        assert paths["https"].last_error == "peer_unreachable"
        # the next message goes on the nats path while https backs off, without waiting
        more = await link.send("after")
        await p.round()
        assert link.message(more.message_id)["path"] == "nats"

    run_link(scenario)


def test_the_preferred_path_is_used_again_once_its_link_test_answers(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        p = Paths(link)
        p.https.mode = "cut"
        await link.send("while cut")
        await p.round()
        p.https.mode = "up"
        result = await p.testers["https"].test_once()
        assert result["ok"]
        assert result["path"] == "https"
        back = await link.send("back")
        await p.round()
        assert link.message(back.message_id)["path"] == "https"

    run_link(scenario)


def test_a_request_in_flight_on_a_path_that_goes_down_moves_on_at_once(run_link: Any) -> None:
    """The https path accepts the request and never answers; its delivery timeout is
    minutes away. When its link tests declare it DOWN, the request is abandoned and the
    envelopes go on the nats path."""

    async def scenario(link: Link) -> None:
        p = Paths(link)
        p.https.mode = "hang"
        sent = await link.send("stuck")
        assert p.outbox.timing.delivery_timeout_s >= 300
        round_ = asyncio.create_task(p.round())
        await asyncio.wait_for(p.https.entered.wait(), 30)
        assert not round_.done()
        await p.recorder.failure("bravo", "peer_timeout", "https")  # down_after=1: DOWN
        await asyncio.wait_for(round_, 30)  # far sooner than the delivery timeout
        got = link.message(sent.message_id)
        assert (got["state"], got["path"]) == ("delivered", "nats")
        assert p.received_by_bravo() == [str(sent.message_id)]

    run_link(scenario, peer_timeout_s=240.0, link_test_interval_s=120.0,
             link_down_after_failures=1)  # fmt: skip


def test_both_paths_cut_keeps_everything_queued_and_retries(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        p = Paths(link)
        p.https.mode = p.nats.mode = "cut"
        sent = await link.send("nowhere")
        await p.round()
        assert link.queued() == 1
        got = link.message(sent.message_id)
        assert got["state"] == "queued"
        assert got["path"] == "nats"
        assert got["last_error"] == "peer_unreachable"
        assert all(path.failures == 1 and path.retry_at > 0 for path in p.outbox.paths)
        # no path is ready now: a round waits for one instead of sending
        assert p.outbox._ready(asyncio.get_running_loop().time()) == []
        p.https.mode = p.nats.mode = "up"
        await p.testers["nats"].test_once()  # nats answers: ready again at once
        await p.round()
        assert link.message(sent.message_id)["path"] == "nats"
        assert p.received_by_bravo() == [str(sent.message_id)]

    run_link(scenario)


def test_health_is_kept_per_path_and_the_line_is_down_only_when_every_path_is(
    run_link: Any,
) -> None:
    async def scenario(link: Link) -> None:
        p = Paths(link)
        assert (await p.testers["nats"].test_once())["ok"]
        p.https.mode = "cut"
        for _ in range(2):
            assert not (await p.testers["https"].test_once())["ok"]
        status = p.line_status()
        assert status["state"] == "UP"
        assert {x["path"]: x["state"] for x in status["paths"]} == {"https": "DOWN", "nats": "UP"}
        assert [a["ref"] for a in p.alarms("path_down")] == ["https"]
        assert p.alarms("link_down") == []
        p.nats.mode = "cut"
        for _ in range(2):
            await p.testers["nats"].test_once()
        assert p.line_status()["state"] == "DOWN"
        assert len(p.alarms("link_down")) == 1
        assert sorted(a["ref"] for a in p.alarms("path_down")) == ["https", "nats"]
        p.https.mode = p.nats.mode = "up"
        await p.testers["https"].test_once()
        assert p.line_status()["state"] == "UP"
        assert p.alarms("link_down") == []
        assert [a["ref"] for a in p.alarms("path_down")] == ["nats"]
        with link.alpha.read_engine.connect() as conn:
            rows = conn.execute(sa.select(schema.link_history.c.path)).scalars().all()
        assert set(rows) == {"https", "nats"}

    run_link(scenario, link_down_after_failures=2)


def test_one_path_raises_link_down_alone_and_no_path_alarm(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        only = Switchable(link.transport, "https")
        recorder = HealthRecorder(link.alpha.line)
        recorder.register("bravo", ["https"])
        tester = LinkTester(link.alpha.line, only, recorder, 60.0)
        only.mode = "cut"
        await tester.test_once()
        kinds = [a["kind"] for a in link.alarms()]
        assert kinds == ["link_down"]

    run_link(scenario, link_down_after_failures=1)


@pytest.mark.parametrize("every", [["*"], []])
def test_flash_goes_on_every_path_that_is_not_down(run_link: Any, every: list[str]) -> None:
    async def scenario(link: Link) -> None:
        p = Paths(link)
        sent = await link.send("now", Precedence.FLASH)
        await p.round(Precedence.FLASH)
        await asyncio.gather(*p.outbox._copies)
        assert len(p.https.carried) == 1
        assert len(p.nats.carried) == (1 if every else 0)
        assert link.message(sent.message_id)["state"] == "delivered"
        assert p.received_by_bravo() == [str(sent.message_id)]  # one copy kept
        with link.alpha.read_engine.connect() as conn:
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(schema.entries)
                .where(
                    schema.entries.c.kind == 3  # RECEIPT_IN: recorded once
                )
            ).scalar_one()
        assert n == 1
        routine = await link.send("later")
        await p.round()
        assert len(p.nats.carried) == (1 if every else 0)  # only FLASH is copied
        assert link.message(routine.message_id)["path"] == "https"

    run_link(scenario, alpha={"flash_every_path": every})


def test_flash_is_not_copied_to_a_path_that_is_down(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        p = Paths(link)
        await p.recorder.failure("bravo", "peer_timeout", "nats")
        await link.send("now", Precedence.FLASH)
        await p.round(Precedence.FLASH)
        assert p.outbox._copies == set()
        assert len(p.https.carried) == 1
        assert p.nats.carried == []

    run_link(scenario, link_down_after_failures=1)


def test_an_outbox_refuses_two_transports_on_one_path(run_link: Any) -> None:
    async def scenario(link: Link) -> None:
        a, b = Switchable(link.transport, "https"), Switchable(link.transport, "https")
        with pytest.raises(ValueError, match="one transport per path"):
            Outbox(link.alpha.line, [a, b], HealthRecorder(link.alpha.line))

    run_link(scenario)


def _h(state: health.State, rtt: int | None = None) -> health.Health:
    return health.Health(state=state, rtt_ms=rtt, failures=0 if state == "UP" else 3)


def test_the_line_takes_the_best_path_and_keeps_its_own_refusals() -> None:
    line = health.Health(refused=4, last_refused="too_large")
    got = health.combine({"https": _h("DOWN"), "nats": _h("UP", 40)}, line)
    assert (got.state, got.rtt_ms, got.refused, got.last_refused) == ("UP", 40, 4, "too_large")
    both_up = health.combine({"https": _h("UP", 5), "nats": _h("UP", 40)}, line)
    assert both_up.rtt_ms == 5  # a tie: the first named (the preferred path)
    assert health.combine({"https": _h("DOWN"), "nats": _h("DEGRADED")}, line).state == "DEGRADED"
    assert health.combine({"https": _h("DOWN"), "nats": _h("DOWN")}, line).state == "DOWN"
    assert health.combine({}, line) == line
