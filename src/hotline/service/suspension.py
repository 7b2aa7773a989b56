"""Suspension: a party declares a channel, or its whole line with one peer, suspended.

Owns the state (``SuspensionBook``: in memory, for the send path, rebuilt from the
``suspensions`` projection), its projection (``SuspensionProjection``: our ``suspend``
actions and a peer's ``suspension`` messages), the send check (``check_send``, called
once at the top of service/sender.py ``send``), and the use cases ``suspend`` and
``resume``.

Rules:

- a suspension is keyed by (peer, channel or the line, declaring station); both sides'
  suspensions bind what we send: while one matches, only the precedences the channel's
  terms allow (``suspended_allow``; standing channels: the setting, FLASH by default) are
  sent, anything else is refused ``suspended``. Suspension and dissemination records
  themselves always go (they are the record of the record);
- each party resumes only its own suspension. A peer's ``resumed`` for a suspension we
  declared is recorded as a claim (outcome ``not_theirs``) and changes nothing; our
  officer is refused ``not_yours`` for one the peer declared;
- a peer keeps at most ``MAX_ACTIVE_PER_PEER`` suspensions at once (more: ``too_many``,
  recorded, no effect), so a flood cannot grow our memory;
- link tests and the record go on: nothing here touches the link.

The ``suspend`` action is appended first (the state binds at once), then the peer is told
with a FLASH ``suspension`` message (ack not required). Must not touch: SQL (store/
suspension.py), the link, the inbox's checks.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy.engine import Connection

from hotline.errors import InputError, NotFoundError
from hotline.service import sender
from hotline.service.appending import append_action
from hotline.service.context import LineContext
from hotline.service.roles import Action, Principal, require
from hotline.store import schema
from hotline.store import suspension as db
from hotline.store.projections import MessageEvent
from hotline.store.writer import WriteTx
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

TYPE = "suspension"
#: the channel key of a suspension of the whole line with a peer
LINE = ""
#: a peer's suspensions in force at once, at most
MAX_ACTIVE_PER_PEER = 64
#: typed messages that go whatever the suspension (the record of the record)
EXEMPT_TYPES = frozenset({"suspension", "dissemination"})


class SuspensionData(BaseModel):
    """The data of a ``suspension`` message (what a peer declares; bounded)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    scope: Literal["channel", "line"]
    channel: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    state: Literal["suspended", "resumed"]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]

    @model_validator(mode="after")
    def _scope(self) -> SuspensionData:
        if (self.scope == "channel") != (self.channel is not None):
            raise ValueError("a channel suspension names its channel; a line one does not")
        if self.channel is not None and (
            len(self.channel.encode()) > 64 or not self.channel.isprintable()
        ):
            raise ValueError("a channel name is 1 to 64 bytes of printable UTF-8")
        return self

    @property
    def key(self) -> str:
        return self.channel if self.channel is not None else LINE


def parse_data(data: dict[str, Any]) -> SuspensionData:
    try:
        return SuspensionData.model_validate(data, strict=False)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise InputError(
            f"suspension data invalid at {where}: {first['msg']}", code="bad_message_data"
        ) from None


def validate(data: dict[str, Any]) -> None:
    """The validator of ``suspension`` data (ctx.validators)."""
    parse_data(data)


@dataclass(frozen=True, slots=True)
class Active:
    """A suspension in force."""

    peer: str
    channel: str  #: LINE for the whole line
    declared_by: str
    reason: str
    officer: str | None
    since_us: int
    message_id: str | None = None

    def json(self, station_id: str) -> dict[str, Any]:
        return {
            "peer": self.peer,
            "scope": "line" if self.channel == LINE else "channel",
            "channel": self.channel or None,
            "declared_by": self.declared_by,
            "side": "ours" if self.declared_by == station_id else "theirs",
            "reason": self.reason,
            "officer": self.officer,
            "since_us": self.since_us,
            "message_id": self.message_id,
        }


Key = tuple[str, str, str]  #: (peer, channel or LINE, declaring station)


class SuspensionBook:
    """The suspensions in force, in memory (read on the loop, written by the writer's
    thread under the lock)."""

    def __init__(self, station_id: str) -> None:
        self.station_id = station_id
        self._lock = threading.Lock()
        self._active: dict[Key, Active] = {}

    def clear(self) -> None:
        with self._lock:
            self._active.clear()

    def get(self, key: Key) -> Active | None:
        with self._lock:
            return self._active.get(key)

    def all(self) -> list[Active]:
        with self._lock:
            items = list(self._active.values())
        return sorted(items, key=lambda a: (a.peer, a.channel, a.declared_by))

    def matching(self, peer: str, channel: str) -> list[Active]:
        """The suspensions that bind a message to ``peer`` on ``channel`` (line first)."""
        with self._lock:
            return [
                a
                for (p, c, _by), a in sorted(self._active.items())
                if p == peer and c in (LINE, channel)
            ]

    def apply(self, state: str, item: Active) -> str:
        """Apply a declaration or resumption; returns its outcome."""
        key = (item.peer, item.channel, item.declared_by)
        with self._lock:
            if state == "suspended":
                if key in self._active:
                    return "no_effect"
                mine = sum(1 for k in self._active if k[0] == item.peer and k[2] == key[2])
                if mine >= MAX_ACTIVE_PER_PEER:
                    return "too_many"
                self._active[key] = item
                return "applied"
            if self._active.pop(key, None) is not None:
                return "applied"
            ours = (item.peer, item.channel, self.station_id)
            if item.declared_by != self.station_id and ours in self._active:
                return "not_theirs"  # a peer's claim to resume our suspension
            return "no_effect"


class SuspensionProjection:
    """A ``ProjectionExtension``: the ``suspensions`` table and the book."""

    tables: tuple[sa.Table, ...] = (schema.suspensions,)

    def __init__(self, ctx: LineContext) -> None:
        self.ctx = ctx
        self.book = SuspensionBook(ctx.station_id)
        self._quiet = False

    # --- the projection ---------------------------------------------------------------

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        if action.get("action") != "suspend":
            return
        for peer in action["peers"]:
            item = Active(
                peer,
                action["channel"],
                self.ctx.station_id,
                action["reason"],
                action["officer"],
                at_us,
            )
            outcome = self.book.apply(action["state"], item)
            db.insert_suspension(
                conn,
                entry_idx=idx,
                peer=peer,
                channel=action["channel"],
                declared_by=self.ctx.station_id,
                state=action["state"],
                reason=action["reason"],
                officer=action["officer"],
                at_us=at_us,
                message_id=None,
                claimed_at_us=None,
                outcome=outcome,
            )

    def on_message(self, conn: Connection, event: MessageEvent) -> None:
        if event.body.type != TYPE or event.direction != "in" or event.body.data is None:
            return  # our own suspension messages: the ``suspend`` action did it
        try:
            data = parse_data(event.body.data)
        except InputError:  # checked by the inbox; never expected here
            return
        item = Active(
            event.peer,
            data.key,
            event.peer,
            data.reason,
            None,
            event.recorded_at_us,
            event.message_id,
        )
        outcome = self.book.apply(data.state, item)
        db.insert_suspension(
            conn,
            entry_idx=event.idx,
            peer=event.peer,
            channel=data.key,
            declared_by=event.peer,
            state=data.state,
            reason=data.reason,
            officer=None,
            at_us=event.recorded_at_us,
            message_id=event.message_id,
            claimed_at_us=event.sent_at_us,
            outcome=outcome,
        )
        if not self._quiet:
            content = {
                **item.json(self.ctx.station_id),
                "state": data.state,
                "outcome": outcome,
                "at_us": event.recorded_at_us,
            }
            self.ctx.publish_after_commit(TYPE, **content)

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        return

    def reset(self) -> None:
        self.book.clear()
        self._quiet = True

    def rebuild_finished(self, conn: Connection) -> None:
        self._quiet = False

    def load(self, conn: Connection) -> None:
        """Fill the book from the projection (at start, and after a rollback)."""
        self.book.clear()
        for r in db.applied_suspensions(conn):
            item = Active(
                r.peer, r.channel, r.declared_by, r.reason, r.officer, int(r.at_us), r.message_id
            )
            self.book.apply(r.state, item)

    def reload_after_rollback(self, conn: Connection | None) -> None:
        """The writer rolled back a unit or a batch: the book may hold what never was."""
        if conn is not None:
            self.load(conn)
            return
        with self.ctx.reader.connect() as fresh:
            self.load(fresh)


def make(ctx: LineContext) -> SuspensionProjection:
    """The factory in service/extensions.py CORE."""
    ext = SuspensionProjection(ctx)
    ctx.validators[TYPE] = validate
    with ctx.reader.connect() as conn:
        ext.load(conn)
    ctx.writer.on_rollback.append(ext.reload_after_rollback)
    return ext


def projection_of(ctx: LineContext) -> SuspensionProjection:
    for ext in ctx.extensions:
        if isinstance(ext, SuspensionProjection):
            return ext
    raise NotFoundError("suspension is not projected on this line")  # pragma: no cover


# --- the send check ---------------------------------------------------------------------


def allowed_while_suspended(ctx: LineContext, channel: str) -> list[str]:
    spec = ctx.channels.get(channel)
    if spec is None or spec.standing:
        return list(ctx.settings.suspended_allow)
    return list(spec.suspended_allow)


def utc_text(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def check_send(
    ctx: LineContext, peer: str, channel: str, precedence: Precedence, type_: str = "text"
) -> None:
    """Refuse (``suspended``) a message of a precedence the channel does not allow while
    a suspension of either side binds it. In memory only: called on the loop."""
    if type_ in EXEMPT_TYPES:
        return
    found: list[Active] = []
    for ext in ctx.extensions:
        if isinstance(ext, SuspensionProjection):
            found = ext.book.matching(peer, channel)
    if not found:
        return
    allow = allowed_while_suspended(ctx, channel)
    if precedence.name in allow:
        return
    s = found[0]
    what = f"the line with {peer}" if s.channel == LINE else f"channel {s.channel!r} with {peer}"
    who = f"this station ({s.officer})" if s.declared_by == ctx.station_id else f"{s.declared_by}"
    still = ", ".join(allow) or "nothing"
    raise InputError(
        f"{what} is suspended: a {precedence.name} message is not sent",
        code="suspended",
        hint=f"suspended by {who} at {utc_text(s.since_us)}, because: {s.reason[:200]}. "
        f"Still sent while suspended: {still} (FLASH still goes unless the channel's terms "
        f"say otherwise). See hotline suspensions; the party that suspended it resumes it.",
    )


# --- use cases -------------------------------------------------------------------------


def _targets(ctx: LineContext, peer: str | None, channel: str | None) -> list[str]:
    """The peers a suspension of ``channel`` (None: the line) with ``peer`` concerns."""
    if channel is not None:
        spec = ctx.channels.require(channel)
        if peer is None:
            if spec.standing:
                raise InputError(
                    f"name the peer: {channel!r} is a standing channel, with every peer",
                    code="bad_input",
                    hint="hotline suspend --peer PEER --channel CHANNEL --reason ...",
                )
            return spec.recipients(ctx.station_id)
        if not spec.standing and peer not in spec.members:
            raise InputError(f"{peer} is not a member of channel {channel!r}")
    if peer is None:
        raise InputError("name the peer whose line is suspended", hint="--peer PEER")
    if peer not in ctx.peers:
        raise NotFoundError(f"station {peer!r} is not a peer", hint="see hotline peers")
    return [peer]


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > 2000:
        raise InputError("give the reason (1 to 2000 characters)", code="bad_input")
    return reason


async def suspend(
    ctx: LineContext,
    principal: Principal,
    *,
    peer: str | None,
    channel: str | None,
    reason: str,
) -> list[dict[str, Any]]:
    """Declare a suspension (on the record), then tell each peer (FLASH)."""
    require(principal, Action.SUSPEND, what="suspend a channel or the line")
    reason = _reason(reason)
    peers = _targets(ctx, peer, channel)
    key = channel if channel is not None else LINE
    book = projection_of(ctx).book
    for p in peers:
        if book.get((p, key, ctx.station_id)) is not None:
            raise InputError(
                f"{'the line' if key == LINE else repr(key)} with {p} is already suspended "
                "by this station",
                code="already_suspended",
                hint="see hotline suspensions; resume it first to state a new reason",
            )
    await _declare(ctx, principal, peers, key, "suspended", reason)
    return [
        a.json(ctx.station_id)
        for p in peers
        if (a := book.get((p, key, ctx.station_id))) is not None
    ]


async def resume(
    ctx: LineContext,
    principal: Principal,
    *,
    peer: str | None,
    channel: str | None,
    reason: str = "resumed",
) -> list[str]:
    """Resume our own suspension (on the record), then tell each peer; returns the peers."""
    require(principal, Action.SUSPEND, what="resume a channel or the line")
    reason = _reason(reason or "resumed")
    peers = _targets(ctx, peer, channel)
    key = channel if channel is not None else LINE
    book = projection_of(ctx).book
    what = "the line" if key == LINE else f"channel {key!r}"
    for p in peers:
        if book.get((p, key, ctx.station_id)) is not None:
            continue
        if book.get((p, key, p)) is not None:
            raise InputError(
                f"{what} with {p} was suspended by {p}, not by this station",
                code="not_yours",
                hint=f"only {p} can resume it: ask them on the line (FLASH still goes)",
            )
        raise NotFoundError(
            f"{what} with {p} is not suspended by this station",
            code="not_suspended",
            hint="see hotline suspensions",
        )
    await _declare(ctx, principal, peers, key, "resumed", reason)
    return peers


async def _declare(
    ctx: LineContext, principal: Principal, peers: list[str], key: str, state: str, reason: str
) -> None:
    action = {
        "action": "suspend",
        "state": state,
        "peers": peers,
        "channel": key,
        "reason": reason,
        "officer": principal.username,
    }
    now = ctx.clock.now_us()

    def unit(tx: WriteTx) -> None:
        append_action(ctx, tx, action)
        for p in peers:
            content = {
                "peer": p,
                "scope": "line" if key == LINE else "channel",
                "channel": key or None,
                "declared_by": ctx.station_id,
                "side": "ours",
                "reason": reason,
                "officer": principal.username,
                "since_us": now,
                "message_id": None,
                "state": state,
                "outcome": "applied",
                "at_us": now,
            }
            tx.after_commit(_publisher(ctx, content))

    await ctx.writer.submit(unit)
    data = SuspensionData(
        scope="line" if key == LINE else "channel",
        channel=key or None,
        state=state,  # type: ignore[arg-type]
        reason=reason,
    )
    label = "the line" if key == LINE else f"channel {key}"
    text = f"{state.upper()}: {label}. {reason}"[:2000]
    for p in peers:
        await sender.send(
            ctx,
            peer=p,
            channel=key or "working",
            precedence=Precedence.FLASH,
            payload=MessagePayload(
                type="suspension",
                text=text,
                data=data.model_dump(exclude_none=True),
                ack_required=False,
            ),
            operator=principal.username,
        )


def _publisher(ctx: LineContext, content: dict[str, Any]) -> Callable[[], None]:
    return lambda: ctx.events.publish("suspension", **content)


def state(ctx: LineContext) -> list[dict[str, Any]]:
    """Every suspension in force, both sides' (in memory)."""
    return [a.json(ctx.station_id) for a in projection_of(ctx).book.all()]


def history(ctx: LineContext, conn: Connection, peer: str | None, limit: int) -> list[Any]:
    return db.suspension_history(conn, peer, limit)
