"""A peer's void claims (issue 7): bravo records, from alpha's signed link test, only
the numbers it does not hold, has not voided yet, within its window and not beyond the
test's last sequence number; the rest changes nothing. A voided number that arrives
later is refused ``void``; rebuilt projections equal the live ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hotline.errors import EnvelopeError, HotlineError
from hotline.service.voids import accepted
from hotline.store import schema
from hotline.wire.envelope import Kind
from hotline.wire.messages import INT64_MAX, LinkTestPayload, parse_payload
from tests.service import peerforge
from tests.service.conftest import Pair, snapshot

NONCE = "0" * 32


def contiguous(p: Pair) -> int:
    q = sa.select(schema.peers.c.in_contiguous).where(schema.peers.c.station_id == "alpha")
    with p.bravo.read_engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def claim(p: Pair, void: Any, last: int) -> bytes:
    """alpha's validly signed link test to bravo declaring ``void`` (raw JSON value)."""
    body = LinkTestPayload(nonce=NONCE, t1_us=p.clock.now_us(), last_sequence=last)
    data = body.model_dump(exclude_none=True) | {"void": void}
    return peerforge.seal(
        p, Kind.LINK_TEST, json.dumps(data).encode(), sequence=0, channel="link-test"
    )


async def submit(p: Pair, raw: bytes) -> Any:
    env, test = p.bravo.line.check_link_test(raw)
    return await p.bravo.line.record_peer_void(env, test)


async def rebuilt_equals_live(p: Pair) -> None:
    live = snapshot(p.bravo)

    def rebuild(tx: Any) -> int:
        return int(p.bravo.line.rebuild_projections(tx.conn, chunk=3))

    await p.bravo.writer.submit(rebuild)
    assert snapshot(p.bravo) == live


def test_a_voided_number_is_skipped_and_refused_when_it_arrives(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(4):
            await p.send(f"m{i}")
        raws = p.outbound(p.alpha, "bravo")  # sequence numbers 1..4
        await p.deliver(p.alpha, p.bravo, [raws[0], raws[2]])
        assert contiguous(p) == 1
        assert await submit(p, claim(p, [[2, 2]], 4)) == [(2, 2)]
        assert contiguous(p) == 3  # over 2 (void) and 3 (held)
        before = snapshot(p.bravo)
        [err] = await p.bravo.line.store_inbound([p.bravo.line.check_inbound(raws[1])])
        assert isinstance(err, EnvelopeError)
        assert err.code == "void"
        assert snapshot(p.bravo) == before
        await p.deliver(p.alpha, p.bravo, [raws[3]])
        assert contiguous(p) == 4
        await rebuilt_equals_live(p)

    run_pair(scenario)


def test_hostile_void_claims_change_nothing_they_should_not(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(3):
            await p.send(f"m{i}")
        raws = p.outbound(p.alpha, "bravo")
        await p.deliver(p.alpha, p.bravo, [raws[0], raws[2]])  # holds 1 and 3
        before = snapshot(p.bravo)
        nothing = [
            [[1, 1]],  # held (below the mark)
            [[3, 3]],  # held (above the mark)
            [[10, 20]],  # beyond the test's last sequence number
            [[2, 1]],  # reversed
            [[INT64_MAX, INT64_MAX]],
            [[5000, 6000]],  # beyond the window (and the last sequence)
        ]
        for void in nothing:
            assert await submit(p, claim(p, void, 3)) is None
        assert snapshot(p.bravo) == before
        # a window of 4096: a last sequence far ahead does not open it
        assert await submit(p, claim(p, [[4098, 4098]], 10_000)) is None
        assert snapshot(p.bravo) == before
        garbage = ["x", [[1]], [[-1, 2]], [[1, 2, 3]], [[2**64, 2**64]], [[0, 1]] * 65, {}]
        for void in garbage:
            with pytest.raises(HotlineError) as info:
                p.bravo.line.check_link_test(claim(p, void, 3))
            assert info.value.code == "bad_payload"
        assert snapshot(p.bravo) == before
        # of a mixed claim only the voidable part is kept
        assert await submit(p, claim(p, [[1, 3], [7, 9]], 3)) == [(2, 2)]
        assert contiguous(p) == 3
        # claimed again: nothing more
        after = snapshot(p.bravo)
        assert await submit(p, claim(p, [[2, 2]], 3)) is None
        assert snapshot(p.bravo) == after
        await rebuilt_equals_live(p)

    run_pair(scenario)


ranges = st.lists(
    st.tuples(st.integers(0, 300), st.integers(0, 300)).map(lambda r: (r[0], r[1])),
    max_size=64,
)


@given(
    claim_=ranges,
    mark=st.integers(0, 100),
    span=st.integers(0, 150),
    taken=st.sets(st.integers(0, 300), max_size=50),
)
@hsettings(max_examples=200, deadline=None)
def test_what_is_accepted_lies_within_the_window_and_is_not_taken(
    claim_: list[tuple[int, int]], mark: int, span: int, taken: set[int]
) -> None:
    upper = mark + span
    got = accepted(claim_, mark, upper, taken)
    numbers = [s for a, b in got for s in range(a, b + 1)]
    claimed = {s for a, b in claim_ for s in range(a, b + 1)}
    assert len(numbers) == len(set(numbers))
    assert set(numbers) == {s for s in claimed if mark < s <= upper and s not in taken}
    assert got == sorted(got)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=70) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=200,
)


@given(void=json_values)
@hsettings(max_examples=300, deadline=None)
def test_a_garbage_void_field_parses_to_bounded_ranges_or_is_bad_payload(void: Any) -> None:
    body = json.dumps({"nonce": NONCE, "t1_us": 1_800_000_000_000_000, "void": void}).encode()
    try:
        test = parse_payload(Kind.LINK_TEST, body)
    except EnvelopeError as exc:
        code = exc.code
    else:
        code = None
    if code is not None:
        assert code == "bad_payload"
        return
    assert test.void is None or len(test.void) <= 64
    for a, b in test.void or []:
        assert 0 <= a <= INT64_MAX
        assert 0 <= b <= INT64_MAX
