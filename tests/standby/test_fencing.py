"""Active/standby fencing (issue 10, a standby that takes over), PostgreSQL only: a writer
whose epoch is no longer the station's cannot commit (nothing changes, it refuses
everything after and tells its step-down hook); a promotion waits for a commit that
already checked the epoch; two processes migrating at once both end at the head; only
one process holds the election lock; SQLite refuses a standby."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.errors import ConfigError
from hotline.ledger.entry import ZERO_HASH, Entry, EntryKind
from hotline.settings import Settings
from hotline.standby import Election
from hotline.store import database, leader, schema
from hotline.store.leader import ElectionLock, Fence, FencedError
from hotline.store.writer import Writer, WriteTx


def entry(i: int) -> Entry:
    return Entry(EntryKind.OPERATOR_ACTION, "", 0, ZERO_HASH, i, f'{{"n":{i}}}'.encode())


def append(i: int):  # type: ignore[no-untyped-def]
    def unit(tx: WriteTx) -> int:
        return tx.append(entry(i))

    return unit


def promote(url: str, name: str) -> int:
    eng = database.create(url)
    try:
        with eng.begin() as conn:
            return leader.promote(conn, name, "http://a", "https://a", 1)
    finally:
        eng.dispose()


def count(url: str) -> int:
    eng = database.create(url)
    try:
        with eng.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(schema.entries)).scalar_one()
            )
    finally:
        eng.dispose()


@pytest.fixture
def fenced_writer(pg_url: str) -> Iterator[tuple[str, Writer]]:
    eng = database.create(pg_url, writer=True)
    database.migrate(eng)
    epoch = promote(pg_url, "one")
    w = Writer(eng, max_batch=64)
    w.fence = Fence(epoch, idle_in_transaction_s=2)
    yield pg_url, w
    w.close()


def test_a_writer_with_the_current_epoch_commits(fenced_writer: tuple[str, Writer]) -> None:
    url, w = fenced_writer
    assert w.run_sync(append(0)) == 0
    assert count(url) == 1


def test_a_stale_epoch_cannot_commit_and_nothing_changes(
    fenced_writer: tuple[str, Writer],
) -> None:
    url, w = fenced_writer
    w.run_sync(append(0))
    told: list[FencedError] = []
    w.on_fenced.append(told.append)
    promote(url, "two")  # another process took over
    with pytest.raises(FencedError):
        w.run_sync(append(1))
    assert count(url) == 1
    assert w.tree.size == 1  # the in-memory tree equals the database
    assert len(told) == 1
    with pytest.raises(FencedError):  # and nothing after: it steps down
        w.run_sync(append(1))
    assert count(url) == 1


def test_a_stale_epoch_fails_every_unit_of_the_writer_thread(
    fenced_writer: tuple[str, Writer],
) -> None:
    url, w = fenced_writer
    promote(url, "two")

    async def go() -> list[BaseException | int]:
        w.start()
        return await asyncio.gather(
            *(w.submit(append(i)) for i in range(5)), return_exceptions=True
        )

    results = asyncio.run(go())
    assert all(isinstance(r, FencedError) for r in results)
    assert count(url) == 0
    assert w.fenced is not None


def test_a_promotion_waits_for_a_commit_that_checked_the_epoch(
    fenced_writer: tuple[str, Writer],
) -> None:
    """The check's share lock: a promotion during an old active's commit lands after it,
    never between its check and its COMMIT."""
    url, w = fenced_writer
    checked, release = threading.Event(), threading.Event()
    real = w.fence.check  # type: ignore[union-attr]

    def slow_check(conn: sa.Connection) -> None:
        real(conn)
        checked.set()
        release.wait(10)

    w.fence.check = slow_check  # type: ignore[method-assign,union-attr]
    committed: list[int] = []
    t = threading.Thread(target=lambda: committed.append(w.run_sync(append(0))))
    t.start()
    assert checked.wait(10)
    promoted: list[int] = []
    p = threading.Thread(target=lambda: promoted.append(promote(url, "two")))
    p.start()
    p.join(0.5)
    assert promoted == []  # waiting for the old active's commit
    release.set()
    t.join(10)
    p.join(10)
    assert committed == [0]
    assert promoted == [2]
    assert count(url) == 1


def test_two_processes_migrating_at_once_both_reach_the_head(pg_url: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        eng = database.create(pg_url)
        try:
            database.migrate(eng)
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    eng = database.create(pg_url)
    with eng.connect() as conn:
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    eng.dispose()
    head = max(p.name[:4] for p in (database.MIGRATIONS / "versions").glob("0*.py"))
    assert version == head


def acquire_within(lock: ElectionLock, seconds: float) -> bool:
    """Try the lock until it is ours or ``seconds`` passed (a session that ended is
    released by the server a moment later, not at once)."""
    deadline = time.monotonic() + seconds
    while not lock.try_acquire():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def test_one_process_holds_the_election_lock(pg_url: str) -> None:
    a, b = ElectionLock(pg_url, 2), ElectionLock(pg_url, 2)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        a.heartbeat()
        a.close()  # the active is gone: the lock is free
        assert acquire_within(b, 5)
        with pytest.raises(FencedError):
            a.heartbeat()
    finally:
        a.close()
        b.close()


def test_a_paused_holder_loses_the_lock_after_its_lease(pg_url: str) -> None:
    a, b = ElectionLock(pg_url, 0.3), ElectionLock(pg_url, 0.3)
    try:
        assert a.try_acquire()
        # a does not answer (no heartbeat): the server ends its session after the lease
        assert acquire_within(b, 10)
        with pytest.raises(FencedError):
            a.heartbeat()
    finally:
        a.close()
        b.close()


def test_sqlite_refuses_a_standby(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Election(Settings(data_dir=tmp_path, standby=True))
    assert err.value.code == "standby_needs_postgresql"
