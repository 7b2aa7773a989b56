"""Deconfliction commands: sites, activities, conflicts and concerns, through the API.

Notification is information, never permission: what this prints says so. Site names,
ids, owners and concern steps come from peers: they are printed through
``common.plain`` (plain text), never as markup.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hotline.cli.common import DEFAULT_DATA_DIR, Api, DataDir, console, handles_errors, plain
from hotline.errors import InputError

NOTE = "[dim]Notification is information, never permission.[/]"
Peer = Annotated[str | None, typer.Option("--peer", help="Send to this peer only (default: all).")]


def register(app: typer.Typer) -> None:
    groups: list[tuple[str, str, list[tuple[str, Callable[..., None]]]]] = [
        ("sites", "Protected sites: import, reference data, list, show, export.", [
            ("import", sites_import), ("reference", sites_reference), ("list", sites_list),
            ("show", sites_show), ("export", sites_export)]),
        ("activity", "Planned activities: notify, list, cancel.", [
            ("notify", activity_notify), ("list", activity_list), ("cancel", activity_cancel)]),
        ("concern", "Concerns: raised → acknowledged → answered → closed.", [
            ("raise", concern_raise), ("ack", concern_ack), ("answer", concern_answer),
            ("close", concern_close), ("list", concern_list)]),
    ]  # fmt: skip
    for group, help_text, commands in groups:
        sub = typer.Typer(help=help_text, no_args_is_help=True)
        for name, fn in commands:
            sub.command(name)(fn)
        app.add_typer(sub, name=group)
    app.command("conflicts")(conflicts)


def _sent(r: dict[str, Any]) -> None:
    for s in r["sent"]:
        console.print(
            plain(f"sent to {s['peer']} as message {s['message_id']} (sequence {s['sequence']})")
        )
    console.print(NOTE)


@handles_errors
def sites_import(
    file: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection or ED-318 zones.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    peer: Peer = None,
) -> None:
    """Import protected sites from a file, all or nothing, and notify them to the peers.

    The whole file is checked first: one bad feature names itself and nothing is sent.
    Example: hotline sites import hospitals.geojson -d bravo
    """
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from None
    with console.status(plain(f"checking and notifying {file.name}")):
        r = Api(data_dir).call(
            "POST", "/api/v1/sites/import", content=raw, params={"peer": peer} if peer else {}
        )
    console.print(plain((f"{len(r['imported'])} sites notified", "green")))
    console.print(NOTE)


@handles_errors
def sites_reference(data_dir: DataDir = DEFAULT_DATA_DIR, peer: Peer = None) -> None:
    """Notify the shipped reference data: Ukraine's nuclear and other power plants.

    Source: World Resources Institute, Global Power Plant Database (CC BY 4.0); example
    protection radii, not an official standard. Example: hotline sites reference -d bravo
    """
    with console.status("notifying the reference sites"):
        r = Api(data_dir).call(
            "POST", "/api/v1/sites/reference", params={"peer": peer} if peer else {}
        )
    console.print(plain((f"{len(r['imported'])} reference sites notified", "green")))
    console.print(NOTE)


@handles_errors
def sites_list(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    stale: Annotated[bool, typer.Option("--stale", help="Only sites past reconfirmation.")] = False,
) -> None:
    """List live protected sites with owner, category and reconfirmation state.

    Example: hotline sites list -d alpha
    """
    r = Api(data_dir).call("GET", "/api/v1/sites", params={"stale": stale})
    t = Table("id", "name", "category", "owner", "version", "reconfirm by", "stale")
    for s in r["sites"]:
        cur = s["current"] or {}
        t.add_row(
            plain(s["id"]),
            plain(next(iter((cur.get("names") or {"": "-"}).values()))),
            plain(cur.get("category", "-")),
            plain(s["owner"]),
            plain(len(s["versions"])),
            plain(str(s["reconfirm_by"] or "-")[:10]),
            plain(("yes", "red")) if s["stale"] else plain("no"),
        )
    console.print(t)
    console.print(NOTE)


@handles_errors
def sites_show(site_id: str, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Show one site with every version: who notified what, when, who acknowledged.

    Example: hotline sites show UA-NPP-ZNPP -d alpha
    """
    doc = Api(data_dir).call("GET", f"/api/v1/sites/{site_id}")
    for line in json.dumps(doc, indent=2, ensure_ascii=False).splitlines():
        console.print(plain(line), soft_wrap=True)


@handles_errors
def sites_export(
    out: Annotated[Path, typer.Argument(help="File to write.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    fmt: Annotated[str, typer.Option("--format", help="geojson, ed318 or conflicts.")] = "geojson",
) -> None:
    """Export the registry (GeoJSON or EUROCAE ED-318) or the open conflicts (GeoJSON).

    Example: hotline sites export registry.json --format ed318 -d alpha
    """
    if fmt not in ("geojson", "ed318", "conflicts"):
        raise InputError("format is geojson, ed318 or conflicts")
    doc = Api(data_dir).call("GET", "/api/v1/registry/export", params={"format": fmt})
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    console.print(plain(f"written {out}"))


def _when(value: str) -> str:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time (2026-11-25T06:00Z)") from None
    if t.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no time zone: add Z for UTC")
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@handles_errors
def activity_notify(
    start: Annotated[str, typer.Option("--from", help="Start, ISO 8601 with zone.")],
    end: Annotated[str, typer.Option("--to", help="End, ISO 8601 with zone.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    point: Annotated[
        str | None, typer.Option("--point", help="LAT,LON of a point activity.")
    ] = None,
    radius_km: Annotated[
        float | None, typer.Option("--radius-km", help="Radius around --point.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="GeoJSON geometry or Feature.")
    ] = None,
    half_width_km: Annotated[
        float | None, typer.Option(help="Corridor half-width (LineString).")
    ] = None,
    alt_min: Annotated[float, typer.Option("--alt-min", help="Lowest altitude, metres.")] = 0.0,
    alt_max: Annotated[
        float, typer.Option("--alt-max", help="Highest altitude, metres.")
    ] = 10000.0,
    kind: Annotated[
        str, typer.Option(help="air_operation, artillery, convoy, demining, repair_crew or other.")
    ] = "other",
    activity_id: Annotated[
        str | None, typer.Option("--id", help="Activity id (default: new).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Free text.")] = None,
    peer: Peer = None,
) -> None:
    """Notify a planned activity: a point with radius, an area or a corridor, with an
    altitude band and a time window. Conflicts with protected sites are raised at once.

    Example: hotline activity notify --point 47.51,34.58 --radius-km 2
    --from 2026-11-26T06:00Z --to 2026-11-26T10:00Z --kind repair_crew -d alpha
    """
    if (point is None) == (file is None):
        raise InputError("give either --point LAT,LON (with --radius-km) or --file GEOJSON")
    activity: dict[str, Any] = {
        "kind": kind,
        "window": {"start": _when(start), "end": _when(end)},
        "altitude": {"lower_m": alt_min, "upper_m": alt_max},
    }
    if point is not None:
        try:
            lat, lon = (float(x) for x in point.split(","))
        except ValueError:
            raise typer.BadParameter("--point is LAT,LON in degrees, e.g. 47.51,34.58") from None
        activity["geometry"] = {"type": "Point", "coordinates": [lon, lat]}
        if radius_km is not None:
            activity["radius_m"] = radius_km * 1000
    elif file is not None:
        try:
            geo = json.loads(file.read_bytes())
        except OSError as exc:
            raise InputError(f"cannot read {file}: {exc.strerror}") from None
        except ValueError as exc:
            raise InputError(
                f"{file} is not JSON: {exc}", hint="give a GeoJSON geometry or Feature"
            ) from None
        activity["geometry"] = geo.get("geometry", geo) if isinstance(geo, dict) else geo
        if half_width_km is not None:
            activity["half_width_m"] = half_width_km * 1000
    if description:
        activity["description"] = description
    aid = activity_id or f"act-{uuid.uuid4().hex[:10]}"
    notice = {
        "type": "activity_notice",
        "notice_id": f"{aid}-add-{uuid.uuid4().hex[:6]}",
        "action": "add",
        "activity_id": aid,
        "activity": activity,
    }
    api = Api(data_dir)
    _sent(api.call("POST", "/api/v1/notices", json={"notice": notice, "peer": peer}))
    found = [
        c for c in api.call("GET", "/api/v1/conflicts")["conflicts"] if c["activity_id"] == aid
    ]
    for c in found:
        console.print(
            plain(("CONFLICT", "bold red"), f" with site {c['site_id']}: "
                 f"{c['distance_m']:,.0f} m (protected {c['protected_distance_m']:,.0f} m); "
                 f"draft concern {c['draft_concern']['concern_id']}")
        )  # fmt: skip
    console.print(plain(f"activity id: {aid}"))


@handles_errors
def activity_list(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """List live activities. Example: hotline activity list -d alpha"""
    r = Api(data_dir).call("GET", "/api/v1/activities")
    t = Table("id", "kind", "owner", "from", "to", "version")
    for a in r["activities"]:
        cur = a["current"] or {}
        w = cur.get("window", {})
        t.add_row(
            plain(a["id"]),
            plain(cur.get("kind", "-")),
            plain(a["owner"]),
            plain(w.get("start", "-")),
            plain(w.get("end", "-")),
            plain(len(a["versions"])),
        )
    console.print(t)
    console.print(NOTE)


@handles_errors
def activity_cancel(
    activity_id: str,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    peer: Peer = None,
    reason: Annotated[str | None, typer.Option(help="Why.")] = None,
) -> None:
    """Cancel an activity this station notified; its conflicts end.

    Example: hotline activity cancel act-1a2b3c -d alpha
    """
    notice: dict[str, Any] = {
        "type": "activity_notice",
        "action": "cancel",
        "notice_id": f"{activity_id}-cancel-{uuid.uuid4().hex[:6]}"[:64],
        "activity_id": activity_id,
    }
    if reason:
        notice["reason"] = reason
    _sent(Api(data_dir).call("POST", "/api/v1/notices", json={"notice": notice, "peer": peer}))


@handles_errors
def conflicts(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """List open conflicts between activities and protected sites, with draft concerns.

    Example: hotline conflicts -d bravo
    """
    r = Api(data_dir).call("GET", "/api/v1/conflicts")
    if not r["conflicts"]:
        console.print("[green]no open conflicts[/]")
    for c in r["conflicts"]:
        console.print(
            plain(
                ("CONFLICT", "bold red"),
                f" site {c['site_id']} ({c['site_station']}) ↔ "
                f"activity {c['activity_id']} ({c['activity_station']}): "
                f"{c['distance_m']:,.0f} m, protected {c['protected_distance_m']:,.0f} m, "
                f"window {c['window_start'] or 'open'} – {c['window_end'] or 'open'}; "
                "draft concern ",
                (c["draft_concern"]["concern_id"], "bold"),
            )
        )
    console.print(NOTE)


@handles_errors
def concern_raise(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    draft: Annotated[str | None, typer.Option("--draft", help="Send this draft concern.")] = None,
    site: Annotated[list[str] | None, typer.Option("--site", help="Site id (repeatable).")] = None,
    activity: Annotated[list[str] | None, typer.Option("--activity", help="Activity id.")] = None,
    incident: Annotated[str | None, typer.Option(help="An incident it is about.")] = None,
    asked: Annotated[str | None, typer.Option(help="What is asked.")] = None,
    peer: Peer = None,
) -> None:
    """Raise a concern: the draft of a conflict (--draft ID), or your own.

    Example: hotline concern raise --draft c-1a2b3c4d5e6f -d bravo
    """
    api = Api(data_dir)
    if draft is not None:
        _sent(api.call("POST", f"/api/v1/concerns/{draft}/raise", json={"peer": peer}))
        return
    if not asked or not (site or activity or incident):
        raise InputError("name --site, --activity or --incident, and --asked (or use --draft)")
    about: dict[str, Any] = {"site_ids": site or [], "activity_ids": activity or []}
    if incident:
        about["incident"] = incident
    cid = f"c-{uuid.uuid4().hex[:12]}"
    _step(api, {"concern_id": cid, "step": "raise", "about": about, "asked": asked}, peer)
    console.print(plain(f"concern id: {cid}"))


def _step(api: Api, step: dict[str, Any], peer: str | None) -> None:
    _sent(
        api.call(
            "POST", "/api/v1/notices", json={"notice": {"type": "concern", **step}, "peer": peer}
        )
    )


@handles_errors
def concern_ack(concern_id: str, data_dir: DataDir = DEFAULT_DATA_DIR, peer: Peer = None) -> None:
    """Acknowledge a concern raised by a peer. Example: hotline concern ack c-1a2b3c -d alpha"""
    _step(Api(data_dir), {"concern_id": concern_id, "step": "acknowledge"}, peer)


@handles_errors
def concern_answer(
    concern_id: str,
    text: Annotated[str, typer.Option("--text", help="The answer.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    peer: Peer = None,
) -> None:
    """Answer a concern. Example: hotline concern answer c-1a2b3c --text "Moved east" -d alpha"""
    _step(Api(data_dir), {"concern_id": concern_id, "step": "answer", "text": text}, peer)


@handles_errors
def concern_close(concern_id: str, data_dir: DataDir = DEFAULT_DATA_DIR, peer: Peer = None) -> None:
    """Close a concern you raised, once answered.

    Example: hotline concern close c-1a2b3c -d bravo
    """
    _step(Api(data_dir), {"concern_id": concern_id, "step": "close"}, peer)


@handles_errors
def concern_list(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    all_: Annotated[bool, typer.Option("--all", help="Closed ones too.")] = False,
) -> None:
    """List concerns and their state. Example: hotline concern list -d bravo"""
    r = Api(data_dir).call("GET", "/api/v1/concerns", params={"all": all_})
    t = Table("id", "raised by", "state", "about", "steps")
    for c in r["concerns"]:
        about = c["raised"].get("about", {})
        t.add_row(
            plain(c["concern_id"]),
            plain(c["raised_by"]),
            plain(c["state"]),
            plain(
                ", ".join(
                    str(x) for x in [*about.get("site_ids", []), *about.get("activity_ids", [])]
                )
            ),
            plain(" → ".join(f"{s['step']} ({s['by']})" for s in c["steps"])),
        )
    console.print(t)
