"""Suspension and dissemination commands, through the operator API: suspend, resume,
suspensions, disseminate, disseminations.

A peer's reason, a unit's name and a note came from elsewhere: they are printed through
``common.plain`` (plain text), never as markup. Must not touch: business rules.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table

from hotline.cli.common import (
    DEFAULT_DATA_DIR,
    Api,
    DataDir,
    console,
    handles_errors,
    plain,
    us_to_text,
)

PeerOpt = Annotated[
    str | None,
    typer.Option("--peer", help="The peer (on an agreed channel: default every member)."),
]
ChannelOpt = Annotated[
    str | None, typer.Option("--channel", help="One channel (default: the whole line).")
]


def register(app: typer.Typer) -> None:
    app.command("suspend")(suspend)
    app.command("resume")(resume)
    app.command("suspensions")(suspensions)
    app.command("disseminate")(disseminate)
    app.command("disseminations")(disseminations)


def _where(s: dict[str, Any]) -> str:
    return "the line" if s["channel"] is None else f"channel {s['channel']}"


@handles_errors
def suspend(
    reason: Annotated[str, typer.Option("--reason", help="Why: shown to both sides.")],
    peer: PeerOpt = None,
    channel: ChannelOpt = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Declare the line with a peer (or one channel) suspended, on the record; the peer
    is told at once (FLASH) and both sides refuse to send anything but FLASH (or what
    the channel's terms allow) until this station resumes it. Link tests go on.

    Example: hotline suspend --peer bravo --reason "ceasefire talks under way" -d alpha
    """
    body = {"peer": peer, "channel": channel, "reason": reason}
    done = Api(data_dir).call("POST", "/api/v1/suspensions", json=body)
    for s in done:
        console.print(plain(("suspended", "bold yellow"), f" {_where(s)} with {s['peer']}"))
    console.print(plain("FLASH still goes; resume with: hotline resume --peer PEER"))


@handles_errors
def resume(
    peer: PeerOpt = None,
    channel: ChannelOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="A word for the record.")] = "resumed",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Resume this station's own suspension (on the record; the peer is told). A
    suspension the peer declared is resumed by the peer only.

    Example: hotline resume --peer bravo -d alpha
    """
    body = {"peer": peer, "channel": channel, "reason": reason}
    done = Api(data_dir).call("POST", "/api/v1/suspensions/resume", json=body)
    where = "the line" if done["channel"] is None else f"channel {done['channel']}"
    console.print(plain(("resumed", "green"), f" {where} with {', '.join(done['peers'])}"))


@handles_errors
def suspensions(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """The suspensions in force, this station's and its peers'.

    Example: hotline suspensions -d alpha
    """
    r = Api(data_dir).call("GET", "/api/v1/suspensions")
    if not r["active"]:
        console.print(plain("nothing is suspended"))
        return
    t = Table("peer", "what", "declared by", "since", "reason")
    for s in r["active"]:
        who = s["declared_by"] + (f" ({s['officer']})" if s["officer"] else "")
        t.add_row(
            plain(s["peer"]),
            plain(_where(s)),
            plain(who),
            plain(us_to_text(s["since_us"])),
            plain(s["reason"]),
        )
    console.print(t)
    console.print(plain(f"still sent on standing channels: {', '.join(r['standing_allow'])}"))


def _at(value: str | None) -> str | None:
    """An ISO 8601 time with zone, or HH:MM (today, UTC)."""
    if value is None:
        return None
    try:
        if len(value) <= 5 and ":" in value:
            h, m = (int(x) for x in value.split(":"))
            t = dt.datetime.now(dt.UTC).replace(hour=h, minute=m, second=0, microsecond=0)
        else:
            t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not HH:MM (UTC) or ISO 8601 with zone") from None
    if t.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no time zone: add Z for UTC")
    return t.isoformat()


@handles_errors
def disseminate(
    message_id: Annotated[str, typer.Argument(help="The received message passed on.")],
    to: Annotated[str, typer.Option("--to", help="To whom it was passed.")],
    at: Annotated[
        str | None, typer.Option("--at", help="When: HH:MM (UTC, today) or ISO 8601; default now.")
    ] = None,
    note: Annotated[str | None, typer.Option("--note", help="How, or anything to add.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Record that a received message was passed on: to whom, when, by you. The record
    goes back to its sender as its own signed message, and clears the not_disseminated
    alarm of a conflict notice.

    Example: hotline disseminate 3f2a...e1 --to "3rd brigade operations cell" --at 14:02
    """
    body = {"to": to, "at": _at(at), "note": note}
    r = Api(data_dir).call("POST", f"/api/v1/messages/{message_id}/disseminations", json=body)
    console.print(
        plain(
            ("recorded", "green"),
            f": passed to {r['to']} at {us_to_text(r['passed_at_us'])}"
            f" by {r['officer']}; the record goes back to {r['peer']}",
        )
    )


@handles_errors
def disseminations(
    message_id: Annotated[str, typer.Argument(help="A message sent or received.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """To whom and when a message was passed on: our records of a message we received,
    or the peer's records of a message we sent.

    Example: hotline disseminations 3f2a...e1 -d alpha
    """
    rows = Api(data_dir).call("GET", f"/api/v1/messages/{message_id}/disseminations")
    if not rows:
        console.print(plain("no dissemination recorded"))
        return
    t = Table("by", "to", "at (claimed)", "recorded", "officer", "note", "counted")
    for r in rows:
        t.add_row(
            plain("us" if r["direction"] == "out" else r["peer"]),
            plain(r["to"]),
            plain(us_to_text(r["passed_at_us"])),
            plain(us_to_text(r["recorded_at_us"])),
            plain(r["officer"]),
            plain(r["note"] or ""),
            plain("yes" if r["outcome"] == "recorded" else r["outcome"]),
        )
    console.print(t)
