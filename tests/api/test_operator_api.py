"""The operator API in process, over two in-process stations (SQLite and PostgreSQL):
authentication, the error shape, the deconfliction endpoints end to end, OpenAPI, and
garbage (hypothesis) that must always get a 4xx and change nothing.

Each app is driven by ``httpx.AsyncClient`` over ``httpx.ASGITransport``. Hypothesis runs
its examples on a worker thread, each request in its own short event loop: the writer
thread settles futures on whichever loop submitted the work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.api.operator import create_operator_app
from hotline.errors import ConfigError
from hotline.station import Station
from tests.service import conftest as service
from tests.service.conftest import Pair, snapshot

#: two in-process stations on SQLite and on PostgreSQL (tests/service/conftest.py)
run_pair = service.run_pair

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuv"
AUTH = {"authorization": f"Bearer {TOKEN}"}
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ZNPP = [34.5863, 47.5119]
NEAR = [34.585, 47.467]  # 4.9 km south of the plant
JSON_TYPE = {"content-type": "application/json"}
GARBAGE = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def site(site_id: str = "ZNPP", notice_id: str = "znpp-add-1") -> dict[str, Any]:
    return {
        "type": "site_notice",
        "notice_id": notice_id,
        "action": "add",
        "site_id": site_id,
        "site": {
            "names": {"en": "Zaporizhzhia NPP"},
            "category": "nuclear_power_plant",
            "geometry": {"type": "Point", "coordinates": ZNPP},
            "protection_radius_m": 5_000.0,
            "reconfirm_by": iso(T0 + dt.timedelta(days=90)),
        },
    }


def activity(activity_id: str = "act-1", action: str = "add") -> dict[str, Any]:
    notice: dict[str, Any] = {
        "type": "activity_notice",
        "notice_id": f"{activity_id}-{action}",
        "action": action,
        "activity_id": activity_id,
    }
    if action != "cancel":
        start = T0 + dt.timedelta(days=1)
        notice["activity"] = {
            "kind": "artillery",
            "geometry": {"type": "Point", "coordinates": NEAR},
            "radius_m": 500.0,
            "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
            "window": {"start": iso(start), "end": iso(start + dt.timedelta(hours=4))},
        }
    return notice


@dataclass
class Api:
    pair: Pair
    alpha: httpx.AsyncClient
    bravo: httpx.AsyncClient
    apps: dict[str, Any]


def app_of(s: Station) -> Any:
    async def add_peer(card: str, operator: str | None) -> Any:
        raise ConfigError("not running")

    return create_operator_app(
        s.line,
        TOKEN,
        deconfliction=s.deconfliction,
        add_peer=add_peer,
        link_test_now=s.link_test_now,
    )


def client(app: Any, headers: dict[str, str] | None = AUTH) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://station", headers=headers
    )


def with_api(run: Any, scenario: Callable[[Api], Awaitable[None]], **settings: Any) -> None:
    async def outer(p: Pair) -> None:
        apps = {"alpha": app_of(p.alpha), "bravo": app_of(p.bravo)}
        async with client(apps["alpha"]) as a, client(apps["bravo"]) as b:
            await scenario(Api(p, a, b, apps))

    unthrottled = {"api_rate_per_s": 1_000_000.0, "api_auth_failures_per_s": 1_000_000.0}
    run(outer, **(unthrottled | settings))


def error_of(r: httpx.Response) -> dict[str, Any]:
    """The operator API's error shape: {"error": {"code", "message", "hint"}}."""
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "hint"}, body
    assert isinstance(body["error"]["code"], str)
    assert body["error"]["code"]
    return dict(body["error"])


def on_thread(fn: Callable[[], None]) -> Awaitable[None]:
    """Run a hypothesis test (sync) on a worker thread, off the scenario's loop."""
    return asyncio.to_thread(fn)


def request_once(app: Any, method: str, url: str, **kw: Any) -> httpx.Response:
    """One request in its own event loop (called from a hypothesis worker thread)."""

    async def go() -> httpx.Response:
        async with client(app) as c:
            return await c.request(method, url, **kw)

    return asyncio.run(go())


# --- authentication and the error shape --------------------------------------------------


ENDPOINTS = [
    ("GET", "/api/v1/sites"),
    ("GET", "/api/v1/sites/ZNPP"),
    ("GET", "/api/v1/activities"),
    ("GET", "/api/v1/conflicts"),
    ("GET", "/api/v1/concerns"),
    ("GET", "/api/v1/registry/export"),
    ("GET", "/api/v1/registry/refused"),
    ("POST", "/api/v1/notices"),
    ("POST", "/api/v1/sites/import"),
    ("POST", "/api/v1/sites/reference"),
    ("POST", "/api/v1/concerns/c-1/raise"),
    ("GET", "/api/v1/status"),
    ("POST", "/api/v1/messages"),
]


def test_every_endpoint_needs_the_token(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        bad_headers: list[dict[str, str] | None] = [
            None,
            {"authorization": "Bearer wrong"},
            {"authorization": f"Basic {TOKEN}"},
            {"authorization": f"Bearer {TOKEN}x"},
        ]
        for headers in bad_headers:
            async with client(api.apps["alpha"], headers) as c:
                for method, url in ENDPOINTS:
                    r = await c.request(method, url, json={"notice": site()})
                    assert r.status_code == 401, (headers, url, r.text)
                    assert r.headers["www-authenticate"] == "Bearer"
                    err = error_of(r)
                    assert err["code"] == "unauthorized"
                    assert "token" in err["hint"]
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)


def test_refusals_carry_code_message_and_hint(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        r = await api.alpha.get("/api/v1/sites/NOPE")
        assert r.status_code == 404
        assert error_of(r)["code"] == "not_found"
        r = await api.alpha.get("/api/v1/concerns/c-nope")
        assert r.status_code == 404
        r = await api.alpha.post("/api/v1/concerns/c-nope/raise", json={})
        assert r.status_code == 404
        assert "hotline conflicts" in error_of(r)["hint"]
        # a notice the models refuse: 422, naming the field
        bad = site()
        bad["site"]["protection_radius_m"] = -5
        r = await api.bravo.post("/api/v1/notices", json={"notice": bad})
        assert r.status_code == 422
        err = error_of(r)
        assert err["code"] == "bad_input"
        assert "protection_radius_m" in err["message"]
        # a file that is not one: 422 with the import error
        r = await api.bravo.post("/api/v1/sites/import", content=b"not json")
        assert r.status_code == 422
        assert error_of(r)["code"] == "bad_import_file"
        # a peer that does not exist
        r = await api.bravo.post("/api/v1/notices", json={"notice": site(), "peer": "charlie"})
        assert 400 <= r.status_code < 500
        error_of(r)

    with_api(run_pair, scenario)


def test_request_validation_errors_have_the_error_shape(run_pair: Any) -> None:
    """Errors become responses in one place, with code, message and hint
    (hotline.api.errors); a request that fails the request model must too."""

    async def scenario(api: Api) -> None:
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/api/v1/notices", {"json": {}}),
            ("POST", "/api/v1/notices", {"json": {"notice": site(), "extra": 1}}),
            ("POST", "/api/v1/notices", {"json": {"notice": site(), "precedence": "NOW"}}),
            ("POST", "/api/v1/notices", {"content": b"{", "headers": {"content-type": "x"}}),
            ("GET", "/api/v1/registry/export?format=kml", {}),
            ("GET", "/api/v1/sites?include_ended=perhaps", {}),
        ]
        for method, url, kw in cases:
            r = await api.bravo.request(method, url, **kw)
            assert r.status_code == 422, (url, kw, r.text)
            error_of(r)

    with_api(run_pair, scenario)


# --- the deconfliction endpoints end to end ----------------------------------------------


def test_notify_conflict_concern_and_export_through_the_api(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        r = await api.bravo.post("/api/v1/notices", json={"notice": site()})
        assert r.status_code == 201, r.text
        [sent] = r.json()["sent"]
        assert sent["peer"] == "alpha"
        assert "never permission" in r.json()["notice"]
        await p.flush()

        r = await api.alpha.get("/api/v1/sites")
        [znpp] = r.json()["sites"]
        assert znpp["owner"] == "bravo"
        assert "never permission" in r.json()["notice"]
        assert (await api.alpha.get("/api/v1/sites/ZNPP")).json()["id"] == "ZNPP"

        r = await api.alpha.post(
            "/api/v1/notices", json={"notice": activity(), "precedence": "IMMEDIATE"}
        )
        assert r.status_code == 201, r.text
        await p.flush()
        for c in (api.alpha, api.bravo):
            [conflict] = (await c.get("/api/v1/conflicts")).json()["conflicts"]
            assert (conflict["site_id"], conflict["activity_id"]) == ("ZNPP", "act-1")
            assert conflict["protected_distance_m"] == 5_500.0
            alarms = [a for a in (await c.get("/api/v1/alarms")).json() if a["kind"] == "conflict"]
            assert [a["severity"] for a in alarms] == ["CRITICAL"]
        [act] = (await api.bravo.get("/api/v1/activities")).json()["activities"]
        assert act["owner"] == "alpha"
        assert (await api.bravo.get("/api/v1/activities/act-1")).json()["live"] is True

        # the same activity again: 422, nothing sent
        before = snapshot(p.alpha)
        r = await api.alpha.post("/api/v1/notices", json={"notice": activity()})
        assert r.status_code == 422
        assert snapshot(p.alpha) == before
        # bravo cannot cancel alpha's activity: 403
        r = await api.bravo.post("/api/v1/notices", json={"notice": activity(action="cancel")})
        assert r.status_code == 403
        assert error_of(r)["code"] == "forbidden"

        # the draft concern, raised by bravo
        [conflict] = (await api.bravo.get("/api/v1/conflicts")).json()["conflicts"]
        cid = conflict["draft_concern"]["concern_id"]
        r = await api.bravo.post(f"/api/v1/concerns/{cid}/raise", json={})
        assert r.status_code == 201, r.text
        await p.flush()
        r = await api.alpha.get(f"/api/v1/concerns/{cid}")
        assert r.json()["state"] == "raised"
        for name, extra in (("acknowledge", {}), ("answer", {"text": "Moved east."})):
            step = {"type": "concern", "concern_id": cid, "step": name, **extra}
            r = await api.alpha.post("/api/v1/notices", json={"notice": step})
            assert r.status_code == 201, r.text
        await p.flush()
        close = {"type": "concern", "concern_id": cid, "step": "close"}
        assert (await api.bravo.post("/api/v1/notices", json={"notice": close})).status_code == 201
        await p.flush()
        for c in (api.alpha, api.bravo):
            assert (await c.get("/api/v1/concerns")).json()["concerns"] == []
            [done] = (await c.get("/api/v1/concerns", params={"all": True})).json()["concerns"]
            assert done["state"] == "closed"

        # exports
        geo = (await api.alpha.get("/api/v1/registry/export")).json()
        assert geo["type"] == "FeatureCollection"
        assert len(geo["features"]) >= 2
        ed318 = (await api.alpha.get("/api/v1/registry/export", params={"format": "ed318"})).json()
        [zone] = ed318["features"]
        assert zone["properties"]["identifier"] == "ZNPP"
        found = (await api.alpha.get("/api/v1/registry/export?format=conflicts")).json()
        assert len(found["features"]) == 1
        assert (await api.alpha.get("/api/v1/registry/refused")).json() == []

        # the activity is cancelled: the conflict ends on both
        r = await api.alpha.post("/api/v1/notices", json={"notice": activity(action="cancel")})
        assert r.status_code == 201
        await p.flush()
        for c in (api.alpha, api.bravo):
            assert (await c.get("/api/v1/conflicts")).json()["conflicts"] == []
            assert [
                a for a in (await c.get("/api/v1/alarms")).json() if a["kind"] == "conflict"
            ] == []
        ended = (await api.bravo.get("/api/v1/activities", params={"include_ended": True})).json()
        assert [a["live"] for a in ended["activities"]] == [False]

    with_api(run_pair, scenario)


def test_import_and_reference_through_the_api(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        bad: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [30.5, 50.4]},
                 "properties": {"site_id": "H-1", "name": "One", "category": "hospital",
                                "protection_radius_m": 500}},
                {"type": "Feature", "geometry": {"type": "Point", "coordinates": [30.5, 99.0]},
                 "properties": {"site_id": "H-BAD", "name": "Bad", "category": "hospital",
                                "protection_radius_m": 500}},
            ],
        }  # fmt: skip
        before = snapshot(p.bravo)
        r = await api.bravo.post("/api/v1/sites/import", content=json.dumps(bad).encode())
        assert r.status_code == 422
        assert "feature 1 (H-BAD)" in error_of(r)["message"]
        assert snapshot(p.bravo) == before
        bad["features"].pop()
        r = await api.bravo.post(
            "/api/v1/sites/import", params={"prefix": "hosp"}, content=json.dumps(bad).encode()
        )
        assert r.status_code == 201, r.text
        assert r.json()["imported"] == ["H-1"]
        r = await api.bravo.post("/api/v1/sites/reference")
        assert r.status_code == 201
        assert len(r.json()["imported"]) == 38
        await p.flush()
        sites = (await api.alpha.get("/api/v1/sites")).json()["sites"]
        assert len(sites) == 39
        assert (await api.alpha.get("/api/v1/sites", params={"stale": True})).json()["sites"] == []
        # a body over the limit is refused before it is read whole
        r = await api.bravo.post("/api/v1/sites/import", content=b" " * (2 * 1024 * 1024))
        assert 400 <= r.status_code < 500

    with_api(run_pair, scenario)


def test_openapi_lists_the_endpoints(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        async with client(api.apps["alpha"], None) as anonymous:
            r = await anonymous.get("/openapi.json")
        assert r.status_code == 200
        doc = r.json()
        paths = doc["paths"]
        for method, url in [
            ("get", "/api/v1/sites"),
            ("get", "/api/v1/sites/{site_id}"),
            ("get", "/api/v1/activities"),
            ("get", "/api/v1/activities/{activity_id}"),
            ("get", "/api/v1/conflicts"),
            ("get", "/api/v1/concerns"),
            ("get", "/api/v1/concerns/{concern_id}"),
            ("get", "/api/v1/registry/export"),
            ("get", "/api/v1/registry/refused"),
            ("post", "/api/v1/notices"),
            ("post", "/api/v1/concerns/{concern_id}/raise"),
            ("post", "/api/v1/sites/import"),
            ("post", "/api/v1/sites/reference"),
            ("post", "/api/v1/messages"),
            ("get", "/api/v1/alarms"),
        ]:
            assert method in paths.get(url, {}), url
        assert "never permission" in doc["info"]["description"]

    with_api(run_pair, scenario)


# --- garbage: always a 4xx, never a change --------------------------------------------------


#: JSON values (finite numbers: NaN and Infinity have their own test, they are a 500)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=25,
)
NOTICE_FIELDS = st.sampled_from(
    ["type", "notice_id", "action", "site_id", "site", "activity_id", "activity", "concern_id",
     "step", "about", "asked", "text", "geometry", "names", "window"]
)  # fmt: skip


def _broken(base: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A valid notice with one field (top level or in its site/activity) replaced."""
    out: dict[str, Any] = json.loads(json.dumps(base))
    inner = out.get("site") or out.get("activity")
    if key in ("geometry", "names", "window") and inner is not None:
        inner[key] = value
    else:
        out[key] = value
    return out


NOTICE_BODIES = (
    JSON
    | st.fixed_dictionaries({"notice": JSON})
    | st.fixed_dictionaries({"notice": st.dictionaries(NOTICE_FIELDS, JSON, max_size=6)})
    | st.fixed_dictionaries(
        {"notice": st.builds(_broken, st.sampled_from([site(), activity()]), NOTICE_FIELDS,
                             JSON | st.text(max_size=5))},
        optional={"peer": JSON, "precedence": JSON},
    )
)  # fmt: skip


def _assert_4xx(r: httpx.Response, what: Any) -> None:
    assert 400 <= r.status_code < 500, (what, r.status_code, r.text[:500])


def test_garbage_notices_get_a_4xx_and_change_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        await api.bravo.post("/api/v1/notices", json={"notice": site()})
        await api.pair.flush()
        before = snapshot(api.pair.alpha), snapshot(api.pair.bravo)
        app = api.apps["alpha"]
        accepted: list[Any] = []

        @GARBAGE
        @given(body=NOTICE_BODIES)
        def garbage(body: Any) -> None:
            r = request_once(app, "POST", "/api/v1/notices", json=body)
            if r.status_code == 201:  # a replaced field that left the notice valid
                accepted.append(body)
                return
            _assert_4xx(r, body)

        await on_thread(garbage)
        await api.pair.flush()
        if not accepted:
            assert (snapshot(api.pair.alpha), snapshot(api.pair.bravo)) == before
        else:  # only what was accepted was sent
            sent = len(snapshot(api.pair.alpha)["messages"]) - len(before[0]["messages"])
            assert sent == len(accepted)

    with_api(run_pair, scenario)


def test_garbage_messages_get_a_4xx_and_change_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        app = api.apps["alpha"]
        bad_peer = JSON.filter(lambda v: v != "bravo")
        # a string in_reply_to that is not a UUID is a 500: its own test below
        reply_to = st.uuids().map(str) | JSON.filter(lambda v: not isinstance(v, str))

        @GARBAGE
        @given(
            body=JSON
            | st.fixed_dictionaries(
                {"peer": bad_peer},
                optional={"channel": JSON, "precedence": JSON, "text": JSON, "type": JSON,
                          "ack_required": JSON, "in_reply_to": reply_to},
            )
            | st.fixed_dictionaries(
                {"peer": st.just("bravo"),
                 "type": st.text(max_size=12).filter(lambda t: t != "text")},
                optional={"in_reply_to": reply_to, "text": st.text(max_size=20)},
            )
            | st.fixed_dictionaries(
                {"peer": st.just("bravo"), "channel": st.just("") | st.text(min_size=65)},
                optional={"in_reply_to": reply_to, "text": st.text(max_size=20)},
            )
        )  # fmt: skip
        def garbage(body: Any) -> None:
            _assert_4xx(request_once(app, "POST", "/api/v1/messages", json=body), body)

        await on_thread(garbage)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)


def test_nan_and_infinity_in_a_body_are_a_422(run_pair: Any) -> None:
    """Python's json reads NaN and Infinity; the request model refuses them, and FastAPI's
    default validation response echoes the input, which cannot be encoded: a 500."""

    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        for url, raw in [
            ("/api/v1/messages", b'{"peer": NaN}'),
            ("/api/v1/messages", b"Infinity"),
            ("/api/v1/notices", b'{"notice": {}, "peer": -Infinity}'),
        ]:
            r = await api.alpha.post(url, content=raw, headers=JSON_TYPE)
            assert r.status_code == 422, (url, raw)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)


def test_an_in_reply_to_that_is_not_a_uuid_is_a_422(run_pair: Any) -> None:
    """SendRequest.in_reply_to is a plain str; the endpoint's uuid.UUID(...) raises
    ValueError on anything else, which is a 500."""

    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        r = await api.alpha.post("/api/v1/messages", json={"peer": "bravo", "in_reply_to": "0"})
        assert r.status_code == 422
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)


def test_garbage_query_params_and_ids_never_give_a_500(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        app = api.apps["alpha"]
        text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)

        @GARBAGE
        @given(
            path=st.sampled_from(
                ["/api/v1/sites", "/api/v1/activities", "/api/v1/concerns",
                 "/api/v1/registry/export", "/api/v1/messages", "/api/v1/conflicts"]
            ),
            params=st.dictionaries(
                st.sampled_from(["include_ended", "stale", "all", "format", "limit", "peer",
                                 "direction", "unacknowledged", "channel"]) | text,
                text, max_size=4,
            ),
            ident=text,
            by_id=st.sampled_from(["/api/v1/sites/", "/api/v1/activities/",
                                   "/api/v1/concerns/", "/api/v1/messages/"]),
        )  # fmt: skip
        def garbage(path: str, params: dict[str, str], ident: str, by_id: str) -> None:
            r = request_once(app, "GET", path, params=params)
            assert r.status_code < 500, (path, params, r.text[:300])
            r = request_once(app, "GET", by_id + ident.replace("/", "_").replace("?", "_"))
            assert r.status_code < 500, (by_id, ident, r.text[:300])
            r = request_once(app, "POST", "/api/v1/sites/import", params=params, content=b"{}")
            _assert_4xx(r, params)

        await on_thread(garbage)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)


def test_garbage_import_bytes_get_a_4xx_and_change_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        app = api.apps["alpha"]
        collections = st.builds(
            lambda feats: json.dumps({"type": "FeatureCollection", "features": feats}).encode(),
            st.lists(
                st.fixed_dictionaries(
                    {"type": st.just("Feature"), "geometry": JSON, "properties": JSON},
                    optional={"id": JSON},
                ),
                min_size=1,
                max_size=3,
            ),
        )

        @GARBAGE
        @given(raw=st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), JSON)
               | collections)  # fmt: skip
        def garbage(raw: bytes) -> None:
            _assert_4xx(request_once(app, "POST", "/api/v1/sites/import", content=raw), raw)

        await on_thread(garbage)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)
