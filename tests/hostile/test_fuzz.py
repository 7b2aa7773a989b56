"""Hypothesis mutates the fields of valid envelopes, which the peer re-signs with its real
key, and delivers them to a station's real peer app (in-process, SQLite and PostgreSQL).

Every envelope is either accepted as a proper new message (a signed receipt for exactly
those bytes, one new ledger entry, and only if it keeps every rule of the wire: from the
peer, to the target, a delivered kind, inside the sequence window, not dated in the
future, claimed times in range) or an exact duplicate (the same receipt, nothing stored),
or refused with one of the documented codes and the store left exactly as it was. Never
a 500, never ``store``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase, event, given, settings

from hotline.crypto import primitives
from hotline.wire import envelope as wire
from hotline.wire.envelope import Kind
from tests.crypto.helpers import new_identity
from tests.hostile.attacks import MAX_SEQUENCE_AHEAD, Y2020_US
from tests.hostile.conftest import build_station, in_process_target
from tests.hostile.peer import ack_plaintext, message_plaintext, polygon_site_notice
from tests.hostile.target import DOCUMENTED_CODES, Target, diff

#: no shrinking: the target keeps the state each example leaves, so a shrunk example
#: would run against another station than the one that failed
FUZZ = settings(
    max_examples=200,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
STATIONS = ["mallory", "alpha", "bravo", "ghost", "Mallory", "m" * 40, ""]
SEQUENCES = ["next", "used", "edge", "beyond"]
TIMES = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, -1, 2**62, 2**63 - 1, 2**63, 2**64 - 1, Y2020_US - 1]),
    st.integers(-(10**13), 10**13).map(lambda d: ("now", d)),
)


def payloads() -> st.SearchStrategy[Any]:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=10,
    )
    return st.one_of(
        st.text(max_size=200).map(lambda text: ("message", text)),
        st.tuples(st.just("ack"), st.sampled_from(["ours", "random"]), TIMES),
        st.binary(max_size=200).map(lambda b: ("bytes", b)),
        st.dictionaries(st.text(max_size=12), json_values, max_size=5).map(lambda d: ("json", d)),
        st.integers(3, 30).map(lambda n: ("polygon", n)),
    )


#: the fields a mutation may change, each with the values it may take; an example changes
#: one or two of them, so that most envelopes get past the first check to the later ones
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.integers(0, 255) | st.sampled_from([int(k) for k in Kind]),
    "precedence": st.integers(0, 255) | st.integers(0, 3),
    "sender": st.sampled_from(STATIONS),
    "recipient": st.sampled_from(STATIONS),
    # a random name is unknown_channel (neither standing nor agreed); the standing ones pass
    "channel": st.text(max_size=80) | st.sampled_from(["working", "deconfliction"]),
    "sequence": st.integers(0, 2**64 - 1) | st.sampled_from(SEQUENCES),
    "message_id": st.uuids() | st.just("used"),
    "sent_at_us": TIMES,
    "payload": payloads(),
    "signer": st.sampled_from(["log", "stranger"]),
    "version": st.integers(0, 3),
    "flags": st.integers(0, 3),
}
MUTATIONS = st.lists(
    st.sampled_from(sorted(FIELDS)) | st.just("payload") | st.just("sequence"),
    max_size=2,
    unique=True,
).flatmap(lambda names: st.fixed_dictionaries({n: FIELDS[n] for n in names}))


@dataclass
class State:
    """What the fuzzer knows of the exchange so far."""

    used: dict[int, bytes] = field(default_factory=dict)
    receipts: dict[bytes, bytes] = field(default_factory=dict)
    message_ids: list[uuid.UUID] = field(default_factory=list)
    ours: str = ""  # a message the target sent us (acknowledgements refer to it)


def _time(v: Any, now: int) -> int:
    return now + v[1] if isinstance(v, tuple) else int(v)


def _plaintext(payload: Any, state: State, now: int) -> bytes:
    tag, *rest = payload
    if tag == "message":
        return message_plaintext(rest[0])
    if tag == "ack":
        which, at = rest
        mid = state.ours if which == "ours" else str(uuid.uuid4())
        return ack_plaintext(mid, _time(at, now))
    if tag == "bytes":
        return bytes(rest[0])
    if tag == "json":
        return json.dumps(rest[0]).encode()
    return polygon_site_notice(rest[0])


def _sequence(v: Any, t: Target, state: State) -> int:
    mark = t.peer.next_seq - 1
    if v == "next":
        return mark + 1
    if v == "used":
        return min(state.used) if state.used else 1
    if v == "edge":
        return mark + MAX_SEQUENCE_AHEAD
    if v == "beyond":
        return mark + MAX_SEQUENCE_AHEAD + 1
    return int(v)


async def _one(t: Target, state: State, m: dict[str, Any]) -> None:
    now = t.now_us()
    fields: dict[str, Any] = {"sequence": t.peer.next_seq}
    for name in ("kind", "precedence", "sender", "recipient", "channel", "version", "flags"):
        if name in m:
            fields[name] = m[name]
    if "sequence" in m:
        fields["sequence"] = _sequence(m["sequence"], t, state)
    if "message_id" in m:
        mid = m["message_id"]
        fields["message_id"] = state.message_ids[0] if mid == "used" else mid
    sent_at = _time(m["sent_at_us"], now) if "sent_at_us" in m else now
    fields["sent_at_us"] = sent_at
    fields["plaintext"] = _plaintext(m.get("payload", ("message", "fuzz")), state, now)
    seed = {
        "log": t.peer.identity.log_seed,
        "stranger": new_identity("mallory").signing_seed,
    }.get(m.get("signer", ""))
    f = t.peer.forged(now, **fields)
    raw = t.peer.seal(f, signing_seed=seed)

    before = t.snapshot()
    [result] = await t.deliver([raw])  # HTTP 200: never a 500
    changes = diff(before, t.snapshot())
    event(f"refused {result.refused}" if result.receipt is None else "accepted")
    if result.receipt is None:
        assert result.refused in DOCUMENTED_CODES, result.refused
        assert not changes, (result.refused, changes)
        return
    # accepted: a signed receipt for exactly these bytes
    receipt = t.peer.receipt(result.receipt)
    assert receipt.envelope_hash == primitives.sha256(raw).hex()
    assert receipt.sequence == f.sequence & (2**64 - 1)
    if raw in state.receipts:  # an exact duplicate: the same receipt, nothing stored
        assert result.receipt == state.receipts[raw]
        assert not changes, changes
        return
    # a proper new message: every rule of the wire holds
    assert (f.sender, f.recipient, f.version, f.flags) == ("mallory", "alpha", 1, 0)
    assert seed is None
    assert f.kind in (Kind.MESSAGE, Kind.ACK)
    assert f.channel in ("working", "deconfliction"), f.channel
    assert 1 <= f.sequence <= t.peer.next_seq - 1 + MAX_SEQUENCE_AHEAD
    assert f.sequence not in state.used
    assert sent_at <= now + int(float(t.limits["max_clock_skew_s"]) * 1_000_000)
    if f.kind == Kind.ACK:
        at = json.loads(f.plaintext)["acknowledged_at_us"]
        assert Y2020_US <= at <= sent_at + int(float(t.limits["max_clock_skew_s"]) * 1e6)
    else:
        assert f.message_id not in state.message_ids
        state.message_ids.append(f.message_id)
    assert len(changes["entries"][1]) == 1
    assert not changes["entries"][0]
    state.used[f.sequence] = raw
    state.receipts[raw] = result.receipt
    t.resync()


def test_mutated_envelopes_are_accepted_properly_or_refused_with_a_code(
    tmp_path: Path, store_url: str
) -> None:
    station, peer = build_station(tmp_path, store_url)
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    state = State()

    async def start() -> Target:
        station.writer.start()
        t = await stack.enter_async_context(in_process_target(station, peer))
        state.ours = (await t.send_to_peer("acknowledge me"))["message_id"]
        for i in range(3):
            seq = t.peer.take_seq()
            mid = uuid.uuid4()
            raw = t.peer.message(t.now_us(), seq, f"seed {i}", message_id=mid)
            [receipt] = await t.accept([raw])
            state.used[seq], state.receipts[raw] = raw, receipt
            state.message_ids.append(mid)
        return t

    try:
        target = loop.run_until_complete(start())

        @FUZZ
        @given(m=MUTATIONS)
        def check(m: dict[str, Any]) -> None:
            loop.run_until_complete(_one(target, state, m))

        check()
        # the station still answers its operators after all of it
        loop.run_until_complete(target.still_answers())
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
        station.close()


def test_the_fuzzer_decodes_what_it_forges() -> None:
    """The forging helper writes the wire layout: an unmutated envelope decodes and
    verifies with the peer's key (so the fuzzer's refusals are about its mutations)."""
    mallory, alpha = new_identity("mallory", "M"), new_identity("alpha", "A")
    from tests.hostile.peer import HostilePeer

    peer = HostilePeer(mallory, alpha.card())
    raw = peer.message(1_767_225_600_000_000, 7, "hello")
    env = wire.decode(raw, max_bytes=1 << 20).verify(mallory.card().card.signing_key)
    assert (env.header.sender, env.header.recipient, env.header.sequence) == ("mallory", "alpha", 7)
    assert env.header.sent_at_us == 1_767_225_600_000_000
