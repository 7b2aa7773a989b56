"""The console's read-side views of the registry and concerns (service/registryview.py)
on SQLite and PostgreSQL: a concern from draft to closed as each station sees it, with
who took each step and what this station's officer may do next; the registry's tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hotline.errors import NotFoundError
from hotline.service import registryview
from hotline.station import Station
from tests.service import conftest as service
from tests.service.conftest import Pair

run_pair = service.run_pair
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


SITE = {
    "type": "site_notice",
    "notice_id": "znpp-add-1",
    "action": "add",
    "site_id": "ZNPP",
    "site": {
        "names": {"en": "Zaporizhzhia <NPP>"},
        "category": "nuclear_power_plant",
        "geometry": {"type": "Point", "coordinates": [34.5863, 47.5119]},
        "protection_radius_m": 5_000.0,
        "reconfirm_by": iso(T0 + dt.timedelta(days=90)),
    },
}
ACTIVITY = {
    "type": "activity_notice",
    "notice_id": "act-1-add",
    "action": "add",
    "activity_id": "act-1",
    "activity": {
        "kind": "artillery",
        "geometry": {"type": "Point", "coordinates": [34.585, 47.467]},
        "radius_m": 500.0,
        "altitude": {"lower_m": 0.0, "upper_m": 3000.0},
        "window": {"start": iso(T0 + dt.timedelta(days=1)), "end": iso(T0 + dt.timedelta(days=2))},
    },
}


def view(st: Station, concern_id: str) -> dict[str, Any]:
    with st.read_engine.connect() as conn:
        return registryview.concern(conn, st.registry, st.line.station_id, concern_id)


def listing(st: Station) -> list[dict[str, Any]]:
    with st.read_engine.connect() as conn:
        return registryview.concerns(conn, st.registry, st.line.station_id)


async def step(p: Pair, st: Station, row: dict[str, Any], name: str, officer: str,
               **extra: Any) -> None:  # fmt: skip
    body = row["bodies"][name]
    await st.deconfliction.send_data(
        {**body["notice"], **extra}, peer=body.get("peer"), operator=officer
    )
    await p.flush()


def test_a_concern_from_draft_to_closed_as_each_station_sees_it(run_pair: Any) -> None:
    async def scenario(p: Pair) -> None:
        await p.bravo.deconfliction.send_data(SITE, operator="wo2")
        await p.flush()
        await p.alpha.deconfliction.send_data(ACTIVITY, operator="wo")
        await p.flush()
        [draft] = listing(p.alpha)
        cid = draft["concern_id"]
        assert draft["state"] == "drafted"
        row = view(p.alpha, cid)
        assert row["actions"] == ["raise"]
        assert row["conflict"]["site_id"] == "ZNPP"
        assert "Zaporizhzhia <NPP>" in row["text"]  # the IAEA template, as written

        await p.alpha.deconfliction.raise_draft(cid, operator="wo")
        await p.flush()
        a, b = view(p.alpha, cid), view(p.bravo, cid)
        assert (a["state"], a["ours"], a["actions"]) == ("raised", True, [])
        assert (b["state"], b["ours"], b["actions"]) == ("raised", False, ["acknowledge"])
        assert b["bodies"]["acknowledge"]["peer"] == "alpha"
        assert [(s["step"], s["station"]) for s in b["steps"]] == [("raise", "alpha")]
        assert a["steps"][0]["officer"] == "wo"  # our own officer, from the message
        assert b["conflict"] is not None  # bravo found the same conflict
        assert [r["state"] for r in listing(p.bravo)] == ["raised"]  # no second draft

        await step(p, p.bravo, b, "acknowledge", "wo2")
        a, b = view(p.alpha, cid), view(p.bravo, cid)
        assert (a["state"], a["actions"], b["actions"]) == ("acknowledged", [], ["answer"])
        await step(p, p.bravo, b, "answer", "wo2", text="<b>Moved</b> east.")
        a, b = view(p.alpha, cid), view(p.bravo, cid)
        assert (a["state"], a["actions"], b["actions"]) == ("answered", ["close"], [])
        assert a["done"]["answered"]["text"] == "<b>Moved</b> east."
        assert "peer" not in a["bodies"]["close"]
        await step(p, p.alpha, a, "close", "wo")
        for st in (p.alpha, p.bravo):
            row = view(st, cid)
            assert row["state"] == "closed"
            assert row["actions"] == []
            assert list(row["done"]) == ["raised", "acknowledged", "answered", "closed"]
            assert all(s["at_us"] > 0 for s in row["steps"])

        # the registry's tables: both stations' records, acknowledged by the concern steps
        with p.alpha.read_engine.connect():
            tables = registryview.registry_tables(p.alpha.registry, T0)
        assert [s["id"] for s in tables["sites"]] == ["ZNPP"]
        assert [x["id"] for x in tables["activities"]] == ["act-1"]
        assert tables["refused"] == []
        capped = registryview.registry_tables(p.alpha.registry, T0, max_rows=0)
        assert (capped["sites"], capped["sites_total"], capped["activities_total"]) == ([], 1, 1)
        rec = registryview.record(p.bravo.registry, "activity", "act-1", T0)
        assert rec["owner"] == "alpha"
        with pytest.raises(NotFoundError):
            view(p.alpha, "c-nope")
        with pytest.raises(NotFoundError):
            registryview.record(p.alpha.registry, "site", "NOPE", T0)

    run_pair(scenario)


@pytest.mark.parametrize(
    ("state", "ours", "expected"),
    [
        ("drafted", True, ["raise"]),
        ("raised", True, []),
        ("raised", False, ["acknowledge"]),
        ("acknowledged", True, []),
        ("acknowledged", False, ["answer"]),
        ("answered", True, ["close"]),
        ("answered", False, []),
        ("closed", True, []),
        ("closed", False, []),
    ],
)
def test_the_actions_of_each_step(state: str, ours: bool, expected: list[str]) -> None:
    assert registryview.actions(state, ours) == expected
