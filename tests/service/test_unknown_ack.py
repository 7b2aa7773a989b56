"""An acknowledgement naming a message this station never sent to that peer is refused
``unknown_message`` by the ingest unit (a value, no rollback), and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

from hotline.errors import HotlineError
from hotline.wire.envelope import Kind
from hotline.wire.messages import AckPayload
from tests.service import peerforge
from tests.service.conftest import Pair, snapshot


def _ack(p: Pair, mid: uuid.UUID, seq: int) -> bytes:
    """bravo acknowledges ``mid`` at sequence ``seq`` (a validly signed ACK to alpha)."""
    body = AckPayload(
        message_id=mid, officer="Maj. K", acknowledged_at_us=p.clock.now_us()
    ).to_bytes()
    return peerforge.seal(p, Kind.ACK, body, src="bravo", sequence=seq)


def test_an_ack_of_a_message_never_sent_to_that_peer_is_refused(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await p.send()  # alpha -> bravo
        theirs = await p.send(src=p.bravo, dst="alpha")  # bravo -> alpha
        await p.flush()
        rollbacks: list[Any] = []
        p.alpha.writer.on_rollback.append(rollbacks.append)
        seq = peerforge.next_seq(p, p.bravo, "alpha")
        # a random id, and bravo "acknowledging" its own message to alpha
        forged = [_ack(p, uuid.uuid4(), seq), _ack(p, theirs.message_id, seq + 1)]
        before = snapshot(p.alpha)
        items = [p.alpha.line.check_inbound(raw) for raw in forged]
        results = await p.alpha.line.store_inbound(items)
        for r in results:
            assert isinstance(r, HotlineError)
            assert r.code == "unknown_message"
        assert snapshot(p.alpha) == before
        assert rollbacks == []
        # an honest acknowledgement at the same sequence number is then accepted
        honest = p.alpha.line.check_inbound(_ack(p, sent.message_id, seq))
        [receipt] = await p.alpha.line.store_inbound([honest])
        assert isinstance(receipt, bytes)

    run_pair(scenario)
