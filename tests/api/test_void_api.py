"""POST /api/v1/messages/{id}/void: the operator gives up on a message the peer refused;
it needs the token, answers 404 (not_found, with a hint) unless the message is ours,
refused and still parked, and changes nothing then."""

from __future__ import annotations

import uuid
from typing import Any

from hotline.store import outbox
from hotline.store.writer import WriteTx
from tests.api.test_operator_api import Api, client, error_of, with_api
from tests.service import conftest as service
from tests.service.conftest import snapshot

run_pair = service.run_pair


def test_the_operator_voids_a_refused_message_through_the_api(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        sent = await p.send("far too long for bravo")
        url = f"/api/v1/messages/{sent.message_id}/void"
        before = snapshot(p.alpha)
        async with client(api.apps["alpha"], None) as anonymous:
            assert (await anonymous.post(url)).status_code == 401
        r = await api.alpha.post(url)  # queued, not refused: nothing to void
        assert r.status_code == 404
        err = error_of(r)
        assert err["code"] == "not_found"
        assert "refused" in err["hint"]
        assert (await api.alpha.post(f"/api/v1/messages/{uuid.uuid4()}/void")).status_code == 404
        assert (await api.alpha.post(f"/api/v1/messages/{'x' * 37}/void")).status_code == 422
        assert snapshot(p.alpha) == before

        def refused(tx: WriteTx) -> None:  # what the outbox records when bravo refuses it
            attempt = outbox.Attempt(sent.entry_idx, error="too_large", refused="too_large")
            outbox.note_attempts(tx.conn, [attempt], p.clock.now_us())

        await p.alpha.writer.submit(refused)
        r = await api.alpha.post(url)
        assert r.status_code == 200
        got = r.json()
        assert (got["state"], got["refused"], got["void"]) == ("refused", "too_large", True)
        assert p.outbound(p.alpha, "bravo") == []
        assert (await api.alpha.post(url)).status_code == 404  # once only

    with_api(run_pair, scenario)
