"""store/idempotency.py on SQLite and PostgreSQL: one live result per key, expiry, purge."""

from __future__ import annotations

import pytest

from hotline.store import database, idempotency

HOUR_US = 3_600_000_000


def _record(conn: object, key: str, now_us: int, digest: bytes = b"h" * 32) -> None:
    idempotency.record(
        conn,  # type: ignore[arg-type]
        key=key,
        request_hash=digest,
        status=201,
        response='{"message_id": "m"}',
        now_us=now_us,
        ttl_us=HOUR_US,
    )


def test_a_key_holds_one_result_until_it_expires(store_url: str) -> None:
    engine = database.create(store_url, writer=True)
    database.migrate(engine)
    t0 = 1_767_225_600_000_000
    with engine.begin() as conn:
        assert idempotency.find(conn, "k", t0) is None
        _record(conn, "k", t0)
        found = idempotency.find(conn, "k", t0 + 1)
        assert found is not None
        assert (found.status, found.response, found.request_hash) == (
            201,
            '{"message_id": "m"}',
            b"h" * 32,
        )
        with pytest.raises(idempotency.KeyTaken) as taken:
            _record(conn, "k", t0 + HOUR_US - 1, b"x" * 32)
        assert taken.value.stored == found
        # at its expiry the key is gone, and can be used again
        assert idempotency.find(conn, "k", t0 + HOUR_US) is None
        for i in range(5):
            _record(conn, f"other-{i}", t0)
        _record(conn, "k", t0 + HOUR_US, b"y" * 32)  # purges every expired row
        assert idempotency.count(conn) == 1
        again = idempotency.find(conn, "k", t0 + HOUR_US)
        assert again is not None
        assert again.request_hash == b"y" * 32
    engine.dispose()
