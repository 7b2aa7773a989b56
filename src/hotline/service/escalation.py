"""Escalation: a missed acknowledgement deadline climbs a ladder of roles.

Owns the ladder of a message (its channel's agreed ``escalation`` steps; on a standing
channel the ``escalation_ladder`` setting, whose steps count in deadlines), which steps
are due (pure: ``due_steps``), the ``escalation`` typed message's data
(``EscalationData``: what a peer may send, bounded) and the background check
(``Escalator``) that takes each due step once.

The ladder runs at the station that waits: for each of our messages the peer has not
acknowledged by its deadline, step ``n`` is due ``after_s`` past the deadline. Taking it
is one writer unit: an ``escalation`` action on the record (message id, step, role),
whose projection (service/watch.py) raises an alarm for that role; then an
``escalation`` event with the content. A step marked ``both_sides`` also sends the peer
an ``escalation`` typed message (data: message_id, step, role), so that the peer's
station raises its own alarm for that role. The record says which steps happened: a
restart repeats none, and an acknowledgement stops the rest (the unit checks again
before it appends).

Must not touch: SQL (store/watch.py), the sending path beyond ``sender.send``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Connection

from hotline.errors import HotlineError, InputError
from hotline.service import sender
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.settings import Settings
from hotline.store import watch as store
from hotline.store.writer import WriteTx
from hotline.wire.channels import ChannelSpec
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

log = logging.getLogger(__name__)

#: most steps a ladder has (ChannelSpec.escalation allows 8)
MAX_STEPS = 8
#: overdue messages read at a time, and at most per check (the oldest first)
PAGE = 500
MAX_PER_CHECK = 20_000
LadderRole = Literal["watch_officer", "senior_watch_officer", "principal"]


class EscalationData(BaseModel):
    """The data of an ``escalation`` typed message: the sender's ladder reached ``step``
    for ``message_id`` (a message it sent to us), alarming ``role``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    message_id: Annotated[str, Field(min_length=36, max_length=36)]
    step: Annotated[int, Field(ge=1, le=MAX_STEPS)]
    role: LadderRole


def check_data(data: dict[str, Any]) -> None:
    """The validator of ``escalation`` data (ctx.validators): an ``InputError`` unless it
    is exactly an ``EscalationData`` with a canonical (lower-case, hyphenated) UUID."""
    try:
        parsed = EscalationData.model_validate(data)
        canonical = str(uuid.UUID(parsed.message_id)) == parsed.message_id
    except (ValidationError, ValueError) as exc:
        raise InputError(f"escalation data refused: {exc}", code="bad_message_data") from None
    if not canonical:
        raise InputError("escalation data refused: message_id is not a canonical UUID",
                         code="bad_message_data")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a message's ladder, numbered from 1."""

    number: int
    after_s: float
    role: str
    both_sides: bool


def ladder(spec: ChannelSpec | None, settings: Settings, deadline_span_s: float) -> list[Step]:
    """The ladder of a message on ``spec`` whose deadline is ``deadline_span_s`` after it
    was sent: the channel's agreed steps; a standing channel's (or one the book does not
    know) from ``escalation_ladder``, counted in deadlines."""
    if spec is not None and not spec.standing:
        steps = [(s.after_s, s.role, s.both_sides) for s in spec.escalation]
    else:
        steps = [
            (s.after_deadlines * deadline_span_s, s.role, s.both_sides)
            for s in settings.escalation_ladder
        ]
    return [Step(i + 1, a, r, b) for i, (a, r, b) in enumerate(steps[:MAX_STEPS])]


def due_steps(steps: list[Step], deadline_us: int, now_us: int, done: set[int]) -> list[Step]:
    """The steps due at ``now_us`` and not yet taken, in order."""
    return [
        s
        for s in steps
        if s.number not in done and deadline_us + int(s.after_s * 1_000_000) <= now_us
    ]


@dataclass(frozen=True, slots=True)
class DueStep:
    message_id: str
    peer: str
    channel: str
    precedence: int
    deadline_us: int
    step: Step
    text: str


def excerpt(body_json: str, limit: int = 200) -> str:
    """The first ``limit`` characters of a stored message body's text."""
    try:
        body = MessagePayload.model_validate_json(body_json)
    except ValidationError:
        return ""
    return body.text[:limit]


def listed(
    conn: Connection, *, message_id: str | None = None, open_only: bool = False, limit: int = 100
) -> list[dict[str, Any]]:
    """Escalation steps (ours and the peer's), newest first, for operators."""
    return [
        {
            "entry_idx": r.entry_idx, "message_id": r.message_id, "origin": r.origin,
            "peer": r.peer, "channel": r.channel, "step": r.step, "role": r.role,
            "both_sides": r.both_sides, "status": r.status, "code": r.code, "at_us": r.at_us,
            "claimed_at_us": r.claimed_at_us,
            "precedence": Precedence(r.precedence).name if r.precedence is not None else None,
            "acknowledged": r.acknowledged_at_us is not None,
        }
        for r in store.escalations(conn, message_id=message_id, open_only=open_only, limit=limit)
    ]  # fmt: skip


class Escalator:
    """The background check: every step due is taken once, on the record."""

    def __init__(self, ctx: LineContext) -> None:
        self.ctx = ctx

    def _due(self, now_us: int) -> list[DueStep]:
        ctx = self.ctx
        rows: list[Any] = []
        done: dict[str, set[int]] = {}
        with ctx.reader.connect() as conn:
            after = None
            while len(rows) < MAX_PER_CHECK:
                page = store.overdue_outbound(conn, now_us, PAGE, after)
                rows += page
                done |= store.steps_done(conn, [r.message_id for r in page])
                if len(page) < PAGE:
                    break
                after = (page[-1].ack_deadline_us, page[-1].message_id)
        out: list[DueStep] = []
        for r in rows:
            span_s = max(0.0, (r.ack_deadline_us - r.sent_at_us) / 1_000_000)
            steps = ladder(ctx.channels.get(r.channel), ctx.settings, span_s)
            for step in due_steps(steps, r.ack_deadline_us, now_us, done.get(r.message_id, set())):
                out.append(DueStep(r.message_id, r.peer, r.channel, r.precedence,
                                   r.ack_deadline_us, step, excerpt(r.body)))  # fmt: skip
        return out

    async def check(self) -> list[DueStep]:
        """Take every step due now; returns the steps taken."""
        now = self.ctx.clock.now_us()
        taken = []
        for due in await asyncio.to_thread(self._due, now):
            if await self.ctx.writer.submit(self._unit(due)):
                taken.append(due)
                if due.step.both_sides:
                    await self._tell_peer(due)
        return taken

    def _unit(self, due: DueStep) -> Any:
        ctx = self.ctx

        def unit(tx: WriteTx) -> bool:
            row = store.message_row(tx.conn, due.message_id, "out", due.peer)
            if row is None or row.acknowledged_at_us is not None:
                return False  # acknowledged since: the ladder stops
            if due.step.number in store.steps_done(tx.conn, [due.message_id]).get(
                due.message_id, set()
            ):
                return False
            action = {
                "action": "escalation",
                "message_id": due.message_id,
                "peer": due.peer,
                "channel": due.channel,
                "step": due.step.number,
                "role": due.step.role,
                "both_sides": due.step.both_sides,
                "officer": "station",
            }
            append_action(ctx, tx, action, peer=due.peer)
            event = {
                "origin": "local",
                "message_id": due.message_id,
                "peer": due.peer,
                "channel": due.channel,
                "precedence": Precedence(due.precedence).name,
                "step": due.step.number,
                "role": due.step.role,
                "both_sides": due.step.both_sides,
                "deadline_us": due.deadline_us,
                "text": due.text,
            }
            tx.after_commit(lambda: ctx.events.publish("escalation", **event))
            return True

        return unit

    async def _tell_peer(self, due: DueStep) -> None:
        ctx = self.ctx
        data = {"message_id": due.message_id, "step": due.step.number, "role": due.step.role}
        payload = MessagePayload(
            type="escalation",
            text=f"Escalation step {due.step.number} ({due.step.role}): message "
            f"{due.message_id} is not acknowledged past its deadline.",
            data=data,
            ack_required=False,
        )
        channel = ctx.settings.standing_channels[0] if ctx.settings.standing_channels else "working"
        try:
            await sender.send(
                ctx,
                peer=due.peer,
                channel=channel,
                precedence=Precedence(due.precedence),
                payload=payload,
                operator="station",
            )
        except HotlineError as exc:  # the step is on our record; the peer is told no more
            log.error("escalation of %s could not be sent to %s: %s", due.message_id,
                      due.peer, exc)  # fmt: skip

    async def run(self) -> None:
        """One round of the station's supervised loop: check, then wait."""
        await self.check()
        await asyncio.sleep(self.ctx.settings.escalation_check_interval_s)
