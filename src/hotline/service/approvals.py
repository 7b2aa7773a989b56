"""The two-person rule: a message on a channel that requires it leaves only once a second
officer has approved it.

Owns the use cases (``send_or_request``, ``approve``, ``refuse``, ``withdraw``,
``expire_due`` and its background loop ``run_expiry``), the operator actions they append
(``approval_request``, ``approval_grant``, ``approval_sent``, ``approval_refuse``,
``approval_withdraw``, ``approval_expired``: docs/ledger.md), the projection of those
actions into the ``approvals`` table (``ApprovalsProjection``, one of the line's core
extensions), the "action required" source of pending approvals and the live events
``approval_requested``, ``approval_decided`` and ``approval_expired``.

Invariants:

- A request is decided once: every decision re-reads the request inside its writer unit
  and refuses (``approval_closed``, returned as a value) one that is no longer pending
  or is past its deadline (the expiry is then recorded in that same unit).
- The approver is never the requester (``same_officer``); only the requester withdraws.
- An approval and the message it sends commit together or not at all: the grant is
  appended in the very unit ``sender.send`` submits (``_JoinedWriter``), after the send's
  own entries, naming the message. A request to several stations sends to the first in
  that unit and to each other one in its own unit with an ``approval_sent`` action.
- Deadlines are our clock's.

Must not touch: SQL (store/approvals.py), how a message is sealed and queued
(service/sender.py is called, never changed), the network.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hotline import supervise
from hotline.errors import HotlineError, InputError, NotFoundError, PermissionDeniedError
from hotline.service import actions, sender
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.service.roles import Action, Principal, require
from hotline.service.sender import Sent
from hotline.store import approvals as store
from hotline.store import operational, schema
from hotline.store.writer import Writer, WriteTx
from hotline.wire import envelope as wire
from hotline.wire.channels import PRECEDENCES, ChannelSpec
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

T = TypeVar("T")
#: the operator actions this module appends and projects
ACTIONS = (
    "approval_request",
    "approval_grant",
    "approval_sent",
    "approval_refuse",
    "approval_withdraw",
    "approval_expired",
)
MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Requested:
    """A message held for a second officer's approval (nothing has been sent)."""

    approval_id: str
    channel: str
    peers: list[str]
    precedence: Precedence
    requester: str
    deadline_us: int


# --- which channels require it ---------------------------------------------------------


def requires_approval(ctx: LineContext, channel: str) -> ChannelSpec | None:
    """The channel's terms if a second officer must approve what leaves on it: an agreed
    channel with ``two_person``, or a standing one named in ``two_person_channels``."""
    spec = ctx.channels.get(channel)
    if spec is None:
        return None
    if spec.two_person or (spec.standing and channel in ctx.settings.two_person_channels):
        return spec
    return None


# --- requesting ------------------------------------------------------------------------


async def send_or_request(
    ctx: LineContext,
    principal: Principal,
    *,
    peer: str | None,
    channel: str,
    precedence: Precedence,
    payload: MessagePayload,
    operator: str | None = None,
    also: Callable[[Connection, Sent], None] | None = None,
) -> Sent | Requested:
    """Send at once, or, on a channel that requires a second officer's approval, record
    an approval request and send nothing (``also`` then does not run)."""
    require(principal, Action.SEND, what="send a message")
    spec = requires_approval(ctx, channel)
    if spec is None:
        sent = await sender.send_group(
            ctx, peer=peer, channel=channel, precedence=precedence, payload=payload,
            operator=operator, principal=principal, also=also,
        )  # fmt: skip
        return sent.sent[-1]
    return await request(ctx, principal, spec, peer=peer, precedence=precedence, payload=payload)


def _check(ctx: LineContext, channel: str, peers: list[str], payload: MessagePayload) -> None:
    """What sender.send will check, checked before the request is recorded, so that an
    approved request does not fail for a reason its requester could have fixed."""
    if not peers:
        raise InputError(f"channel {channel!r} has no other member", code="no_recipient")
    for p in peers:
        ctx.peers.get(p)  # NotFoundError for a station that is not a peer
    if not channel or len(channel.encode()) > wire.MAX_CHANNEL_BYTES:
        raise InputError("channel must be 1 to 64 bytes", code="bad_channel")
    if payload.type == "text" and not payload.text.strip():
        raise InputError("a message needs text", code="empty_message")
    if len(payload.text) > ctx.settings.max_text_chars:
        raise InputError(
            f"text is longer than {ctx.settings.max_text_chars} characters",
            code="text_too_long",
        )
    sender.check_data(ctx, payload)


async def request(
    ctx: LineContext,
    principal: Principal,
    spec: ChannelSpec,
    *,
    peer: str | None,
    precedence: Precedence,
    payload: MessagePayload,
) -> Requested:
    """Record an approval request for a message on ``spec``'s channel."""
    require(principal, Action.SEND, what="send a message")
    peers = spec.recipients(ctx.station_id, peer)
    if not peers:
        raise InputError(
            f"channel {spec.name!r} is a standing channel: name the peer to send to",
            code="no_recipient",
            hint="add --to PEER (API: the field peer)",
        )
    _check(ctx, spec.name, peers, payload)
    approval_id = str(uuid.uuid4())
    body = json.loads(payload.to_bytes())

    def unit(tx: WriteTx) -> Requested:
        now = ctx.clock.now_us()
        deadline = now + int(spec.approval_deadline_s * 1_000_000)
        action = {
            "action": "approval_request",
            "approval_id": approval_id,
            "channel": spec.name,
            "peers": peers,
            "precedence": int(precedence),
            "payload": body,
            "requested_by": principal.username,
            "requested_by_name": principal.display_name,
            "deadline_us": deadline,
        }
        append_action(ctx, tx, action)
        event = {
            "approval_id": approval_id, "channel": spec.name, "peers": peers,
            "precedence": precedence.name, "requester": principal.username,
            "deadline_us": deadline, "text": payload.text, "type": payload.type,
        }  # fmt: skip
        tx.after_commit(lambda: ctx.events.publish("approval_requested", **event))
        return Requested(approval_id, spec.name, peers, precedence, principal.username, deadline)

    result: Requested = await ctx.writer.submit(unit)
    return result


# --- deciding --------------------------------------------------------------------------


async def _read(ctx: LineContext, approval_id: str) -> dict[str, Any]:
    def run() -> dict[str, Any] | None:  # a worker thread: never a database read on the loop
        with ctx.reader.connect() as conn:
            return store.get(conn, approval_id)

    row = await asyncio.to_thread(run)
    if row is None:
        raise NotFoundError(
            f"no approval request {approval_id}", hint="list them with hotline approvals"
        )
    return row


def _closed(row: dict[str, Any]) -> InputError:
    state = row["state"]
    by = f" by {row['decided_by']}" if row.get("decided_by") else ""
    return InputError(
        f"approval request {row['id']} is {state}{by}: it can no longer be decided",
        code="approval_closed",
        hint="a closed request stays closed; the requester sends the message again for a "
        "new approval if it is still needed",
    )


def _same_officer(principal: Principal, row: dict[str, Any], verb: str) -> None:
    if row["requester"] == principal.username:
        raise PermissionDeniedError(
            f"{principal.username} made this request and may not {verb} it",
            code="same_officer",
            hint="the two-person rule needs a second officer: ask another officer who "
            "holds the approve role (senior watch officer or principal)",
        )


def _still_open(ctx: LineContext, tx: WriteTx, approval_id: str) -> InputError | None:
    """Inside a unit: the request as it is now. Past its deadline, the expiry is recorded
    here and the decision refused (a value: the unit commits the expiry)."""
    row = store.get(tx.conn, approval_id)
    if row is None:  # pragma: no cover - read before the unit; requests are never deleted
        return InputError(f"no approval request {approval_id}", code="approval_closed")
    if row["state"] != store.PENDING:
        return _closed(row)
    if ctx.clock.now_us() >= row["deadline_us"]:
        _expire(ctx, tx, row)
        return _closed(store.get(tx.conn, approval_id) or row)
    return None


class _JoinedWriter:
    """The writer ``sender.send`` is handed for an approved request: its one unit runs
    wrapped, ``before(tx)`` first (a refusal it returns stops the unit before the send
    appends anything), then the send's unit, then ``after(tx, sent)`` (the grant), so
    approval and message commit together or not at all."""

    def __init__(
        self,
        writer: Writer,
        before: Callable[[WriteTx], HotlineError | None],
        after: Callable[[WriteTx, Sent], None],
    ) -> None:
        self._writer = writer
        self._before = before
        self._after = after

    async def submit(self, unit: Callable[[WriteTx], T]) -> T | HotlineError:
        def joined(tx: WriteTx) -> T | HotlineError:
            refusal = self._before(tx)
            if refusal is not None:
                return refusal
            result = unit(tx)
            if isinstance(result, Sent):
                self._after(tx, result)
            return result

        return await self._writer.submit(joined)


def _joined(ctx: LineContext, writer: _JoinedWriter) -> LineContext:
    """The line's context with ``writer`` in place of the writer, for one send."""
    joined = copy.copy(ctx)
    joined.writer = cast(Writer, writer)
    return joined


async def approve(ctx: LineContext, principal: Principal, approval_id: str) -> dict[str, Any]:
    """A second officer approves a pending request: the message is sent, and the grant
    naming the approver is recorded in the same unit. Returns the request as decided."""
    require(principal, Action.APPROVE, what="approve a two-person request")
    row = await _read(ctx, approval_id)
    _same_officer(principal, row, "approve")
    if row["state"] != store.PENDING:
        raise _closed(row)
    req = row["request"]
    payload = MessagePayload.model_validate_json(json.dumps(req["payload"]))
    precedence = Precedence(req["precedence"])
    peers: list[str] = list(req["peers"])
    sent_ids: list[str] = []

    def grant(tx: WriteTx, sent: Sent) -> None:
        sent_ids.append(str(sent.message_id))
        action = {
            "action": "approval_grant",
            "approval_id": approval_id,
            "approved_by": principal.username,
            "approved_by_name": principal.display_name,
            "requested_by": row["requester"],
            "message_ids": [str(sent.message_id)],
        }
        append_action(ctx, tx, action, peer=sent.peer)
        decided = _decided_event(row, "approved", principal.username, None, sent_ids)
        tx.after_commit(lambda: ctx.events.publish("approval_decided", **decided))

    def also_sent(tx: WriteTx, sent: Sent) -> None:
        sent_ids.append(str(sent.message_id))
        action = {"action": "approval_sent", "approval_id": approval_id,
                  "message_id": str(sent.message_id), "peer": sent.peer}  # fmt: skip
        append_action(ctx, tx, action, peer=sent.peer)

    for i, peer in enumerate(peers):
        if i == 0:
            writer = _JoinedWriter(ctx.writer, lambda tx: _still_open(ctx, tx, approval_id), grant)
        else:
            writer = _JoinedWriter(ctx.writer, lambda tx: None, also_sent)
        await sender.send(
            _joined(ctx, writer), peer=peer, channel=row["channel"], precedence=precedence,
            payload=payload, operator=row["requester"],
        )  # fmt: skip
    return await _read(ctx, approval_id)


async def refuse(
    ctx: LineContext, principal: Principal, approval_id: str, reason: str
) -> dict[str, Any]:
    """A second officer refuses a pending request, with a reason; nothing is sent."""
    require(principal, Action.APPROVE, what="refuse a two-person request")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise InputError(
            f"give a reason for the refusal (1 to {MAX_REASON_CHARS} characters)",
            code="bad_reason",
            hint="the reason is on the record and shown to the requester",
        )
    row = await _read(ctx, approval_id)
    _same_officer(principal, row, "refuse")
    action = {"action": "approval_refuse", "approval_id": approval_id,
              "refused_by": principal.username, "reason": reason}  # fmt: skip
    event = _decided_event(row, "refused", principal.username, reason, [])
    await _close(ctx, row, action, event)
    return await _read(ctx, approval_id)


async def withdraw(ctx: LineContext, principal: Principal, approval_id: str) -> dict[str, Any]:
    """The requester withdraws a pending request; nothing is sent."""
    require(principal, Action.SEND, what="withdraw a two-person request")
    row = await _read(ctx, approval_id)
    if row["requester"] != principal.username:
        raise PermissionDeniedError(
            f"only {row['requester']}, who made the request, may withdraw it",
            code="not_requester",
            hint="a second officer refuses a request instead (hotline refuse ID --reason)",
        )
    action = {"action": "approval_withdraw", "approval_id": approval_id,
              "withdrawn_by": principal.username}  # fmt: skip
    event = _decided_event(row, "withdrawn", principal.username, None, [])
    await _close(ctx, row, action, event)
    return await _read(ctx, approval_id)


async def _close(
    ctx: LineContext, row: dict[str, Any], action: dict[str, Any], event: dict[str, Any]
) -> None:
    if row["state"] != store.PENDING:
        raise _closed(row)

    def unit(tx: WriteTx) -> InputError | None:
        refusal = _still_open(ctx, tx, row["id"])
        if refusal is not None:
            return refusal
        append_action(ctx, tx, action)
        tx.after_commit(lambda: ctx.events.publish("approval_decided", **event))
        return None

    result = await ctx.writer.submit(unit)
    if result is not None:
        raise result


def _decided_event(
    row: dict[str, Any], state: str, by: str, reason: str | None, message_ids: list[str]
) -> dict[str, Any]:
    return {
        "approval_id": row["id"], "state": state, "decided_by": by, "reason": reason,
        "requester": row["requester"], "channel": row["channel"],
        "peers": row["request"]["peers"], "message_ids": message_ids,
        "text": row["request"]["payload"].get("text", ""),
    }  # fmt: skip


# --- expiry ----------------------------------------------------------------------------


def _expire(ctx: LineContext, tx: WriteTx, row: dict[str, Any]) -> None:
    """Inside a unit: record that a pending request passed its deadline, alarm its
    requester, and publish it after commit."""
    peers = row["request"]["peers"]
    append_action(ctx, tx, {"action": "approval_expired", "approval_id": row["id"],
                            "deadline_us": row["deadline_us"]})  # fmt: skip
    operational.raise_alarm(
        tx.conn, kind="approval_expired", severity="MEDIUM", peer=peers[0] if peers else None,
        ref=row["id"],
        detail=f"for {row['requester']}: the approval request {row['id']} on channel "
        f"{row['channel']} expired with no second officer's decision; nothing was sent",
        now_us=ctx.clock.now_us(),
    )  # fmt: skip
    event = {"approval_id": row["id"], "requester": row["requester"], "channel": row["channel"],
             "peers": peers, "deadline_us": row["deadline_us"],
             "text": row["request"]["payload"].get("text", "")}  # fmt: skip
    tx.after_commit(lambda: ctx.events.publish("approval_expired", **event))


async def expire_due(ctx: LineContext) -> list[str]:
    """Record the expiry of every pending request past its deadline; their ids."""
    now = ctx.clock.now_us()

    def read() -> list[str]:  # a worker thread
        with ctx.reader.connect() as conn:
            return store.due(conn, now)

    if not await asyncio.to_thread(read):
        return []

    def unit(tx: WriteTx) -> list[str]:
        done = []
        for approval_id in store.due(tx.conn, ctx.clock.now_us()):
            row = store.get(tx.conn, approval_id)
            if row is not None:
                _expire(ctx, tx, row)
                done.append(approval_id)
        return done

    expired: list[str] = await ctx.writer.submit(unit)
    return expired


async def run_expiry(ctx: LineContext) -> None:
    """The background check: expire what is due every ``approval_check_interval_s``."""

    async def round_() -> None:
        await expire_due(ctx)
        await asyncio.sleep(ctx.settings.approval_check_interval_s)

    await supervise.forever("approval expiry", round_)


# --- reads -----------------------------------------------------------------------------


def listing(conn: Connection, *, state: str | None = None, limit: int = 100) -> list[Any]:
    return store.listing(conn, state=state, limit=limit)


def get(conn: Connection, approval_id: str) -> dict[str, Any] | None:
    return store.get(conn, approval_id)


def action_items(conn: Connection, principal: Principal, now_us: int) -> list[actions.ActionItem]:
    """The "action required" source: pending requests this officer may approve (never
    their own), by precedence and deadline."""
    if not principal.may(Action.APPROVE):
        return []
    items = []
    for row in store.pending_not_by(conn, principal.username, now_us):
        text = " ".join(str(row["request"]["payload"].get("text", "")).split())
        prec = PRECEDENCES[row["precedence"]]
        items.append(
            actions.ActionItem(
                kind="approve", ref=row["id"], precedence=row["precedence"],
                due_at_us=row["deadline_us"],
                summary=f"approve {row['requester']}'s {prec} message: {text[:80]}",
                channel=row["channel"], peer=",".join(row["request"]["peers"]),
            )
        )  # fmt: skip
    return items


actions.SOURCES.append(action_items)


# --- the projection --------------------------------------------------------------------


class ApprovalsProjection:
    """A ``ProjectionExtension``: the ``approvals`` table from the ``approval_*`` actions,
    live and on rebuild (the same code)."""

    tables: tuple[sa.Table, ...] = (schema.approvals,)

    @classmethod
    def make(cls, ctx: LineContext) -> ApprovalsProjection:
        return cls()

    def on_message(self, conn: Connection, event: Any) -> None:
        """Approvals own no typed message."""

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        """Approvals own no acknowledgement."""

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        name = action.get("action")
        if name not in ACTIONS:
            return
        aid = str(action["approval_id"])
        if name == "approval_request":
            store.insert_request(
                conn, approval_id=aid, request=action, requested_at_us=at_us, entry_idx=idx
            )
        elif name == "approval_grant":
            store.decide(conn, aid, state="approved", by=action["approved_by"], at_us=at_us,
                         message_ids=list(action["message_ids"]))  # fmt: skip
        elif name == "approval_sent":
            store.add_message(conn, aid, str(action["message_id"]))
        elif name == "approval_refuse":
            store.decide(conn, aid, state="refused", by=action["refused_by"], at_us=at_us,
                         reason=action["reason"])  # fmt: skip
        elif name == "approval_withdraw":
            store.decide(conn, aid, state="withdrawn", by=action["withdrawn_by"], at_us=at_us)
        else:  # approval_expired
            store.decide(conn, aid, state="expired", by=None, at_us=at_us)

    def reset(self) -> None:
        """Nothing in memory."""

    def rebuild_finished(self, conn: Connection) -> None:
        """Alarms of expired requests were raised live and are left alone."""
