"""The event loop never blocks on the database or on a large parse (SQLite, PostgreSQL).

``tests.loopwatch.LoopWatch`` records every statement run on the event loop's thread
(a listener on each station's read engine) and, for a statement run anywhere else,
whether the loop was blocked meanwhile. The parses that can be large (a batch of
envelopes, a witness request) are watched the same way. Driven: envelopes and link tests with
witnessing and inclusion proofs through the real peer endpoint (in process), the asking
side's witnessing, and a round with a third-party witness.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from hotline.api.peer import create_peer_app
from hotline.ledger import witness as wit
from hotline.ledger.cosignature import Cosigner
from hotline.link import framing
from hotline.service.arbitration import Arbitration
from hotline.station import Station
from hotline.wire.messages import LinkTestReplyPayload
from tests.loopwatch import LoopWatch
from tests.service import conftest as service
from tests.service.conftest import Pair

#: two in-process stations on SQLite and on PostgreSQL (tests/service/conftest.py)
run_pair = service.run_pair

WITNESS = f"https://arbiter.example {Cosigner('hotline-arbiter', b'A' * 32).verifier.vkey}"


async def post(station: Station, path: str, body: bytes) -> httpx.Response:
    app = create_peer_app(station.line, station.witnessing)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://peer"
    ) as c:
        return await c.post(path, content=body)


async def link_round(asker: Station, answerer: Station) -> dict[str, Any]:
    """One link test with witnessing and proofs, as the link tester runs it."""
    peer = answerer.line.station_id
    offer = await asker.witnessing.offer(peer)
    # building the test is the link tester's step (link/); here it only feeds the endpoint
    env, sent = await asyncio.to_thread(
        asker.line.make_link_test, peer, witness=offer.request, prove=offer.prove
    )
    r = await post(answerer, "/peer/v1/link-test", env.raw)
    assert r.status_code == 200, r.headers
    reply: LinkTestReplyPayload = asker.line.check_link_reply(peer, sent, r.content)
    return await asker.witnessing.take_reply(peer, offer, reply)


def test_peer_endpoint_witnessing_and_arbitration_keep_the_loop_free(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(pair: Pair) -> None:
        for i in range(3):
            await pair.send(f"message {i}")
        batch = framing.encode_batch(pair.outbound(pair.alpha, "bravo"))  # (the test's read)
        watch = LoopWatch(asyncio.get_running_loop())
        watch.engine(pair.alpha.read_engine)
        watch.engine(pair.bravo.read_engine)
        monkeypatch.setattr(framing, "decode_batch", watch.wrap(framing.decode_batch, "batch"))
        monkeypatch.setattr(
            wit, "parse_add_checkpoint", watch.wrap(wit.parse_add_checkpoint, "witness")
        )
        try:
            r = await post(pair.bravo, "/peer/v1/envelopes", batch)
            assert r.status_code == 200
            for result in framing.decode_results(r.content, expected=3):
                assert result.receipt is not None
                await pair.alpha.line.record_receipt("bravo", result.receipt)
            first = await link_round(pair.bravo, pair.alpha)  # alpha cosigns bravo's log
            assert first["cosigned"] is True
            second = await link_round(pair.alpha, pair.bravo)  # bravo proves our receipts
            assert second["cosigned"] is True
            assert second["receipts_proved"] == 3
            arbitration = Arbitration(
                pair.alpha.line, pair.alpha.witnessing, WITNESS, 60, 5,
                transport=httpx.MockTransport(lambda _req: httpx.Response(503)),
            )  # fmt: skip
            try:
                assert (await arbitration.round())["cosigned"] is False
            finally:
                await arbitration.aclose()
        finally:
            watch.close()
        assert watch.on_loop == []
        assert watch.off_loop > 0
        assert watch.stalls == 0

    run_pair(scenario)
