"""Watch commands against a running station's API: the duty rota (``rota show/set/clear``),
shift handovers (``handover write/show/ack``) and escalations (``escalations``).

Output fits 80 columns: one entry per line, ids in full so they can be copied. Anything
from the API (usernames, notes, peer names, channels, summary items) is printed with
``common.plain``: plain text, never markup. Must not touch: business rules (the station
decides; this module parses arguments and prints).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import typer

from hotline.cli.common import (
    DEFAULT_DATA_DIR,
    Api,
    DataDir,
    console,
    handles_errors,
    plain,
    us_to_text,
)
from hotline.errors import InputError

rota_app = typer.Typer(help="The duty rota: who is on watch when, per role.",
                       no_args_is_help=True)  # fmt: skip
handover_app = typer.Typer(help="Shift handovers: the outgoing officer's note, the "
                           "station's summary, the incoming officer's acknowledgement.",
                           no_args_is_help=True)  # fmt: skip
AT_HELP = "Only entries covering this time (e.g. 2026-11-30T08:00Z)."
ID_HELP = "Entry id (to replace an entry); default: username-start."
ONE_HELP = "One handover (in full); default: the latest ones."
ROLES = "watch_officer, senior_watch_officer, principal, administrator or auditor"


def register(app: typer.Typer) -> None:
    app.add_typer(rota_app, name="rota")
    app.add_typer(handover_app, name="handover")
    app.command("escalations")(escalations)
    rota_app.command("show")(rota_show)
    rota_app.command("set")(rota_set)
    rota_app.command("clear")(rota_clear)
    handover_app.command("write")(handover_write)
    handover_app.command("show")(handover_show)
    handover_app.command("ack")(handover_ack)


def parse_time(text: str) -> int:
    """An ISO 8601 time with a zone (``2026-11-30T08:00Z``) in microseconds."""
    try:
        t = dt.datetime.fromisoformat(re.sub(r"Z$", "+00:00", text.strip()))
    except ValueError:
        raise InputError(f"{text!r} is not a time", code="bad_time_text",
                         hint="write it as 2026-11-30T08:00Z") from None  # fmt: skip
    if t.tzinfo is None:
        raise InputError(f"{text!r} has no zone", code="bad_time_text",
                         hint="add Z (UTC) or an offset: 2026-11-30T08:00Z")  # fmt: skip
    return int(t.timestamp() * 1_000_000)


def _short(us: int | None) -> str:
    """A time in 17 characters (``2026-11-30 08:00Z``)."""
    return us_to_text(us)[:16] + "Z" if us is not None else "-"


# --- the rota ---------------------------------------------------------------------------


@handles_errors
def rota_show(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    at: Annotated[str | None, typer.Option("--at", help=AT_HELP)] = None,
    role: Annotated[str | None, typer.Option("--role", help=f"Only this role: {ROLES}.")] = None,
) -> None:
    """Show who is on watch now per role, then the rota's entries.

    Example: hotline rota show --role watch_officer -d alpha
    """
    api = Api(data_dir)
    now = api.call("GET", "/api/v1/rota/now")
    console.print(plain(("on watch now", "bold"), f" ({_short(now['at_us'])})"))
    for name, who in now["roles"].items():
        if role is None or name == role:
            console.print(plain(f"  {name:<21} ", ", ".join(who) if who else "-"))
    params: dict[str, Any] = {}
    if at is not None:
        params["at_us"] = parse_time(at)
    if role is not None:
        params["role"] = role
    entries = api.call("GET", "/api/v1/rota", params=params)
    console.print(plain(("entries", "bold"), f" ({len(entries)})"))
    for e in entries:
        console.print(plain(f"  {_short(e['from_us'])} - {_short(e['to_us'])}  ",
                            (e["username"], "bold"), f"  {e['role']}"))  # fmt: skip
        console.print(plain(f"    id {e['entry_id']}, set by {e['set_by']}"))


@handles_errors
def rota_set(
    username: Annotated[str, typer.Argument(help="The officer on watch (username).")],
    role: Annotated[str, typer.Argument(help=f"The role: {ROLES}.")],
    start: Annotated[str, typer.Option("--from", help="Start (e.g. 2026-11-30T08:00Z).")],
    end: Annotated[str, typer.Option("--to", help="End, not included.")],
    entry_id: Annotated[str | None, typer.Option("--id", help=ID_HELP)] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Put an officer on watch in a role from one time to another (on the record).

    Example: hotline rota set olena watch_officer --from 2026-11-30T08:00Z
    --to 2026-11-30T20:00Z -d alpha
    """
    from_us, to_us = parse_time(start), parse_time(end)
    eid = entry_id or re.sub(r"[^A-Za-z0-9._-]", "-", f"{username}-{from_us // 1_000_000}")[:64]
    body = {"username": username, "role": role, "from_us": from_us, "to_us": to_us}
    e = Api(data_dir).call("PUT", f"/api/v1/rota/{eid}", json=body)
    when = f"{_short(e['from_us'])} - {_short(e['to_us'])}"
    console.print(plain("on the rota: ", (e["username"], "bold"), f" {e['role']} {when}"))
    console.print(plain(f"  id {e['entry_id']}"))


@handles_errors
def rota_clear(
    entry_id: Annotated[str, typer.Argument(help="The entry's id (hotline rota show).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Remove a rota entry (on the record).

    Example: hotline rota clear olena-1796025600 -d alpha
    """
    Api(data_dir).call("DELETE", f"/api/v1/rota/{entry_id}")
    console.print(plain(f"rota entry {entry_id} cleared"))


# --- handovers ------------------------------------------------------------------------------


def _print_summary(s: dict[str, Any]) -> None:
    for part in ("unacknowledged", "overdue", "escalations", "conflicts", "concerns", "alarms"):
        got = s.get(part) or {}
        console.print(plain(f"  {part:<15} ", (str(got.get("count", 0)), "bold")))
        for item in got.get("items", [])[:10]:
            words = [f"{k}={v}" for k, v in item.items() if v not in (None, "")]
            console.print(plain("    ", " ".join(words)[:74]))
    for link in s.get("links", []):
        console.print(plain(f"  link {link['peer']}: {link['state']}"))


def _print_handover(h: dict[str, Any], *, full: bool) -> None:
    acked = (
        f"acknowledged by {h['acknowledged_by']} {_short(h['acknowledged_at_us'])}"
        if h["acknowledged_at_us"] is not None
        else "NOT acknowledged"
    )
    console.print(plain((h["handover_id"], "bold")))
    console.print(plain(f"  by {h['written_by']} {_short(h['written_at_us'])}; ", acked))
    if not full:
        console.print(plain("  ", h["note"].splitlines()[0][:76] if h["note"] else ""))
        return
    for line in h["note"].splitlines():
        console.print(plain("  | ", line))
    if h.get("ack_note"):
        console.print(plain("  acknowledgement note: ", h["ack_note"]))
    console.print(plain(("  summary when written", "bold")))
    _print_summary(h["summary"])


@handles_errors
def handover_write(
    note: Annotated[str, typer.Argument(help="What the incoming officer must know.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write your handover note; the station adds its summary of open items now.

    Example: hotline handover write "Quiet night. Bravo's convoy notice still open." -d alpha
    """
    h = Api(data_dir).call("POST", "/api/v1/handovers", json={"note": note})
    _print_handover(h, full=True)


@handles_errors
def handover_show(
    handover_id: Annotated[str | None, typer.Argument(help=ONE_HELP)] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    limit: Annotated[int, typer.Option("--limit", help="How many to list.")] = 10,
) -> None:
    """Show the latest handovers, or one in full with its summary.

    Example: hotline handover show --limit 3 -d alpha
    """
    api = Api(data_dir)
    if handover_id is not None:
        _print_handover(api.call("GET", f"/api/v1/handovers/{handover_id}"), full=True)
        return
    for h in api.call("GET", "/api/v1/handovers", params={"limit": limit}):
        _print_handover(h, full=False)


@handles_errors
def handover_ack(
    handover_id: Annotated[str, typer.Argument(help="The handover's id.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    note: Annotated[str | None, typer.Option("--note", help="A note of your own.")] = None,
) -> None:
    """Acknowledge a handover as the incoming officer (not the one who wrote it).

    Example: hotline handover ack 6f1c2d3e-0000-4000-8000-000000000000 --note "taken over" -d alpha
    """
    body = {"note": note} if note is not None else {}
    h = Api(data_dir).call("POST", f"/api/v1/handovers/{handover_id}/acknowledge", json=body)
    console.print(plain(f"handover {h['handover_id']} acknowledged by {h['acknowledged_by']}"))


# --- escalations ----------------------------------------------------------------------------


@handles_errors
def escalations(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    all_: Annotated[bool, typer.Option("--all", help="Also closed and ignored steps.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="How many to list.")] = 50,
) -> None:
    """List escalation steps: ours (the peer has not acknowledged our message) and the
    peer's (we have not acknowledged its message), newest first; open ones by default.

    Example: hotline escalations --all -d alpha
    """
    params = {"limit": limit, "open": str(not all_).lower()}
    rows = Api(data_dir).call("GET", "/api/v1/escalations", params=params)
    if not rows:
        console.print(plain("no escalations" if all_ else "no open escalations"))
    for r in rows:
        whose = "ours" if r["origin"] == "local" else f"from {r['peer']}"
        state = r["code"] if r["status"] == "ignored" else (
            "acknowledged" if r["acknowledged"] else "open")  # fmt: skip
        console.print(plain(f"{_short(r['at_us'])} step {r['step']} ", (r["role"], "bold"),
                            f" {whose} {r['precedence'] or ''} {state}"))  # fmt: skip
        console.print(plain(f"  message {r['message_id']} on {r['channel']}"))
