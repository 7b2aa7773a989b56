"""Live events for operators: a small in-process publish/subscribe bus.

Owns the subscriber queues (bounded: a slow subscriber loses its oldest events, never
blocks a writer) and the content an event carries for an operator's screen, so a console
needs no second request to show it: a message's channel, precedence, type, text (at most
``MAX_EVENT_TEXT`` characters), officer; an acknowledgement's who and when; an alarm's
kind, severity, peer, reference and detail. Each event type's data is documented in
api/openapi.py ``EVENT_TYPES`` and docs/operations.md ("Events"). Times are ours; a time
a peer claims is named ``claimed_...``. Must not touch: the store; events are published
after commit.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from hotline.wire.messages import MessagePayload

#: characters of a message's text an event carries (the rest: GET /api/v1/messages/{id})
MAX_EVENT_TEXT = 500


def message_content(payload: MessagePayload) -> dict[str, Any]:
    """What an event says of a message: its type, text (bounded), officer, reply."""
    dumped = payload.model_dump(mode="json", exclude_none=True)
    return {
        "type": payload.type,
        "text": payload.text[:MAX_EVENT_TEXT],
        "text_truncated": len(payload.text) > MAX_EVENT_TEXT,
        "officer": dumped.get("officer"),
        "in_reply_to": dumped.get("in_reply_to"),
        "ack_required": payload.ack_required,
    }


def alarm_content(
    *, kind: str, severity: str, peer: str | None, ref: str | None, detail: str, now_us: int
) -> dict[str, Any]:
    """What an ``alarm.raised`` event says (the arguments of ``operational.raise_alarm``)."""
    return {
        "kind": kind,
        "severity": severity,
        "peer": peer,
        "ref": ref,
        "detail": detail,
        "raised_at_us": now_us,
    }


class _Unit(Protocol):
    """A writer unit (store.writer.WriteTx): its connection and after-commit hooks."""

    @property
    def conn(self) -> Any: ...

    def after_commit(self, fn: Callable[[], None]) -> None: ...


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


def raise_alarm(tx: _Unit, bus: EventBus, store_alarm: Callable[..., bool], **alarm: Any) -> bool:
    """Open an alarm with ``store_alarm`` (``operational.raise_alarm``) inside the writer
    unit ``tx``; when it is new, publish ``alarm.raised`` with its content after commit.
    True when it is new."""
    new = store_alarm(tx.conn, **alarm)
    if new:
        content = alarm_content(**alarm)
        tx.after_commit(lambda: bus.publish("alarm.raised", **content))
    return bool(new)
