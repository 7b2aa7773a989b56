"""The registry's state as plain JSON values, and back, for a snapshot in the store.

Owns the encoding of a :class:`~hotline.deconfliction.registry.Registry` (every site and
activity with all its versions and the densified footprint of its live version, and the
open conflicts) as a sequence of JSON-ready items, and :class:`RegistryLoader`, which
builds an equal registry from them without parsing a single notice again: payloads are
re-made as ``model_construct`` would (faster) from what ``model_dump`` gave (they were checked when
their notice was applied) and footprints from their stored coordinates, then every
volume goes into the index in one bulk load. Acknowledgements are not encoded (the
caller replays them from the store). Pure: no I/O, no clock. Whether a snapshot may be
used at all (its digest, the ledger entry it is valid to) is the caller's decision;
this module trusts its input only to be what :func:`encode` produced, and raises
ValueError, KeyError, TypeError or IndexError on anything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from pydantic import BaseModel

from .engine import Conflict, Volume, activity_volume, site_volume
from .geometry import Shape
from .journal import Journal
from .models import Activity, AltitudeBand, GeoJSONGeometry, Site, TimeWindow
from .registry import Record, Registry, Version

Item = list[Any]
M = TypeVar("M", bound=BaseModel)
_KINDS = ("point", "line", "polygon")


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


def encode(reg: Registry) -> Iterator[Item]:
    """The registry as items: one per site ("S"), activity ("A") and open conflict ("C")."""
    for rec in reg.sites(include_ended=True):
        v = reg.site_volume(rec.id)
        yield _record("S", rec, None if v is None else v.shape)
    for rec in reg.activities(include_ended=True):
        v = reg.activity_volume(rec.id)
        yield _record("A", rec, None if v is None else v.shape)
    for c in reg.conflicts():
        yield encode_conflict(c)


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
    """Builds a registry from :func:`encode`'s items (fed in any order, then ``finish``)."""

    def __init__(self, *, max_delta: int = 2048, journal: Journal | None = None) -> None:
        self._reg = Registry(max_delta=max_delta, journal=journal)
        self._site_volumes: list[Volume] = []
        self._activity_volumes: list[Volume] = []
        self._conflicts: list[Conflict] = []
        self._records: list[tuple[str, Record]] = []

    def add(self, item: Item) -> None:
        tag = item[0]
        if tag in ("S", "A"):
            self._add_record(item)
        elif tag == "C":
            self._conflicts.append(decode_conflict(item))
        else:
            raise ValueError(f"unknown registry item {tag!r}")

    def _add_record(self, item: Item) -> None:
        tag, oid, owner, versions, shape = item
        site = tag == "S"
        kind = "site" if site else "activity"
        rec = Record("site" if site else "activity", str(oid), str(owner))
        for number, notice_id, action, by, at, payload, reconfirm in versions:
            body: Site | Activity | None = None
            if payload is not None:
                body = _site(payload) if site else _activity(payload)
            when, until = _when(at), _dt(reconfirm)
            version = Version(int(number), str(notice_id), str(action), str(by), when, body, until)
            rec.versions.append(version)
        if not rec.versions:
            raise ValueError(f"{kind} {oid} has no version")
        cur = rec.current
        if (shape is None) != (cur is None):
            raise ValueError(f"{kind} {oid}: footprint and live state disagree")
        if isinstance(cur, Site):
            self._site_volumes.append(site_volume(rec.id, rec.owner, cur, decode_shape(shape)))
        elif isinstance(cur, Activity):
            volume = activity_volume(rec.id, rec.owner, cur, decode_shape(shape))
            self._activity_volumes.append(volume)
        self._records.append((kind, rec))

    def finish(self) -> Registry:
        """The registry (the loader must not be used afterwards)."""
        self._reg.restore(self._records, self._conflicts, self._site_volumes,
                          self._activity_volumes)  # fmt: skip
        return self._reg
