"""Hot-path statements on the driver's cursor (store/prepared.py), on SQLite and
PostgreSQL: the literal values and limits a statement carries, the columns an INSERT or
UPDATE names, a type with a bind processor, several parameter sets, and the same rows
when statement listeners make it go through SQLAlchemy instead."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from hotline.store import database
from hotline.store.prepared import Prepared

meta = sa.MetaData()
things = sa.Table(
    "things",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=True),
    sa.Column("flag", sa.Boolean, nullable=False),
)
t = things
INSERT = Prepared(t.insert(), ("id", "kind", "data", "flag"))
SET_KIND = Prepared(t.update().where(t.c.id == sa.bindparam("b_id")), ("kind",))
OF_KIND_A = Prepared(
    sa.select(t.c.id, t.c.data)
    .where(t.c.kind == "a", t.c.id > sa.bindparam("b_above"))
    .order_by(t.c.id)
    .limit(2)
)
FLAGGED = Prepared(sa.select(t.c.id).where(t.c.flag.is_(True)).order_by(t.c.id))
MISSING = Prepared(sa.select(t.c.kind).where(t.c.id == sa.bindparam("b_id")))


def _run(url: str, watch: bool) -> dict[str, Any]:
    engine = database.create(url, writer=True)
    seen: list[str] = []
    if watch:
        sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    try:
        meta.create_all(engine)
        with engine.connect() as conn:
            trans = conn.begin()
            INSERT.run_many(
                conn,
                [
                    {"id": i, "kind": "a" if i % 2 else "b", "data": bytes([i]), "flag": i > 3}
                    for i in range(1, 7)
                ],
            )
            INSERT.run(conn, {"id": 7, "kind": "a", "data": None, "flag": False})
            SET_KIND.run(conn, {"b_id": 2, "kind": "a"})
            out = {
                "of_kind_a": OF_KIND_A.first(conn, {"b_above": 0}),
                "of_kind_a_after_1": [
                    (r[0], bytes(r[1])) for r in OF_KIND_A.execute(conn, {"b_above": 1})
                ],
                "flagged": FLAGGED.scalars(conn),
                "missing": MISSING.scalar(conn, {"b_id": 99}),
                "kind_of_7": MISSING.scalar(conn, {"b_id": 7}),
            }
            trans.rollback()  # nothing of it stays: the statements ran in the transaction
            out["after_rollback"] = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
        out["watched"] = len(seen)
        return out
    finally:
        meta.drop_all(engine)
        engine.dispose()


@pytest.mark.parametrize("watch", [False, True], ids=["driver", "watched"])
def test_prepared_statements_give_the_same_rows_both_ways(store_url: str, watch: bool) -> None:
    out = _run(store_url, watch)
    assert out["of_kind_a"] is not None
    assert out["of_kind_a"][0] == 1
    assert bytes(out["of_kind_a"][1]) == b"\x01"
    assert out["of_kind_a_after_1"] == [(2, b"\x02"), (3, b"\x03")]  # LIMIT 2, id 2 now "a"
    assert out["flagged"] == [4, 5, 6]
    assert out["missing"] is None
    assert out["kind_of_7"] == "a"
    assert out["after_rollback"] == 0
    # with a listener every statement went through SQLAlchemy, so the listener saw it
    assert (out["watched"] >= 7) is watch


def test_a_missing_parameter_is_refused(store_url: str) -> None:
    engine = database.create(store_url, writer=True)
    try:
        meta.create_all(engine)
        with engine.connect() as conn, conn.begin(), pytest.raises(KeyError):
            MISSING.scalar(conn, {})
    finally:
        meta.drop_all(engine)
        engine.dispose()
