"""Properties of what a peer sends (hypothesis): any data of a ``suspension`` or
``dissemination`` message is either accepted as a bounded model or refused with a code;
and the suspension book, under any sequence of declarations and resumptions from both
sides, never lets a peer remove ours, never holds more than its bound of a peer's."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.clock import FakeClock
from hotline.errors import BadTimeError, InputError
from hotline.service import dissemination, suspension
from hotline.service.suspension import MAX_ACTIVE_PER_PEER, Active, SuspensionBook

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3)
    ),
    max_leaves=6,
)
SUSPENSION = st.fixed_dictionaries(
    {},
    optional={
        "scope": st.sampled_from(["line", "channel", "other"]) | JSON,
        "channel": st.text(max_size=70) | JSON,
        "state": st.sampled_from(["suspended", "resumed", "x"]) | JSON,
        "reason": st.text(max_size=2100) | JSON,
        "extra": JSON,
    },
)
DISSEMINATION = st.fixed_dictionaries(
    {},
    optional={
        "message_id": st.uuids().map(str) | JSON,
        "to": st.text(max_size=210) | JSON,
        "at_us": st.integers(min_value=-(2**70), max_value=2**70) | JSON,
        "officer": st.text(max_size=110) | JSON,
        "note": st.text(max_size=2010) | JSON,
        "extra": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(data=SUSPENSION)
def test_suspension_data_is_a_bounded_model_or_refused(data: dict[str, Any]) -> None:
    try:
        parsed = suspension.parse_data(data)
    except InputError as exc:
        refused = exc.code
    else:
        refused = None
    if refused is not None:
        assert refused == "bad_message_data"
        return
    assert parsed.scope in ("line", "channel")
    assert (parsed.channel is None) == (parsed.scope == "line")
    assert 1 <= len(parsed.reason) <= 2000
    assert parsed.channel is None or len(parsed.channel.encode()) <= 64


class _Ctx:
    """What the dissemination validator reads of a line's context."""

    clock = FakeClock()
    skew_us = 300_000_000


@settings(max_examples=300, deadline=None)
@given(data=DISSEMINATION)
def test_dissemination_data_is_a_bounded_model_or_refused(data: dict[str, Any]) -> None:
    check = dissemination.validator(_Ctx())  # type: ignore[arg-type]
    refused = None
    try:
        check(data)
    except (BadTimeError, InputError) as exc:
        refused = exc
    if isinstance(refused, BadTimeError):
        assert refused.code == "bad_time"
        return
    if refused is not None:
        assert refused.code == "bad_message_data"
        return
    parsed = dissemination.parse_data(data)
    assert 1_577_836_800_000_000 <= parsed.at_us <= _Ctx.clock.now_us() + _Ctx.skew_us
    assert 1 <= len(parsed.to) <= 200
    assert 1 <= len(parsed.officer) <= 100


STEP = st.tuples(
    st.sampled_from(["alpha", "bravo"]),  # who declares
    st.sampled_from(["suspended", "resumed"]),
    st.sampled_from(["", "working", *(f"c{i}" for i in range(70))]),
)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(STEP, max_size=200))
def test_the_book_follows_its_rules(steps: list[tuple[str, str, str]]) -> None:
    """A model of the rules: each side declares and resumes its own; a peer's resumption
    of ours is ``not_theirs``; at most ``MAX_ACTIVE_PER_PEER`` per side."""
    book = SuspensionBook("alpha")  # alpha is us; bravo the peer
    held: dict[str, set[str]] = {"alpha": set(), "bravo": set()}
    for by, state, channel in steps:
        mine = held[by]
        if state == "suspended":
            if channel in mine:
                expected = "no_effect"
            elif len(mine) >= MAX_ACTIVE_PER_PEER:
                expected = "too_many"
            else:
                expected = "applied"
                mine.add(channel)
        elif channel in mine:
            expected = "applied"
            mine.discard(channel)
        elif by == "bravo" and channel in held["alpha"]:
            expected = "not_theirs"
        else:
            expected = "no_effect"
        assert book.apply(state, Active("bravo", channel, by, "r", None, 0)) == expected
        for side in ("alpha", "bravo"):
            assert {a.channel for a in book.all() if a.declared_by == side} == held[side]
