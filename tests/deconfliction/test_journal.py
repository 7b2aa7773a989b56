"""The undo journal: undoing the changes made after a mark gives back exactly the
registry (and concern book) held at the mark, spatial index included, and applying
after an undo gives what a fresh registry would."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.deconfliction.concerns import ConcernBook
from hotline.deconfliction.journal import Journal
from hotline.deconfliction.models import Concern
from hotline.deconfliction.registry import AckEntry, NoticeEntry, Registry
from hotline.errors import HotlineError

from .conftest import T0
from .test_registry import _random_log


def _feed(reg: Registry, entries: list[NoticeEntry | AckEntry]) -> None:
    for e in entries:
        try:
            if isinstance(e, NoticeEntry):
                reg.apply(e.notice, e.notified_by, e.at)
            else:
                reg.acknowledge(e.notice_id, e.recipient, e.at)
        except HotlineError:
            pass


def _state(reg: Registry) -> tuple[object, ...]:
    volumes = sorted((v.id, v.station, v.reach_m) for v in reg.site_volumes())
    return reg.snapshot(), volumes


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), cut=st.floats(0.0, 1.0), again=st.booleans())
def test_undo_to_a_mark_restores_the_registry(seed: int, cut: float, again: bool) -> None:
    log = _random_log(seed)
    at = int(len(log) * cut)
    journal = Journal()
    journal.active = True
    reg = Registry(max_delta=2, journal=journal)  # a small delta: compactions happen too
    _feed(reg, log[:at])
    mark, held = journal.mark(), _state(reg)
    _feed(reg, log[at:])
    journal.undo_to(mark)
    assert _state(reg) == held
    # the index is sound after the undo: the rest of the log gives the same registry
    # (conflicts included) as a registry that never saw it undone
    if again:
        _feed(reg, log[at:])
        fresh = Registry(max_delta=2)
        _feed(fresh, log)
        assert _state(reg) == _state(fresh)
        assert reg.conflicts() == fresh.conflicts()


def test_an_inactive_journal_records_nothing_and_forget_drops_everything() -> None:
    journal = Journal()
    reg = Registry(journal=journal)
    log = _random_log(7)
    _feed(reg, log[:10])
    assert len(journal) == 0
    journal.active = True
    _feed(reg, log[10:])
    assert len(journal) > 0
    journal.forget()
    before = _state(reg)
    journal.undo_to(0)
    assert _state(reg) == before


def test_concern_steps_are_undone() -> None:
    journal = Journal()
    journal.active = True
    book = ConcernBook(journal=journal)
    raise_ = Concern.from_payload(
        {"concern_id": "c1", "step": "raise", "about": {"site_ids": ["S"]}, "asked": "?"}
    )
    book.apply(raise_, "ua", T0)
    mark = journal.mark()
    book.apply(Concern.from_payload({"concern_id": "c1", "step": "acknowledge"}), "ru", T0)
    answer = {"concern_id": "c1", "step": "answer", "text": "Moved."}
    book.apply(Concern.from_payload(answer), "ru", T0 + timedelta(minutes=1))
    assert book.get("c1").state == "answered"
    journal.undo_to(mark)
    assert book.get("c1").state == "raised"
    assert [s.step for s, _, _ in book.get("c1").steps] == ["raise"]
    journal.undo_to(0)
    assert book.all() == []
