""" "Action required": what an officer must do now, from every source, in one ordered list.

Owns the ``ActionItem`` shape, the list of sources (``SOURCES``: one function per kind of
work, registered by the module that owns that work: acknowledgements, approvals,
handovers, escalations, dissemination), and ``required``, which asks each source for the
items a principal's roles may act on and orders them by precedence, then time left.

Sources run in a worker thread with a read connection (never on the loop). Must not
touch: SQL (each source reads through its own store/ module), the writer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from hotline.service.roles import Principal


@dataclass(frozen=True, slots=True)
class ActionItem:
    #: what kind of work: "acknowledge", "approve", "handover", "escalation", "disseminate"
    kind: str
    #: the id the action is taken on (a message, an approval, a handover, ...)
    ref: str
    precedence: int
    #: our time by which it must be done (None: no deadline)
    due_at_us: int | None
    #: one line, shown as text
    summary: str
    channel: str = ""
    peer: str = ""


#: a source: (read connection, the officer, our time now) -> the items it may act on
Source = Callable[[Connection, Principal, int], list[ActionItem]]
SOURCES: list[Source] = []
#: a source that needs to know which station it reads for (this station's id last)
StationSource = Callable[[Connection, Principal, int, str], list[ActionItem]]
STATION_SOURCES: list[StationSource] = []


def required(
    conn: Connection, principal: Principal, now_us: int, station_id: str | None = None
) -> list[ActionItem]:
    """Every source's items for ``principal``, most urgent first: precedence, then the
    earliest deadline (items without one last), then ref for a stable order. With the
    station's id, the station sources' items too (channel proposals to answer)."""
    items = [item for source in SOURCES for item in source(conn, principal, now_us)]
    if station_id is not None:
        for station_source in STATION_SOURCES:
            items.extend(station_source(conn, principal, now_us, station_id))
    return sorted(
        items,
        key=lambda i: (i.precedence, i.due_at_us is None, i.due_at_us or 0, i.kind, i.ref),
    )
