"""Operator API for deconfliction: sites, activities, conflicts, concerns, import/export.

Owns the HTTP shapes. Notification is information, never permission: every listing says
so in its ``notice`` field. Request bodies (a notice, up to max_request_bytes; an import
file, up to import_max_bytes) are read raw on the event loop, within the gate's limit
(``api/limits.py``), and decoded and validated in a worker thread (``parse_body``), never
by the framework on the loop. Must not touch: registry rules (the service checks notices).
"""

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hotline.api import shapes
from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.peer import read_limited
from hotline.api.routers import api_router
from hotline.service.acting import acting
from hotline.service.notices import Deconfliction
from hotline.service.registry import (
    INFORMATION_NOT_PERMISSION,
    concern_json,
    conflict_json,
    record_json,
)
from hotline.service.roles import Action, Principal
from hotline.wire.envelope import Precedence

PrecedenceName = Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
#: the import route: its body limit is the setting import_max_bytes, not max_request_bytes
IMPORT_PATH = "/api/v1/sites/import"
#: the import's dry run: the same body (and body limit) as the import, nothing sent
IMPORT_PREVIEW_PATH = "/api/v1/sites/import/preview"
#: how many sites a preview lists by name
PREVIEW_SITES = 50
NOTICES_PATH = "/api/v1/notices"
#: room in a notice request for what wraps the notice itself (notice_max_bytes)
NOTICE_ENVELOPE_BYTES = 64 * 1024


class NoticeRequest(BaseModel):
    """A site notice, activity notice or concern step (docs/schemas/), to send."""

    model_config = ConfigDict(extra="forbid")
    notice: dict[str, Any]
    peer: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")] | None = None
    precedence: PrecedenceName | None = None


class DraftRequest(BaseModel):
    """Raise a draft concern; ``asked`` and ``text``, when given, replace the draft's own
    (the officer reviewed and edited them before sending)."""

    model_config = ConfigDict(extra="forbid")
    peer: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")] | None = None
    asked: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=4000)] | None = None


Body = TypeVar("Body", bound=BaseModel)


def parse_body(model: type[Body], raw: bytes) -> Body:
    """``raw`` (JSON) as ``model``, in a worker thread; a body that does not fit is refused
    as the framework refuses one (422, ``bad_input``, naming the field)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**p, "loc": ("body", *p["loc"])} for p in problems]
        ) from None


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its body itself."""
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def registry_router(dc: Deconfliction, auth: Any) -> APIRouter:
    router = api_router(prefix="/api/v1", dependencies=[Depends(auth)], tags=["deconfliction"])
    proj = dc.projection
    Read = [Depends(allowed(Action.READ))]
    Sender = Annotated[Principal, Depends(allowed(Action.SEND))]
    Peers = [Depends(allowed(Action.PEERS))]
    Export = [Depends(allowed(Action.EXPORT))]
    limit = dc.line.settings.max_request_bytes

    async def body_of(request: Request, model: type[Body]) -> Body:
        raw = await read_limited(request, limit)
        return await asyncio.to_thread(parse_body, model, raw)

    def now() -> dt.datetime:
        return dt.datetime.fromtimestamp(dc.line.clock.now_us() / 1e6, dt.UTC)

    def sent(result: list[Any]) -> dict[str, Any]:
        return {
            "sent": [
                {"message_id": str(s.message_id), "peer": s.peer, "sequence": s.sequence}
                for s in result
            ],
            "notice": INFORMATION_NOT_PERMISSION,
        }

    @router.get("/sites", response_model=shapes.SiteList, responses=errors(), dependencies=Read)
    def list_sites(include_ended: bool = False, stale: bool = False) -> dict[str, Any]:
        """Protected sites with owner, versions and reconfirmation state."""
        proj.decode_listed("site", include_ended=include_ended)
        with proj.lock:
            recs = [
                record_json(r, proj.registry, now())
                for r in proj.registry.sites(include_ended=include_ended)
            ]
        if stale:
            recs = [r for r in recs if r.get("stale")]
        return {"sites": recs, "notice": INFORMATION_NOT_PERMISSION}

    @router.get(
        "/sites/{site_id}", response_model=shapes.Record, responses=errors(404), dependencies=Read
    )
    def get_site(site_id: str) -> dict[str, Any]:
        """One site with every version: who notified what, when, who acknowledged."""
        with proj.lock:
            return record_json(proj.registry.site(site_id), proj.registry, now())

    @router.get(
        "/activities", response_model=shapes.ActivityList, responses=errors(), dependencies=Read
    )
    def list_activities(include_ended: bool = False) -> dict[str, Any]:
        """Planned activities with owner and versions."""
        proj.decode_listed("activity", include_ended=include_ended)
        with proj.lock:
            recs = [
                record_json(r, proj.registry, now())
                for r in proj.registry.activities(include_ended=include_ended)
            ]
        return {"activities": recs, "notice": INFORMATION_NOT_PERMISSION}

    @router.get(
        "/activities/{activity_id}",
        response_model=shapes.Record,
        responses=errors(404),
        dependencies=Read,
    )
    def get_activity(activity_id: str) -> dict[str, Any]:
        """One activity with every version."""
        with proj.lock:
            return record_json(proj.registry.activity(activity_id), proj.registry, now())

    @router.get(
        "/conflicts", response_model=shapes.ConflictList, responses=errors(), dependencies=Read
    )
    def list_conflicts() -> dict[str, Any]:
        """Open conflicts, each with its draft concern, ready to send."""
        with proj.lock:
            rows = [conflict_json(oc) for oc in proj.open_conflicts.values()]
        return {"conflicts": rows, "notice": INFORMATION_NOT_PERMISSION}

    @router.get(
        "/concerns", response_model=shapes.ConcernList, responses=errors(), dependencies=Read
    )
    def list_concerns(all: bool = False) -> dict[str, Any]:
        """Open concerns (all of them with ``all=true``) and their steps."""
        with proj.lock:
            threads = proj.concerns.all() if all else proj.concerns.open()
            return {"concerns": [concern_json(t) for t in threads]}

    @router.get(
        "/concerns/{concern_id}",
        response_model=shapes.Concern,
        responses=errors(404),
        dependencies=Read,
    )
    def get_concern(concern_id: str) -> dict[str, Any]:
        """One concern and its steps."""
        with proj.lock:
            return concern_json(proj.concerns.get(concern_id))

    @router.post(
        "/notices",
        status_code=201,
        response_model=shapes.SentNotices,
        responses=errors(400, 403, 404, 503, body=True),
        openapi_extra=_documented(NoticeRequest),
    )
    async def send_notice(request: Request, who: Sender) -> dict[str, Any]:
        """Send a site notice, activity notice or concern step (checked before sending)."""
        req = await body_of(request, NoticeRequest)
        prec = Precedence[req.precedence] if req.precedence else None
        with acting(who):
            return sent(
                await dc.send_data(
                    req.notice, peer=req.peer, precedence=prec, operator=who.username
                )
            )

    @router.post(
        "/concerns/{concern_id}/raise",
        status_code=201,
        response_model=shapes.SentNotices,
        responses=errors(400, 404, 503, body=True),
        openapi_extra=_documented(DraftRequest),
    )
    async def raise_concern(concern_id: str, request: Request, who: Sender) -> dict[str, Any]:
        """Send the draft concern of an open conflict, as drafted or with the officer's
        edited ``asked`` and ``text``."""
        req = await body_of(request, DraftRequest)
        with acting(who):
            return sent(
                await dc.raise_draft(
                    concern_id,
                    peer=req.peer,
                    operator=who.username,
                    asked=req.asked,
                    text=req.text,
                )
            )

    @router.post(
        IMPORT_PATH.removeprefix("/api/v1"),
        status_code=201,
        response_model=shapes.Imported,
        responses=errors(400, 404, 503, body=True),
        dependencies=Peers,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
                "description": "A GeoJSON FeatureCollection or ED-318 zones (a file's bytes).",
            }
        },
    )
    async def import_sites(
        request: Request,
        peer: Annotated[str | None, Query(max_length=32)] = None,
        prefix: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,40}$")] = None,
    ) -> dict[str, Any]:
        """Import a GeoJSON or ED-318 file (the request body): all or nothing."""
        raw = await read_limited(request, dc.line.settings.import_max_bytes)
        notices = await dc.import_file(raw, peer=peer, prefix=prefix)
        return {"imported": [n.site_id for n in notices], "notice": INFORMATION_NOT_PERMISSION}

    @router.post(
        IMPORT_PREVIEW_PATH.removeprefix("/api/v1"),
        response_model=shapes.ImportPreview,
        responses=errors(400, 404, body=True),
        dependencies=Peers,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
                "description": "The file the import would read; nothing is sent or stored.",
            }
        },
    )
    async def preview_import(
        request: Request, peer: Annotated[str | None, Query(max_length=32)] = None
    ) -> dict[str, Any]:
        """Dry run of the import: counts and the first sites, or the import's refusal
        (naming the first bad feature). Sends nothing, stores nothing."""
        raw = await read_limited(request, dc.line.settings.import_max_bytes)
        notices = await dc.preview_import(raw, peer=peer)
        categories: dict[str, int] = {}
        sites: list[dict[str, str]] = []
        for n in notices:
            cat = n.site.category if n.site is not None else "other"
            categories[cat] = categories.get(cat, 0) + 1
            if len(sites) < PREVIEW_SITES:
                name = "" if n.site is None else next(iter(n.site.names.values()), "")
                sites.append({"site_id": n.site_id, "name": name, "category": cat})
        return {
            "count": len(notices),
            "categories": categories,
            "sites": sites,
            "recipients": dc.recipients(peer),
            "notice": INFORMATION_NOT_PERMISSION,
        }

    @router.post(
        "/sites/reference",
        status_code=201,
        response_model=shapes.Imported,
        responses=errors(400, 404, 503),
        dependencies=Peers,
    )
    async def notify_reference_sites(
        peer: Annotated[str | None, Query(max_length=32)] = None,
    ) -> dict[str, Any]:
        """Notify the shipped reference data (Ukraine's power plants; CC BY 4.0, WRI GPPD)."""
        notices = await dc.load_reference(peer=peer)
        return {"imported": [n.site_id for n in notices], "notice": INFORMATION_NOT_PERMISSION}

    @router.get(
        "/registry/export",
        response_model=shapes.RegistryExport,
        responses=errors(),
        dependencies=Export,
    )
    def export_registry(
        fmt: Annotated[Literal["geojson", "ed318", "conflicts"], Query(alias="format")] = "geojson",
    ) -> dict[str, Any]:
        from hotline.deconfliction import exchange

        with proj.lock:
            if fmt == "ed318":
                return exchange.export_ed318(proj.registry, issued=now())
            if fmt == "conflicts":
                return exchange.export_conflicts_geojson(proj.registry)
            return exchange.export_geojson(proj.registry, now=now())

    @router.get(
        "/registry/refused",
        response_model=list[shapes.RefusedNotice],
        responses=errors(),
        dependencies=Read,
    )
    def list_refused_notices() -> list[dict[str, Any]]:
        """Messages whose notice the registry did not apply, with the reason."""
        with proj.lock:
            return list(proj.refused)

    return router
