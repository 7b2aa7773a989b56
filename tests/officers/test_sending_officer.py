"""The sending officer travels in the sealed payload and is shown by the peer; the
record and the acknowledgement name the authenticated officer, never a name from a body
(SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.errors import EnvelopeError
from hotline.service.roles import Role
from hotline.wire.envelope import Kind
from hotline.wire.messages import MessagePayload, OfficerRef, parse_payload
from tests.api.test_operator_api import site
from tests.officers.conftest import Desk, error_of, run_pair, with_desks
from tests.service.conftest import Pair, ledger_actions

__all__ = ["run_pair"]


def test_the_peer_sees_who_sent_and_the_sender_sees_who_acknowledged(run_pair: Any) -> None:
    async def scenario(p: Pair, alpha: Desk, bravo: Desk) -> None:
        sender = await alpha.token("ivanova", Role.SENIOR_WATCH_OFFICER, Role.AUDITOR)
        await alpha.officers.set_roles(
            (await alpha.officer("root", Role.ADMINISTRATOR)),
            "ivanova",
            frozenset({Role.SENIOR_WATCH_OFFICER, Role.AUDITOR}),
        )
        duty = await bravo.token("petrenko", Role.WATCH_OFFICER)
        async with alpha.client(sender) as a, bravo.client(duty) as b:
            r = await a.post(
                "/api/v1/messages", json={"peer": "bravo", "text": "x", "operator": "someone else"}
            )
            assert (r.status_code, error_of(r)["code"]) == (422, "bad_input")
            r = await a.post("/api/v1/messages", json={"peer": "bravo", "text": "Confirm."})
            assert r.status_code == 201, r.text
            mid = r.json()["message_id"]
            await p.flush()
            got = (await b.get(f"/api/v1/messages/{mid}")).json()
            assert got["officer"] == {
                "username": "ivanova",
                "display_name": "Ivanova",
                "role": "senior_watch_officer",
            }
            assert got["body"]["officer"]["username"] == "ivanova"
            r = await b.post(f"/api/v1/messages/{mid}/ack", json={"officer": "Gen. X"})
            assert (r.status_code, error_of(r)["code"]) == (422, "bad_input")
            r = await b.post(f"/api/v1/messages/{mid}/ack", json={"note": "understood"})
            assert r.json()["acknowledged_by"] == "petrenko"
            await p.flush()
            mine = (await a.get(f"/api/v1/messages/{mid}")).json()
            assert (mine["state"], mine["acknowledged_by"]) == ("acknowledged", "petrenko")
            assert mine["operator"] == "ivanova"
            assert mine["officer"]["role"] == "senior_watch_officer"
            # a notice names the officer too (through the same sender)
            r = await a.post("/api/v1/notices", json={"notice": site()})
            assert r.status_code == 201, r.text
            [sent] = r.json()["sent"]
            await p.flush()
            notice = (await b.get(f"/api/v1/messages/{sent['message_id']}")).json()
            assert notice["officer"]["username"] == "ivanova"
        [send, notice_send] = ledger_actions(p.alpha, "send")
        assert (send["operator"], send["payload"]["officer"]["username"]) == ("ivanova", "ivanova")
        assert notice_send["operator"] == "ivanova"
        [ack] = ledger_actions(p.bravo, "ack")
        assert ack["officer"] == "petrenko"

    with_desks(run_pair, scenario)


def test_a_peers_officer_field_is_bounded() -> None:
    ok = MessagePayload(text="x", officer=OfficerRef(username="k", display_name="K", role="r"))
    assert parse_payload(Kind.MESSAGE, ok.to_bytes()) == ok
    for bad in (
        b'{"text":"x","officer":{"username":"' + b"k" * 65 + b'","display_name":"K","role":"r"}}',
        b'{"text":"x","officer":{"username":"k","display_name":"' + b"K" * 101 + b'","role":"r"}}',
        b'{"text":"x","officer":{"username":"k","display_name":"K","role":"' + b"r" * 41 + b'"}}',
        b'{"text":"x","officer":{"username":"","display_name":"K","role":"r"}}',
        b'{"text":"x","officer":{"username":"k","display_name":"K","role":"r","x":1}}',
        b'{"text":"x","officer":"k"}',
    ):
        with pytest.raises(EnvelopeError) as refused:
            parse_payload(Kind.MESSAGE, bad)
        assert refused.value.code == "bad_payload"
        assert "officer" in refused.value.message
