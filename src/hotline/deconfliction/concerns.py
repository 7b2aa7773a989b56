"""Concerns: the state machine raised → acknowledged → answered → closed, the draft
concern for a conflict, and the template built on the IAEA's five principles for the
Zaporizhzhia nuclear power plant.

Owns the legal transitions and who may take them: the raising station closes; another
station acknowledges and answers. Each step is a :class:`Concern` message on the record;
:class:`ConcernBook` is the projection of those messages (fed one by one, rebuildable).
Given a :class:`~hotline.deconfliction.journal.Journal`, each applied step records how to
undo itself. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from hotline.errors import InputError, NotFoundError

from .engine import Conflict
from .journal import Journal
from .models import Concern, ConcernAbout

State = Literal["raised", "acknowledged", "answered", "closed"]

# step -> (state it needs, state it leads to)
TRANSITIONS: dict[str, tuple[State | None, State]] = {
    "raise": (None, "raised"),
    "acknowledge": ("raised", "acknowledged"),
    "answer": ("acknowledged", "answered"),
    "close": ("answered", "closed"),
}

IAEA_FIVE_PRINCIPLES = (
    "There should be no attack of any kind from or against the plant, in particular "
    "targeting the reactors, spent fuel storage, other critical infrastructure, or personnel.",
    "The plant should not be used as storage or a base for heavy weapons (multiple rocket "
    "launchers, artillery systems and munitions, and tanks) or military personnel that "
    "could be used for an attack from the plant.",
    "Off-site power to the plant should not be put at risk; all efforts should be made to "
    "ensure that off-site power remains available and secure at all times.",
    "All structures, systems and components essential to the safe and secure operation of "
    "the plant should be protected from attacks or acts of sabotage.",
    "No action should be taken that undermines these principles.",
)
IAEA_SOURCE = (
    "IAEA Director General, five concrete principles to help ensure nuclear safety and "
    "security at the Zaporizhzhia Nuclear Power Plant, UN Security Council, 30 May 2023"
)
INFORMATION_NOT_PERMISSION = (
    "This notification is information, never permission: it neither authorises nor "
    "approves any activity."
)


@dataclass(slots=True)
class ConcernThread:
    """One concern: its state and every step taken, in order."""

    concern_id: str
    raised_by: str
    state: State
    steps: list[tuple[Concern, str, datetime]] = field(default_factory=list)

    @property
    def raised(self) -> Concern:
        return self.steps[0][0]


class ConcernBook:
    """Projection of concern messages: refuses illegal transitions with InputError."""

    def __init__(self, *, journal: Journal | None = None) -> None:
        self._threads: dict[str, ConcernThread] = {}
        self._journal = journal

    def apply(self, step: Concern, by: str, at: datetime) -> ConcernThread:
        """Apply one step sent by station ``by``; return the thread after it."""
        self.check(step, by)
        held = self._threads.get(step.concern_id)
        _, to = TRANSITIONS[step.step]
        thread = held or ConcernThread(step.concern_id, by, to)
        before = thread.state
        self._threads[step.concern_id] = thread
        thread.state = to
        thread.steps.append((step, by, at))
        if self._journal is not None:
            self._journal.record(lambda: self._unapply(step.concern_id, held, before))
        return thread

    def _unapply(self, concern_id: str, held: ConcernThread | None, before: State) -> None:
        if held is None:
            self._threads.pop(concern_id, None)
        else:
            held.state = before
            held.steps.pop()

    def check(self, step: Concern, by: str) -> None:
        """Raise InputError if station ``by`` may not take ``step`` now; change nothing."""
        thread = self._threads.get(step.concern_id)
        need, _ = TRANSITIONS[step.step]
        state = None if thread is None else thread.state
        if state != need:
            raise InputError(
                f"concern {step.concern_id} is {state or 'not raised'}: cannot {step.step}",
                hint=f"'{step.step}' follows '{need or 'nothing'}'; the order is "
                "raise → acknowledge → answer → close",
            )
        if thread is None:
            return
        if step.step == "close" and by != thread.raised_by:
            raise InputError(
                f"only {thread.raised_by}, who raised concern {step.concern_id}, closes it",
                hint="answer it, or raise a new concern",
            )
        elif step.step in ("acknowledge", "answer") and by == thread.raised_by:
            raise InputError(
                f"{by} raised concern {step.concern_id}; the other side acknowledges and "
                "answers it",
                hint="wait for the answer, then close it",
            )

    def get(self, concern_id: str) -> ConcernThread:
        thread = self._threads.get(concern_id)
        if thread is None:
            raise NotFoundError(f"no concern {concern_id}")
        return thread

    def all(self) -> list[ConcernThread]:
        """Every concern, in the order raised."""
        return list(self._threads.values())

    def restore(self, threads: list[ConcernThread]) -> None:
        """Fill an empty book with saved threads (a registry snapshot); not journalled."""
        if self._threads:
            raise InputError("restore fills an empty concern book only")
        for t in threads:
            if not t.steps or t.concern_id in self._threads:
                raise InputError(f"concern {t.concern_id}: bad saved thread")
            self._threads[t.concern_id] = t

    def open(self) -> list[ConcernThread]:
        """Concerns not closed, oldest first."""
        return [t for t in self._threads.values() if t.state != "closed"]


def iaea_text(site_name: str) -> str:
    """The IAEA five-principles template text for a nuclear site."""
    lines = [f"Concern regarding {site_name}, a nuclear site. We ask that:"]
    lines += [f"{i}. {p}" for i, p in enumerate(IAEA_FIVE_PRINCIPLES, 1)]
    lines.append(f"(Built on: {IAEA_SOURCE}.)")
    return "\n".join(lines)


def draft_concern(
    conflict: Conflict,
    *,
    concern_id: str,
    site_name: str,
    site_category: str,
    activity_kind: str,
) -> Concern:
    """The draft concern an operator reviews before sending (the ``raise`` step).

    A conflict with a nuclear site uses the IAEA five-principles template."""
    when = (
        f"{_t(conflict.window_start)} to {_t(conflict.window_end)}"
        if conflict.window_start or conflict.window_end
        else "at any time"
    )
    asked = (
        f"Activity {conflict.activity_id} ({activity_kind.replace('_', ' ')}) notified by "
        f"{conflict.activity_station} comes within {conflict.distance_m:,.0f} m of protected "
        f"site {site_name} ({conflict.site_id}, notified by {conflict.site_station}; protected "
        f"distance {conflict.reach_m:,.0f} m), {when}. Please confirm receipt, and state "
        "whether the activity will be changed to keep clear of the site."
    )
    nuclear = site_category == "nuclear_power_plant"
    text = iaea_text(site_name) if nuclear else None
    return Concern(
        concern_id=concern_id,
        step="raise",
        about=ConcernAbout(site_ids=(conflict.site_id,), activity_ids=(conflict.activity_id,)),
        asked=asked,
        text=text,
        template="iaea_five_principles" if nuclear else None,
    )


def _t(t: datetime | None) -> str:
    return "open" if t is None else t.strftime("%Y-%m-%dT%H:%MZ")
