"""Channel agreement: a channel is a record its member stations agree on.

Owns the use cases (propose, accept, decline, list, a group's per-recipient state), the
peer-side checks of the typed messages ``channel_propose``, ``channel_accept`` and
``channel_decline`` (they travel on the standing channel "working", one envelope per
other member), and the projection extension ``ChannelsProjection`` that turns those
envelopes, sent and received, into proposals and answers and puts an agreed channel in
the channel book (``ctx.channels``), live and on rebuild, in ledger order.

Rules (docs/operations.md, "Channels"): a proposal's id is the hash of its proposer,
version and terms; a channel is agreed at a station when it holds the proposal and an
acceptance from every member other than the proposer; a decline from any such member
declines it. Answers that arrive before their proposal are kept and count when it
arrives. A later proposal for the same name supersedes a pending one; a new version of
an agreed channel (proposed by one of its members) replaces its terms once agreed.
What a peer sends that breaks a rule (not naming us, itself missing, an unknown level
or member, a name taken, a stale version, too many pending proposals) is refused at the
inbox with a code before anything is stored. The projection judges every proposal again
in ledger order (one that raced past the inbox check, our own): a proposal that breaks a
rule there is kept and recorded as ``refused`` with its code, the same live and on
rebuild.

Must not touch: SQL (store/channels.py), the wire format of the terms
(wire/channels.py), the sending path beyond calling ``sender.send``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from hotline.errors import EnvelopeError, InputError, NotFoundError
from hotline.service import actions, sender
from hotline.service.context import LineContext
from hotline.service.roles import Action, Principal, require
from hotline.store import channels as store
from hotline.store import schema
from hotline.store.projections import MessageEvent
from hotline.wire.channels import (
    ACCEPT,
    AGREEMENT_CHANNEL,
    AGREEMENT_TYPES,
    DECLINE,
    PROPOSE,
    ChannelProposal,
    ChannelSpec,
    ChannelVote,
    check_proposal,
    proposal_id,
)
from hotline.wire.envelope import Precedence
from hotline.wire.messages import MessagePayload

log = logging.getLogger(__name__)

#: most proposals one station may have pending here at once (a flood is refused)
MAX_PENDING_PER_PROPOSER = 16

#: what each refusal code means (the peer is told the code; the operator reads this)
REFUSALS = {
    "bad_level": "the level is not one of the setting channel_levels",
    "proposer_not_member": "the proposer is not one of the channel's members",
    "not_a_member": "this station is not one of the channel's members",
    "unknown_member": "a member is not a peer of this station",
    "channel_conflict": "the name is a standing channel, or agreed without the proposer",
    "stale_version": "an agreed version of the channel is as new or newer",
    "too_many_proposals": "the proposer has too many proposals pending here",
    "bad_channel_vote": "the answer names another channel than its proposal",
}


def _refuse(code: str) -> EnvelopeError:
    return EnvelopeError(f"channel proposal refused: {REFUSALS[code]}", code=code)


@dataclass(frozen=True, slots=True)
class _Pending:
    name: str
    proposer: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChannelState:
    """A channel as this station sees it: its terms, and where its agreement stands."""

    name: str
    state: str  #: standing, proposed, agreed, declined, superseded, refused
    spec: ChannelSpec
    version: int = 0
    proposal_id: str = ""
    proposer: str = ""
    accepted_by: tuple[str, ...] = ()
    declined_by: tuple[str, ...] = ()
    reason: str | None = None
    proposed_at_us: int | None = None
    decided_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class Answered:
    """What a propose, accept or decline sent: the proposal and one message per member."""

    proposal_id: str
    name: str
    version: int
    message_ids: dict[str, str]


class ChannelsProjection:
    """The ``ProjectionExtension`` of channel agreement (see the module docstring)."""

    tables: tuple[sa.Table, ...] = (
        schema.channel_proposals,
        schema.channel_votes,
        schema.channel_groups,
    )

    def __init__(self, ctx: LineContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        #: the agreed version of each channel (a proposal must be newer)
        self._versions: dict[str, int] = {}
        self._quiet = False

    # --- the projection (writer thread, in ledger order) ---------------------------------

    def on_message(self, conn: Connection, event: MessageEvent) -> None:
        kind = event.body.type
        if kind not in AGREEMENT_TYPES or event.body.data is None:
            return
        try:
            if kind == PROPOSE:
                self._proposed(conn, event, ChannelProposal.model_validate(event.body.data))
            else:
                vote = ChannelVote.model_validate(event.body.data)
                self._answered(conn, event, vote, "accept" if kind == ACCEPT else "decline")
        except ValidationError:  # checked at the inbox and before sending: never stored
            log.warning("unparseable %s in entry %d left out", kind, event.idx)

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        return None

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        if action.get("action") != "send":
            return
        group = action.get("payload", {}).get("group")
        if isinstance(group, str):
            store.add_group_member(conn, action["message_id"], group, idx)

    def reset(self) -> None:
        self.ctx.channels.clear_agreed()
        with self._lock:
            self._pending.clear()
            self._versions.clear()
        self._quiet = True

    def rebuild_finished(self, conn: Connection) -> None:
        self._quiet = False

    def _proposed(self, conn: Connection, event: MessageEvent, proposal: ChannelProposal) -> None:
        pid = proposal_id(event.sender, proposal)
        if store.proposal(conn, pid) is not None:  # the same proposal to another member
            return
        spec, at = proposal.spec, event.recorded_at_us
        reason = check_proposal(event.sender, self.ctx.station_id, proposal, self._levels())
        if not reason:
            reason = self._conflict(event.sender, proposal)
        if not reason:
            for old in store.with_state(conn, spec.name, "proposed"):
                store.set_state(conn, old.proposal_id, "superseded", at)
                self._forget(old.proposal_id)
                self.ctx.channels.release(spec.name)  # the older terms no longer wait
        store.insert_proposal(
            conn,
            proposal_id=pid,
            name=spec.name,
            version=proposal.version,
            proposer=event.sender,
            spec=spec.model_dump_json(),
            state="refused" if reason else "proposed",
            reason=reason or None,
            proposed_at_us=at,
            decided_at_us=at if reason else None,
            entry_idx=event.idx,
        )
        if reason:
            return
        with self._lock:
            self._pending[pid] = _Pending(spec.name, event.sender, tuple(spec.members))
        self._publish(
            "channel.proposed",
            name=spec.name,
            version=proposal.version,
            proposal_id=pid,
            proposer=event.sender,
            terms=spec.model_dump(mode="json"),
        )
        self._evaluate(conn, pid, at)

    def _answered(
        self, conn: Connection, event: MessageEvent, vote: ChannelVote, what: str
    ) -> None:
        row = dict(
            proposal_id=vote.proposal,
            station=event.sender,
            vote=what,
            reason=vote.reason,
            at_us=event.recorded_at_us,
            entry_idx=event.idx,
        )
        if store.add_vote(conn, **row):
            self._evaluate(conn, vote.proposal, event.recorded_at_us)

    def _evaluate(self, conn: Connection, pid: str, at_us: int) -> None:
        row = store.proposal(conn, pid)
        if row is None or row.state != "proposed":
            return
        spec = ChannelSpec.model_validate_json(row.spec)
        others = [m for m in spec.members if m != row.proposer]
        votes = {v.station: v.vote for v in store.votes(conn, pid)}
        if any(votes.get(m) == "decline" for m in others):
            store.set_state(conn, pid, "declined", at_us)
            self._forget(pid)
            if self._held_by_me(row.proposer, votes):
                self.ctx.channels.release(spec.name)
            self._publish(
                "channel.declined",
                name=spec.name,
                proposal_id=pid,
                declined_by=[m for m in others if votes.get(m) == "decline"],
            )
        elif all(votes.get(m) == "accept" for m in others):
            for old in store.with_state(conn, spec.name, "agreed"):
                store.set_state(conn, old.proposal_id, "superseded", at_us)
            store.set_state(conn, pid, "agreed", at_us)
            self._forget(pid)
            self.ctx.channels.agree(spec)
            self.ctx.channels.release(spec.name)
            with self._lock:
                self._versions[spec.name] = int(row.version)
            self._publish(
                "channel.agreed",
                name=spec.name,
                version=int(row.version),
                proposal_id=pid,
                terms=spec.model_dump(mode="json"),
            )
        elif self._held_by_me(row.proposer, votes):
            self.ctx.channels.hold(spec)

    def _held_by_me(self, proposer: str, votes: dict[str, str]) -> bool:
        me = self.ctx.station_id
        return proposer == me or votes.get(me) == "accept"

    def _forget(self, pid: str) -> None:
        with self._lock:
            self._pending.pop(pid, None)

    def _levels(self) -> list[str]:
        return list(self.ctx.settings.channel_levels)

    def _conflict(self, proposer: str, proposal: ChannelProposal) -> str:
        """``channel_conflict`` or ``stale_version`` against the agreed channels, or ""."""
        name = proposal.spec.name
        if self.ctx.channels.standing(name):
            return "channel_conflict"
        current = self.ctx.channels.get(name)
        if current is not None and proposer not in current.members:
            return "channel_conflict"
        with self._lock:
            agreed_version = self._versions.get(name, 0)
        if proposal.version <= agreed_version:
            return "stale_version"
        return ""

    def _publish(self, event: str, **data: Any) -> None:
        """Publish once the writer's unit is durable (a rolled-back unit says nothing)."""
        if not self._quiet:
            self.ctx.publish_after_commit(event, **data)

    # --- after a rollback, and at start ----------------------------------------------------

    def reload(self, conn: Connection) -> None:
        """Make the book and the pending proposals equal what the database holds."""
        self.ctx.channels.clear_agreed()
        pending: dict[str, _Pending] = {}
        versions: dict[str, int] = {}
        votes: dict[str, dict[str, str]] = {}
        for v in store.votes(conn):
            votes.setdefault(v.proposal_id, {})[v.station] = v.vote
        for row in store.proposals(conn):
            spec = ChannelSpec.model_validate_json(row.spec)
            if row.state == "agreed":
                self.ctx.channels.agree(spec)
                versions[spec.name] = int(row.version)
            elif row.state == "proposed":
                pending[row.proposal_id] = _Pending(spec.name, row.proposer, tuple(spec.members))
                if self._held_by_me(row.proposer, votes.get(row.proposal_id, {})):
                    self.ctx.channels.hold(spec)
        with self._lock:
            self._pending, self._versions = pending, versions

    def after_rollback(self, conn: Connection | None) -> None:
        if conn is not None:
            self.reload(conn)
            return
        with self.ctx.reader.connect() as fresh:
            self.reload(fresh)

    # --- a peer's typed messages, at the inbox (on the loop: memory only) --------------------

    def validate(self, kind: str) -> Any:
        model = ChannelProposal if kind == PROPOSE else ChannelVote

        def check(data: dict[str, Any]) -> None:
            try:
                model.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "data"
                raise InputError(
                    f"{kind} data invalid at {where}: {first['msg']}", code="bad_message_data"
                ) from None

        return check

    def check_from_peer(self, kind: str) -> Any:
        def check(peer: str, channel: str, data: dict[str, Any]) -> None:
            if not self.ctx.channels.standing(channel):
                raise EnvelopeError(f"{kind} travels on a standing channel", code="bad_channel")
            if kind == PROPOSE:
                self._check_proposal(peer, ChannelProposal.model_validate(data))
            else:
                self._check_vote(peer, ChannelVote.model_validate(data))

        return check

    def _check_proposal(self, peer: str, proposal: ChannelProposal) -> None:
        me = self.ctx.station_id
        code = check_proposal(peer, me, proposal, self._levels())
        if not code and any(
            m not in (me, peer) and m not in self.ctx.peers for m in proposal.spec.members
        ):
            code = "unknown_member"
        if not code:
            code = self._conflict(peer, proposal)
        if not code:
            with self._lock:
                mine = [p for p in self._pending.values() if p.proposer == peer]
            if len(mine) >= MAX_PENDING_PER_PROPOSER and all(
                p.name != proposal.spec.name for p in mine
            ):
                code = "too_many_proposals"
        if code:
            raise _refuse(code)

    def _check_vote(self, peer: str, vote: ChannelVote) -> None:
        with self._lock:
            known = self._pending.get(vote.proposal)
        if known is None:  # not here yet (another link), or decided: kept on the record
            return
        if peer not in known.members or peer == known.proposer:
            raise _refuse("not_a_member")
        if vote.name != known.name:
            raise _refuse("bad_channel_vote")


def install(ctx: LineContext) -> ChannelsProjection:
    """The extension factory (service/extensions.py CORE): validators, the inbox's
    sender checks, the reload after a rollback, and the book as the store holds it."""
    ext = ChannelsProjection(ctx)
    for kind in AGREEMENT_TYPES:
        ctx.validators[kind] = ext.validate(kind)
        ctx.sender_checks[kind] = ext.check_from_peer(kind)
    ctx.writer.on_rollback.append(ext.after_rollback)
    try:
        with ctx.reader.connect() as conn:
            ext.reload(conn)
    except sa.exc.SQLAlchemyError:  # pragma: no cover - a store without the tables yet
        log.warning("channel tables not readable at start: the book starts empty")
    return ext


# --- use cases ---------------------------------------------------------------------------


def _read(ctx: LineContext, fn: Any, *args: Any) -> Any:
    def run() -> Any:
        with ctx.reader.connect() as conn:
            return fn(conn, *args)

    return asyncio.to_thread(run)


async def propose(ctx: LineContext, principal: Principal, spec: ChannelSpec) -> Answered:
    """Propose ``spec`` (a new channel, or new terms for one whose member we are) to every
    other member; it is agreed once each accepts."""
    require(principal, Action.CHANNELS, what="propose channels")
    me = ctx.station_id
    version = int(await _read(ctx, store.highest_version, spec.name)) + 1
    proposal = ChannelProposal(version=version, spec=spec)
    code = check_proposal(me, me, proposal, list(ctx.settings.channel_levels))
    if not code and any(m != me and m not in ctx.peers for m in spec.members):
        code = "unknown_member"
    if not code and ctx.channels.standing(spec.name):
        code = "channel_conflict"
    current = ctx.channels.get(spec.name)
    if not code and current is not None and me not in current.members:
        code = "channel_conflict"
    if code:
        raise InputError(
            f"cannot propose channel {spec.name!r}: {REFUSALS[code]}",
            code=code,
            hint="levels are " + ", ".join(ctx.settings.channel_levels) + "; members are this "
            "station and its peers (hotline peers); pick another name if it is taken",
        )
    pid = proposal_id(me, proposal)
    data = proposal.model_dump(mode="json")
    ids = await _to_members(ctx, principal, spec, PROPOSE, data)
    return Answered(pid, spec.name, version, ids)


async def answer(
    ctx: LineContext, principal: Principal, name: str, *, accept: bool, reason: str | None = None
) -> Answered:
    """Accept (or decline) the pending proposal for channel ``name``."""
    require(principal, Action.CHANNELS, what="accept or decline channels")
    rows = await _read(ctx, store.with_state, name, "proposed")
    if not rows:
        raise NotFoundError(
            f"no pending proposal for channel {name!r}",
            hint="hotline channel list shows the proposals and their state",
        )
    row = rows[-1]
    spec = ChannelSpec.model_validate_json(row.spec)
    me = ctx.station_id
    if me == row.proposer or me not in spec.members:
        raise InputError(
            f"this station proposed channel {name!r} or is not a member: nothing to answer",
            code="not_a_member",
            hint="the other members accept or decline it",
        )
    votes = await _read(ctx, store.votes, row.proposal_id)
    if any(v.station == me for v in votes):
        raise InputError(
            f"this station already answered the proposal for {name!r}", code="already_answered"
        )
    vote = ChannelVote(proposal=row.proposal_id, name=name, reason=reason)
    data = vote.model_dump(mode="json", exclude_none=True)
    ids = await _to_members(ctx, principal, spec, ACCEPT if accept else DECLINE, data)
    return Answered(row.proposal_id, name, int(row.version), ids)


async def _to_members(
    ctx: LineContext, principal: Principal, spec: ChannelSpec, kind: str, data: dict[str, Any]
) -> dict[str, str]:
    """One typed message to every other member, on the standing channel "working"."""
    payload = MessagePayload(type=kind, data=data, ack_required=False)  # type: ignore[arg-type]
    out = {}
    for peer in spec.recipients(ctx.station_id):
        sent = await sender.send(
            ctx,
            peer=peer,
            channel=AGREEMENT_CHANNEL,
            precedence=Precedence.PRIORITY,
            payload=payload,
            operator=principal.username,
        )
        out[peer] = str(sent.message_id)
    return out


def states(conn: Connection, book_standing: list[ChannelSpec]) -> list[ChannelState]:
    """Every channel: the standing ones, then each proposal (newest version last)."""
    out = [ChannelState(s.name, "standing", s) for s in book_standing]
    votes: dict[str, list[Any]] = {}
    for v in store.votes(conn):
        votes.setdefault(v.proposal_id, []).append(v)
    for row in store.proposals(conn):
        vs = votes.get(row.proposal_id, [])
        out.append(
            ChannelState(
                name=row.name,
                state=row.state,
                spec=ChannelSpec.model_validate_json(row.spec),
                version=int(row.version),
                proposal_id=row.proposal_id,
                proposer=row.proposer,
                accepted_by=tuple(v.station for v in vs if v.vote == "accept"),
                declined_by=tuple(v.station for v in vs if v.vote == "decline"),
                reason=row.reason,
                proposed_at_us=row.proposed_at_us,
                decided_at_us=row.decided_at_us,
            )
        )
    return out


async def list_channels(ctx: LineContext, principal: Principal) -> list[ChannelState]:
    require(principal, Action.READ)
    standing = [s for s in ctx.channels.all() if s.standing]
    result: list[ChannelState] = await _read(ctx, states, standing)
    return result


def group_state(conn: Connection, group_id: str) -> list[dict[str, Any]]:
    """Each recipient's envelope of a group: delivered? acknowledged, by whom?"""
    return [dict(r._mapping) for r in store.group(conn, group_id)]


def readable(ctx: LineContext, principal: Principal) -> set[str]:
    """The channels whose terms let one of the principal's roles read them here."""
    me = ctx.station_id
    roles = {r.value for r in principal.roles}
    return {s.name for s in ctx.channels.all() if roles & set(s.roles_at(me).read)}


def visible(
    ctx: LineContext, principal: Principal, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows (messages, search hits: each with its ``channel``) on channels whose terms
    let one of the principal's roles read them here; a channel no longer in the book (its
    messages stay on the record) hides nothing."""
    ok = readable(ctx, principal)
    book = ctx.channels
    return [r for r in rows if r["channel"] in ok or book.get(r["channel"]) is None]


def required(
    conn: Connection, ctx: LineContext, principal: Principal, now_us: int
) -> list[actions.ActionItem]:
    """``actions.required`` for this station, without the items on channels the
    principal's roles may not read here (a summary is the message's text): what the
    action queue of the API and of the console show."""
    ok = readable(ctx, principal)
    book = ctx.channels
    return [
        i
        for i in actions.required(conn, principal, now_us, ctx.station_id)
        if not i.channel or i.channel in ok or book.get(i.channel) is None
    ]


# --- the action queue: proposals waiting for this station's answer ------------------------


def awaiting(conn: Connection, station_id: str) -> list[tuple[Any, ChannelSpec]]:
    """Proposals naming this station as a member that it has not answered: each stored
    row with its terms."""
    out = []
    for row in store.awaiting_answer(conn, station_id):
        try:
            spec = ChannelSpec.model_validate_json(row.spec)
        except ValidationError:  # checked before it was stored; never expected
            continue
        if station_id in spec.members:
            out.append((row, spec))
    return out


def awaiting_items(
    conn: Connection, principal: Principal, now_us: int, station_id: str
) -> list[actions.ActionItem]:
    """The ``STATION_SOURCES`` entry: proposals naming this station as a member that it
    has not answered, for officers who may accept or decline channels."""
    if not principal.may(Action.CHANNELS):
        return []
    out = []
    for row, spec in awaiting(conn, station_id):
        out.append(
            actions.ActionItem(
                kind="channel",
                ref=row.name,
                precedence=int(Precedence.PRIORITY),
                due_at_us=None,
                summary=f"{row.proposer} proposes channel {row.name!r} ({spec.level}, "
                f"members {', '.join(spec.members)}, version {row.version}): accept or "
                "decline",
                channel=row.name,
                peer=row.proposer,
            )
        )
    return out


if awaiting_items not in actions.STATION_SOURCES:
    actions.STATION_SOURCES.append(awaiting_items)
