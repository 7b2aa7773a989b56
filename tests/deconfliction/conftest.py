"""Shared builders for the deconfliction tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "vectors" / "data"
T0 = datetime(2025, 6, 1, tzinfo=UTC)
ZNPP = (34.5863, 47.5119)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def site_payload(
    site_id: str = "ZNPP",
    *,
    notice_id: str = "s1",
    action: str = "add",
    coords: tuple[float, float] = ZNPP,
    radius: float = 30_000.0,
    category: str = "nuclear_power_plant",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    reconfirm_by: datetime = T0 + timedelta(days=30),
    **extra: Any,
) -> dict[str, Any]:
    site: dict[str, Any] = {
        "names": {"en": "Zaporizhzhia NPP", "uk": "Запорізька АЕС"},
        "category": category,
        "geometry": {"type": "Point", "coordinates": list(coords)},
        "protection_radius_m": radius,
        "reconfirm_by": iso(reconfirm_by),
        **extra,
    }
    if valid_from:
        site["valid_from"] = iso(valid_from)
    if valid_until:
        site["valid_until"] = iso(valid_until)
    return {
        "type": "site_notice",
        "notice_id": notice_id,
        "action": action,
        "site_id": site_id,
        "site": site,
    }


def activity_payload(
    activity_id: str = "A1",
    *,
    notice_id: str = "a1",
    action: str = "add",
    geometry: dict[str, Any] | None = None,
    radius: float | None = 0.0,
    start: datetime = T0,
    end: datetime = T0 + timedelta(hours=6),
    band: tuple[float, float] = (0.0, 3000.0),
    **extra: Any,
) -> dict[str, Any]:
    act: dict[str, Any] = {
        "kind": "artillery",
        "geometry": geometry or {"type": "Point", "coordinates": [34.6, 47.55]},
        "altitude": {"lower_m": band[0], "upper_m": band[1]},
        "window": {"start": iso(start), "end": iso(end)},
        **extra,
    }
    if radius is not None and act["geometry"]["type"] == "Point":
        act["radius_m"] = radius
    return {
        "type": "activity_notice",
        "notice_id": notice_id,
        "action": action,
        "activity_id": activity_id,
        "activity": act,
    }
