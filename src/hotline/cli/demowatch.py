"""``hotline demo``, part two: people on watch.

Owns the demo's second act, on three running stations (alpha, bravo and icrc, a neutral
facilitator): officer accounts with their own tokens, two channels at different levels
agreed by their members (chiefs of staff between alpha and bravo, under the two-person
rule and a short acknowledgement deadline; a working-level humanitarian channel with
icrc as the third member), a message held until a second officer approves it, the
escalation when nobody acknowledges it in time, a message delivered to both other
members of the humanitarian channel, and bravo's record of passing it on. Last, the
console's login on each station (``console_logins``).

Every step waits for a state through the operator APIs, never for a time. Must not
touch: the stations' files or stores (only their APIs), the first act (cli/demo.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx

from hotline.cli.officercmd import session_cookie
from hotline.errors import HotlineError

#: the chiefs-of-staff channel's FLASH deadline in the demo, seconds: short, so that the
#: escalation shows within the demo (a real channel has minutes)
FLASH_DEADLINE_S = 3.0
#: what the demo stations change of the defaults: escalation looked for every second
SETTINGS = {"escalation_check_interval_s": 1.0}

CHIEFS = {
    "name": "chiefs",
    "level": "chiefs_of_staff",
    "members": ["alpha", "bravo"],
    "two_person": True,
    "ack_deadlines_s": {"FLASH": FLASH_DEADLINE_S},
    "escalation": [{"after_s": 0, "role": "senior_watch_officer", "both_sides": True}],
}
HUMANITARIAN = {
    "name": "humanitarian",
    "level": "working",
    "members": ["alpha", "bravo", "icrc"],
}

Wait = Callable[[str, Callable[[], bool]], None]


class Officer:
    """An officer's own API client: an account made by the station's administrator
    token, then a login (session cookie and CSRF token) that issues the officer a token."""

    def __init__(self, station: Any, username: str, display_name: str, roles: list[str]):
        self.station, self.username = station, username
        #: printed by the demo so that one can log in as this officer (a demo, on loopback)
        self.password = password = secrets.token_urlsafe(18)
        station.api("POST", "/api/v1/officers", json={
            "username": username, "display_name": display_name, "roles": roles,
            "password": password,
        })  # fmt: skip
        with httpx.Client(base_url=station.api_url, trust_env=False, timeout=30) as c:
            r = c.post("/api/v1/session", json={"username": username, "password": password})
            _raise_for(r, "log in")
            sid = session_cookie(r.headers.get_list("set-cookie"))
            headers = {"cookie": f"hotline_session={sid}", "x-csrf-token": r.json()["csrf_token"]}
            t = c.post("/api/v1/tokens", json={"label": "demo"}, headers=headers)
            _raise_for(t, "issue a token")
            c.request("DELETE", "/api/v1/session", headers=headers)
        self._token = t.json()["token"]

    def api(self, method: str, path: str, **kw: Any) -> Any:
        with httpx.Client(
            base_url=self.station.api_url,
            headers={"authorization": f"Bearer {self._token}"},
            trust_env=False,
            timeout=30,
        ) as c:
            r = c.request(method, path, **kw)
        _raise_for(r, f"{method} {path} as {self.username}")
        return r.json()


#: the console login the demo makes on each station (cli/demo.py prints it)
CONSOLE_USERNAME = "officer"


def console_logins(stations: list[Any]) -> list[dict[str, str]]:
    """An account ``officer`` (senior watch officer: every action of the watch, the
    second officer's approval included) on each station, with its own random password,
    for the console at the station's operator API address.

    Random, not a fixed demo password: these are real stations with real keys, and a
    password written in the documentation is one that anyone on the machine knows. Like
    a notebook server's start-up token, it is printed once, in the demo's summary."""
    out = []
    for st in stations:
        password = secrets.token_urlsafe(12)
        st.api("POST", "/api/v1/officers", json={
            "username": CONSOLE_USERNAME, "display_name": f"Duty officer at {st.station_id}",
            "roles": ["senior_watch_officer"], "password": password,
        })  # fmt: skip
        out.append({"station": st.station_id, "url": st.api_url + "/",
                    "username": CONSOLE_USERNAME, "password": password})  # fmt: skip
    return out


def _raise_for(r: httpx.Response, what: str) -> None:
    if r.status_code >= 400:
        raise HotlineError(f"{what}: {r.status_code} {r.text}", code="api_error")


def _agreed(station: Any, name: str) -> bool:
    return any(
        c["name"] == name and c["state"] == "agreed" for c in station.api("GET", "/api/v1/channels")
    )


def officers(a: Any, b: Any, c: Any) -> dict[str, Officer]:
    """A watch officer and a senior watch officer at alpha; a watch officer and a
    principal (chief of staff's office) at bravo; a liaison officer at icrc."""
    return {
        "olena": Officer(a, "olena", "Olena Kovalenko", ["watch_officer"]),
        "taras": Officer(a, "taras", "Taras Melnyk", ["senior_watch_officer"]),
        "mykola": Officer(b, "mykola", "Mykola Bondar", ["watch_officer"]),
        "iryna": Officer(b, "iryna", "Iryna Savchenko", ["principal"]),
        "anna": Officer(c, "anna", "Anna Keller", ["watch_officer"]),
    }


def channels(a: Any, b: Any, c: Any, people: dict[str, Officer], wait: Wait) -> None:
    """alpha's principal-level administrator proposes both channels; each member accepts."""
    step = "agree two channels"
    a.api("POST", "/api/v1/channels", json=CHIEFS)
    a.api("POST", "/api/v1/channels", json=HUMANITARIAN)
    wait(step, lambda: all(_pending(st, n) for st, n in
                           ((b, "chiefs"), (b, "humanitarian"), (c, "humanitarian"))))  # fmt: skip
    people["iryna"].api("POST", "/api/v1/channels/chiefs/accept")
    b.api("POST", "/api/v1/channels/humanitarian/accept")
    c.api("POST", "/api/v1/channels/humanitarian/accept")
    wait(step, lambda: all(_agreed(st, "chiefs") for st in (a, b)))
    wait(step, lambda: all(_agreed(st, "humanitarian") for st in (a, b, c)))


def _pending(station: Any, name: str) -> bool:
    return any(
        c["name"] == name and c["state"] == "proposed"
        for c in station.api("GET", "/api/v1/channels")
    )


def two_person(b: Any, people: dict[str, Officer], wait: Wait) -> dict[str, Any]:
    """olena's FLASH on chiefs is held; taras approves it; it reaches bravo."""
    held = people["olena"].api("POST", "/api/v1/messages", json={
        "peer": "bravo", "channel": "chiefs", "precedence": "FLASH",
        "text": "Request to pause strikes within 30 km of the Zaporizhzhia NPP for the "
        "IAEA rotation at 0900Z.",
    })  # fmt: skip
    decided = people["taras"].api("POST", f"/api/v1/approvals/{held['approval_id']}/approve")
    [mid] = decided["message_ids"]
    wait("a second officer approves", lambda: _has(b, mid))
    return {"approval": decided, "message_id": mid}


def _has(station: Any, message_id: str) -> bool:
    try:
        station.api("GET", f"/api/v1/messages/{message_id}")
    except HotlineError:
        return False
    return True


def escalation(a: Any, b: Any, message_id: str, people: dict[str, Officer], wait: Wait) -> Any:
    """Nobody at bravo acknowledges within the deadline: alpha's ladder alarms its senior
    watch officer and tells bravo, whose senior role is alarmed too; then mykola reads and
    acknowledges it, which ends the ladder on both sides."""

    def steps(st: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = st.api(
            "GET", "/api/v1/escalations", params={"message_id": message_id}
        )
        return rows

    wait("the missed deadline escalates", lambda: bool(steps(a)) and bool(steps(b)))
    people["mykola"].api("POST", f"/api/v1/messages/{message_id}/read")
    people["mykola"].api("POST", f"/api/v1/messages/{message_id}/ack", json={})
    wait(
        "the acknowledgement ends the ladder",
        lambda: a.api("GET", f"/api/v1/messages/{message_id}")["state"] == "acknowledged",
    )
    return {"alpha": steps(a), "bravo": steps(b)}


def facilitated(a: Any, b: Any, c: Any, people: dict[str, Officer], wait: Wait) -> Any:
    """olena writes on the humanitarian channel: one envelope to bravo, one to icrc;
    bravo passes it on to a brigade's operations cell and says so to alpha."""
    sent = people["olena"].api("POST", "/api/v1/messages", json={
        "channel": "humanitarian", "precedence": "IMMEDIATE",
        "text": "ICRC convoy of 12 trucks on the M-18, Dnipro to Zaporizhzhia, 0600-1400Z.",
    })  # fmt: skip
    group = sent["group"]
    wait(
        "one message reaches both other members",
        lambda: all(
            r["state"] != "queued"
            for r in a.api("GET", f"/api/v1/channels/groups/{group}")["recipients"]
        ),
    )
    to_bravo = next(r["message_id"] for r in sent["recipients"] if r["peer"] == "bravo")
    people["mykola"].api("POST", f"/api/v1/messages/{to_bravo}/disseminations", json={
        "to": "3rd brigade operations cell", "note": "by radio, read back",
    })  # fmt: skip
    wait(
        "bravo's dissemination record reaches alpha",
        lambda: any(
            d["direction"] == "in"
            for d in a.api("GET", f"/api/v1/messages/{to_bravo}/disseminations")
        ),
    )
    return {
        "group": a.api("GET", f"/api/v1/channels/groups/{group}"),
        "disseminations": a.api("GET", f"/api/v1/messages/{to_bravo}/disseminations"),
    }
