"""/openapi.json documents what the operator API really answers: every operation has a
readable operation id, typed 2xx answers and the error responses in the one error shape
with their status codes; the event stream lists its event types; and a client built from
the spec alone (tests/api/spec_client.py) parses the answers, errors included."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from hotline.api.openapi import EVENT_TYPES
from tests.api.spec_client import SpecClient, models_from_spec
from tests.api.test_operator_api import Api, app_of, client, with_api
from tests.service import conftest as service
from tests.service.conftest import Pair, snapshot

run_pair = service.run_pair
sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)
SRC = Path(__file__).resolve().parents[2] / "src" / "hotline"
ERROR_REF = "#/components/schemas/ErrorResponse"
COMMON = {"401", "403", "422", "429", "500"}


def spec_of(pair: Pair) -> dict[str, Any]:
    app = app_of(pair.alpha)
    doc: dict[str, Any] = app.openapi()
    return doc


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]


def _typed(schema: dict[str, Any], spec: dict[str, Any]) -> bool:
    """A schema with a name and fields: a $ref to an object with properties, or a list
    of such."""
    if schema.get("type") == "array":
        return _typed(schema.get("items", {}), spec)
    ref = schema.get("$ref")
    if ref is None:
        return False
    target = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return bool(target.get("properties"))


@sqlite_only
def test_every_operation_has_typed_answers_and_the_error_responses(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        spec = spec_of(p)
        ops = operations(spec)
        assert len(ops) >= 30
        ids = [op["operationId"] for _m, _p, op in ops]
        assert len(ids) == len(set(ids)), "operation ids must be unique"
        for method, path, op in ops:
            where = f"{method.upper()} {path}"
            assert re.fullmatch(r"[a-z]+(_[a-z]+)*", op["operationId"]), where
            assert "api_v1" not in op["operationId"], where
            assert len(op["operationId"]) <= 30, where
            responses = op["responses"]
            ok = [code for code in responses if code.startswith("2")]
            assert ok, f"{where} documents no 2xx answer"
            for code in ok:
                content = responses[code]["content"]
                if "text/event-stream" in content:
                    sse = content["text/event-stream"]
                    assert sse["x-event-types"] == sorted(EVENT_TYPES), where
                    assert _typed(sse["schema"], spec), where
                    continue
                assert _typed(content["application/json"]["schema"], spec), (where, code)
            wanted = COMMON | ({"413"} if "requestBody" in op else set())
            assert wanted <= set(responses), (where, sorted(responses))
            for code, answer in responses.items():
                if (method, path, code) == ("get", "/health", "503"):
                    continue  # a standby's role, for a load balancer: typed Health
                if code.startswith(("4", "5")):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": ERROR_REF}, (where, code)
                    assert answer["description"], (where, code)
        assert "HTTPValidationError" not in spec["components"]["schemas"]
        error = spec["components"]["schemas"]["ErrorResponse"]
        assert error["required"] == ["error"]
        assert error["additionalProperties"] is False
        detail = spec["components"]["schemas"]["ErrorDetail"]
        assert sorted(detail["required"]) == ["code", "hint", "message"]
        assert {detail["properties"][k]["type"] for k in detail["required"]} == {"string"}
        # the send documents its idempotency key
        send = spec["paths"]["/api/v1/messages"]["post"]
        assert [h["name"] for h in send["parameters"] if h["in"] == "header"] == ["Idempotency-Key"]
        assert "Idempotent-Replayed" in send["responses"]["201"]["headers"]
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"

    run_pair(scenario)


def test_every_event_the_station_publishes_is_documented() -> None:
    published: set[str] = set()
    for path in SRC.rglob("*.py"):
        published |= set(re.findall(r'"((?:message|ack|link|alarm|peer|notice)\.[a-z_]+)"',
                                    path.read_text()))  # fmt: skip
    assert published, "no event names found: the pattern is stale"
    assert published <= set(EVENT_TYPES), published - set(EVENT_TYPES)


@sqlite_only
def test_a_client_built_from_the_spec_parses_answers_and_errors(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        async with client(api.apps["alpha"], None) as anonymous:
            spec = (await anonymous.get("/openapi.json")).json()
            models_from_spec(spec)  # every component schema becomes a model
            c = SpecClient(spec, anonymous)
            a = await c.call("list_alarms")
            assert a.status == 401
            assert (a.value.error.code, a.value.error.message) == (
                "unauthorized",
                "missing or wrong bearer token",
            )
            assert "hotline token" in a.value.error.hint
        before = snapshot(api.pair.alpha)
        c = SpecClient(spec, api.alpha)
        a = await c.call("get_message", path={"message_id": "nope"})
        assert (a.status, a.value.error.code) == (404, "not_found")
        a = await c.call("send_message", json={"peer": "bravo", "text": "  "})
        assert (a.status, a.value.error.code) == (422, "empty_message")
        a = await c.call("send_message", json={"peer": "bravo", "text": "x", "precedence": "NOW"})
        assert (a.status, a.value.error.code) == (422, "bad_input")
        a = await c.call("send_message", json={"peer": "charlie", "text": "x"})
        assert (a.status, a.value.error.code) == (400, "unknown_peer")
        a = await c.call("send_message", json={"peer": "bravo", "text": "x" * 3000})
        assert (a.status, a.value.error.code) == (413, "too_large")
        a = await c.call("get_site", path={"site_id": "NOPE"})
        assert (a.status, a.value.error.code) == (404, "not_found")
        a = await c.call("get_checkpoint")
        assert (a.status, a.value.error.code) == (404, "not_found")
        assert snapshot(api.pair.alpha) == before
        # answers parse too
        a = await c.call("send_message", json={"peer": "bravo", "text": "hello"})
        assert a.status == 201
        mid = a.value.message_id
        await api.pair.flush()
        a = await c.call("get_message", path={"message_id": mid})
        assert (a.value.state, a.value.body["text"]) == ("delivered", "hello")
        for operation in ("get_status", "get_card", "list_peers", "list_messages",
                          "list_channels", "list_links", "list_alarms", "list_sites",
                          "list_activities", "list_conflicts", "list_concerns",
                          "export_registry", "list_refused_notices"):  # fmt: skip
            a = await c.call(operation)
            assert a.status == 200, operation
        r = await api.bravo.get("/api/v1/messages")
        b = SpecClient(spec, api.bravo)
        a = await b.call("acknowledge_message", path={"message_id": mid}, json={})
        assert (a.status, a.value.acknowledged_by) == (200, "station")
        assert r.status_code == 200

    with_api(run_pair, scenario, max_request_bytes=2048)


def test_the_spec_client_refuses_an_answer_that_does_not_fit() -> None:
    """The client really checks: an error without its hint does not parse."""
    spec = {
        "paths": {"/x": {"get": {"operationId": "get_x", "responses": {
            "404": {"description": "", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}}}}},
        "components": {"schemas": {
            "ErrorResponse": {"type": "object", "additionalProperties": False,
                              "required": ["error"],
                              "properties": {"error": {"$ref": "#/components/schemas/E"}}},
            "E": {"type": "object", "required": ["code", "message", "hint"],
                  "properties": {k: {"type": "string"} for k in ("code", "message", "hint")}},
        }},
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "m"}})

    async def go() -> None:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://x"
        ) as http:
            with pytest.raises(ValueError, match="hint"):
                await SpecClient(spec, http).call("get_x")

    import asyncio

    asyncio.run(go())


@sqlite_only
def test_docs_pages_are_off(run_pair: Any) -> None:
    """/docs and /redoc would load scripts from a CDN: they are not served."""

    async def scenario(api: Api) -> None:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            r = await api.alpha.get(path)
            assert r.status_code == 404, path

    with_api(run_pair, scenario)


@sqlite_only
def test_refused_notices_keep_their_from_field(run_pair: Any) -> None:
    """A documented field named by an alias ("from") is answered under that name."""

    async def scenario(api: Api) -> None:
        row = {"message_id": "m-1", "from": "bravo", "code": "bad_geometry", "reason": "r"}
        api.pair.alpha.registry.refused.append(row)
        r = await api.alpha.get("/api/v1/registry/refused")
        assert r.json() == [row]

    with_api(run_pair, scenario)
