"""``POST /api/v1/messages:batch``: each item answered as the single route answers it, in
order, with its own idempotency key; garbage refused whole and changing nothing (SQLite
and PostgreSQL, in process)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hotline.api.sendbatch import MAX_BATCH
from tests.api.test_operator_api import (
    GARBAGE,
    JSON,
    Api,
    _assert_4xx,
    error_of,
    on_thread,
    request_once,
    with_api,
)
from tests.service import conftest as service
from tests.service.conftest import snapshot

run_pair = service.run_pair
BATCH = "/api/v1/messages:batch"


def item(text: str, **kw: Any) -> dict[str, Any]:
    return {"peer": "bravo", "text": text, **kw}


def test_a_batch_sends_each_message_in_order(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        r = await api.alpha.post(BATCH, json={"messages": [item(f"m{i}") for i in range(5)]})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == [201] * 5
        seqs = [x["message"]["sequence"] for x in results]
        assert seqs == list(range(seqs[0], seqs[0] + 5))  # the items' order
        for i, x in enumerate(results):
            got = (await api.alpha.get(f"/api/v1/messages/{x['message']['message_id']}")).json()
            assert (got["body"]["text"], got["sequence"]) == (f"m{i}", seqs[i])
        # the single route goes on from there
        one = await api.alpha.post("/api/v1/messages", json=item("after"))
        assert one.json()["sequence"] == seqs[-1] + 1

    with_api(run_pair, scenario)


def test_an_items_refusal_refuses_only_that_item(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        body = {
            "messages": [
                item("first"),
                item("   "),  # blank: the single route's 422 empty_message
                {"peer": "charlie", "text": "to no peer"},
                item("x" * 200),  # longer than a text may be here
                item("last"),
            ]
        }
        r = await api.alpha.post(BATCH, json=body)
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        got = [(x["status"], (x["error"] or {}).get("code")) for x in results]
        assert got == [
            (201, None),
            (422, "empty_message"),
            (400, "unknown_peer"),
            (422, "text_too_long"),
            (201, None),
        ]
        for x in results[1:4]:
            assert x["message"] is None
            assert x["error"]["message"]
        # what the single route answers for the same refusals
        single = await api.alpha.post("/api/v1/messages", json=body["messages"][1])
        assert (single.status_code, error_of(single)["code"]) == (422, "empty_message")
        sent = [results[0]["message"]["sequence"], results[4]["message"]["sequence"]]
        assert sent[1] == sent[0] + 1  # refused items took no sequence number

    with_api(run_pair, scenario, max_text_chars=100)


def test_each_item_has_its_own_idempotency_key(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        first = await api.alpha.post(
            BATCH,
            json={"messages": [item("a", idempotency_key="k-a"), item("b")]},
        )
        a = first.json()["results"][0]
        assert (a["status"], a["replayed"]) == (201, False)
        before = snapshot(api.pair.alpha)
        again = await api.alpha.post(
            BATCH,
            json={
                "messages": [
                    item("a", idempotency_key="k-a"),  # a retry: the first result again
                    item("other", idempotency_key="k-a"),  # the key with another request
                ]
            },
        )
        retry, reused = again.json()["results"]
        assert (retry["status"], retry["replayed"]) == (201, True)
        assert retry["message"] == a["message"]
        assert (reused["status"], reused["error"]["code"]) == (422, "idempotency_key_reused")
        # the single route knows the key too (the same request, the same officer)
        single = await api.alpha.post(
            "/api/v1/messages", json=item("a"), headers={"Idempotency-Key": "k-a"}
        )
        assert single.headers["idempotent-replayed"] == "true"
        assert single.json() == a["message"]
        assert snapshot(api.pair.alpha) == before  # nothing sent twice

    with_api(run_pair, scenario)


def test_a_batch_that_does_not_parse_is_refused_whole(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        for body in [
            {"messages": []},
            {"messages": [item(f"m{i}") for i in range(MAX_BATCH + 1)]},
            {"messages": [item("ok"), item("bad", precedence="NOW")]},
            {"messages": [item("ok", idempotency_key="")]},
            {"messages": [item("ok")], "extra": 1},
            [item("ok")],
        ]:
            r = await api.alpha.post(BATCH, json=body)
            assert r.status_code == 422, (body, r.text[:300])
            error_of(r)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)


def test_garbage_batches_get_a_4xx_or_refused_items_and_change_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        app = api.apps["alpha"]
        bad_peer = JSON.filter(lambda v: v != "bravo")
        garbage_item = JSON | st.fixed_dictionaries(
            {"peer": bad_peer},
            optional={"channel": JSON, "precedence": JSON, "text": JSON,
                      "idempotency_key": JSON, "in_reply_to": st.uuids().map(str)},
        )  # fmt: skip

        @GARBAGE
        @given(
            body=JSON
            | st.fixed_dictionaries({"messages": st.lists(garbage_item, max_size=4)})
            | st.fixed_dictionaries({"messages": JSON})
        )
        def garbage(body: Any) -> None:
            r = request_once(app, "POST", BATCH, json=body)
            if r.status_code == 200:  # it parsed: every item refused, none sent
                results = r.json()["results"]
                assert len(results) == len(body["messages"])
                assert all(400 <= x["status"] < 500 and x["error"] for x in results), results
                return
            _assert_4xx(r, body)
            error_of(r)

        await on_thread(garbage)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)
