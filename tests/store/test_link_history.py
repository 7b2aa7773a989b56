"""The link health history ring (store.linkhistory) on SQLite and PostgreSQL: the newest
tests in order, the last good one, and never more than ``keep`` rows per peer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from hotline.store import database, linkhistory, schema


@pytest.fixture
def conn(store_url: str) -> Iterator[Connection]:
    eng = database.create(store_url, writer=True)
    database.migrate(eng)
    try:
        with eng.begin() as c:
            yield c
    finally:
        eng.dispose()


def ok(at: int, rtt: int = 5, skew: int = 1) -> linkhistory.LinkTest:
    return linkhistory.LinkTest(at, "UP", True, rtt, skew, None)


def failed(at: int, error: str = "peer_unreachable") -> linkhistory.LinkTest:
    return linkhistory.LinkTest(at, "DEGRADED", False, None, None, error)


def test_recent_is_oldest_first_and_last_good_skips_failures(conn: Connection) -> None:
    assert linkhistory.recent(conn, "bravo", 10) == []
    assert linkhistory.last_good(conn, "bravo") is None
    for t in (ok(1, 10), ok(2, 20), failed(3), failed(4)):
        linkhistory.add(conn, "bravo", t, keep=100)
    linkhistory.add(conn, "charlie", ok(5, 99), keep=100)
    got = linkhistory.recent(conn, "bravo", 10)
    assert [t.at_us for t in got] == [1, 2, 3, 4]
    assert [t.rtt_ms for t in got] == [10, 20, None, None]
    assert linkhistory.recent(conn, "bravo", 2) == [failed(3), failed(4)]
    assert linkhistory.last_good(conn, "bravo") == ok(2, 20)
    assert linkhistory.count(conn, "charlie") == 1


def test_the_ring_stays_bounded_per_peer(conn: Connection) -> None:
    for i in range(30):
        linkhistory.add(conn, "bravo", ok(i, i), keep=7)
        linkhistory.add(conn, "charlie", failed(i), keep=3)
        assert linkhistory.count(conn, "bravo") == min(i + 1, 7)
        assert linkhistory.count(conn, "charlie") == min(i + 1, 3)
    assert [t.at_us for t in linkhistory.recent(conn, "bravo", 100)] == list(range(23, 30))
    # a smaller ring (the setting lowered) shrinks on the next test
    linkhistory.add(conn, "bravo", ok(30), keep=2)
    assert [t.at_us for t in linkhistory.recent(conn, "bravo", 100)] == [29, 30]


def test_a_long_error_is_cut_and_keep_must_be_positive(conn: Connection) -> None:
    linkhistory.add(conn, "bravo", failed(1, "x" * 500), keep=5)
    assert linkhistory.recent(conn, "bravo", 1)[0].error == "x" * 64
    with pytest.raises(ValueError, match="at least 1"):
        linkhistory.add(conn, "bravo", ok(2), keep=0)


def test_bounded_whatever_the_sequence(tmp_path: Path) -> None:
    eng = database.create(f"sqlite:///{tmp_path / 'ring.db'}", writer=True)
    database.migrate(eng)

    @settings(max_examples=40, deadline=None)
    @given(keep=st.integers(1, 6), oks=st.lists(st.booleans(), max_size=20))
    def ring(keep: int, oks: list[bool]) -> None:
        with eng.begin() as c:
            c.execute(schema.link_history.delete())
            for i, good in enumerate(oks):
                linkhistory.add(c, "p", ok(i) if good else failed(i), keep=keep)
                assert linkhistory.count(c, "p") <= keep
            kept = [t.at_us for t in linkhistory.recent(c, "p", 100)]
            assert kept == list(range(len(oks)))[-keep:]
            good = [i for i, g in enumerate(oks) if g and i in kept]
            last = linkhistory.last_good(c, "p")
            assert (last.at_us if last else None) == (good[-1] if good else None)

    try:
        ring()
    finally:
        eng.dispose()
