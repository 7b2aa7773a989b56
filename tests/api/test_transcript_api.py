"""``GET /api/v1/transcript``: the whole record as the file ``hotline export`` writes,
streamed, and verified by the project's own verifier (service.transcripts.verify)."""

from __future__ import annotations

import json
from typing import Any

from hotline.service import transcripts
from tests.api.test_operator_api import Api, with_api
from tests.service import conftest as service

run_pair = service.run_pair


def test_the_transcript_downloads_and_verifies(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        r = await api.alpha.post("/api/v1/messages", json={"peer": "bravo", "text": "hello"})
        assert r.status_code == 201, r.text
        r = await api.alpha.get("/api/v1/transcript")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.headers["content-disposition"] == 'attachment; filename="alpha.transcript.json"'
        assert r.headers["cache-control"] == "no-store"
        body = r.content
        assert int(r.headers["content-length"]) == len(body)
        v = transcripts.verify(body)  # raises unless every entry is signed and checks
        s = transcripts.summary(v)
        assert s["station"] == "alpha"
        assert s["unattested"] == 0
        assert s["entries"] == len(json.loads(body)["entries"]) > 0

    with_api(run_pair, scenario)
