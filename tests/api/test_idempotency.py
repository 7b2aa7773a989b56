"""Idempotent sends through the operator API, on SQLite and PostgreSQL: a retried
``POST /api/v1/messages`` with the same Idempotency-Key returns the first result (same
message id, same status) and sends once, also when the retries run at once, also after a
restart; the same key with another body is refused with its own code; a key is kept for
``idempotency_ttl_s`` and no longer."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from hotline.store import idempotency, schema
from tests.api.test_operator_api import Api, app_of, client, error_of, with_api
from tests.service import conftest as service
from tests.service.conftest import snapshot

run_pair = service.run_pair

KEY = {"idempotency-key": "3f0c1b9e-6a8d-4c52-9d1e-0a7f4b2c8e11"}
BODY = {"peer": "bravo", "text": "Convoy at 0400Z", "precedence": "IMMEDIATE"}


def sent_count(api: Api) -> int:
    m = schema.messages
    with api.pair.alpha.read_engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).where(m.c.direction == "out")).scalar_one()
        )


def test_a_retried_send_returns_the_first_result_and_sends_once(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        first = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
        assert first.status_code == 201, first.text
        assert "idempotent-replayed" not in first.headers
        for _ in range(3):
            again = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
            assert again.status_code == 201
            assert again.json() == first.json()
            assert again.headers["idempotent-replayed"] == "true"
        assert sent_count(api) == 1
        # without a key, every request is a new message
        for _ in range(2):
            r = await api.alpha.post("/api/v1/messages", json=BODY)
            assert r.status_code == 201
            assert r.json()["message_id"] != first.json()["message_id"]
        assert sent_count(api) == 3
        await api.pair.flush()
        inbox = (await api.bravo.get("/api/v1/messages")).json()
        assert len(inbox) == 3

    with_api(run_pair, scenario)


def test_concurrent_retries_with_one_key_send_once(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        answers = await asyncio.gather(
            *(api.alpha.post("/api/v1/messages", json=BODY, headers=KEY) for _ in range(8))
        )
        assert [r.status_code for r in answers] == [201] * 8
        assert len({r.json()["message_id"] for r in answers}) == 1
        assert (
            sorted(r.headers.get("idempotent-replayed", "") for r in answers) == [""] + ["true"] * 7
        )
        assert sent_count(api) == 1

    with_api(run_pair, scenario)


def test_two_apps_racing_on_one_key_send_once(run_pair: Any) -> None:
    """The in-process queue per key is not the only guard: the key is recorded in the
    send's own transaction, so a second send that passed the check is rolled back."""

    async def scenario(api: Api) -> None:
        other = app_of(api.pair.alpha)  # a second app: its own queue of keys
        async with client(other) as second:
            answers = await asyncio.gather(
                *(
                    c.post("/api/v1/messages", json=BODY, headers=KEY)
                    for c in [api.alpha, second] * 4
                )
            )
        assert [r.status_code for r in answers] == [201] * 8, [r.text for r in answers]
        assert len({r.json()["message_id"] for r in answers}) == 1
        assert sent_count(api) == 1

    with_api(run_pair, scenario)


def test_a_key_survives_a_restart_of_the_api(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        first = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
        async with client(app_of(api.pair.alpha)) as fresh:
            again = await fresh.post("/api/v1/messages", json=BODY, headers=KEY)
        assert (again.status_code, again.json()) == (201, first.json())
        assert sent_count(api) == 1

    with_api(run_pair, scenario)


def test_a_key_reused_with_another_body_is_refused(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        first = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
        assert first.status_code == 201
        before = snapshot(api.pair.alpha)
        for changed in (
            BODY | {"text": "Convoy at 0500Z"},
            BODY | {"precedence": "FLASH"},
            BODY | {"channel": "other"},
            BODY | {"ack_required": False},
        ):
            r = await api.alpha.post("/api/v1/messages", json=changed, headers=KEY)
            assert r.status_code == 422, r.text
            err = error_of(r)
            assert err["code"] == "idempotency_key_reused"
            assert "new key" in err["hint"]
        assert snapshot(api.pair.alpha) == before
        # the same request written differently (defaults spelled out) is the same request
        spelled = BODY | {"channel": "working", "type": "text", "ack_required": True}
        r = await api.alpha.post("/api/v1/messages", json=spelled, headers=KEY)
        assert (r.status_code, r.json()) == (201, first.json())

    with_api(run_pair, scenario)


def test_a_refused_send_records_no_key(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        r = await api.alpha.post("/api/v1/messages", json=BODY | {"peer": "charlie"}, headers=KEY)
        assert (r.status_code, error_of(r)["code"]) == (400, "unknown_peer")
        r = await api.alpha.post("/api/v1/messages", json=BODY | {"text": " "}, headers=KEY)
        assert error_of(r)["code"] == "empty_message"
        assert snapshot(api.pair.alpha) == before
        with api.pair.alpha.read_engine.connect() as conn:
            assert idempotency.count(conn) == 0
        # the key is still free: the corrected request goes through with it
        r = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
        assert r.status_code == 201
        assert sent_count(api) == 1

    with_api(run_pair, scenario)


def test_a_key_is_kept_for_its_lifetime_and_no_longer(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        ttl = api.pair.alpha.settings.idempotency_ttl_s
        first = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
        api.pair.clock.advance(ttl - 1)
        again = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
        assert again.json() == first.json()
        api.pair.clock.advance(2)
        later = await api.alpha.post("/api/v1/messages", json=BODY, headers=KEY)
        assert later.status_code == 201
        assert "idempotent-replayed" not in later.headers
        assert later.json()["message_id"] != first.json()["message_id"]
        assert sent_count(api) == 2
        with api.pair.alpha.read_engine.connect() as conn:
            assert idempotency.count(conn) == 1  # the expired row was purged

    with_api(run_pair, scenario)


def test_a_malformed_key_is_a_422(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        for key in ("", "x" * 256, "has space", "tab\tkey"):
            r = await api.alpha.post(
                "/api/v1/messages", json=BODY, headers={"idempotency-key": key}
            )
            assert r.status_code == 422, (key, r.text)
            assert "Idempotency-Key" in error_of(r)["message"]
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)
