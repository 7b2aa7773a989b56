"""Import and export of sites: GeoJSON (RFC 7946) and EUROCAE ED-318 geographical zones.

Owns the mapping between files and :class:`SiteNotice` ("add") messages, all or
nothing: one bad feature raises ImportFileError naming its index and id, and nothing is
returned. Export turns the registry (and its conflicts) back into GeoJSON and ED-318.
The one file read here is the reference data shipped in the package
(``data/ukraine_power_sites_example.geojson``); every other input arrives as bytes or
decoded JSON from the caller. No database, network or clock: ``now`` is a parameter.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from hotline.errors import HotlineError, ImportFileError

from . import geometry
from .concerns import INFORMATION_NOT_PERMISSION
from .limits import DEFAULT_MAX_VERTICES, Limits
from .models import SITE_CATEGORIES, Activity, Site, SiteNotice
from .registry import Registry

REFERENCE_FILE = "ukraine_power_sites_example.geojson"
REFERENCE_ATTRIBUTION = (
    "World Resources Institute, Global Power Plant Database (CC BY 4.0); "
    "Chornobyl coordinate: Wikipedia"
)
MAX_IMPORT_BYTES = 64 * 1024 * 1024
MAX_FEATURES = 100_000
KIND_TO_CATEGORY = {
    "nuclear_power_plant": "nuclear_power_plant",
    "thermal_power_plant": "power_station",
    "hydro_power_plant": "power_station",
    "power_plant": "power_station",
    "power_station": "power_station",
}
_UOM = {"m": 1.0, "ft": 0.3048}


def parse_import(
    raw: bytes,
    *,
    now: datetime,
    notice_prefix: str,
    reconfirm_after: timedelta = timedelta(days=90),
    max_vertices: int = DEFAULT_MAX_VERTICES,
    limits: Limits | None = None,
) -> list[SiteNotice]:
    """Bytes of a GeoJSON or ED-318 file -> 'add' site notices, all or nothing. Each
    feature's notice is held to ``limits`` (default: ``max_vertices`` and the default
    ring and byte limits) before its geometry is checked."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise ImportFileError(f"file is larger than {MAX_IMPORT_BYTES // 2**20} MiB")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ImportFileError(f"not a JSON file: {str(exc)[:200]}") from None
    kw: dict[str, Any] = {
        "now": now,
        "notice_prefix": notice_prefix,
        "reconfirm_after": reconfirm_after,
        "limits": limits or Limits(max_vertices=max_vertices),
    }
    if is_ed318(data):
        return import_ed318(data, **kw)
    return import_geojson(data, **kw)


def is_ed318(data: object) -> bool:
    """An ED-318 file: a FeatureCollection whose features carry an ``identifier``."""
    feats = data.get("features") if isinstance(data, dict) else None
    return isinstance(feats, list) and any(
        isinstance(f, dict)
        and isinstance(f.get("properties"), dict)
        and "identifier" in f["properties"]
        for f in feats
    )


def _features(data: object) -> list[Any]:
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ImportFileError("the file is not a GeoJSON FeatureCollection")
    feats = data.get("features")
    if not isinstance(feats, list) or not feats:
        raise ImportFileError("the FeatureCollection has no features")
    if len(feats) > MAX_FEATURES:
        raise ImportFileError(f"more than {MAX_FEATURES} features; split the file")
    return feats


def _fail(i: int, fid: object, exc: HotlineError | str) -> ImportFileError:
    msg = exc if isinstance(exc, str) else exc.message
    hint = "" if isinstance(exc, str) else exc.hint
    return ImportFileError(
        f"feature {i} ({str(fid)[:64] if fid is not None else 'no id'}): {msg}",
        hint=(hint + "; " if hint else "") + "fix it and import the whole file again; "
        "nothing was imported",
    )


def _notice(i: int, fid: object, payload: dict[str, Any], limits: Limits) -> SiteNotice:
    try:
        return SiteNotice.from_payload(payload, limits=limits)
    except HotlineError as exc:
        raise _fail(i, fid, exc) from None


def import_geojson(
    data: object,
    *,
    now: datetime,
    notice_prefix: str,
    reconfirm_after: timedelta = timedelta(days=90),
    max_vertices: int = DEFAULT_MAX_VERTICES,
    limits: Limits | None = None,
) -> list[SiteNotice]:
    """A GeoJSON FeatureCollection of sites -> 'add' notices (all or nothing).

    Properties: ``site_id`` (or the feature ``id``), ``names`` {lang: name} or ``name``
    (English), ``category`` (or the reference data's ``kind``), ``protection_radius_m``
    (or ``radius_m``) for points, ``buffer_m``, ``operator``, ``valid_from``,
    ``valid_until``, ``reconfirm_by`` (default ``now + reconfirm_after``), ``note``."""
    limits = limits or Limits(max_vertices=max_vertices)
    out: list[SiteNotice] = []
    seen: set[str] = set()
    for i, f in enumerate(_features(data)):
        fid = f.get("id") if isinstance(f, dict) else None
        if not isinstance(f, dict) or f.get("type") != "Feature":
            raise _fail(i, fid, "not a GeoJSON Feature")
        p = f.get("properties")
        if not isinstance(p, dict):
            raise _fail(i, fid, "the feature has no properties object")
        fid = p.get("site_id", fid)
        names = p.get("names", {"en": p["name"]} if "name" in p else None)
        category = p.get("category", KIND_TO_CATEGORY.get(str(p.get("kind"))))
        if category is None and "kind" in p:
            category = "other"
        site: dict[str, Any] = {
            "names": names,
            "category": category,
            "geometry": f.get("geometry"),
            "buffer_m": p.get("buffer_m", 0.0),
            "reconfirm_by": p.get("reconfirm_by", (now + reconfirm_after).isoformat()),
        }
        radius = p.get("protection_radius_m", p.get("radius_m"))
        if radius is not None:
            site["protection_radius_m"] = radius
        for key in ("operator", "valid_from", "valid_until", "altitude"):
            if p.get(key) is not None:
                site[key] = p[key]
        note = p.get("note", p.get("status_note"))
        if note:
            site["note"] = note
        payload = {
            "notice_id": f"{notice_prefix}.{i}",
            "action": "add",
            "site_id": fid,
            "site": site,
        }
        n = _notice(i, fid, payload, limits)
        if n.site_id in seen:
            raise _fail(i, fid, f"site id {n.site_id} appears twice in the file")
        seen.add(n.site_id)
        out.append(n)
    return out


def import_ed318(
    data: object,
    *,
    now: datetime,
    notice_prefix: str,
    reconfirm_after: timedelta = timedelta(days=90),
    max_vertices: int = DEFAULT_MAX_VERTICES,
    limits: Limits | None = None,
) -> list[SiteNotice]:
    """ED-318 geographical zones -> 'add' notices (all or nothing).

    A circle becomes a point site with that protection radius; each geometry of a
    GeometryCollection becomes its own site ``<identifier>.<n>``; a layer becomes the
    altitude band (feet converted to metres; mixed references: all altitudes); the
    widest ``limitedApplicability`` period becomes the validity window (daily schedules
    are not modelled: the whole period counts, which can only add conflicts)."""
    limits = limits or Limits(max_vertices=max_vertices)
    out: list[SiteNotice] = []
    for i, f in enumerate(_features(data)):
        p = f.get("properties") if isinstance(f, dict) else None
        if not isinstance(p, dict) or not isinstance(f.get("geometry"), dict):
            raise _fail(i, None, "a zone needs properties and a geometry")
        fid = p.get("identifier")
        if not isinstance(fid, str):
            raise _fail(i, fid, "a zone needs a string identifier")
        try:
            names = _ed318_names(p.get("name")) or {"en": fid}
        except ValueError as exc:
            raise _fail(i, fid, f"name: {exc}") from None
        geom = f["geometry"]
        parts = geom.get("geometries") if geom.get("type") == "GeometryCollection" else [geom]
        if not isinstance(parts, list) or not parts:
            raise _fail(i, fid, "empty GeometryCollection")
        base: dict[str, Any] = {
            "names": names,
            "category": "other",
            "reconfirm_by": (now + reconfirm_after).isoformat(),
        }
        try:
            base.update(_ed318_window(p))
        except (TypeError, ValueError, AttributeError) as exc:
            raise _fail(i, fid, f"limitedApplicability: {exc}") from None
        reasons = p.get("reason")
        if isinstance(reasons, list) and reasons:
            base["note"] = "ED-318 reason: " + ", ".join(str(r) for r in reasons)[:300]
        for j, g in enumerate(parts):
            if not isinstance(g, dict):
                raise _fail(i, fid, f"geometry {j} is not an object")
            site = dict(base)
            extent = g.get("extent")
            site["geometry"] = {"type": g.get("type"), "coordinates": g.get("coordinates")}
            if isinstance(extent, dict) and extent.get("subType") == "Circle":
                site["protection_radius_m"] = extent.get("radius")
            try:
                band = _ed318_band(g.get("layer"))
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                raise _fail(i, fid, f"layer: {exc}") from None
            if band:
                site["altitude"] = band
            sid = fid if len(parts) == 1 else f"{fid}.{j + 1}"
            payload = {
                "notice_id": f"{notice_prefix}.{i}.{j}",
                "action": "add",
                "site_id": sid,
                "site": site,
            }
            out.append(_notice(i, fid, payload, limits))
    return out


def _ed318_names(value: object) -> dict[str, str]:
    """ED-318 ``name``: absent, or a list of ``{"text", "lang"}`` (lang defaults to en).
    Anything else is refused with what is wrong, never a raw exception."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ValueError("must be a list of {text, lang} objects")
    names: dict[str, str] = {}
    for n in value:
        if not isinstance(n, dict):
            raise ValueError("each entry must be a {text, lang} object")
        text, lang = n.get("text"), n.get("lang", "en")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("each entry needs a non-empty string text")
        if not isinstance(lang, str) or not lang.strip():
            raise ValueError("lang must be a language code string")
        names[lang.strip().lower()] = text
    return names


def _ed318_window(p: dict[str, Any]) -> dict[str, str]:
    periods = p.get("limitedApplicability") or []
    starts = [x.get("startDateTime") for x in periods]
    ends = [x.get("endDateTime") for x in periods]
    if not periods or None in starts or None in ends:
        return {}
    return {"valid_from": min(starts), "valid_until": max(ends)}


def _ed318_band(layer: object) -> dict[str, Any] | None:
    if layer is None:
        return None
    if not isinstance(layer, dict):
        raise ValueError("not an object")
    ref_lo, ref_hi = layer.get("lowerReference"), layer.get("upperReference")
    if ref_lo != ref_hi:
        return None  # mixed references: protect all altitudes
    scale = _UOM[str(layer.get("uom", "m"))]
    lo, hi = layer["lower"], layer["upper"]
    if isinstance(lo, bool) or isinstance(hi, bool):
        raise ValueError("lower/upper must be numbers")
    return {"lower_m": float(lo) * scale, "upper_m": float(hi) * scale, "reference": ref_lo}


def reference_sites(*, now: datetime, notice_prefix: str = "reference") -> list[SiteNotice]:
    """The shipped reference data (Ukraine's nuclear and other power plants) as notices."""
    raw = resources.files("hotline.deconfliction").joinpath("data", REFERENCE_FILE).read_bytes()
    return parse_import(
        raw, now=now, notice_prefix=notice_prefix, reconfirm_after=timedelta(days=365)
    )


# ------------------------------------------------------------------------- export


def _geometry_json(shape_src: Site | Activity) -> dict[str, Any]:
    return shape_src.geometry.model_dump(mode="json")


def export_geojson(registry: Registry, *, now: datetime) -> dict[str, Any]:
    """Live sites and activities as one GeoJSON FeatureCollection (RFC 7946)."""
    feats: list[dict[str, Any]] = []
    for rec in registry.sites():
        site = rec.current
        if not isinstance(site, Site):
            continue
        props = {
            "kind": "site",
            "site_id": rec.id,
            "notified_by": rec.owner,
            "version": len(rec.versions),
            "stale": registry.is_stale(rec.id, now),
            **site.model_dump(mode="json", exclude={"geometry"}, exclude_none=True),
        }
        feats.append(
            {"type": "Feature", "id": rec.id, "geometry": _geometry_json(site), "properties": props}
        )
    for rec in registry.activities():
        act = rec.current
        if not isinstance(act, Activity):
            continue
        props = {
            "kind": "activity",
            "activity_id": rec.id,
            "notified_by": rec.owner,
            "version": len(rec.versions),
            **act.model_dump(mode="json", exclude={"geometry"}, exclude_none=True),
        }
        feats.append(
            {"type": "Feature", "id": rec.id, "geometry": _geometry_json(act), "properties": props}
        )
    return {"type": "FeatureCollection", "features": feats, "notice": INFORMATION_NOT_PERMISSION}


def export_conflicts_geojson(registry: Registry) -> dict[str, Any]:
    """Open conflicts: a LineString between the nearest points of site and activity
    (a Point where they overlap), with both parties, distance and window."""
    feats: list[dict[str, Any]] = []
    for c in registry.conflicts():
        site, act = registry.site(c.site_id).current, registry.activity(c.activity_id).current
        if site is None or act is None:
            continue
        _, p, q = geometry.nearest(site.geometry.shape(), act.geometry.shape())
        geom: dict[str, Any] = (
            {"type": "Point", "coordinates": list(p)}
            if c.distance_m == 0
            else {"type": "LineString", "coordinates": [list(p), list(q)]}
        )
        feats.append(
            {
                "type": "Feature",
                "id": f"{c.site_id}|{c.activity_id}",
                "geometry": geom,
                "properties": {
                    "site_id": c.site_id,
                    "activity_id": c.activity_id,
                    "site_station": c.site_station,
                    "activity_station": c.activity_station,
                    "distance_m": round(c.distance_m, 3),
                    "reach_m": c.reach_m,
                    "window_start": c.window_start.isoformat() if c.window_start else None,
                    "window_end": c.window_end.isoformat() if c.window_end else None,
                    "rule": c.rule,
                },
            }
        )
    return {"type": "FeatureCollection", "features": feats, "notice": INFORMATION_NOT_PERMISSION}


def export_ed318(registry: Registry, *, issued: datetime) -> dict[str, Any]:
    """Live sites as ED-318 geographical zones: a point site is a circle of radius
    protection radius + buffer; a polygon with a buffer is exported buffered (built in
    its local AEQD frame). Zones are typed CONDITIONAL: information, not permission."""
    feats: list[dict[str, Any]] = []
    for rec in registry.sites():
        site = rec.current
        if not isinstance(site, Site):
            continue
        shape = site.geometry.shape()
        if shape.is_point:
            geom: dict[str, Any] = {
                "type": "Point",
                "coordinates": [shape.anchor_lon, shape.anchor_lat],
                "extent": {"subType": "Circle", "radius": site.reach_m},
            }
        elif site.reach_m > 0:
            rings = geometry.buffer_rings(shape, site.reach_m)
            geom = {"type": "Polygon", "coordinates": [r.tolist() for r in rings]}
        else:
            geom = _geometry_json(site)
        if site.altitude is not None:
            geom["layer"] = {
                "lower": site.altitude.lower_m,
                "upper": site.altitude.upper_m,
                "lowerReference": site.altitude.reference,
                "upperReference": site.altitude.reference,
                "uom": "m",
            }
        props: dict[str, Any] = {
            "identifier": rec.id,
            "name": [{"text": t, "lang": lang} for lang, t in site.names.items()],
            "variant": "COMMON",
            "type": "CONDITIONAL",
            "reason": ["SENSITIVE"],
            "otherReasonInfo": [
                {
                    "text": f"notified protected site ({site.category}); "
                    + INFORMATION_NOT_PERMISSION,
                    "lang": "en",
                }
            ],
        }
        if site.valid_from or site.valid_until:
            props["limitedApplicability"] = [
                {
                    k: v.isoformat().replace("+00:00", "Z")
                    for k, v in (
                        ("startDateTime", site.valid_from),
                        ("endDateTime", site.valid_until),
                    )
                    if v
                }
            ]
        feats.append({"type": "Feature", "geometry": geom, "properties": props})
    return {
        "type": "FeatureCollection",
        "title": "hotline protected sites",
        "metadata": {"issued": issued.isoformat().replace("+00:00", "Z")},
        "features": feats,
    }


__all__ = [
    "SITE_CATEGORIES",
    "export_conflicts_geojson",
    "export_ed318",
    "export_geojson",
    "import_ed318",
    "import_geojson",
    "is_ed318",
    "parse_import",
    "reference_sites",
]
