"""Search over messages on SQLite and PostgreSQL with the same cases: words, phrases,
prefixes, Cyrillic and Ukrainian text, typed data, every filter, paging stable across
inserts, and a rebuild from the ledger that leaves the index equal."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.errors import InputError, PermissionDeniedError
from hotline.service import search
from hotline.service.roles import STATION, Principal, Role
from hotline.store import database, schema
from hotline.store import search as store
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload
from tests.search.conftest import Pair

DAYS = 3 * 86400
READER = Principal("olena", "Olena", frozenset({Role.WATCH_OFFICER}))

TEXTS = [
    "Convoy at grid 37U DQ 12345 at 0400Z",
    "Привіт, Київ! Колона пройшла Харків о 04:00",
    "Конвой задерживается у моста",
    "The hospital at Site Zulu is open",
    "hello-world ready",
]


async def find(p: Pair, q: str = "", station: Any = None, **kw: Any) -> dict[str, Any]:
    st = station or p.bravo
    req = search.SearchRequest(q=q, **kw)
    return await search.search(st.line.reader, st.line.clock.now_us(), READER, req)


def texts(page: dict[str, Any]) -> list[str]:
    return [h["text"] for h in page["items"]]


async def seed(p: Pair) -> list[Any]:
    sent = []
    for i, text in enumerate(TEXTS):
        sent.append(await p.send(text, Precedence(i % 4)))
        p.clock.advance(1)
    await p.flush()
    return sent


CASES: list[tuple[str, list[int]]] = [
    ("convoy", [0]),
    ("CONVOY grid", [0]),
    ("convoy hospital", []),
    ('"grid 37U"', [0]),
    ('"37U grid"', []),
    ("conv*", [0]),
    ("конв*", [2]),
    ("київ", [1]),
    ("КИЇВ колона", [1]),
    ("харк*", [1]),
    ('"колона пройшла"', [1]),
    ("моста", [2]),
    ("мост", []),
    ("hello-world", [4]),
    ('"site zulu"', [3]),
    ("12345", [0]),
    ("04", [1]),
]


def test_words_phrases_prefixes_and_non_ascii(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await seed(p)
        for q, want in CASES:
            page = await find(p, q)
            assert sorted(texts(page)) == sorted(TEXTS[i] for i in want), q

    run_pair(scenario)


def test_filters_each_narrow_the_hits(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        sent = await seed(p)  # alpha -> bravo, precedences 0..3, one second apart
        await p.send("ответ на конвой", src=p.bravo, dst="alpha")
        reply = await p.bravo.line.send(
            peer="alpha", channel="deconfliction", precedence=Precedence.PRIORITY,
            payload=MessagePayload(text="re convoy", in_reply_to=sent[0].message_id),
        )  # fmt: skip
        await p.flush()
        await p.bravo.line.acknowledge(str(sent[1].message_id), "Lt. Shevchenko")
        p.clock.advance(DAYS)  # every unacknowledged deadline has passed
        assert texts(await find(p, channel="deconfliction")) == ["re convoy"]
        assert texts(await find(p, precedence="flash")) == [TEXTS[4], TEXTS[0]]
        assert len((await find(p, direction="out"))["items"]) == 2
        assert len((await find(p, direction="in"))["items"]) == len(TEXTS)
        assert texts(await find(p, "convoy", state="answered")) == [TEXTS[0]]
        assert texts(await find(p, "convoy", state="unanswered")) == ["re convoy"]
        assert texts(await find(p, state="acknowledged")) == [TEXTS[1]]
        overdue = texts(await find(p, state="overdue", direction="in"))
        assert sorted(overdue) == sorted(t for i, t in enumerate(TEXTS) if i != 1)
        unacked = await find(p, state="unacknowledged", direction="in")
        assert all(h["ack_overdue"] for h in unacked["items"])
        assert texts(await find(p, peer="nobody")) == []
        # the period is our stored time: alpha stored its messages one second apart
        sent_hits = (await find(p, station=p.alpha, direction="out", limit=200))["items"]
        t0 = min(h["stored_at_us"] for h in sent_hits)
        first = await find(p, station=p.alpha, direction="out", from_=_iso(t0),
                           to=_iso(t0 + 2_000_000))  # fmt: skip
        assert sorted(texts(first)) == sorted(TEXTS[:2])
        assert texts(await find(p, "convoy", from_="2099-01-01")) == []
        hit = (await find(p, "re convoy"))["items"][0]
        assert hit["in_reply_to"] == str(sent[0].message_id)
        assert hit["message_id"] == str(reply.message_id)

    run_pair(scenario)


def _iso(us: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


def test_paging_is_stable_across_inserts(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        for i in range(7):
            await p.send(f"patrol report {i}")
        await p.flush()
        seen: list[str] = []
        page = await find(p, "patrol", limit=3)
        seen += texts(page)
        for i in range(5):  # new messages arrive while an operator pages
            await p.send(f"patrol report late {i}")
        await p.flush()
        while page["next"]:
            page = await find(p, "patrol", limit=3, cursor=page["next"])
            seen += texts(page)
        assert seen == [f"patrol report {i}" for i in reversed(range(7))]
        first = await find(p, "patrol", limit=200)
        assert len(first["items"]) == 12
        assert first["next"] is None

    run_pair(scenario)


def test_a_rebuild_from_the_ledger_leaves_the_index_equal(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await seed(p)
        await p.send("Відповідь: ґанок їжак", src=p.bravo, dst="alpha")
        await p.flush()
        for station in (p.alpha, p.bravo):
            before = [await find(p, q, station=station, limit=200) for q, _ in CASES]
            docs = _docs(station)
            assert docs

            def rebuild(tx: Any, st: Any = station) -> int:
                return int(st.line.rebuild_projections(tx.conn, chunk=2))

            await station.writer.submit(rebuild)
            assert _docs(station) == docs
            after = [await find(p, q, station=station, limit=200) for q, _ in CASES]
            assert after == before
            with station.read_engine.connect() as conn:
                store.fts_integrity(conn)

    run_pair(scenario)


def _docs(station: Any) -> list[tuple[Any, ...]]:
    s = schema.message_search
    with station.read_engine.connect() as conn:
        rows = conn.execute(sa.select(s.c.message_id, s.c.in_reply_to, s.c.doc)).all()
    return sorted(tuple(r) for r in rows)


def test_the_service_refuses_what_it_cannot_search(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await seed(p)
        for q in ['"unclosed', "!!! ... ***", "x" * 501, " ".join(["w"] * 17), "a" * 101]:
            with pytest.raises(InputError) as e:
                await find(p, q)
            assert e.value.code == "bad_query", q
            assert e.value.hint
        for kw, code in (
            ({"cursor": "bm90LWEtY3Vyc29y"}, "bad_cursor"),
            ({"cursor": "%%%"}, "bad_cursor"),
            ({"from_": "yesterday"}, "bad_period"),
            ({"from_": "2026-11-30", "to": "2026-11-01"}, "bad_period"),
            ({"precedence": "urgent"}, "bad_precedence"),
            ({"state": "lost"}, "bad_input"),
            ({"limit": 201}, "bad_input"),
        ):
            with pytest.raises(InputError) as e:
                await find(p, "convoy", **kw)
            assert e.value.code == code, kw
        # empty query: the filters alone
        assert len((await find(p))["items"]) == len(TEXTS)
        # every role reads; the refusal names the roles when one cannot
        nobody = Principal("x", "X", frozenset())
        with pytest.raises(PermissionDeniedError):
            await search.search(p.bravo.line.reader, 0, nobody, search.SearchRequest(q="a"))
        await search.search(p.bravo.line.reader, 0, STATION, search.SearchRequest(q="a"))

    run_pair(scenario)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_typed_data_and_awkward_text_are_indexed(kind: str, tmp_path: Any) -> None:
    """Rows stored directly: the triggers index the text and every string of the typed
    data; a body with a NUL escape (which PostgreSQL's jsonb refuses) is still stored."""
    from tests.conftest import fresh_pg_database

    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite"
               else stack.enter_context(fresh_pg_database()))  # fmt: skip
        engine = database.create(url)
        stack.callback(engine.dispose)  # before the database is dropped, even on failure
        database.migrate(engine)
        bodies = {
            "m1": {"type": "site_notice", "text": "", "data": {"site": {"names": {
                "uk": "Лікарня Святого Луки", "en": "St Luke hospital"}}, "n": [1, "Zulu"]}},
            "m2": {"type": "text", "text": "nul \u0000 here Odesa"},
            "m3": {"type": "text", "text": "quote ' and \" and \\ and ; DROP TABLE messages"},
        }  # fmt: skip
        with engine.begin() as conn:
            for i, (mid, body) in enumerate(bodies.items()):
                conn.execute(schema.messages.insert().values(
                    message_id=mid, direction="in", peer="bravo", channel="working",
                    precedence=3, sequence=i + 1, kind=1, type=body["type"],
                    body=json.dumps(body), sent_at_us=1, stored_at_us=1 + i,
                    ack_required=False, entry_idx=10 + i,
                ))  # fmt: skip

        def q(text: str) -> list[str]:
            prepared = search.prepare(search.SearchRequest(q=text, limit=10))
            page = search.search_sync(engine, 10, prepared)
            return sorted(h["message_id"] for h in page["items"])

        assert q("лікарня луки") == ["m1"]
        assert q("zulu") == ["m1"]
        assert q('"st luke"') == ["m1"]
        assert q("odesa") == ["m2"]
        assert q("drop table") == ["m3"]
        assert q("messages") == ["m3"]


QUERY = st.text(
    alphabet=st.sampled_from(list("ab\"* -КиЇї.:()^~'\\&|!<>NEARORAND{}[]\u0000\u202e1²"))
    | st.characters(),
    max_size=60,
)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_arbitrary_queries_raise_nothing_but_input_errors(kind: str, tmp_path: Any) -> None:
    from tests.conftest import fresh_pg_database

    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{tmp_path / 'h.db'}" if kind == "sqlite"
               else stack.enter_context(fresh_pg_database()))  # fmt: skip
        engine = database.create(url)
        stack.callback(engine.dispose)  # before the database is dropped, even on failure
        database.migrate(engine)
        with engine.begin() as conn:
            for i, text in enumerate(TEXTS):
                conn.execute(schema.messages.insert().values(
                    message_id=f"m{i}", direction="in", peer="bravo", channel="working",
                    precedence=3, sequence=i + 1, kind=1, type="text",
                    body=json.dumps({"text": text}), sent_at_us=1, stored_at_us=1,
                    ack_required=True, entry_idx=i,
                ))  # fmt: skip

        @settings(max_examples=150, deadline=None)
        @given(q=QUERY, cursor=st.none() | st.text(max_size=70))
        def prop(q: str, cursor: str | None) -> None:
            code = None
            try:
                prepared = search.prepare(search.SearchRequest(q=q, cursor=cursor))
                search.search_sync(engine, 0, prepared)
            except InputError as exc:
                code = exc.code
            assert code in (None, "bad_query", "bad_cursor")

        prop()
