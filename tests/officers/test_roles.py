"""The role table, pure and through the API: every role against every action, and every
role against every operator route (403 ``forbidden`` naming the roles that may)."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.errors import PermissionDeniedError
from hotline.service.roles import ALLOWED, Action, Principal, Role, require, roles_for
from tests.officers.conftest import STATION_AUTH, Desk, desk, error_of, run_pair, with_desks
from tests.service.conftest import Pair

__all__ = ["run_pair"]
sqlite_only = pytest.mark.parametrize("run_pair", ["sqlite"], indirect=True)

W, S, P, A, U = (
    Role.WATCH_OFFICER,
    Role.SENIOR_WATCH_OFFICER,
    Role.PRINCIPAL,
    Role.ADMINISTRATOR,
    Role.AUDITOR,
)
#: who may do what, written out (not derived from ALLOWED, which it checks)
TABLE: dict[Action, set[Role]] = {
    Action.READ: {W, S, P, A, U},
    Action.SEND: {W, S, P},
    Action.ACKNOWLEDGE: {W, S, P},
    Action.APPROVE: {S, P},
    Action.DISSEMINATE: {W, S, P},
    Action.HANDOVER: {W, S, P},
    Action.SUSPEND: {S, P},
    Action.CHANNELS: {P, A},
    Action.ROTA: {S, P, A},
    Action.OFFICERS: {A},
    Action.PEERS: {A},
    Action.EXPORT: {S, P, A, U},
}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", list(Role))
def test_role_table(role: Role, action: Action) -> None:
    who = Principal("ko", "Lt. Ko", frozenset({role}))
    if role in TABLE[action]:
        require(who, action)
        assert action in ALLOWED[role]
        return
    with pytest.raises(PermissionDeniedError) as refused:
        require(who, action)
    assert refused.value.code == "forbidden"
    for needed in TABLE[action]:
        assert needed.value in refused.value.message


def test_roles_add_up() -> None:
    both = Principal("ko", "Lt. Ko", frozenset({Role.AUDITOR, Role.WATCH_OFFICER}))
    assert both.may(Action.SEND)
    assert both.may(Action.EXPORT)
    assert not both.may(Action.PEERS)
    assert both.role is Role.WATCH_OFFICER  # a peer is shown the ladder's highest


#: the action each existing operator route needs
ROUTES: dict[tuple[str, str], Action] = {
    ("GET", "/api/v1/status"): Action.READ,
    ("GET", "/api/v1/card"): Action.READ,
    ("GET", "/api/v1/peers"): Action.READ,
    ("POST", "/api/v1/peers"): Action.PEERS,
    ("DELETE", "/api/v1/peers/{station_id}"): Action.PEERS,
    ("POST", "/api/v1/peers/{station_id}/rekey"): Action.PEERS,
    ("POST", "/api/v1/messages"): Action.SEND,
    ("POST", "/api/v1/messages:batch"): Action.SEND,
    ("GET", "/api/v1/messages"): Action.READ,
    ("GET", "/api/v1/messages/{message_id}"): Action.READ,
    ("POST", "/api/v1/messages/{message_id}/ack"): Action.ACKNOWLEDGE,
    ("POST", "/api/v1/messages/{message_id}/void"): Action.SEND,
    ("GET", "/api/v1/channels"): Action.READ,
    ("GET", "/api/v1/channels/{channel}/thread"): Action.READ,
    ("GET", "/api/v1/link"): Action.READ,
    ("POST", "/api/v1/link/{peer}/test"): Action.SEND,
    ("GET", "/api/v1/alarms"): Action.READ,
    ("GET", "/api/v1/events"): Action.READ,
    ("GET", "/api/v1/ledger/checkpoint"): Action.READ,
    ("GET", "/api/v1/ledger/proof/inclusion"): Action.READ,
    ("GET", "/api/v1/ledger/proof/consistency"): Action.READ,
    ("GET", "/api/v1/transcript"): Action.EXPORT,
    ("GET", "/api/v1/sites"): Action.READ,
    ("GET", "/api/v1/sites/{site_id}"): Action.READ,
    ("GET", "/api/v1/activities"): Action.READ,
    ("GET", "/api/v1/activities/{activity_id}"): Action.READ,
    ("GET", "/api/v1/conflicts"): Action.READ,
    ("GET", "/api/v1/concerns"): Action.READ,
    ("GET", "/api/v1/concerns/{concern_id}"): Action.READ,
    ("POST", "/api/v1/notices"): Action.SEND,
    ("POST", "/api/v1/concerns/{concern_id}/raise"): Action.SEND,
    ("POST", "/api/v1/sites/import"): Action.PEERS,
    ("POST", "/api/v1/sites/import/preview"): Action.PEERS,
    ("POST", "/api/v1/sites/reference"): Action.PEERS,
    ("GET", "/api/v1/registry/export"): Action.EXPORT,
    ("GET", "/api/v1/registry/refused"): Action.READ,
    ("GET", "/api/v1/officers"): Action.OFFICERS,
    ("POST", "/api/v1/officers"): Action.OFFICERS,
    ("PUT", "/api/v1/officers/{username}/roles"): Action.OFFICERS,
    ("POST", "/api/v1/officers/{username}/disable"): Action.OFFICERS,
    ("POST", "/api/v1/officers/{username}/enable"): Action.OFFICERS,
    # the two-person rule
    ("GET", "/api/v1/approvals"): Action.READ,
    ("GET", "/api/v1/approvals/{approval_id}"): Action.READ,
    ("POST", "/api/v1/approvals/{approval_id}/approve"): Action.APPROVE,
    ("POST", "/api/v1/approvals/{approval_id}/refuse"): Action.APPROVE,
    ("POST", "/api/v1/approvals/{approval_id}/withdraw"): Action.SEND,
    # rota, handover, escalations
    ("GET", "/api/v1/rota"): Action.READ,
    ("GET", "/api/v1/rota/now"): Action.READ,
    ("PUT", "/api/v1/rota/{entry_id}"): Action.ROTA,
    ("DELETE", "/api/v1/rota/{entry_id}"): Action.ROTA,
    ("GET", "/api/v1/handovers"): Action.READ,
    ("POST", "/api/v1/handovers"): Action.HANDOVER,
    ("GET", "/api/v1/handovers/{handover_id}"): Action.READ,
    ("POST", "/api/v1/handovers/{handover_id}/acknowledge"): Action.HANDOVER,
    ("GET", "/api/v1/escalations"): Action.READ,
    # stages, bulk and alarm acknowledgements, the action queue
    ("POST", "/api/v1/messages/{message_id}/read"): Action.READ,
    ("POST", "/api/v1/acknowledgements"): Action.ACKNOWLEDGE,
    ("POST", "/api/v1/alarms/{alarm_id}/acknowledge"): Action.ACKNOWLEDGE,
    ("GET", "/api/v1/actions"): Action.READ,
    # history
    ("GET", "/api/v1/search"): Action.READ,
    ("GET", "/api/v1/log"): Action.EXPORT,
    # suspension and dissemination
    ("GET", "/api/v1/suspensions"): Action.READ,
    ("GET", "/api/v1/suspensions/history"): Action.READ,
    ("POST", "/api/v1/suspensions"): Action.SUSPEND,
    ("POST", "/api/v1/suspensions/resume"): Action.SUSPEND,
    ("POST", "/api/v1/messages/{message_id}/disseminations"): Action.DISSEMINATE,
    ("GET", "/api/v1/messages/{message_id}/disseminations"): Action.READ,
    # channels
    ("POST", "/api/v1/channels"): Action.CHANNELS,
    ("POST", "/api/v1/channels/{name}/accept"): Action.CHANNELS,
    ("POST", "/api/v1/channels/{name}/decline"): Action.CHANNELS,
    ("GET", "/api/v1/channels/groups/{group_id}"): Action.READ,
    # the hand-carried path
    ("POST", "/api/v1/bundles/export"): Action.PEERS,
    ("POST", "/api/v1/bundles/import"): Action.PEERS,
    ("GET", "/api/v1/bundles"): Action.READ,
}
#: routes every authenticated officer may use (its own session, tokens, TOTP, password)
OWN = {
    ("POST", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens"),
    ("DELETE", "/api/v1/tokens/{token_id}"),
    ("POST", "/api/v1/me/totp"),
    ("POST", "/api/v1/me/totp/confirm"),
    ("POST", "/api/v1/officers/{username}/password"),
}
#: routes without authentication: a process's role for a load balancer (no secrets)
PUBLIC = {("GET", "/health")}
FILL = {
    "station_id": "bravo",
    "message_id": "00000000-0000-0000-0000-000000000001",
    "channel": "working",
    "peer": "bravo",
    "site_id": "ZNPP",
    "activity_id": "a-1",
    "concern_id": "c-1",
    "username": "nobody",
    "approval_id": "00000000-0000-0000-0000-000000000002",
    "entry_id": "shift-1",
    "handover_id": "00000000-0000-0000-0000-000000000003",
    "alarm_id": "1",
    "name": "working",
    "group_id": "00000000-0000-0000-0000-000000000004",
}


def routes_of(app: Any) -> set[tuple[str, str]]:
    """Every operation of the app, as its OpenAPI document lists them."""
    return {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}


@sqlite_only
def test_every_route_is_in_the_table_and_refuses_the_roles_it_does_not_allow(
    run_pair: Any,
) -> None:
    async def scenario(p: Pair, alpha: Desk, _bravo: Desk) -> None:
        full = desk(p.alpha, peer_admin=p.alpha, add_peer=None)
        assert routes_of(full.app) == set(ROUTES) | OWN | PUBLIC
        headers = {
            role: await full.token(f"only-{role.value}".replace("_", "-"), role) for role in Role
        }
        async with full.client() as c:
            for (method, path), action in sorted(ROUTES.items()):
                url = path.format(**FILL)
                for role in Role:
                    kw: dict[str, Any] = {"headers": headers[role]}
                    if method in ("POST", "PUT", "DELETE"):
                        kw["content"] = b'{"__nothing__": 1}'
                        kw["headers"] = {**kw["headers"], "content-type": "application/json"}
                    if role in TABLE[action]:
                        if method != "GET" or path.endswith("/events"):
                            continue  # allowed: not run (a read is, below)
                        r = await c.request(method, url, **kw)
                        assert r.status_code != 403, (method, path, role, r.text)
                        continue
                    r = await c.request(method, url, **kw)
                    assert r.status_code == 403, (method, path, role, r.text)
                    err = error_of(r)
                    assert err["code"] == "forbidden"
                    for needed in roles_for(action):
                        assert needed.value in err["message"], (method, path, err)
                    assert "role" in err["hint"]

    with_desks(run_pair, scenario)


@sqlite_only
def test_a_refusal_changes_nothing_and_the_station_token_may_everything(run_pair: Any) -> None:
    from tests.service.conftest import snapshot

    async def scenario(p: Pair, alpha: Desk, _bravo: Desk) -> None:
        auditor = await alpha.token("audit", Role.AUDITOR)
        before = snapshot(p.alpha)
        async with alpha.client(auditor) as c:
            r = await c.post("/api/v1/messages", json={"peer": "bravo", "text": "hi"})
            assert r.status_code == 403
            assert "watch_officer" in error_of(r)["message"]
        assert snapshot(p.alpha) == before
        async with alpha.client(STATION_AUTH) as c:
            me = (await c.get("/api/v1/me")).json()
            assert (me["username"], me["via"]) == ("station", "station")
            assert set(me["allowed"]) == {a.value for a in Action}

    with_desks(run_pair, scenario)
