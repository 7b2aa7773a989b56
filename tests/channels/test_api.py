"""The channels API between two in-process stations (SQLite and PostgreSQL): propose,
accept, decline, list with state and answers; a send on an agreed channel answers with
each recipient's message id; the unknown-channel error lists the channels; garbage
proposals (hypothesis) get a 4xx and change nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.api.test_operator_api import (
    GARBAGE,
    Api,
    error_of,
    on_thread,
    request_once,
    run_pair,
    with_api,
)
from tests.service.conftest import snapshot

__all__ = ["run_pair"]

TERMS = {
    "name": "chiefs",
    "level": "chiefs_of_staff",
    "members": ["alpha", "bravo"],
    "ack_deadlines_s": {"FLASH": 300},
    "brevity_words": 12,
}


def by_name(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["name"] == name]


def test_propose_accept_send_through_the_api(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        r = await api.alpha.post("/api/v1/channels", json=TERMS)
        assert r.status_code == 201, r.text
        proposed = r.json()
        assert proposed["version"] == 1
        assert set(proposed["message_ids"]) == {"bravo"}
        await api.pair.flush()
        [row] = by_name((await api.bravo.get("/api/v1/channels")).json(), "chiefs")
        assert (row["state"], row["proposer"], row["waiting_for"]) == (
            "proposed",
            "alpha",
            ["bravo"],
        )
        assert row["terms"]["brevity_words"] == 12
        r = await api.bravo.post("/api/v1/channels/chiefs/accept")
        assert r.status_code == 200, r.text
        await api.pair.flush()
        for c in (api.alpha, api.bravo):
            [row] = by_name((await c.get("/api/v1/channels")).json(), "chiefs")
            assert (row["state"], row["accepted_by"], row["waiting_for"]) == (
                "agreed", ["bravo"], [],
            )  # fmt: skip
        standing = by_name((await api.alpha.get("/api/v1/channels")).json(), "working")
        assert standing[0]["state"] == "standing"
        # a send on the agreed channel: no peer needed, each recipient's id answered
        r = await api.alpha.post(
            "/api/v1/messages", json={"channel": "chiefs", "text": "Agreed.", "precedence": "FLASH"}
        )
        assert r.status_code == 201, r.text
        sent = r.json()
        assert [x["peer"] for x in sent["recipients"]] == ["bravo"]
        assert sent["group"] is None
        # brevity on the channel: 13 words at FLASH
        r = await api.alpha.post(
            "/api/v1/messages",
            json={"channel": "chiefs", "text": "w " * 13, "precedence": "FLASH"},
        )
        assert r.status_code == 422
        assert error_of(r)["code"] == "too_long"
        # an unknown channel: the error lists the channels
        r = await api.alpha.post(
            "/api/v1/messages", json={"peer": "bravo", "channel": "chefs", "text": "x"}
        )
        assert r.status_code == 422
        err = error_of(r)
        assert err["code"] == "unknown_channel"
        assert "chiefs, deconfliction, working" in err["hint"]
        # a standing channel needs the peer named
        r = await api.alpha.post("/api/v1/messages", json={"text": "to whom?"})
        assert r.status_code == 422
        assert error_of(r)["code"] == "no_recipient"
        # the thread of the channel, and a decline of new terms
        await api.pair.flush()
        thread = (await api.bravo.get("/api/v1/channels/chiefs/thread")).json()
        assert [m["body"]["text"] for m in thread] == ["Agreed."]
        r = await api.bravo.post("/api/v1/channels", json=TERMS | {"brevity_words": 3})
        assert r.json()["version"] == 2
        await api.pair.flush()
        r = await api.alpha.post("/api/v1/channels/chiefs/decline", json={"reason": "too brief"})
        assert r.status_code == 200, r.text
        await api.pair.flush()
        rows = by_name((await api.bravo.get("/api/v1/channels")).json(), "chiefs")
        assert [(x["version"], x["state"]) for x in rows] == [(1, "agreed"), (2, "declined")]
        assert rows[1]["declined_by"] == ["alpha"]
        r = await api.alpha.post("/api/v1/channels/chiefs/accept")
        assert r.status_code == 404
        assert error_of(r)["code"] == "not_found"
        r = await api.alpha.get("/api/v1/channels/groups/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 404

    with_api(run_pair, scenario)


TERM_VALUES = st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=12)


def test_garbage_proposals_get_a_4xx_and_change_nothing(run_pair: Any) -> None:
    async def scenario(api: Api) -> None:
        before = snapshot(api.pair.alpha)
        app = api.apps["alpha"]

        @GARBAGE
        @given(
            body=st.fixed_dictionaries(
                {},
                optional={
                    "name": st.text(max_size=70) | TERM_VALUES,
                    "level": st.sampled_from(["working", "emperors", "", "Ministers"])
                    | TERM_VALUES,
                    "members": st.lists(st.sampled_from(["alpha", "bravo", "zulu", "", "a b"]),
                                        max_size=4) | TERM_VALUES,
                    "ack_deadlines_s": st.dictionaries(
                        st.sampled_from(["FLASH", "NOW"]),
                        st.floats(allow_nan=False, allow_infinity=False) | st.integers())
                    | TERM_VALUES,
                    "brevity_words": TERM_VALUES,
                    "roles": st.dictionaries(st.text(max_size=5), TERM_VALUES, max_size=2),
                    "surprise": TERM_VALUES,
                },
            ).filter(lambda b: b.get("members") != ["alpha", "bravo"] or "name" not in b)
        )  # fmt: skip
        def garbage(body: Any) -> None:
            r = request_once(app, "POST", "/api/v1/channels", json=body)
            assert 400 <= r.status_code < 500, (r.status_code, r.text, body)
            error_of(r)

        await on_thread(garbage)
        assert snapshot(api.pair.alpha) == before

    with_api(run_pair, scenario)
