"""The stages API: reading is an explicit POST (a GET never writes), bulk
acknowledgement by selection and by import, alarm acknowledgement, the action queue;
typed answers, refusals in the one error shape, hypothesis garbage on the new bodies."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.store import operational, schema
from hotline.store.writer import WriteTx
from tests.api.test_operator_api import Api, error_of, on_thread, request_once, with_api
from tests.service.conftest import ledger_actions, snapshot
from tests.service.test_registry_service import site_notice


def test_read_then_show_stages_through_the_api(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        sent = await p.send("Convoy moving at 0400Z")
        await p.flush()
        mid = str(sent.message_id)
        before = snapshot(p.bravo)
        r = await api.bravo.get(f"/api/v1/messages/{mid}")
        assert r.status_code == 200
        assert r.json()["recipients"][0]["summary"] == "received, not answered"
        assert snapshot(p.bravo) == before  # a GET records nothing
        r = await api.bravo.post(f"/api/v1/messages/{mid}/read")
        assert r.status_code == 200
        [rec] = r.json()["recipients"]
        assert rec["stage"] == "read"
        assert [s["by"] for s in rec["stages"] if s["stage"] == "read"] == ["station"]
        await p.flush()
        got = (await api.alpha.get(f"/api/v1/messages/{mid}")).json()
        assert got["recipients"][0]["stage"] == "read"
        assert [m["message_id"] for m in got["thread"]] == [mid]
        r = await api.bravo.post(f"/api/v1/messages/{uuid.uuid4()}/read")
        assert (r.status_code, error_of(r)["code"]) == (404, "not_found")
        assert (await api.bravo.post("/api/v1/messages/zz/read")).status_code == 422

    with_api(run_pair, scenario)


def test_bulk_acknowledgement_by_selection_and_by_import(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        texts = [await p.send(f"note {i}") for i in range(3)]
        prefix = "alpha-import-20260101T000000-abc123"
        for i, name in enumerate(("SITE-A", "SITE-B")):
            data = site_notice(name, coords=[30.0 + i, 47.0])
            data["notice_id"] = f"{prefix}-{i}"
            await p.alpha.deconfliction.send_data(data, peer="bravo")
        await p.flush()
        ids = [str(s.message_id) for s in texts[:2]]
        r = await api.bravo.post("/api/v1/acknowledgements", json={"message_ids": ids})
        assert r.status_code == 200
        assert r.json() == {"acknowledged": ids, "skipped": []}
        r = await api.bravo.post("/api/v1/acknowledgements", json={"message_ids": ids})
        assert r.json() == {"acknowledged": [], "skipped": ids}  # once only
        r = await api.bravo.post("/api/v1/acknowledgements", json={"import_id": prefix})
        assert len(r.json()["acknowledged"]) == 2
        acks = ledger_actions(p.bravo, "ack")
        assert len(acks) == 4
        assert {a["officer"] for a in acks} == {"station"}
        r = await api.bravo.post("/api/v1/acknowledgements", json={"import_id": prefix})
        assert (r.status_code, error_of(r)["code"]) == (404, "not_found")
        r = await api.bravo.post("/api/v1/acknowledgements", json={})
        assert (r.status_code, error_of(r)["code"]) == (422, "bad_selection")
        r = await api.bravo.post("/api/v1/acknowledgements", json={"officer": "x"})
        assert r.status_code == 422  # the officer is never taken from the body
        await p.flush()
        for s in texts[:2]:
            got = (await api.alpha.get(f"/api/v1/messages/{s.message_id}")).json()
            assert got["recipients"][0]["stage"] == "acknowledged"

    with_api(run_pair, scenario)


def test_alarm_acknowledgement_and_the_action_queue(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        p = api.pair
        await p.send("urgent", src=p.alpha)
        await p.flush()

        def alarm(tx: WriteTx) -> None:
            operational.raise_alarm(tx.conn, kind="link_down", severity="HIGH", peer="alpha",
                                    ref=None, detail="line to alpha is DOWN",
                                    now_us=p.clock.now_us())  # fmt: skip

        await p.bravo.writer.submit(alarm)
        queue = (await api.bravo.get("/api/v1/actions")).json()
        assert [i["kind"] for i in queue] == ["alarm", "acknowledge"]  # HIGH before ROUTINE
        assert queue[1]["time_left_s"] > 0
        [a] = [x for x in (await api.bravo.get("/api/v1/alarms")).json() if x.get("id")]
        r = await api.bravo.post(f"/api/v1/alarms/{a['id']}/acknowledge",
                                 json={"note": "line engineer called"})  # fmt: skip
        assert r.status_code == 200
        got = r.json()
        assert (got["acknowledged_by"], got["ack_note"]) == ("station", "line engineer called")
        [listed] = [x for x in (await api.bravo.get("/api/v1/alarms")).json() if x.get("id")]
        assert listed["acknowledged_by"] == "station"  # still open, acknowledged
        r = await api.bravo.post(f"/api/v1/alarms/{a['id']}/acknowledge", json={})
        assert (r.status_code, error_of(r)["code"]) == (422, "already_acknowledged")
        r = await api.bravo.post("/api/v1/alarms/999/acknowledge", json={})
        assert r.status_code == 404
        [action] = ledger_actions(p.bravo, "alarm_ack")
        assert (action["officer"], action["kind"]) == ("station", "link_down")
        queue = (await api.bravo.get("/api/v1/actions")).json()
        assert [i["kind"] for i in queue] == ["acknowledge"]

        # an acknowledgement of an alarm is rebuilt from the record as it was
        def rebuild(tx: WriteTx) -> None:
            al = schema.alarms  # forget the acknowledgement, then replay the record
            tx.conn.execute(al.update().values(acknowledged_at_us=None, acknowledged_by=None,
                                               ack_note=None))  # fmt: skip
            p.bravo.line.rebuild_projections(tx.conn)

        await p.bravo.writer.submit(rebuild)
        [listed] = [x for x in (await api.bravo.get("/api/v1/alarms")).json() if x.get("id")]
        assert listed["ack_note"] == "line engineer called"

    with_api(run_pair, scenario)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


def test_garbage_bodies_are_refused_in_the_error_shape(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        app = api.apps["bravo"]

        keys = st.sampled_from(["message_ids", "import_id", "note", "x"])
        paths = st.sampled_from(["/api/v1/acknowledgements", "/api/v1/alarms/1/acknowledge"])

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(body=st.dictionaries(keys, JSONISH, max_size=3), path=paths)
        def check(body: dict[str, Any], path: str) -> None:
            r = request_once(app, "POST", path, json=body)
            assert r.status_code in (200, 404, 422), r.text
            if r.status_code != 200:
                error_of(r)

        await on_thread(check)

    with_api(run_pair, scenario)
