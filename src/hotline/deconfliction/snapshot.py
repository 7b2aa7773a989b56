"""The registry's state as plain JSON values, and back, for a snapshot in the store.

Owns the encoding of a :class:`~hotline.deconfliction.registry.Registry` (every site and
activity with all its versions and the densified footprint of its live version, and the
open conflicts) and :class:`RegistryLoader`, which builds an equal registry from it
without parsing a single notice again: payloads are re-made as ``model_construct`` would
(faster) from what ``model_dump`` gave (they were checked when their notice was applied)
and footprints from their stored coordinates. Acknowledgements are not encoded (the
caller replays them from the store).

:func:`encode_chunks` gives chunks of a JSON header and a byte blob: per chunk of
records, their ids, owners, live flags, reconfirmation dates and notice ids as columns,
and each record's item as bytes in the blob, decoded only when the record is first read
(:class:`SavedRecords`); per index, the volumes' columns and the prefilter boxes of the
shapes as arrays (:class:`~.engine.SavedIndex`), so that the index is rebuilt without
building one volume. A record still undecoded is written back as the bytes it came from.
A record's versions are decoded without building its volume; the volume is built only
when a check needs it. Pure: no I/O, no clock. Whether a snapshot may be used at
all (its digest, the ledger entry it is valid to) is the caller's decision; this module
trusts its input only to be what it produced, and raises ValueError, KeyError,
TypeError or IndexError on anything else (a record's own bytes are checked when they
are decoded, under the caller's digest).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

from .engine import Conflict, SavedIndex, Volume, activity_volume, site_volume
from .geometry import Shape
from .journal import Journal
from .models import Activity, AltitudeBand, GeoJSONGeometry, Site, TimeWindow
from .registry import Record, Registry, Version

Item = list[Any]
M = TypeVar("M", bound=BaseModel)
_KINDS = ("point", "line", "polygon")
#: a chunk: its JSON header items and its blob
Chunk = tuple[list[Item], bytes]
RECORDS = "RS"
INDEX = "IX"
_TAGS: dict[str, Literal["site", "activity"]] = {"S": "site", "A": "activity"}


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dt(v: object) -> datetime | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise TypeError("a date-time is a string")
    return datetime.fromisoformat(v)


def _when(v: object) -> datetime:
    t = _dt(v)
    if t is None:
        raise ValueError("a date-time is required here")
    return t


def encode_shape(s: Shape) -> list[Any]:
    return [s.kind, s.anchor_lon, s.anchor_lat, s.extent_m, [p.tolist() for p in s.parts]]


def decode_shape(v: list[Any]) -> Shape:
    kind, lon, lat, extent, parts = v
    if kind not in _KINDS:
        raise ValueError(f"unknown shape kind {kind!r}")
    arrays = tuple(np.array(p, dtype=np.float64).reshape(-1, 2) for p in parts)
    return Shape(kind, float(lon), float(lat), arrays, float(extent))


def _dump(payload: Site | Activity | None) -> dict[str, Any] | None:
    return None if payload is None else payload.model_dump(mode="json", exclude_unset=True)


_Spec = tuple[tuple[tuple[str, bool, Any], ...], frozenset[str]]
_SPECS: dict[type[BaseModel], _Spec] = {}
_IMMUTABLE = (type(None), bool, int, float, str)


def _spec(cls: type[BaseModel]) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        rows = []
        for name, f in cls.model_fields.items():
            default = None if f.is_required() else f.get_default(call_default_factory=True)
            if not isinstance(default, _IMMUTABLE):
                raise TypeError(f"{cls.__name__}.{name}: a default that could be shared")
            rows.append((name, f.is_required(), default))
        spec = _SPECS[cls] = (tuple(rows), frozenset(cls.model_fields))
    return spec


def _construct(cls: type[M], values: dict[str, Any]) -> M:
    """``cls.model_construct(**values)`` for these frozen models without hooks, faster:
    the same ``__dict__`` (field order, defaults) and fields set; a missing required
    field or an unknown one raises (what pydantic would silently leave out)."""
    spec, names = _spec(cls)
    if not values.keys() <= names:
        raise ValueError(f"unknown fields for {cls.__name__}")
    d: dict[str, Any] = {}
    for name, required, default in spec:
        if name in values:
            d[name] = values[name]
        elif required:
            raise KeyError(f"{cls.__name__}.{name} is missing")
        else:
            d[name] = default
    m = cls.__new__(cls)
    object.__setattr__(m, "__dict__", d)
    object.__setattr__(m, "__pydantic_fields_set__", set(values))
    object.__setattr__(m, "__pydantic_extra__", None)
    object.__setattr__(m, "__pydantic_private__", None)
    return m


def _band(v: dict[str, Any] | None) -> AltitudeBand | None:
    return None if v is None else _construct(AltitudeBand, v)


def _site(d: dict[str, Any]) -> Site:
    v = dict(d)
    v["geometry"] = _construct(GeoJSONGeometry, v["geometry"])
    if "altitude" in v:
        v["altitude"] = _band(v["altitude"])
    for k in ("valid_from", "valid_until", "reconfirm_by"):
        if k in v:
            v[k] = _dt(v[k])
    return _construct(Site, v)


def _activity(d: dict[str, Any]) -> Activity:
    v = dict(d)
    v["geometry"] = _construct(GeoJSONGeometry, v["geometry"])
    v["altitude"] = _band(v["altitude"])
    w = v["window"]
    v["window"] = _construct(TimeWindow, {"start": _when(w["start"]), "end": _when(w["end"])})
    return _construct(Activity, v)


def _record(kind: str, rec: Record, shape: Shape | None) -> Item:
    versions = [
        [
            v.version,
            v.notice_id,
            v.action,
            v.notified_by,
            _iso(v.at),
            _dump(v.payload),
            _iso(v.reconfirm_by),
        ]
        for v in rec.versions
    ]
    return [kind, rec.id, rec.owner, versions, None if shape is None else encode_shape(shape)]


def encode_conflict(c: Conflict) -> Item:
    """A conflict as an item (tag "C")."""
    return [
        "C",
        c.site_id,
        c.activity_id,
        c.site_station,
        c.activity_station,
        c.distance_m,
        c.reach_m,
        _iso(c.window_start),
        _iso(c.window_end),
        c.rule,
    ]


def decode_conflict(item: Item) -> Conflict:
    """The conflict of an item made by :func:`encode_conflict`."""
    tag, sid, aid, ss, ast, dist, reach, ws, we, rule = item
    if tag != "C":
        raise ValueError("not a conflict item")
    return Conflict(
        str(sid), str(aid), str(ss), str(ast), float(dist), float(reach), _dt(ws), _dt(we),
        str(rule),
    )  # fmt: skip


class RegistryLoader:
    """Builds a registry from :func:`encode_chunks`' chunks (fed in any order, then
    ``finish``)."""

    def __init__(self, *, max_delta: int = 2048, journal: Journal | None = None) -> None:
        self._reg = Registry(max_delta=max_delta, journal=journal)
        self._conflicts: list[Conflict] = []
        self._tables: dict[str, dict[str, Record]] = {"site": {}, "activity": {}}
        self._notices: dict[str, tuple[str, str]] = {}
        self._saved: dict[str, SavedIndex] = {}
        self._live: dict[str, list[str]] = {"site": [], "activity": []}

    def add(self, item: Item) -> None:
        """A conflict item (tag "C") of a chunk without a blob."""
        if not item or item[0] != "C":
            raise ValueError(f"unknown registry item {item[:1]!r}")
        self._conflicts.append(decode_conflict(item))

    def add_chunk(self, header: Item, blob: bytes | Callable[[], bytes]) -> None:
        """A chunk item of :func:`encode_chunks` (``RS`` records, ``IX`` an index) with
        its chunk's blob; for records, possibly what gives the blob when a record is
        first read (its size is then checked at that moment)."""
        tag = header[0]
        if tag == RECORDS:
            self._add_records(header, blob)
        elif tag == INDEX:
            self._add_index(header, blob() if callable(blob) else blob)
        else:
            raise ValueError(f"unknown registry chunk {tag!r}")

    def _add_records(self, header: Item, blob: bytes | Callable[[], bytes]) -> None:
        _, kind_v, ids, owners, live, reconfirm, notices, counts, lengths = header
        kind = _kind(kind_v)
        n = len(ids)
        if not len(owners) == len(live) == len(reconfirm) == len(counts) == len(lengths) == n:
            raise ValueError("a records chunk's columns differ in length")
        check_strings(ids, owners, notices)
        if not isinstance(reconfirm, list) or not _only(reconfirm, str, type(None)):
            raise TypeError("a reconfirmation date is a string or null")
        off = _offsets(lengths, None if callable(blob) else len(blob))
        noff = _offsets(counts, len(notices))
        per = np.diff(noff)
        if int(per.min(initial=1)) < 1:
            raise ValueError("a record has no version")
        if not isinstance(live, list) or not _only(live, bool):
            raise TypeError("a live flag is a boolean")
        source = SavedRecords(kind, blob, off, ids, notices, noff, live)
        self._live[kind].extend(itertools.compress(ids, live))
        saved = Record.saved
        table, had = self._tables[kind], len(self._tables[kind])
        table.update(
            (oid, saved(kind, oid, by, source, i, live=up, reconfirm_by=until))
            for i, (oid, by, up, until) in enumerate(zip(ids, owners, live, reconfirm, strict=True))
        )
        if len(table) != had + n:
            raise ValueError(f"a {kind} is twice in the saved state")
        keys = [(kind, oid) for oid in ids]
        if int(per.max(initial=1)) > 1:
            keys = [k for k, c in zip(keys, per.tolist(), strict=True) for _ in range(c)]
        held = len(self._notices)
        self._notices.update(zip(notices, keys, strict=True))
        if len(self._notices) != held + len(notices):
            raise ValueError("a notice is twice in the saved state")

    def _add_index(self, header: Item, blob: bytes) -> None:
        _, kind_v, ids, boxes = header
        kind = _kind(kind_v)
        check_strings(ids)
        n, m = len(ids), int(boxes)
        if m < 0 or len(blob) != 72 * n + 40 * m:
            raise ValueError("an index chunk's blob does not match its sizes")
        if kind in self._saved:
            raise ValueError(f"the {kind} index is twice in the saved state")
        self._saved[kind] = SavedIndex(
            list(ids),
            np.frombuffer(blob, dtype="<f8", count=9 * n).reshape(n, 9),
            np.frombuffer(blob, dtype="<f8", count=4 * m, offset=72 * n).reshape(m, 4),
            np.frombuffer(blob, dtype="<i8", count=m, offset=72 * n + 32 * m).astype(np.int64),
        )

    def finish(self) -> Registry:
        """The registry (the loader must not be used afterwards)."""
        site, activity = self._saved.get("site"), self._saved.get("activity")
        if site is None or activity is None:
            raise ValueError("a saved state without the index of its sites and activities")
        for kind, saved in (("site", site), ("activity", activity)):
            live = self._live[kind]
            if len(saved.ids) != len(live) or set(saved.ids) != set(live):
                raise ValueError(f"the saved {kind} index does not hold the live {kind}s")
        self._reg.restore(self._tables["site"], self._tables["activity"], self._conflicts,
                          site, activity, self._notices)  # fmt: skip
        return self._reg


def _kind(v: object) -> Literal["site", "activity"]:
    if v == "site":
        return "site"
    if v == "activity":
        return "activity"
    raise ValueError(f"unknown record kind {v!r}")


def check_strings(*columns: Sequence[object]) -> None:
    for col in columns:
        if not isinstance(col, list) or not _only(col, str):
            raise TypeError("a column of strings expected")


def _only(col: list[Any], *types: type) -> bool:
    """Whether every value of ``col`` is of exactly one of ``types`` (at C speed)."""
    return set(map(type, col)) <= set(types)


def _offsets(lengths: Sequence[object], total: int | None) -> npt.NDArray[np.int64]:
    """Start offsets (n + 1) of consecutive pieces of the given lengths, which must add
    up to ``total`` (None: checked later)."""
    arr = np.asarray(lengths)
    if arr.ndim != 1 or (len(arr) and arr.dtype.kind != "i"):
        raise TypeError("a length is an integer")
    arr = arr.astype(np.int64)
    if (arr < 0).any() or (total is not None and int(arr.sum()) != total):
        raise ValueError("lengths do not add up to what they describe")
    return np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(arr)])


def _decode_record(
    item: Item,
) -> tuple[Literal["site", "activity"], str, str, list[Version], list[Any] | None]:
    """A record item's kind, id, owner, versions and the encoded footprint of its live
    state (checked to be there exactly when the record is live; not decoded)."""
    tag, oid, owner, versions, shape = item
    kind = _TAGS[tag]
    oid, owner = str(oid), str(owner)
    out: list[Version] = []
    for number, notice_id, action, by, at, payload, reconfirm in versions:
        body: Site | Activity | None = None
        if payload is not None:
            body = _site(payload) if kind == "site" else _activity(payload)
        when, until = _when(at), _dt(reconfirm)
        out.append(Version(int(number), str(notice_id), str(action), str(by), when, body, until))
    if not out:
        raise ValueError(f"{kind} {oid} has no version")
    if (shape is None) != (out[-1].payload is None):
        raise ValueError(f"{kind} {oid}: footprint and live state disagree")
    return kind, oid, owner, out, shape


class SavedRecords:
    """One chunk of saved records: each record's item as bytes, decoded on first use
    (the :class:`~.registry.RecordSource` of the records made from it)."""

    __slots__ = ("_blob", "_ids", "_kind", "_live", "_noff", "_notices", "_off", "_unpack")

    def __init__(
        self,
        kind: Literal["site", "activity"],
        blob: bytes | Callable[[], bytes],
        offsets: npt.NDArray[np.int64],
        ids: list[str],
        notices: list[str],
        notice_offsets: npt.NDArray[np.int64],
        live: list[bool],
    ) -> None:
        self._kind, self._off, self._ids = kind, offsets, ids
        self._notices, self._noff, self._live = notices, notice_offsets, live
        self._blob: bytes | None = None if callable(blob) else blob
        self._unpack: Callable[[], bytes] | None = blob if callable(blob) else None

    def raw(self, at: int) -> bytes:
        blob = self._blob
        if blob is None:
            blob = self._unpacked()
        return blob[int(self._off[at]) : int(self._off[at + 1])]

    def _unpacked(self) -> bytes:
        """The blob, on the first read of a record of this chunk. Two threads at once
        both unpack the same bytes; ``_blob`` is set before ``_unpack`` is dropped."""
        unpack = self._unpack
        if unpack is None:  # another thread has just unpacked it
            if self._blob is None:  # pragma: no cover - one of the two is always set
                raise RuntimeError("a saved chunk without its bytes")
            return self._blob
        blob = unpack()
        if len(blob) != int(self._off[-1]):
            raise ValueError("a records chunk's lengths do not add up to its blob")
        self._blob = blob
        self._unpack = None
        return blob

    def notice_ids(self, at: int) -> list[str]:
        return self._notices[int(self._noff[at]) : int(self._noff[at + 1])]

    def _decoded(self, at: int) -> tuple[str, list[Version], list[Any] | None]:
        """Record ``at``'s owner, versions and encoded footprint, checked against the
        header."""
        kind, oid, owner, versions, shape = _decode_record(json.loads(self.raw(at)))
        if kind != self._kind or oid != self._ids[at]:
            raise ValueError(f"saved {self._kind} {self._ids[at]} holds another record")
        if [v.notice_id for v in versions] != self.notice_ids(at):
            raise ValueError(f"saved {kind} {oid}: its notices differ from the header's")
        if (shape is not None) != self._live[at]:
            raise ValueError(f"saved {kind} {oid}: live or not, unlike the header says")
        return owner, versions, shape

    def versions(self, at: int) -> list[Version]:
        return self._decoded(at)[1]

    def volume(self, at: int) -> Volume:
        owner, versions, shape = self._decoded(at)
        cur, oid = versions[-1].payload, self._ids[at]
        if shape is None:
            raise ValueError(f"saved {self._kind} {oid} is not live")
        if isinstance(cur, Site):
            return site_volume(oid, owner, cur, decode_shape(shape))
        if isinstance(cur, Activity):
            return activity_volume(oid, owner, cur, decode_shape(shape))
        raise ValueError(f"saved {self._kind} {oid} is not live")  # pragma: no cover


def encode_chunks(reg: Registry, per: int = 20_000) -> Iterator[Chunk]:
    """The registry as chunks (``RS`` records, ``IX`` indexes, ``C`` conflicts), at most
    ``per`` records or conflicts a chunk; a record loaded from a snapshot and not
    decoded since is written as the bytes it came from."""
    for tag, kind in _TAGS.items():
        recs = (
            reg.sites(include_ended=True) if kind == "site" else reg.activities(include_ended=True)
        )
        for start in range(0, len(recs), per):
            yield _records_chunk(reg, tag, kind, recs[start : start + per])
    for kind in _TAGS.values():
        saved = reg.saved_index(kind)
        blob = b"".join(
            (
                np.ascontiguousarray(saved.cols, dtype="<f8").tobytes(),
                np.ascontiguousarray(saved.boxes, dtype="<f8").tobytes(),
                np.ascontiguousarray(saved.box_of, dtype="<i8").tobytes(),
            )
        )
        yield [[INDEX, kind, saved.ids, len(saved.boxes)]], blob
    conflicts = reg.conflicts()
    for start in range(0, len(conflicts), per):
        yield [encode_conflict(c) for c in conflicts[start : start + per]], b""


def _records_chunk(
    reg: Registry, tag: str, kind: Literal["site", "activity"], recs: list[Record]
) -> Chunk:
    raws: list[bytes] = []
    notices: list[str] = []
    counts: list[int] = []
    for rec in recs:
        raw = rec.saved_item()
        if raw is None:
            v = reg.site_volume(rec.id) if kind == "site" else reg.activity_volume(rec.id)
            item = _record(tag, rec, None if v is None else v.shape)
            raw = json.dumps(item, separators=(",", ":")).encode()
        raws.append(raw)
        ids = rec.notice_ids()
        notices.extend(ids)
        counts.append(len(ids))
    header = [
        RECORDS,
        kind,
        [r.id for r in recs],
        [r.owner for r in recs],
        [r.live for r in recs],
        [r.reconfirm_text() for r in recs],
        notices,
        counts,
        [len(b) for b in raws],
    ]
    return [header], b"".join(raws)
