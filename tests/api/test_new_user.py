"""What a new user ran into through the operator API (issue 7, "the operator side" 5):
a reply answered 500, an ED-318 zone with a null or non-string name answered 500, an
empty message was accepted. Each on SQLite and PostgreSQL, or by hypothesis."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.api.test_operator_api import (
    GARBAGE,
    JSON,
    Api,
    error_of,
    on_thread,
    request_once,
    with_api,
)
from tests.conftest import VECTORS
from tests.service import conftest as service
from tests.service.conftest import snapshot

run_pair = service.run_pair
CIRCLE = VECTORS / "data" / "ed318-examples" / "Example_GeoZone_Circle.json"


def test_a_reply_to_a_real_message_is_sent_and_received(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        r = await api.alpha.post("/api/v1/messages", json={"peer": "bravo", "text": "Confirm?"})
        first = r.json()["message_id"]
        await api.pair.flush()
        r = await api.bravo.post(
            "/api/v1/messages",
            json={"peer": "alpha", "text": "Confirmed.", "in_reply_to": first},
        )
        assert r.status_code == 201, r.text
        reply = r.json()["message_id"]
        await api.pair.flush()
        got = (await api.alpha.get(f"/api/v1/messages/{reply}")).json()
        assert got["body"] == {"text": "Confirmed.", "in_reply_to": first, "type": "text",
                               "ack_required": True}  # fmt: skip
        mine = (await api.bravo.get(f"/api/v1/messages/{reply}")).json()
        assert mine["body"]["in_reply_to"] == first
        assert mine["state"] == "delivered"
        # the projections rebuilt from the ledger read the reply the same way
        b = api.pair.bravo
        before = snapshot(b)
        await b.writer.submit(lambda tx: b.line.rebuild_projections(tx.conn))
        assert snapshot(b) == before

    with_api(run_pair, scenario)


def test_an_empty_message_is_refused_with_its_own_code(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        for text in ("", " ", "\n\t ", None):
            body: dict[str, Any] = {"peer": "bravo"}
            if text is not None:
                body["text"] = text
            r = await api.alpha.post("/api/v1/messages", json=body)
            assert r.status_code == 422, (text, r.text)
            err = error_of(r)
            assert err["code"] == "empty_message"
            assert "text" in err["hint"]
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)


def _zone(name: Any, *, drop: bool = False) -> bytes:
    doc = json.loads(CIRCLE.read_bytes())
    for f in doc["features"]:
        if drop:
            f["properties"].pop("name", None)
        else:
            f["properties"]["name"] = name
    return json.dumps(doc).encode()


def test_ed318_names_that_are_not_text_are_refused_by_name(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.bravo)
        for name in ("Zone", 7, {"text": "x"}, [None], [{"text": None}],
                     [{"text": 5, "lang": "en"}], [{"text": "Zone", "lang": None}],
                     [{"text": "Zone", "lang": 3}], ["Zone"], [{"text": ""}]):  # fmt: skip
            r = await api.bravo.post("/api/v1/sites/import", content=_zone(name))
            assert r.status_code == 422, (name, r.text)
            err = error_of(r)
            assert err["code"] == "bad_import_file"
            assert "name" in err["message"], err
        assert snapshot(api.pair.bravo) == before
        # a zone with a null name or none is named by its identifier; proper names import
        r = await api.bravo.post("/api/v1/sites/import", content=_zone(None))
        assert r.status_code == 201, r.text
        site = (await api.bravo.get("/api/v1/sites/ABC1234")).json()
        assert site["current"]["names"] == {"en": "ABC1234"}
        r = await api.bravo.post(
            "/api/v1/sites/import",
            params={"prefix": "dropped"},
            content=_zone(None, drop=True).replace(b'"identifier": "', b'"identifier": "D-'),
        )
        assert r.status_code == 201, r.text
        r = await api.bravo.post(
            "/api/v1/sites/import",
            params={"prefix": "named"},
            content=_zone([{"text": "Zona", "lang": "UK"}, {"text": "Zone"}]).replace(
                b'"identifier": "', b'"identifier": "N-'
            ),
        )
        assert r.status_code == 201, r.text

    with_api(run_pair, scenario)


def test_ed318_garbage_names_never_give_a_500(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        app = api.apps["bravo"]
        names = JSON | st.lists(st.dictionaries(st.sampled_from(["text", "lang"]), JSON))

        @GARBAGE
        @given(name=names)
        def garbage(name: Any) -> None:
            r = request_once(app, "POST", "/api/v1/sites/import", content=_zone(name))
            assert r.status_code in (201, 422), (name, r.text[:300])

        await on_thread(garbage)

    with_api(run_pair, scenario)
