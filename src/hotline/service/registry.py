"""The deconfliction registry on the line: sites, activities, conflicts and concerns.

Owns the projection of typed messages (site notices, activity notices, concern steps)
into the pure ``Registry`` and ``ConcernBook``, kept in memory and fed in ledger order
(live by the projector inside the writer's transaction, and again from the ``messages``
projection at start); the conflict alarms and the draft concern of each open conflict;
and the checks a notice must pass before anything is sent. A notice this station is
sending (``sending``) is decided once more inside the writer's unit that projects it:
refused there, the send fails and nothing is stored.

Rollbacks are cheap: every change made inside a writer transaction is journalled
(``service/undo.py``) and undone when its savepoint or transaction rolls back; the
whole projection is rebuilt from the database only when the journal cannot say what the
database holds (``needs_reload``: a failed commit, a change that failed half-way).

Notification is information, never permission. Must not touch: geometry or conflict
rules (``hotline.deconfliction``), transport, the ledger's encoding.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hotline.deconfliction import concerns as concern_rules
from hotline.deconfliction import exchange
from hotline.deconfliction import snapshot as saved
from hotline.deconfliction.concerns import ConcernBook, ConcernThread
from hotline.deconfliction.engine import Conflict
from hotline.deconfliction.journal import Journal
from hotline.deconfliction.limits import Limits
from hotline.deconfliction.models import (
    PAYLOAD_TYPES,
    Activity,
    ActivityNotice,
    Concern,
    Site,
    SiteNotice,
    parse_payload,
)
from hotline.deconfliction.registry import ConflictChange, Record, Registry
from hotline.errors import (
    HotlineError,
    ImportFileError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from hotline.service.events import alarm_content
from hotline.service.undo import TransactionUndo
from hotline.settings import Settings
from hotline.store import operational, reads
from hotline.store import registry_snapshot as snapshot_store
from hotline.store.projections import MessageEvent

log = logging.getLogger(__name__)
INFORMATION_NOT_PERMISSION = concern_rules.INFORMATION_NOT_PERMISSION
Notice = SiteNotice | ActivityNotice | Concern
#: the typed messages the registry projects; every other type belongs to another feature
NOTICE_TYPES = ("site_notice", "activity_notice", "concern")


#: the meaning of a registry snapshot's items; a snapshot of another format is not used
#: (raise it whenever the items, or what the projection derives from the ledger, change)
#: 3: a part's blob compressed apart from its header, decompressed on first read
SNAPSHOT_FORMAT = 3
#: items (records, for a chunk of records) per compressed part of a snapshot
SNAPSHOT_PART_ITEMS = 20_000
#: a part's body: this many bytes giving the length of the zlib of its JSON header (a
#: list of items), that zlib, then the zlib of the blob its ``RS`` or ``IX`` item
#: describes (empty: no blob); a records blob is decompressed when a record of it is
#: first read, not at the start
_HEADER_LEN = 8
#: errors a snapshot that does not decode raises (it is then ignored: full replay)
_SNAPSHOT_ERRORS = (ValueError, KeyError, TypeError, IndexError, zlib.error, HotlineError)


def _notice_key(data: dict[str, Any]) -> str:
    """What names one notice or concern step among those being sent."""
    ident = data.get("notice_id", data.get("concern_id"))
    return f"{data.get('type')}|{ident}|{data.get('step', '')}"


def utc(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC)


def draft_id(c: Conflict, notice_id: str) -> str:
    """The draft concern's id: the same on every replay of the same ledger."""
    digest = hashlib.sha256(f"{c.site_id}|{c.activity_id}|{notice_id}".encode()).hexdigest()
    return f"c-{digest[:12]}"


def conflict_ref(c: Conflict) -> str:
    return f"{c.site_id}|{c.activity_id}"[:64]


@dataclass(slots=True)
class _Outgoing:
    """A notice this station is sending: its data as sent, the parsed notice, and whether
    the writer already applied it (to the first peer)."""

    data: dict[str, Any]
    notice: Notice
    applied: bool = False


@dataclass
class OpenConflict:
    conflict: Conflict
    opened_at: dt.datetime
    draft: Concern
    notice_id: str


@dataclass
class RegistryProjection:
    """A ``ProjectionExtension``: the registry, concerns and conflict alarms."""

    station_id: str
    settings: Settings
    tables: tuple[sa.Table, ...] = ()
    registry: Registry = field(init=False)
    concerns: ConcernBook = field(init=False)
    open_conflicts: dict[tuple[str, str], OpenConflict] = field(init=False)
    refused: list[dict[str, Any]] = field(init=False)
    _notice_of_message: dict[str, str] = field(init=False)
    _applied: dict[str, str] = field(init=False)  # notice id -> station that notified it
    #: during a rebuild the alarms already on record are left alone (see rebuild_finished)
    _quiet: bool = field(init=False, default=False)
    #: told the content of each alarm this projection opens (live only, never on a
    #: rebuild), on the writer thread inside the unit: the station publishes it after commit
    on_alarm: Callable[[dict[str, Any]], None] | None = field(init=False, default=None)
    #: held by the writer thread while it applies, and by readers while they read
    lock: threading.RLock = field(init=False, default_factory=threading.RLock)
    #: notices this station is sending (see ``sending``), by ``_notice_key``
    _outgoing: dict[str, _Outgoing] = field(init=False, default_factory=dict)
    #: the ledger head read by the last reload, until anything is applied live
    _reloaded_at: int | None = field(init=False, default=None)
    #: undo functions of the changes not yet committed (see ``track``)
    journal: Journal = field(init=False, default_factory=Journal)
    undo: TransactionUndo = field(init=False)

    def __post_init__(self) -> None:
        self.undo = TransactionUndo(self.journal, self.lock)
        self.reset()

    def track(self, engine: Engine) -> None:
        """Journal the changes made in ``engine``'s (the writer's) transactions, so that a
        rolled-back unit or batch is undone without a reload."""
        self.undo.watch(engine)

    def needs_reload(self) -> bool:
        """After a rollback: whether only a reload from the database restores the state."""
        return self.undo.needs_reload()

    @property
    def limits(self) -> Limits:
        """The size limits of a notice, from the settings."""
        s = self.settings
        return Limits(s.geometry_max_vertices, s.geometry_max_rings, s.notice_max_bytes)

    def on_action(self, conn: Connection, idx: int, action: dict[str, Any], at_us: int) -> None:
        """The registry owns no operator action (its acks come through ``on_ack``)."""

    def reset(self) -> None:
        """Forget everything before a rebuild replays the ledger (alarms left alone)."""
        with self.lock:
            self._reset()
            self._quiet = True

    def rebuild_finished(self, conn: Connection) -> None:
        """After a rebuild: clear conflict alarms whose conflict is gone, raise missing ones."""
        with self.lock:
            self._quiet = False
            refs = {conflict_ref(oc.conflict): oc for oc in self.open_conflicts.values()}
            now = int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
            for alarm in operational.open_alarms(conn):
                if alarm["kind"] == "conflict" and alarm["ref"] not in refs:
                    operational.clear_alarm(
                        conn, kind="conflict", peer=None, ref=alarm["ref"], now_us=now
                    )
            for oc in self.open_conflicts.values():
                if self._closed(oc.draft.concern_id):  # its concern was closed
                    operational.clear_alarm(conn, kind="conflict", peer=None,
                                            ref=conflict_ref(oc.conflict), now_us=now)  # fmt: skip
                    continue
                change = ConflictChange("opened", oc.conflict, oc.notice_id, "rebuild")
                self._conflict_changed(conn, change, oc.opened_at, now)

    def _reset(self) -> None:
        if self.journal.active:  # a rebuild inside a transaction: undone as a whole
            held = (self.registry, self.concerns, self.open_conflicts, self.refused,
                    self._notice_of_message, self._applied, self._quiet)  # fmt: skip
            self.journal.record(lambda: self._restore(*held))
        self.registry = Registry(
            max_delta=self.settings.deconfliction_max_delta, journal=self.journal
        )
        self.concerns = ConcernBook(journal=self.journal)
        self.open_conflicts = {}
        self.refused = []
        self._notice_of_message = {}
        self._applied = {}

    def _restore(
        self,
        registry: Registry,
        concerns: ConcernBook,
        open_conflicts: dict[tuple[str, str], OpenConflict],
        refused: list[dict[str, Any]],
        notice_of_message: dict[str, str],
        applied: dict[str, str],
        quiet: bool,
    ) -> None:
        self.registry, self.concerns, self.open_conflicts = registry, concerns, open_conflicts
        self.refused, self._notice_of_message = refused, notice_of_message
        self._applied, self._quiet = applied, quiet

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        """``table[key] = value``, journalled."""
        missing, prev = key not in table, table.get(key)
        table[key] = value
        self.journal.record(
            lambda: table.pop(key, None) if missing else table.__setitem__(key, prev)
        )

    def _drop(self, table: dict[Any, Any], key: Any) -> None:
        """``table.pop(key)``, journalled."""
        if key in table:
            prev = table.pop(key)
            self.journal.record(lambda: table.__setitem__(key, prev))

    # --- the projection -----------------------------------------------------------------

    def on_message(self, conn: Connection | None, event: MessageEvent) -> None:
        if event.body.type not in NOTICE_TYPES:
            return  # another feature's typed message (suspension, dissemination, ...)
        with self.lock:
            try:
                self._on_message(conn, event)
            except HotlineError:
                raise  # decided before anything changed
            except BaseException:
                self.undo.mark_stale()
                raise

    def _on_message(self, conn: Connection | None, event: MessageEvent) -> None:
        if conn is not None:
            self._reloaded_at = None  # applied live: no longer the state of a reload
        if event.body.type not in PAYLOAD_TYPES:
            return  # another extension's typed message (a read, ...): not the registry's
        data = event.body.data
        at = utc(event.recorded_at_us)
        sent = self._sending(event) if conn is not None and not self._quiet else None
        if sent is not None:
            payload: Notice = sent  # parsed and checked off the loop by the use case
        else:
            try:
                payload = parse_payload(data, limits=self.limits)
            except HotlineError as exc:  # checked before sending and on receipt: never expected
                self._refuse(conn, event, exc)
                return
        if isinstance(payload, Concern):
            try:
                thread = self.concerns.apply(payload, event.sender, at)
            except HotlineError as exc:
                if sent is not None:
                    raise  # decided in the writer's unit: the send is refused, nothing stored
                self._refuse(conn, event, exc)
                return
            self._sent_once(event)
            if thread.state == "closed":
                self._concern_closed(conn, payload.concern_id, event.recorded_at_us)
            return
        if event.direction == "out" and self._applied.get(payload.notice_id) == event.sender:
            # our own notice, sent to several peers: applied once, acknowledged by each
            self._put(self._notice_of_message, event.message_id, payload.notice_id)
            return
        try:
            changes = self.registry.apply(payload, event.sender, at)
        except HotlineError as exc:
            if sent is not None:
                raise  # decided in the writer's unit: the send is refused, nothing stored
            self._refuse(conn, event, exc)
            return
        self._put(self._applied, payload.notice_id, event.sender)
        self._put(self._notice_of_message, event.message_id, payload.notice_id)
        self._sent_once(event)
        for change in changes:
            self._conflict_changed(conn, change, at, event.recorded_at_us)

    # --- notices this station is sending ----------------------------------------------

    @contextlib.contextmanager
    def sending(self, notice: Notice) -> Iterator[None]:
        """While the use case sends ``notice`` (already parsed and prechecked off the
        loop): the line's check of its data is not run again, and the writer's unit
        that projects it applies it strictly: a notice the registry refuses at that
        moment (a concurrent send, a peer's notice that came first) raises inside the
        unit, so the send fails and nothing is stored."""
        data = notice.to_payload()
        key = _notice_key(data)
        # no lock (entered on the event loop): setdefault and pop are atomic dict operations
        held = _Outgoing(data, notice)
        if self._outgoing.setdefault(key, held) is not held:
            raise InputError(f"{key} is already being sent", code="busy")
        try:
            yield
        finally:
            self._outgoing.pop(key, None)

    def _vouched(self, data: dict[str, Any]) -> _Outgoing | None:
        """The notice being sent whose data equals ``data``, if any."""
        held = self._outgoing.get(_notice_key(data))
        return held if held is not None and held.data == data else None

    def _sending(self, event: MessageEvent) -> Notice | None:
        """The notice being sent that ``event`` carries, until it was applied once (to
        the next peers it is applied, or refused, as on a rebuild)."""
        data = event.body.data
        if event.direction != "out" or event.sender != self.station_id or data is None:
            return None
        held = self._vouched(data)
        return held.notice if held is not None and not held.applied else None

    def _sent_once(self, event: MessageEvent) -> None:
        held = self._vouched(event.body.data) if event.body.data is not None else None
        if held is not None and not held.applied and event.direction == "out":
            held.applied = True
            self.journal.record(lambda: setattr(held, "applied", False))

    def on_ack(
        self, conn: Connection, message_id: str, by_station: str, officer: str, at_us: int
    ) -> None:
        with self.lock:
            self._acknowledge(message_id, by_station, at_us)

    def _acknowledge(self, message_id: str, by_station: str, at_us: int) -> None:
        """Only messages whose notice was applied have a registry acknowledgement."""
        notice_id = self._notice_of_message.get(message_id)
        if notice_id is not None:
            self.registry.acknowledge(notice_id, by_station, utc(at_us))

    def _closed(self, concern_id: str) -> bool:
        try:
            return self.concerns.get(concern_id).state == "closed"
        except NotFoundError:
            return False

    def _concern_closed(self, conn: Connection | None, concern_id: str, now_us: int) -> None:
        """A conflict's alarm follows its concern: closing the conflict's draft concern
        clears the alarm (a conflict opened again raises it again, with a new draft)."""
        if conn is None or self._quiet:
            return
        for oc in self.open_conflicts.values():
            if oc.draft.concern_id == concern_id:
                ref = conflict_ref(oc.conflict)
                operational.clear_alarm(conn, kind="conflict", peer=None, ref=ref, now_us=now_us)

    def _refuse(self, conn: Connection | None, event: MessageEvent, exc: HotlineError) -> None:
        log.warning("notice %s from %s not applied: %s", event.message_id, event.sender, exc)
        self.refused.append(
            {
                "message_id": event.message_id,
                "from": event.sender,
                "code": exc.code,
                "reason": exc.message,
            }
        )
        self.journal.record(self.refused.pop)
        if conn is not None and not self._quiet and event.sender != self.station_id:
            self._raise_alarm(
                conn,
                kind="notice_refused",
                severity="MEDIUM",
                peer=event.sender,
                ref=event.message_id[:64],
                now_us=event.recorded_at_us,
                detail=f"{event.sender}'s message {event.message_id} was not applied to the "
                f"registry: {exc.message}",
            )

    def _raise_alarm(self, conn: Connection, **alarm: Any) -> None:
        if operational.raise_alarm(conn, **alarm) and self.on_alarm is not None:
            self.on_alarm(alarm_content(**alarm))

    def _conflict_changed(
        self, conn: Connection | None, change: ConflictChange, at: dt.datetime, now_us: int
    ) -> None:
        c = change.conflict
        if change.change == "ended":
            self._drop(self.open_conflicts, c.key)
            if conn is not None and not self._quiet:
                operational.clear_alarm(
                    conn, kind="conflict", peer=None, ref=conflict_ref(c), now_us=now_us
                )
            return
        site = self.registry.site(c.site_id).current
        act = self.registry.activity(c.activity_id).current
        name, category, kind = c.site_id, "other", "other"
        if isinstance(site, Site):
            name = site.names.get("en") or next(iter(site.names.values()))
            category = site.category
        if isinstance(act, Activity):
            kind = act.kind
        held = self.open_conflicts.get(c.key)
        draft = (
            held.draft
            if held is not None
            else concern_rules.draft_concern(
                c,
                concern_id=draft_id(c, change.notice_id),
                site_name=name,
                site_category=category,
                activity_kind=kind,
            )
        )
        self._put(
            self.open_conflicts,
            c.key,
            OpenConflict(c, held.opened_at if held else at, draft, change.notice_id),
        )
        if conn is not None and not self._quiet and change.change == "opened":
            self._raise_alarm(
                conn,
                kind="conflict",
                severity="CRITICAL" if category == "nuclear_power_plant" else "HIGH",
                peer=None,
                ref=conflict_ref(c),
                now_us=now_us,
                detail=f"activity {c.activity_id} ({kind}, {c.activity_station}) comes within "
                f"{c.distance_m:,.0f} m of protected site {name} ({c.site_id}, "
                f"{c.site_station}; protected distance {c.reach_m:,.0f} m). "
                f"Draft concern {draft.concern_id} is ready to send.",
            )

    def reload(self, conn: Connection, *, use_snapshot: bool = True) -> int:
        """Rebuild from the ``messages`` projection (ledger order): at start, and after a
        rollback the journal could not undo (``needs_reload``). With ``use_snapshot``,
        from the stored snapshot when it matches (see :meth:`save_snapshot`) and the
        messages after it; otherwise from every message. Returns how many typed
        messages were replayed."""
        with self.lock:
            self.journal.active = False
            try:
                return self._reload(conn, use_snapshot=use_snapshot)
            finally:
                self.undo.reloaded()

    def _reload(self, conn: Connection, *, use_snapshot: bool) -> int:
        self._reset()
        self._quiet = False
        # read before the messages: a snapshot is stored only while the ledger stays here
        self._reloaded_at = snapshot_store.ledger_head(conn)
        after = self._load_snapshot(conn) if use_snapshot else -1
        rows = (
            reads.typed_messages(conn)
            if after < 0
            else snapshot_store.typed_messages_after(conn, after)
        )
        for r in rows:
            from hotline.wire.messages import MessagePayload

            body = MessagePayload.model_validate_json(r.body)
            sender = self.station_id if r.direction == "out" else r.peer
            event = MessageEvent(
                idx=int(r.entry_idx),
                direction=r.direction,
                peer=r.peer,
                sender=sender,
                message_id=r.message_id,
                channel=r.channel,
                precedence=int(r.precedence),
                sent_at_us=int(r.sent_at_us),
                recorded_at_us=int(r.stored_at_us),
                body=body,
            )
            self.on_message(None, event)
        notice_of = self._notice_of_message.get
        acks = snapshot_store.acknowledged(conn, self.station_id, NOTICE_TYPES)
        self.registry.acknowledge_all(
            (notice_id, by, utc(int(at_us)))
            for message_id, by, at_us in acks
            if (notice_id := notice_of(message_id)) is not None
        )
        return len(rows)

    # --- the snapshot -------------------------------------------------------------------

    def snapshot_fingerprint(self) -> str:
        """What, besides the ledger, decides the projection: a snapshot made under other
        values (another station, other notice limits, another format) is not used."""
        lim = self.limits
        facts = [SNAPSHOT_FORMAT, self.station_id, lim.max_vertices, lim.max_rings, lim.max_bytes]
        return hashlib.sha256(json.dumps(facts).encode()).hexdigest()

    def save_snapshot(self, conn: Connection, now_us: int) -> int | None:
        """Store the projection as of the newest ledger entry, in place of the previous
        snapshot; returns that entry's index. Only right after a reload, while the ledger
        has not moved since (in a writer unit, so nothing is appended meanwhile): the
        state is then the replay of exactly the entries up to that index. None: nothing
        stored (empty ledger, or entries came or were applied since the reload)."""
        with self.lock:
            idx = snapshot_store.ledger_head(conn)
            if idx < 0 or idx != self._reloaded_at:
                return None  # entries came after the reload: its state is not the head's
            leaf = snapshot_store.leaf_hash(conn, idx)
            if leaf is None:
                return None
            with _collector_paused():
                bodies = [_part_body(items, blob) for items, blob in self._parts()]
        head = snapshot_store.SnapshotHead(
            SNAPSHOT_FORMAT, self.snapshot_fingerprint(), idx, leaf, len(bodies),
            _digest(bodies), now_us,
        )  # fmt: skip
        snapshot_store.write(conn, head, bodies)
        return idx

    def _items(self) -> Iterator[list[Any]]:
        """The items besides the registry's own chunks."""
        for t in self.concerns.all():
            steps = [[s.model_dump_json(exclude_unset=True), by, at.isoformat()]
                     for s, by, at in t.steps]  # fmt: skip
            yield ["T", t.concern_id, t.raised_by, t.state, steps]
        for oc in self.open_conflicts.values():
            draft = oc.draft.model_dump_json(exclude_unset=True)
            conflict = saved.encode_conflict(oc.conflict)
            yield ["O", conflict, oc.opened_at.isoformat(), draft, oc.notice_id]
        for refused in self.refused:
            yield ["R", refused]
        for tag, table in (("M", self._notice_of_message), ("P", self._applied)):
            keys = list(table)
            for at in range(0, len(keys), SNAPSHOT_PART_ITEMS):
                chunk = keys[at : at + SNAPSHOT_PART_ITEMS]
                yield [tag + "C", chunk, [table[k] for k in chunk]]

    def _parts(self) -> Iterator[saved.Chunk]:
        yield from saved.encode_chunks(self.registry, SNAPSHOT_PART_ITEMS)
        part: list[list[Any]] = []
        for item in self._items():
            part.append(item)
            if len(part) >= SNAPSHOT_PART_ITEMS:
                yield part, b""
                part = []
        if part:
            yield part, b""

    def _load_snapshot(self, conn: Connection) -> int:
        """Install the stored snapshot; returns the ledger index it is valid to, or -1
        (none, or one that does not match: the caller replays every message)."""
        head = snapshot_store.head(conn)
        if head is None:
            return -1
        why = ""
        if head.format != SNAPSHOT_FORMAT or head.fingerprint != self.snapshot_fingerprint():
            why = "made by another version or under other settings"
        elif snapshot_store.leaf_hash(conn, head.valid_to_idx) != head.leaf_hash:
            why = f"entry {head.valid_to_idx} of the ledger is not the one it was made at"
        else:
            bodies = [b for _, b in snapshot_store.parts(conn)]
            if len(bodies) != head.parts or _digest(bodies) != head.digest:
                why = "its parts do not match its digest"
            else:
                try:
                    with _collector_paused():
                        self._install(bodies)
                        _promote_all()
                    return head.valid_to_idx
                except _SNAPSHOT_ERRORS as exc:
                    why = f"it does not decode ({type(exc).__name__}: {exc})"
                    self._reset()
                    self._quiet = False
        log.warning("registry snapshot not used (%s): replaying every message", why)
        return -1

    def _install(self, bodies: list[bytes]) -> None:
        loader = saved.RegistryLoader(
            max_delta=self.settings.deconfliction_max_delta, journal=self.journal
        )
        threads: list[ConcernThread] = []
        for i in range(len(bodies)):
            items, packed = _part_items(bodies[i])
            bodies[i] = b""  # free each part once decoded
            for item in items:
                tag = item[0]
                if tag == saved.RECORDS:  # its records' bytes decompressed on first read
                    loader.add_chunk(item, _unpacker(packed))
                elif tag == saved.INDEX:
                    loader.add_chunk(item, _unpacker(packed)())
                elif tag == "C":
                    loader.add(item)
                elif tag == "T":
                    _, cid, raised_by, state, steps = item
                    thread = ConcernThread(str(cid), str(raised_by), state)
                    for step, by, at in steps:
                        parsed = Concern.model_validate_json(step)
                        thread.steps.append((parsed, str(by), dt.datetime.fromisoformat(at)))
                    threads.append(thread)
                elif tag == "O":
                    _, conflict, opened, draft, notice_id = item
                    c = saved.decode_conflict(conflict)
                    self.open_conflicts[c.key] = OpenConflict(
                        c, dt.datetime.fromisoformat(opened),
                        Concern.model_validate_json(draft), str(notice_id),
                    )  # fmt: skip
                elif tag == "R":
                    if not isinstance(item[1], dict):
                        raise ValueError("a refusal is an object")
                    self.refused.append(item[1])
                elif tag in ("MC", "PC"):
                    _, keys, values = item
                    if len(keys) != len(values):
                        raise ValueError("a column item's columns differ in length")
                    saved.check_strings(keys, values)
                    table = self._notice_of_message if tag == "MC" else self._applied
                    table.update(zip(keys, values, strict=True))
                else:
                    raise ValueError(f"unknown snapshot item {tag!r}")
        self.concerns.restore(threads)
        self.registry = loader.finish()

    # --- checks before sending ----------------------------------------------------------

    def validate(self, kind: str) -> Any:
        """The validator of ``kind`` for ``Line``: checks the payload's schema."""

        def check(data: dict[str, Any]) -> None:
            # no lock: called on the event loop, and one dict read is atomic
            if data.get("type") == kind and self._vouched(data) is not None:
                return  # this station's own notice, checked off the loop before sending
            parse_payload({**data, "type": kind}, limits=self.limits)

        return check

    def parse(self, data: object) -> Notice:
        """An untrusted payload (API, CLI file) as a checked notice, within the limits."""
        return parse_payload(data, limits=self.limits)

    def precheck(self, notice: SiteNotice | ActivityNotice | Concern) -> None:
        """Refuse, before anything is sent, what the registry would not apply."""
        if isinstance(notice, Concern):
            self._precheck_concern(notice)
            return
        if notice.notice_id in self._applied:
            raise InputError(
                f"notice {notice.notice_id} was already sent",
                hint="each notice has its own notice_id",
            )
        site = isinstance(notice, SiteNotice)
        oid = notice.site_id if isinstance(notice, SiteNotice) else notice.activity_id
        what = "site" if site else "activity"
        try:
            rec: Record | None = self.registry.site(oid) if site else self.registry.activity(oid)
        except NotFoundError:
            rec = None
        if notice.action == "add" and rec is not None and rec.live:
            raise InputError(
                f"{what} {oid} is already notified", hint=f"send 'modify', or use a new {what} id"
            )
        if notice.action == "add" and rec is None:
            return
        if notice.action != "add" and (rec is None or not rec.live):
            raise NotFoundError(f"no live {what} {oid} in the registry")
        if rec is not None and rec.owner != self.station_id:
            raise PermissionDeniedError(
                f"{what} {oid} was notified by {rec.owner}",
                hint="only the notifying station changes it; use a new id for a new one",
            )

    def _precheck_concern(self, step: Concern) -> None:
        self.concerns.check(step, self.station_id)

    # --- reading ------------------------------------------------------------------------

    def decode_listed(
        self, kind: Literal["site", "activity"], *, include_ended: bool = False
    ) -> None:
        """Decode, outside the lock, the histories of the records a reader is about to
        copy under it (a record loaded from a snapshot is decoded on first read): a
        million sites must not hold the writer up. The list is taken under the lock; a
        record's versions are only ever appended."""
        with self.lock:
            reg = self.registry
            recs = (
                reg.sites(include_ended=include_ended)
                if kind == "site"
                else (reg.activities(include_ended=include_ended))
            )
        for r in recs:
            r.decode()

    def draft(self, concern_id: str) -> Concern:
        for oc in self.open_conflicts.values():
            if oc.draft.concern_id == concern_id:
                return oc.draft
        raise NotFoundError(f"no draft concern {concern_id}", hint="see hotline conflicts")

    def import_notices(self, raw: bytes, *, now: dt.datetime, prefix: str) -> list[SiteNotice]:
        if len(raw) > self.settings.import_max_bytes:
            raise ImportFileError(f"file is larger than {self.settings.import_max_bytes} bytes")
        notices = exchange.parse_import(
            raw,
            now=now,
            notice_prefix=prefix,
            reconfirm_after=dt.timedelta(days=self.settings.reconfirm_default_days),
            limits=self.limits,
        )
        for i, n in enumerate(notices):
            try:
                self.precheck(n)
            except HotlineError as exc:
                raise ImportFileError(f"feature {i} ({n.site_id}): {exc.message}") from None
        return notices


def _part_body(items: list[list[Any]], blob: bytes) -> bytes:
    header = zlib.compress(json.dumps(items, separators=(",", ":")).encode(), 1)
    packed = zlib.compress(blob, 1) if blob else b""
    return len(header).to_bytes(_HEADER_LEN, "big") + header + packed


def _part_items(body: bytes) -> tuple[list[list[Any]], bytes]:
    """A part's header items and its blob, still compressed (ValueError, zlib.error:
    not a part)."""
    n = int.from_bytes(body[:_HEADER_LEN], "big")
    if len(body) < _HEADER_LEN or n > len(body) - _HEADER_LEN:
        raise ValueError("a part's header is longer than the part")
    items = json.loads(zlib.decompress(body[_HEADER_LEN : _HEADER_LEN + n]))
    if not isinstance(items, list) or not all(isinstance(i, list) and i for i in items):
        raise ValueError("a part's header is a list of items")
    return items, body[_HEADER_LEN + n :]


def _unpacker(packed: bytes) -> Callable[[], bytes]:
    """What decompresses a part's blob when first asked (a ValueError if it does not)."""

    def unpack() -> bytes:
        if not packed:
            return b""
        try:
            return zlib.decompress(packed)
        except zlib.error as exc:
            raise ValueError(f"a saved part's blob does not decompress: {exc}") from None

    return unpack


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a snapshot's millions of objects are made (it
    would walk the growing heap again and again: a start many times slower); the
    objects made are acyclic and long-lived."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _promote_all() -> None:
    """Move every object the collector tracks to its oldest generation without walking
    them (``gc.freeze`` then ``gc.unfreeze``: two list splices; nothing stays frozen).
    The objects a snapshot's load made with the collector paused were all still in the
    youngest generation: the first young collections after it (during the notices
    replayed next) walked the whole loaded heap, about three times over. A full
    collection still sees them."""
    if gc.get_freeze_count():
        return  # someone froze objects on purpose: leave them frozen
    gc.freeze()
    gc.unfreeze()


def _digest(bodies: Iterable[bytes]) -> bytes:
    h = hashlib.sha256()
    for b in bodies:
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.digest()


def record_json(rec: Record, registry: Registry, now: dt.datetime) -> dict[str, Any]:
    cur = rec.current
    out: dict[str, Any] = {
        "id": rec.id,
        "kind": rec.kind,
        "owner": rec.owner,
        "live": rec.live,
        "current": None if cur is None else json.loads(cur.model_dump_json(exclude_none=True)),
        "versions": [
            {
                "version": v.version,
                "notice_id": v.notice_id,
                "action": v.action,
                "notified_by": v.notified_by,
                "at": v.at.isoformat(),
                "acknowledged_by": {
                    k: t.isoformat() for k, t in registry.acknowledgements(v.notice_id).items()
                },
            }
            for v in rec.versions
        ],
    }
    if rec.kind == "site":
        out["reconfirm_by"] = rec.reconfirm_by.isoformat() if rec.reconfirm_by else None
        out["stale"] = rec.live and registry.is_stale(rec.id, now)
    return out


def conflict_json(oc: OpenConflict) -> dict[str, Any]:
    c = oc.conflict
    return {
        "site_id": c.site_id,
        "activity_id": c.activity_id,
        "site_station": c.site_station,
        "activity_station": c.activity_station,
        "distance_m": round(c.distance_m, 3),
        "protected_distance_m": round(c.reach_m, 3),
        "rule": c.rule,
        "window_start": c.window_start.isoformat() if c.window_start else None,
        "window_end": c.window_end.isoformat() if c.window_end else None,
        "opened_at": oc.opened_at.isoformat(),
        "notice_id": oc.notice_id,
        "draft_concern": oc.draft.to_payload(),
    }


def concern_json(t: ConcernThread) -> dict[str, Any]:
    return {
        "concern_id": t.concern_id,
        "raised_by": t.raised_by,
        "state": t.state,
        "raised": t.raised.to_payload(),
        "steps": [
            {"step": s.step, "by": by, "at": at.isoformat(), **({"text": s.text} if s.text else {})}
            for s, by, at in t.steps
        ],
    }
