"""The hostile peer against suspension and dissemination (issue 8), in-process on SQLite
and PostgreSQL: mallory (valid keys) resumes a suspension alpha declared, floods
suspensions, and sends dissemination records for messages alpha never sent it, for a
message of another peer, dated before the message, in the future, or out of range.

What the target must do (README.md's table): a claim is stored as what it is (the
envelope is mallory's signed record) and changes nothing; a time in the future or out of
range is refused ``bad_time`` with the store unchanged; the station keeps answering.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.hostile.attacks import Attack, unchanged
from tests.hostile.target import Target, diff

ATTACKS: dict[str, Attack] = {}
Y2020_US = 1_577_836_800_000_000


def attack(fn: Attack) -> Attack:
    ATTACKS[fn.__name__] = fn
    return fn


def typed(kind: str, data: Any) -> bytes:
    return json.dumps({"type": kind, "text": "x", "data": data, "ack_required": False}).encode()


def envelope(t: Target, kind: str, data: Any, *, take: bool = True) -> bytes:
    seq = t.peer.take_seq() if take else t.peer.next_seq
    return t.peer.envelope(t.now_us(), sequence=seq, plaintext=typed(kind, data))


def added_rows(before: Any, after: Any) -> dict[str, int]:
    return {name: len(add) for name, (_rem, add) in diff(before, after).items() if add}


@attack
async def resumes_our_suspension(t: Target) -> None:
    """mallory says "resumed" for the line alpha suspended: stored as its claim
    (``not_theirs``), alpha's suspension stands and still binds alpha's sends."""
    mallory = t.peer.station_id
    await t.operator("POST", "/api/v1/suspensions", json={"peer": mallory, "reason": "talks"})
    before = t.snapshot()
    await t.accept([envelope(t, "suspension", {"scope": "line", "state": "resumed",
                                               "reason": "we say so"})])  # fmt: skip
    added = added_rows(before, t.snapshot())
    assert added["suspensions"] == 1
    assert added["messages"] == 1
    [ours] = (await t.operator("GET", "/api/v1/suspensions"))["active"]
    assert (ours["side"], ours["peer"]) == ("ours", mallory)
    [last, *_] = await t.operator("GET", "/api/v1/suspensions/history")
    assert (last["declared_by"], last["state"], last["outcome"]) == (
        mallory, "resumed", "not_theirs",
    )  # fmt: skip
    r = await t.operator_http.post("/api/v1/messages", json={"peer": mallory, "text": "held"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "suspended")
    await t.operator("POST", "/api/v1/suspensions/resume", json={"peer": mallory})
    await t.still_answers()


@attack
async def floods_suspensions(t: Target) -> None:
    """100 suspensions of distinct channels in one batch: all stored, at most 64 in force
    (the rest ``too_many``), and alpha's own sends bound only by what is in force."""
    raws = [
        envelope(t, "suspension", {"scope": "channel", "channel": f"c{i}",
                                   "state": "suspended", "reason": "flood"})
        for i in range(100)
    ]  # fmt: skip
    await t.accept(raws)
    active = (await t.operator("GET", "/api/v1/suspensions"))["active"]
    assert len(active) == 64
    hist = await t.operator("GET", "/api/v1/suspensions/history", params={"limit": 1000})
    assert sum(h["outcome"] == "too_many" for h in hist) == 36
    await t.still_answers()  # "working" is not suspended


@attack
async def disseminations_it_cannot_have_made(t: Target) -> None:
    """Records for a message alpha never sent, for one alpha sent to another peer, and
    dated before the message: stored as claims (not counted, an alarm each); dated in the
    future or out of range: ``bad_time``, store unchanged."""
    mallory = t.peer.station_id
    ours = await t.send_to_peer("convoy at checkpoint 4")
    to_other = await t.operator(
        "POST", "/api/v1/messages", json={"peer": t.other_peer or "bravo", "text": "other"}
    )
    now = t.now_us()
    base = {"to": "a unit", "officer": "Col. Lie", "at_us": now}
    claims = [
        ({**base, "message_id": str(uuid.uuid4())}, "unknown_message"),
        ({**base, "message_id": to_other["message_id"]}, "unknown_message"),
        ({**base, "message_id": ours["message_id"], "at_us": ours["sent_at_us"] - 3_600_000_000},
         "bad_time"),
    ]  # fmt: skip
    for data, outcome in claims:
        await t.accept([envelope(t, "dissemination", data)])
        [*_, row] = await t.operator("GET", f"/api/v1/messages/{data['message_id']}/disseminations")
        assert (row["direction"], row["peer"], row["outcome"]) == ("in", mallory, outcome)
    alarms = await t.operator("GET", "/api/v1/alarms")
    assert sum(a["kind"] == "dissemination_claim" for a in alarms) == 3
    skew = int(t.limits["max_clock_skew_s"] * 1_000_000)
    bad_times = [now + skew + 1_000_000, 2**62, 2**63, 2**64 + 5, 0, -1, Y2020_US - 1, -(2**63) - 1]
    raws = [
        envelope(t, "dissemination", {**base, "message_id": ours["message_id"], "at_us": at},
                 take=False)
        for at in bad_times
    ]  # fmt: skip
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["bad_time"] * len(bad_times)
    # a truthful record is then counted
    await t.accept([envelope(t, "dissemination", {**base, "message_id": ours["message_id"]})])
    rows = await t.operator("GET", f"/api/v1/messages/{ours['message_id']}/disseminations")
    assert [r["outcome"] for r in rows] == ["bad_time", "recorded"]
    await t.still_answers()


@attack
async def malformed_records(t: Target) -> None:
    """Suspension and dissemination data that does not fit its model: ``bad_payload``,
    store unchanged."""
    bad = [
        ("suspension", {"scope": "line", "channel": "working", "state": "suspended",
                        "reason": "r"}),
        ("suspension", {"scope": "channel", "state": "suspended", "reason": "r"}),
        ("suspension", {"scope": "line", "state": "paused", "reason": "r"}),
        ("suspension", {"scope": "line", "state": "suspended", "reason": "r" * 2001}),
        ("suspension", {"scope": "line", "state": "suspended", "reason": "r", "x": 1}),
        ("dissemination", {"message_id": "nope", "to": "x", "at_us": 0, "officer": "o"}),
        ("dissemination", {"message_id": str(uuid.uuid4()), "to": "x" * 201,
                           "at_us": t.now_us(), "officer": "o"}),
        ("suspension", None),
    ]  # fmt: skip
    raws = [envelope(t, kind, data, take=False) for kind, data in bad]
    codes = await unchanged(t, lambda: t.refused(raws))
    assert codes == ["bad_payload"] * len(bad)
    await t.still_answers()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack(run_in_process: Callable[..., None], name: str) -> None:
    run_in_process(ATTACKS[name])
