"""The operator API keeps the event loop free (SQLite, PostgreSQL): no database read on
the loop's thread for any read endpoint, a send, an acknowledgement or the record's
proofs; and no request body decoded on it, for the deconfliction endpoints that take
one (notices up to max_request_bytes, imports up to import_max_bytes).

``tests.loopwatch.LoopWatch`` records what ran on the loop's thread: statements on each
station's read engine, ``json.loads`` (the framework's body parsing) and the registry
routes' own body parser. Before: ``POST /api/v1/messages/{id}/ack`` read the received
message on the loop, and ``POST /api/v1/notices`` and ``/concerns/{id}/raise`` had their
JSON decoded and validated on the loop by FastAPI.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hotline.api import registry
from tests.api.test_operator_api import Api, activity, site, with_api
from tests.loopwatch import LoopWatch
from tests.service import conftest as service

#: two in-process stations on SQLite and on PostgreSQL (tests/service/conftest.py)
run_pair = service.run_pair

READS = [
    "/api/v1/status",
    "/api/v1/card",
    "/api/v1/peers",
    "/api/v1/messages",
    "/api/v1/messages?direction=in&unacknowledged=true",
    "/api/v1/channels",
    "/api/v1/channels/working/thread",
    "/api/v1/link",
    "/api/v1/alarms",
    "/api/v1/ledger/checkpoint",
    "/api/v1/ledger/proof/consistency?old=1&new=2",
    "/api/v1/sites",
    "/api/v1/sites/ZNPP",
    "/api/v1/activities",
    "/api/v1/conflicts",
    "/api/v1/concerns?all=true",
    "/api/v1/registry/export",
    "/api/v1/registry/refused",
]

HOSPITAL = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [30.5, 50.4]},
         "properties": {"site_id": "H-1", "name": "One", "category": "hospital",
                        "protection_radius_m": 500}},
    ],
}  # fmt: skip


def watching(api: Api) -> LoopWatch:
    watch = LoopWatch(asyncio.get_running_loop())
    watch.engine(api.pair.alpha.read_engine)
    watch.engine(api.pair.bravo.read_engine)
    return watch


def test_operator_reads_sends_and_acks_never_read_the_store_on_the_loop(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        sent = await p.send("for the record")
        await p.flush()
        mid = str(sent.message_id)
        watch = watching(api)
        try:
            for url in READS:
                r = await api.bravo.get(url)
                assert r.status_code in (200, 404), (url, r.text)
            r = await api.bravo.get(f"/api/v1/messages/{mid}")
            assert r.status_code == 200, r.text
            r = await api.alpha.get(f"/api/v1/ledger/proof/inclusion?message_id={mid}")
            assert r.status_code == 200, r.text
            r = await api.bravo.post(f"/api/v1/messages/{mid}/ack", json={})
            assert r.status_code == 200, r.text
            assert r.json()["acknowledged_by"] == "station"
            r = await api.alpha.post(
                "/api/v1/messages",
                json={"peer": "bravo", "text": "again"},
                headers={"Idempotency-Key": "loop-1"},
            )
            assert r.status_code == 201, r.text
        finally:
            watch.close()
        assert watch.on_loop == []
        assert watch.off_loop > 0
        assert watch.stalls == 0

    with_api(run_pair, scenario)


def test_registry_bodies_are_decoded_and_validated_off_the_loop(
    run_pair: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(api: Api) -> None:
        watch = watching(api)
        monkeypatch.setattr(json, "loads", watch.wrap(json.loads, "json.loads"))
        monkeypatch.setattr(registry, "parse_body", watch.wrap(registry.parse_body, "parse_body"))
        try:  # (the answers are read after: httpx decodes them with json.loads too)
            answers = [
                await api.bravo.post("/api/v1/notices", json={"notice": site()}),
                await api.alpha.post("/api/v1/notices", json={"notice": activity()}),
                await api.alpha.post("/api/v1/notices", json={"notice": site(), "extra": 1}),
                await api.alpha.post("/api/v1/concerns/c-nope/raise", json={}),
                await api.bravo.post(
                    "/api/v1/sites/import", params={"prefix": "hosp"}, content=json.dumps(HOSPITAL)
                ),
            ]
        finally:
            watch.close()
            monkeypatch.undo()
        assert [r.status_code for r in answers] == [201, 201, 422, 404, 201], answers[2].text
        assert answers[2].json()["error"]["code"] == "bad_input"
        assert "extra" in answers[2].json()["error"]["message"]
        assert answers[4].json()["imported"] == ["H-1"]
        assert watch.on_loop == []
        assert "parse_body" in watch.seen
        assert "json.loads" in watch.seen  # the import file, decoded in a worker thread
        assert watch.stalls == 0

    with_api(run_pair, scenario)
