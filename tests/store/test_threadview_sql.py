"""The SQL of the console's threads tab (store.threadview), and the type filter of
store.reads.messages, on SQLite and PostgreSQL, for rows put straight into the tables."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Connection

from hotline.store import database, reads, schema, threadview


@pytest.fixture
def conn(store_url: str) -> Iterator[Connection]:
    eng = database.create(store_url, writer=True)
    database.migrate(eng)
    try:
        with eng.begin() as c:
            yield c
    finally:
        eng.dispose()


def _message(conn: Connection, n: int, **kw: object) -> None:
    values: dict[str, object] = {
        "message_id": f"m{n}", "direction": "in", "peer": "bravo", "channel": "ops",
        "precedence": 2, "sequence": n, "kind": 1, "type": "text", "body": "{}",
        "operator": None, "sent_at_us": n, "stored_at_us": n, "ack_required": False,
        "entry_idx": n,
    }  # fmt: skip
    conn.execute(schema.messages.insert().values(**{**values, **kw}))


def _read(conn: Connection, mid: str, station: str, officer: str) -> None:
    conn.execute(
        schema.message_reads.insert().values(
            message_id=mid, station=station, officer=officer, read_at_us=1, entry_idx=99
        )
    )


def test_unread_overdue_and_channels(conn: Connection) -> None:
    _message(conn, 1)
    _message(conn, 2)
    _message(conn, 3, channel="other")
    _message(conn, 4, type="read")  # a typed message is never unread
    _message(conn, 5, direction="out")  # nor one of ours
    _message(conn, 6, ack_required=True, ack_deadline_us=10)
    _message(conn, 7, direction="out", ack_required=True, ack_deadline_us=10,
             acknowledged_at_us=9)  # fmt: skip
    _message(conn, 8, channel="other", direction="out", ack_required=True, ack_deadline_us=50)
    _read(conn, "m1", "alpha", "wo")
    _read(conn, "m2", "alpha", "wo2")  # another officer
    _read(conn, "m2", "bravo", "wo")  # the peer's officer of the same name
    assert threadview.unread_by_channel(conn, "alpha", "wo") == {"ops": 2, "other": 1}
    assert threadview.unread_by_channel(conn, "alpha", "wo2") == {"ops": 2, "other": 1}
    assert threadview.unread_by_channel(conn, "alpha", "nobody") == {"ops": 3, "other": 1}
    assert threadview.overdue_by_channel(conn, 20) == {"ops": 1}
    assert threadview.overdue_by_channel(conn, 60) == {"ops": 1, "other": 1}
    assert threadview.overdue_by_channel(conn, 5) == {}
    assert threadview.channels_with_messages(conn) == ["ops", "other"]
    texts = reads.messages(conn, channel="ops", msg_type="text")
    assert [r.message_id for r in texts] == ["m7", "m6", "m5", "m2", "m1"]
