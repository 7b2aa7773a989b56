"""Concerns: the transition table, who may take each step, the draft and the IAEA template."""

from __future__ import annotations

from typing import Any

import pytest

from hotline.deconfliction.concerns import (
    IAEA_FIVE_PRINCIPLES,
    TRANSITIONS,
    ConcernBook,
    draft_concern,
)
from hotline.deconfliction.engine import Conflict
from hotline.deconfliction.models import Concern
from hotline.errors import InputError, NotFoundError

from .conftest import T0

STEPS = ["raise", "acknowledge", "answer", "close"]


def step(name: str, cid: str = "c1") -> Concern:
    body: dict[str, Any] = {"concern_id": cid, "step": name}
    if name == "raise":
        body |= {"about": {"site_ids": ["ZNPP"]}, "asked": "Please confirm."}
    if name == "answer":
        body["text"] = "The activity is moved 20 km east."
    return Concern.from_payload(body)


def book_in(state: str | None) -> ConcernBook:
    book = ConcernBook()
    order = [None, "raised", "acknowledged", "answered", "closed"]
    by = {"raise": "ua", "acknowledge": "ru", "answer": "ru", "close": "ua"}
    for s in STEPS[: order.index(state)]:
        book.apply(step(s), by[s], T0)
    return book


CASES = [
    (state, s) for state in [None, "raised", "acknowledged", "answered", "closed"] for s in STEPS
]


@pytest.mark.parametrize(("state", "name"), CASES)
def test_transition_table(state: str | None, name: str) -> None:
    book = book_in(state)
    legal = TRANSITIONS[name][0] == state
    by = "ua" if name in ("raise", "close") else "ru"
    if legal:
        assert book.apply(step(name), by, T0).state == TRANSITIONS[name][1]
    else:
        with pytest.raises(InputError, match="cannot"):
            book.apply(step(name), by, T0)


def test_only_the_raiser_closes_and_only_the_other_side_answers() -> None:
    book = book_in("raised")
    with pytest.raises(InputError, match="the other side acknowledges"):
        book.apply(step("acknowledge"), "ua", T0)
    book.apply(step("acknowledge"), "ru", T0)
    book.apply(step("answer"), "ru", T0)
    with pytest.raises(InputError, match="closes it"):
        book.apply(step("close"), "ru", T0)
    thread = book.apply(step("close"), "ua", T0)
    assert [s.step for s, _, _ in thread.steps] == STEPS
    assert book.open() == []
    assert book.get("c1").state == "closed"
    with pytest.raises(NotFoundError):
        book.get("nope")


def _conflict() -> Conflict:
    return Conflict(
        "ZNPP", "A1", "ua", "ru", 5000.0, 30_000.0, T0, None, "within_protection_distance"
    )


def test_draft_for_a_nuclear_site_uses_the_iaea_template() -> None:
    c = draft_concern(
        _conflict(),
        concern_id="d1",
        site_name="Zaporizhzhia NPP",
        site_category="nuclear_power_plant",
        activity_kind="artillery",
    )
    assert c.step == "raise"
    assert c.template == "iaea_five_principles"
    assert c.about is not None
    assert c.about.site_ids == ("ZNPP",)
    assert c.text is not None
    assert all(p in c.text for p in IAEA_FIVE_PRINCIPLES)
    assert c.asked is not None
    assert "5,000 m" in c.asked
    assert Concern.from_payload(c.to_payload()) == c


def test_draft_for_another_site_has_no_template() -> None:
    c = draft_concern(
        _conflict(),
        concern_id="d2",
        site_name="Dnipro HPP",
        site_category="power_station",
        activity_kind="air_operation",
    )
    assert c.template is None
    assert c.text is None
