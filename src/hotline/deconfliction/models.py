"""Message payloads of deconfliction: site notices, activity notices, concern steps.

Owns the wire shape of these three message types (each with a ``type`` discriminator),
their strict validation and their JSON Schemas. Parse, don't validate: ``from_payload``
turns an untrusted dict into a checked, frozen model in one step or raises InputError
(GeometryError for geometry); nothing unchecked leaves this module. Pure: no I/O.

A notification is information, never permission: a notified site or activity tells the
other side what is there or what is planned; it grants nothing and asks no consent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from hotline.errors import InputError

from . import geometry
from .geometry import MAX_RADIUS_M, Shape
from .limits import DEFAULT_MAX_VERTICES, Limits, check_size

SITE_CATEGORIES = (
    "nuclear_power_plant",
    "power_station",
    "substation",
    "dam",
    "water_works",
    "hospital",
    "school",
    "humanitarian_office",
    "humanitarian_warehouse",
    "other",
)
ACTIVITY_KINDS = ("air_operation", "artillery", "convoy", "demining", "repair_crew", "other")
SiteCategory = Literal[
    "nuclear_power_plant",
    "power_station",
    "substation",
    "dam",
    "water_works",
    "hospital",
    "school",
    "humanitarian_office",
    "humanitarian_warehouse",
    "other",
]
ActivityKind = Literal["air_operation", "artillery", "convoy", "demining", "repair_crew", "other"]

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LangTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")]
Metres = Annotated[float, Field(ge=0.0, le=MAX_RADIUS_M, allow_inf_nan=False)]


def _rfc3339(value: object) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an RFC 3339 date-time") from None
    if not isinstance(value, datetime):
        raise ValueError("a date-time is an RFC 3339 string such as 2025-01-31T12:00:00Z")
    if value.tzinfo is None:
        raise ValueError("a date-time needs a UTC offset (end it with Z)")
    return value.astimezone(UTC)


Timestamp = Annotated[
    datetime, BeforeValidator(_rfc3339), Field(json_schema_extra={"format": "date-time"})
]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class GeoJSONGeometry(_Model):
    """An RFC 7946 Point, LineString or Polygon (checked further by geometry.py)."""

    type: Literal["Point", "LineString", "Polygon"]
    coordinates: list[Any]

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Self:
        limits = (info.context or {}).get("limits") or Limits()
        geometry.parse_geometry(
            self.model_dump(), max_vertices=limits.max_vertices, max_rings=limits.max_rings
        )
        return self

    def shape(self) -> Shape:
        """The checked, densified shape (already validated when the model was built)."""
        return geometry.parse_geometry(self.model_dump(), max_vertices=2**62, max_rings=2**62)


class AltitudeBand(_Model):
    """Altitude band in metres; ``reference`` WGS84 (ellipsoid), AMSL or AGL."""

    lower_m: float = Field(ge=-1000.0, le=100_000.0, allow_inf_nan=False)
    upper_m: float = Field(ge=-1000.0, le=100_000.0, allow_inf_nan=False)
    reference: Literal["WGS84", "AMSL", "AGL"] = "WGS84"

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.upper_m < self.lower_m:
            raise ValueError("upper_m is below lower_m")
        return self


class TimeWindow(_Model):
    """Half-open window [start, end) in UTC."""

    start: Timestamp
    end: Timestamp

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class Site(_Model):
    """A protected site: point with a protection radius, or polygon; plus its own buffer."""

    names: dict[LangTag, ShortText] = Field(min_length=1, max_length=16)
    category: SiteCategory
    geometry: GeoJSONGeometry
    protection_radius_m: Metres | None = None
    buffer_m: Metres = 0.0
    altitude: AltitudeBand | None = None
    operator: ShortText | None = None
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None
    reconfirm_by: Timestamp
    note: Text | None = None

    @model_validator(mode="after")
    def _shape_rules(self) -> Self:
        if self.geometry.type == "LineString":
            raise ValueError("a site is a Point with a protection radius or a Polygon")
        if self.geometry.type == "Point" and not self.protection_radius_m:
            raise ValueError("a Point site needs protection_radius_m > 0")
        if self.geometry.type == "Polygon" and self.protection_radius_m is not None:
            raise ValueError("a Polygon site has no protection_radius_m; use buffer_m")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    @property
    def reach_m(self) -> float:
        """Distance from the footprint that the site protects (radius plus buffer)."""
        return (self.protection_radius_m or 0.0) + self.buffer_m


class Activity(_Model):
    """A planned activity: area (Polygon), corridor (LineString plus half-width) or
    point with radius; an altitude band and a time window."""

    kind: ActivityKind
    geometry: GeoJSONGeometry
    radius_m: Metres | None = None
    half_width_m: Metres | None = None
    altitude: AltitudeBand
    window: TimeWindow
    description: Text | None = None

    @model_validator(mode="after")
    def _shape_rules(self) -> Self:
        t = self.geometry.type
        if t == "LineString" and not self.half_width_m:
            raise ValueError("a corridor (LineString) needs half_width_m > 0")
        if t != "LineString" and self.half_width_m is not None:
            raise ValueError("half_width_m is only for a corridor (LineString)")
        if t != "Point" and self.radius_m is not None:
            raise ValueError("radius_m is only for a Point activity")
        return self

    @property
    def reach_m(self) -> float:
        return (self.radius_m or 0.0) + (self.half_width_m or 0.0)


class _Payload(_Model):
    def to_payload(self) -> dict[str, Any]:
        """The JSON-ready dict sent on the line."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_payload(
        cls,
        data: object,
        *,
        max_vertices: int = DEFAULT_MAX_VERTICES,
        limits: Limits | None = None,
    ) -> Self:
        """Parse an untrusted dict (decoded JSON) into a checked model, or raise
        InputError / GeometryError with the first problem found. The size limits
        (``limits``, or the defaults with ``max_vertices``) are checked first, on the raw
        structure, before the schema or any geometry is looked at."""
        if not isinstance(data, dict):
            raise InputError(f"a {cls.__name__} payload must be a JSON object")
        limits = limits or Limits(max_vertices=max_vertices)
        check_size(data, limits)
        try:
            return cls.model_validate(data, context={"limits": limits})
        except ValidationError as exc:
            raise _input_error(cls.__name__, exc) from None
        except (RecursionError, OverflowError) as exc:
            raise InputError(f"{cls.__name__} payload is too deep or too large") from exc


def _input_error(name: str, exc: ValidationError) -> InputError:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top)"
    return InputError(
        f"{name}.{where}: {first['msg']}",
        hint=f"{exc.error_count()} problem(s); see docs/schemas/{_schema_name(name)}.json",
    )


def _schema_name(name: str) -> str:
    return {"SiteNotice": "site_notice", "ActivityNotice": "activity_notice"}.get(name, "concern")


class SiteNotice(_Payload):
    """add / modify carry the whole site; withdraw carries a reason; reconfirm a new
    reconfirmation date. Every version is kept by the registry."""

    type: Literal["site_notice"] = "site_notice"
    notice_id: Ident
    action: Literal["add", "modify", "withdraw", "reconfirm"]
    site_id: Ident
    site: Site | None = None
    reconfirm_by: Timestamp | None = None
    reason: Text | None = None

    @model_validator(mode="after")
    def _action_rules(self) -> Self:
        if self.action in ("add", "modify") and self.site is None:
            raise ValueError(f"a site notice '{self.action}' carries the site")
        if self.action in ("withdraw", "reconfirm") and self.site is not None:
            raise ValueError(f"a site notice '{self.action}' carries no site")
        if (self.action == "reconfirm") != (self.reconfirm_by is not None):
            raise ValueError("reconfirm_by is given with, and only with, action 'reconfirm'")
        return self


class ActivityNotice(_Payload):
    """add / modify carry the whole activity; cancel carries an optional reason."""

    type: Literal["activity_notice"] = "activity_notice"
    notice_id: Ident
    action: Literal["add", "modify", "cancel"]
    activity_id: Ident
    activity: Activity | None = None
    reason: Text | None = None

    @model_validator(mode="after")
    def _action_rules(self) -> Self:
        if (self.action == "cancel") == (self.activity is not None):
            raise ValueError("add / modify carry the activity; cancel carries none")
        return self


class ConcernAbout(_Model):
    """What a concern is about: notified sites, activities, and/or an incident."""

    site_ids: tuple[Ident, ...] = Field(default=(), max_length=100, strict=False)
    activity_ids: tuple[Ident, ...] = Field(default=(), max_length=100, strict=False)
    incident: Text | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.site_ids or self.activity_ids or self.incident):
            raise ValueError("a concern names at least one site, activity or incident")
        return self


class Concern(_Payload):
    """One step of a concern: raise → acknowledge → answer → close, each a message."""

    type: Literal["concern"] = "concern"
    concern_id: Ident
    step: Literal["raise", "acknowledge", "answer", "close"]
    about: ConcernAbout | None = None
    asked: Text | None = None
    text: Text | None = None
    template: Literal["iaea_five_principles"] | None = None

    @model_validator(mode="after")
    def _step_rules(self) -> Self:
        if self.step == "raise":
            if self.about is None or self.asked is None:
                raise ValueError("raising a concern names what it is about and what is asked")
        elif self.about is not None or self.asked is not None or self.template is not None:
            raise ValueError(f"step '{self.step}' refers to the raised concern by concern_id only")
        if self.step == "answer" and self.text is None:
            raise ValueError("an answer carries text")
        return self


Payload = SiteNotice | ActivityNotice | Concern
PAYLOAD_TYPES: dict[str, type[SiteNotice] | type[ActivityNotice] | type[Concern]] = {
    "site_notice": SiteNotice,
    "activity_notice": ActivityNotice,
    "concern": Concern,
}


def parse_payload(
    data: object, *, max_vertices: int = DEFAULT_MAX_VERTICES, limits: Limits | None = None
) -> Payload:
    """Parse any deconfliction payload by its ``type`` discriminator (size limits first)."""
    kind = data.get("type") if isinstance(data, dict) else None
    cls = PAYLOAD_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InputError(
            "unknown deconfliction payload type",
            hint="type is one of " + ", ".join(PAYLOAD_TYPES),
        )
    return cls.from_payload(data, max_vertices=max_vertices, limits=limits)


def json_schemas() -> dict[str, dict[str, Any]]:
    """The published JSON Schema of each payload type, by file stem."""
    return {name: cls.model_json_schema() for name, cls in PAYLOAD_TYPES.items()}
