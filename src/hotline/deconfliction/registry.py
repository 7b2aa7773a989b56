"""The registry: a projection of every site and activity notice from every side.

Owns, for each site and activity: who notified it, every version (one per notice,
with the notice id, the notifying station and the time), whether it is live; the
per-recipient acknowledgement of each notice; the open conflicts. Fed one notice at a
time by :meth:`Registry.apply` (in ledger order) and rebuilt from the same entries by
:meth:`Registry.rebuild`, which must give the same state (a test proves it). Pure: the
caller supplies times; no database, no clock, no I/O.

Rules: only the station that added a site or activity may modify, withdraw, cancel or
reconfirm it; a notice id is applied once; a withdrawn site or cancelled activity ends
its conflicts. A notification is information, never permission.

Given a :class:`~hotline.deconfliction.journal.Journal`, every change records how to
undo itself, so a caller whose transaction rolls back restores the registry in the time
the change took (:meth:`Journal.undo_to`) instead of rebuilding it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from hotline.errors import InputError, NotFoundError, PermissionDeniedError

from .engine import (
    Conflict,
    Engine,
    SavedIndex,
    Volume,
    VolumeIndex,
    activity_volume,
    site_volume,
)
from .journal import Journal
from .models import Activity, ActivityNotice, Site, SiteNotice

Notice = SiteNotice | ActivityNotice


@dataclass(frozen=True, slots=True)
class Version:
    """One notice's effect on a site or activity: the state after it (None when
    withdrawn or cancelled) and, for sites, the reconfirmation date in force."""

    version: int
    notice_id: str
    action: str
    notified_by: str
    at: datetime
    payload: Site | Activity | None
    reconfirm_by: datetime | None = None


class RecordSource(Protocol):
    """Where a record loaded from a snapshot keeps its history until it is first read
    (``deconfliction.snapshot``): record number ``at`` of a saved part."""

    def versions(self, at: int) -> list[Version]: ...

    def notice_ids(self, at: int) -> list[str]: ...

    def volume(self, at: int) -> Volume: ...

    def raw(self, at: int) -> bytes: ...


#: one record's history is decoded once, even when a reader thread (the map) and the
#: writer ask for it at once
_DECODE = threading.Lock()


class Record:
    """A site or activity with its history. ``versions[-1]`` is the current state.

    A record loaded from a snapshot (:meth:`saved`) knows its id, owner, whether it is
    live and its reconfirmation date; its versions are decoded when first read."""

    __slots__ = ("_at", "_live", "_reconfirm", "_source", "_versions", "id", "kind", "owner")

    def __init__(
        self,
        kind: Literal["site", "activity"],
        id: str,
        owner: str,
        versions: list[Version] | None = None,
    ) -> None:
        self.kind = kind
        self.id = id
        self.owner = owner
        self._versions: list[Version] | None = [] if versions is None else versions
        self._source: RecordSource | None = None
        self._at = -1
        self._live = False
        self._reconfirm: str | None = None

    @classmethod
    def saved(
        cls,
        kind: Literal["site", "activity"],
        id: str,
        owner: str,
        source: RecordSource,
        at: int,
        *,
        live: bool,
        reconfirm_by: str | None,
    ) -> Record:
        rec = cls.__new__(cls)  # not __init__: a million of these at a start
        rec.kind, rec.id, rec.owner = kind, id, owner
        rec._versions, rec._source, rec._at = None, source, at
        rec._live, rec._reconfirm = live, reconfirm_by
        return rec

    @property
    def versions(self) -> list[Version]:
        got = self._versions
        if got is None:
            with _DECODE:
                if self._versions is None and self._source is not None:
                    self._versions = self._source.versions(self._at)
                got = self._versions
            if got is None:  # pragma: no cover - a saved record always has a source
                raise RuntimeError(f"{self.kind} {self.id} has no history")
        return got

    def decode(self) -> None:
        """Decode a saved record's history now (a caller that will read many records
        under a lock the writer needs decodes them before taking it)."""
        _ = self.versions

    @property
    def decoded(self) -> bool:
        """Whether the versions are in memory (a saved record's are decoded on first use)."""
        return self._versions is not None

    def notice_ids(self) -> list[str]:
        """The notice id of every version, in order (without decoding a saved record)."""
        if self._versions is None and self._source is not None:
            return self._source.notice_ids(self._at)
        return [v.notice_id for v in self.versions]

    def saved_item(self) -> bytes | None:
        """The snapshot item this record was loaded from, while it is unchanged and not
        decoded (None otherwise: encode it anew)."""
        if self._versions is None and self._source is not None:
            return self._source.raw(self._at)
        return None

    def saved_volume(self) -> Volume:
        """The volume of the state this record was loaded in (for the index's slots
        that still hold only an id)."""
        if self._source is None:
            raise KeyError(f"{self.kind} {self.id} was not loaded from a snapshot")
        return self._source.volume(self._at)

    @property
    def live(self) -> bool:
        if self._versions is None:
            return self._live
        return self.versions[-1].payload is not None

    @property
    def current(self) -> Site | Activity | None:
        return self.versions[-1].payload

    @property
    def reconfirm_by(self) -> datetime | None:
        if self._versions is None:
            return None if self._reconfirm is None else datetime.fromisoformat(self._reconfirm)
        return self.versions[-1].reconfirm_by

    def reconfirm_text(self) -> str | None:
        """:attr:`reconfirm_by` in ISO 8601 (as saved), without decoding a saved record."""
        if self._versions is None:
            return self._reconfirm
        t = self.versions[-1].reconfirm_by
        return None if t is None else t.isoformat()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.kind, self.id, self.owner, self.versions) == (
            other.kind,
            other.id,
            other.owner,
            other.versions,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, as the dataclass was

    def __repr__(self) -> str:
        return f"Record({self.kind!r}, {self.id!r}, {self.owner!r}, {self.versions!r})"


@dataclass(frozen=True, slots=True)
class ConflictChange:
    """A conflict opened, updated (distance or window changed) or ended by a notice."""

    change: Literal["opened", "updated", "ended"]
    conflict: Conflict
    notice_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class NoticeEntry:
    """A notice as the ledger recorded it: for :meth:`Registry.rebuild`."""

    notice: Notice
    notified_by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AckEntry:
    """A recipient station's acknowledgement of a notice."""

    notice_id: str
    recipient: str
    at: datetime


class Registry:
    """Sites, activities, their versions, acknowledgements and open conflicts."""

    def __init__(self, *, max_delta: int = 2048, journal: Journal | None = None) -> None:
        self._journal = journal
        self._engine = Engine(max_delta=max_delta)
        self._sites: dict[str, Record] = {}
        self._activities: dict[str, Record] = {}
        self._notices: dict[str, tuple[str, str]] = {}  # notice id -> (kind, object id)
        self._acks: dict[str, dict[str, datetime]] = {}
        self._conflicts: dict[tuple[str, str], Conflict] = {}

    # ------------------------------------------------------------------ feeding

    @classmethod
    def rebuild(cls, entries: Iterable[NoticeEntry | AckEntry], **kwargs: Any) -> Registry:
        """A registry built from ledger entries in order; equal to applying them one by one."""
        reg = cls(**kwargs)
        for e in entries:
            if isinstance(e, NoticeEntry):
                reg.apply(e.notice, e.notified_by, e.at)
            else:
                reg.acknowledge(e.notice_id, e.recipient, e.at)
        return reg

    def apply(self, notice: Notice, notified_by: str, at: datetime) -> list[ConflictChange]:
        """Apply one checked notice; return the conflicts it opened, updated or ended.

        Raises InputError (duplicate notice, add of a live id), NotFoundError (unknown
        id) or PermissionDeniedError (not the notifying station's object); on error
        nothing changes."""
        if notice.notice_id in self._notices:
            raise InputError(
                f"notice {notice.notice_id} was already applied",
                hint="each notice has its own notice_id; resend a change as a new notice",
            )
        if isinstance(notice, SiteNotice):
            changes = self._apply_site(notice, notified_by, at)
            self._notices[notice.notice_id] = ("site", notice.site_id)
        else:
            changes = self._apply_activity(notice, notified_by, at)
            self._notices[notice.notice_id] = ("activity", notice.activity_id)
        self._undo(lambda: self._forget_notice(notice.notice_id))
        return changes

    def _forget_notice(self, notice_id: str) -> None:
        self._notices.pop(notice_id, None)
        self._acks.pop(notice_id, None)

    # ------------------------------------------------------------------ undo

    def _undo(self, fn: Callable[[], None]) -> None:
        if self._journal is not None:
            self._journal.record(fn)

    def _set_record(self, table: dict[str, Record], rec: Record, version: Version) -> None:
        """Append ``version`` to ``rec`` and file it under its id (undoably)."""
        old = table.get(rec.id)
        kept = len(old.versions) if old is not None else 0
        rec.versions.append(version)
        table[rec.id] = rec

        def undo() -> None:
            if old is None:
                table.pop(rec.id, None)
            else:
                table[rec.id] = old
                del old.versions[kept:]

        self._undo(undo)

    def _index_put(self, index: VolumeIndex, volume: Volume) -> None:
        prev = index.get(volume.id)
        index.put(volume)

        def undo() -> None:
            if prev is None:
                index.remove(volume.id)
            else:
                index.put(prev)

        self._undo(undo)

    def _index_remove(self, index: VolumeIndex, volume_id: str) -> None:
        prev = index.remove(volume_id)
        if prev is not None:
            self._undo(lambda: index.put(prev))

    def _record(
        self,
        table: dict[str, Record],
        kind: Literal["site", "activity"],
        oid: str,
        action: str,
        by: str,
    ) -> Record | None:
        rec = table.get(oid)
        if action == "add":
            if rec is not None and rec.live:
                raise InputError(
                    f"{kind} {oid} is already notified",
                    hint=f"send 'modify' to change it, or use a new {kind} id",
                )
        elif rec is None:
            raise NotFoundError(f"no {kind} {oid} in the registry", hint="send 'add' first")
        elif not rec.live:
            raise InputError(
                f"{kind} {oid} is no longer live", hint="send 'add' to notify it again"
            )
        if rec is not None and rec.owner != by:
            raise PermissionDeniedError(
                f"{kind} {oid} was notified by {rec.owner}; {by} cannot change it",
                hint=f"ask {rec.owner} on the line, or notify your own {kind}",
            )
        return rec

    def _apply_site(self, n: SiteNotice, by: str, at: datetime) -> list[ConflictChange]:
        rec = self._record(self._sites, "site", n.site_id, n.action, by)
        if rec is None or n.action == "add":
            rec = Record("site", n.site_id, by, list(rec.versions) if rec else [])
        prev = rec.versions[-1] if rec.versions else None
        payload: Site | None
        if n.action in ("add", "modify"):
            payload = n.site
            reconfirm = n.site.reconfirm_by if n.site else None
        elif n.action == "reconfirm":
            payload = prev.payload if prev is not None and isinstance(prev.payload, Site) else None
            reconfirm = n.reconfirm_by
        else:
            payload, reconfirm = None, None
        if n.action == "reconfirm" and payload is not None and n.reconfirm_by is not None:
            payload = payload.model_copy(update={"reconfirm_by": n.reconfirm_by})
        # Build the volume before changing anything, so a bad geometry changes nothing.
        volume = site_volume(n.site_id, by, payload) if isinstance(payload, Site) else None
        version = Version(len(rec.versions) + 1, n.notice_id, n.action, by, at, payload, reconfirm)
        self._set_record(self._sites, rec, version)
        if n.action == "reconfirm":
            return []
        if volume is None:
            self._index_remove(self._engine.sites, n.site_id)
            return self._replace(n.notice_id, site=n.site_id, found=[], why="site withdrawn")
        self._index_put(self._engine.sites, volume)
        return self._replace(
            n.notice_id,
            site=n.site_id,
            found=self._engine.check_site(volume),
            why=f"site {n.action}",
        )

    def _apply_activity(self, n: ActivityNotice, by: str, at: datetime) -> list[ConflictChange]:
        rec = self._record(self._activities, "activity", n.activity_id, n.action, by)
        if rec is None or n.action == "add":
            rec = Record("activity", n.activity_id, by, list(rec.versions) if rec else [])
        volume = activity_volume(n.activity_id, by, n.activity) if n.activity else None
        version = Version(len(rec.versions) + 1, n.notice_id, n.action, by, at, n.activity)
        self._set_record(self._activities, rec, version)
        if volume is None:
            self._index_remove(self._engine.activities, n.activity_id)
            return self._replace(
                n.notice_id, activity=n.activity_id, found=[], why="activity cancelled"
            )
        self._index_put(self._engine.activities, volume)
        return self._replace(
            n.notice_id,
            activity=n.activity_id,
            found=self._engine.check_activity(volume),
            why=f"activity {n.action}",
        )

    def _replace(
        self,
        notice_id: str,
        *,
        found: list[Conflict],
        why: str,
        site: str | None = None,
        activity: str | None = None,
    ) -> list[ConflictChange]:
        old = {
            k: c
            for k, c in self._conflicts.items()
            if (site is not None and k[0] == site) or (activity is not None and k[1] == activity)
        }
        new = {c.key: c for c in found}
        before = {k: self._conflicts.get(k) for k in old.keys() | new.keys()}
        table = self._conflicts

        def undo() -> None:
            for k, c in before.items():
                if c is None:
                    table.pop(k, None)
                else:
                    table[k] = c

        changes: list[ConflictChange] = []
        for k in sorted(old.keys() - new.keys()):
            del self._conflicts[k]
            changes.append(ConflictChange("ended", old[k], notice_id, why))
        for k in sorted(new):
            self._conflicts[k] = new[k]
            if k not in old:
                changes.append(ConflictChange("opened", new[k], notice_id, why))
            elif old[k] != new[k]:
                changes.append(ConflictChange("updated", new[k], notice_id, why))
        self._undo(undo)
        return changes

    def restore(
        self,
        sites: dict[str, Record],
        activities: dict[str, Record],
        conflicts: Iterable[Conflict],
        site_index: SavedIndex,
        activity_index: SavedIndex,
        saved_notices: dict[str, tuple[str, str]],
    ) -> None:
        """Fill an empty registry with a state saved by ``deconfliction.snapshot``: its
        sites and activities by id, saved records none decoded yet (:meth:`Record.saved`),
        with ``saved_notices`` (notice id -> (kind, id)) the notices of their versions,
        none acknowledged yet. Each kind's saved index stands for its volumes: each is
        built from its record (:meth:`Record.saved_volume`) when a check needs it; that
        it holds exactly the live records is the caller's check (the loader's, from its
        columns). Not journalled: a registry is restored before anything else is applied
        to it."""
        if self._sites or self._activities or self._notices:
            raise InputError("restore fills an empty registry only")
        self._sites.update(sites)
        self._activities.update(activities)
        self._notices.update(saved_notices)
        for c in conflicts:
            self._conflicts[c.key] = c
        for index, saved, table in (
            (self._engine.sites, site_index, self._sites),
            (self._engine.activities, activity_index, self._activities),
        ):
            index.load(saved, self._saved_volume(table))

    @staticmethod
    def _saved_volume(table: dict[str, Record]) -> Callable[[str], Volume]:
        def resolve(volume_id: str) -> Volume:
            return table[volume_id].saved_volume()

        return resolve

    def acknowledge(self, notice_id: str, recipient: str, at: datetime) -> None:
        """Record that ``recipient`` acknowledged a notice (the first time counts)."""
        if notice_id not in self._notices:
            raise NotFoundError(f"no notice {notice_id} in the registry")
        acks = self._acks.setdefault(notice_id, {})
        if recipient not in acks:
            acks[recipient] = at
            self._undo(lambda: self._unacknowledge(acks, recipient))

    def acknowledge_all(self, acks: Iterable[tuple[str, str, datetime]]) -> None:
        """:meth:`acknowledge` for each (notice id, recipient, time), faster and not
        journalled (a rebuild's, outside any transaction): all or nothing would need
        the journal, so an unknown notice raises before any is recorded."""
        notices, table = self._notices, self._acks
        pending = list(acks)
        for notice_id, _, _ in pending:
            if notice_id not in notices:
                raise NotFoundError(f"no notice {notice_id} in the registry")
        for notice_id, recipient, at in pending:
            held = table.get(notice_id)
            if held is None:
                table[notice_id] = {recipient: at}
            elif recipient not in held:
                held[recipient] = at

    @staticmethod
    def _unacknowledge(acks: dict[str, datetime], recipient: str) -> None:
        acks.pop(recipient, None)

    # ------------------------------------------------------------------ reading

    def site(self, site_id: str) -> Record:
        rec = self._sites.get(site_id)
        if rec is None:
            raise NotFoundError(f"no site {site_id} in the registry")
        return rec

    def activity(self, activity_id: str) -> Record:
        rec = self._activities.get(activity_id)
        if rec is None:
            raise NotFoundError(f"no activity {activity_id} in the registry")
        return rec

    def sites(self, *, include_ended: bool = False) -> list[Record]:
        return [r for r in self._sites.values() if include_ended or r.live]

    def activities(self, *, include_ended: bool = False) -> list[Record]:
        return [r for r in self._activities.values() if include_ended or r.live]

    def acknowledgements(self, notice_id: str) -> dict[str, datetime]:
        """Recipient station -> time of its acknowledgement of the notice."""
        if notice_id not in self._notices:
            raise NotFoundError(f"no notice {notice_id} in the registry")
        return dict(self._acks.get(notice_id, {}))

    def unacknowledged(self, notice_id: str, recipients: Iterable[str]) -> list[str]:
        """The recipients that have not acknowledged the notice yet."""
        acks = self.acknowledgements(notice_id)
        return sorted(r for r in recipients if r not in acks)

    def is_stale(self, site_id: str, now: datetime) -> bool:
        """A live site past its reconfirmation date."""
        rec = self.site(site_id)
        return rec.live and rec.reconfirm_by is not None and rec.reconfirm_by < now

    def stale_sites(self, now: datetime) -> list[str]:
        return sorted(r.id for r in self._sites.values() if self.is_stale(r.id, now))

    def conflicts(self) -> list[Conflict]:
        """Open conflicts, by (site id, activity id)."""
        return [self._conflicts[k] for k in sorted(self._conflicts)]

    def site_volume(self, site_id: str) -> Volume | None:
        """The indexed volume of a live site (None: not live, or unknown)."""
        return self._engine.sites.get(site_id)

    def activity_volume(self, activity_id: str) -> Volume | None:
        """The indexed volume of a live activity (None: not live, or unknown)."""
        return self._engine.activities.get(activity_id)

    def site_volumes(self) -> list[Volume]:
        return self._engine.sites.volumes()

    def saved_index(self, kind: Literal["site", "activity"]) -> SavedIndex:
        """The index of live sites or activities as arrays, for a snapshot."""
        return (self._engine.sites if kind == "site" else self._engine.activities).save()

    def snapshot(self) -> dict[str, Any]:
        """Everything the projection holds, as plain comparable values."""

        def rec(r: Record) -> tuple[Any, ...]:
            return (
                r.owner,
                tuple(
                    (
                        v.version,
                        v.notice_id,
                        v.action,
                        v.notified_by,
                        v.at,
                        v.reconfirm_by,
                        None if v.payload is None else v.payload.model_dump(mode="json"),
                    )
                    for v in r.versions
                ),
            )

        return {
            "sites": {k: rec(v) for k, v in sorted(self._sites.items())},
            "activities": {k: rec(v) for k, v in sorted(self._activities.items())},
            "acks": {k: dict(sorted(self._acks.get(k, {}).items())) for k in sorted(self._notices)},
            "conflicts": self.conflicts(),
        }
