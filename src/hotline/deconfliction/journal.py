"""An undo journal for in-memory projections (the registry, the concern book).

Owns :class:`Journal`: each change to a journalled structure records, beside itself, a
function that undoes it; :meth:`Journal.undo_to` runs them back to a mark, newest first,
and :meth:`Journal.forget` drops them once the changes are durable. So a rolled-back
unit of work costs as much as it changed, not a replay of everything.

Invariants: a change records its undo only after it succeeded (a change that raises
changes nothing and records nothing); undo functions never raise for a state the
journal produced; nothing is recorded while the journal is inactive. Pure: no I/O, no
database; who decides the marks (a transaction, a savepoint) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable


class Journal:
    """Undo functions of the changes made since the last :meth:`forget`."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], object]] = []
        #: changes are recorded only while active (inside a tracked transaction)
        self.active = False

    def __len__(self) -> int:
        return len(self._undo)

    def record(self, undo: Callable[[], object]) -> None:
        """Remember how to undo the change just made."""
        if self.active:
            self._undo.append(undo)

    def mark(self) -> int:
        """A point to come back to with :meth:`undo_to`."""
        return len(self._undo)

    def undo_to(self, mark: int) -> None:
        """Undo every change recorded after ``mark``, newest first."""
        while len(self._undo) > mark:
            self._undo.pop()()

    def forget(self) -> None:
        """The changes are durable: drop their undo functions."""
        self._undo.clear()
