"""Live events for operators: a small in-process publish/subscribe bus.

Owns the subscriber queues (bounded: a slow subscriber loses its oldest events, never
blocks a writer). Must not touch: the store; events are published after commit.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    type: str
    data: dict[str, Any] = field(default_factory=dict)


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._ids = itertools.count(1)
        self._size = queue_size

    def publish(self, type_: str, **data: Any) -> None:
        event = Event(next(self._ids), type_, data)
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue(self._size)
        self._subscribers.add(q)
        try:
            yield q
        finally:
            self._subscribers.discard(q)
