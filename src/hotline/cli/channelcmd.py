"""``hotline channel``: list, show, propose, accept and decline channels at several
levels, against a running station's operator API.

Everything printed from the API (names, members, reasons: a peer may have written them)
goes through ``common.plain``. Must not touch: agreement rules (the station decides).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from hotline.cli.common import DEFAULT_DATA_DIR, Api, DataDir, console, handles_errors, plain
from hotline.errors import InputError

channel_app = typer.Typer(
    name="channel",
    help="Channels at several levels: agreed by their member stations (proposed by one, "
    "accepted by the others, on the record).",
    no_args_is_help=True,
)

PRECEDENCES = ("FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE")


def register(app: typer.Typer) -> None:
    app.add_typer(channel_app)


def _row_members(c: dict[str, Any]) -> str:
    members = c["terms"]["members"]
    return ", ".join(members) if members else "every peer"


@channel_app.command("list")
@handles_errors
def list_(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """List the channels: standing ones, then each proposal with its state and answers.

    Example: hotline channel list -d alpha
    """
    rows = Api(data_dir).call("GET", "/api/v1/channels")
    table = Table("name", "level", "v", "state", "members", "accepted by", "waiting for")
    for c in rows:
        table.add_row(
            plain(c["name"]), plain(c["terms"]["level"]), plain(c["version"]), plain(c["state"]),
            plain(_row_members(c)), plain(", ".join(c["accepted_by"]) or "-"),
            plain(", ".join(c["waiting_for"]) or "-"),
        )  # fmt: skip
    console.print(table)


@channel_app.command("show")
@handles_errors
def show(
    name: Annotated[str, typer.Argument(help="The channel's name.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show a channel's terms and every version's state.

    Example: hotline channel show chiefs -d alpha
    """
    rows = [c for c in Api(data_dir).call("GET", "/api/v1/channels") if c["name"] == name]
    if not rows:
        raise InputError(f"no channel {name!r}", code="unknown_channel",
                         hint="hotline channel list shows the channels")  # fmt: skip
    for c in rows:
        t = c["terms"]
        console.print(plain((f"{c['name']} v{c['version']}", "bold"), f"  {c['state']}"))
        console.print(plain("  level:    ", t["level"]))
        console.print(plain("  members:  ", _row_members(c)))
        if c["proposer"]:
            console.print(plain("  proposer: ", c["proposer"]))
            console.print(plain("  accepted: ", ", ".join(c["accepted_by"]) or "-"))
            console.print(plain("  declined: ", ", ".join(c["declined_by"]) or "-"))
        if c["waiting_for"]:
            console.print(plain("  waiting:  ", ", ".join(c["waiting_for"])))
        if c.get("reason"):
            console.print(plain("  reason:   ", c["reason"]))
        for station, roles in sorted(t["roles"].items()):
            console.print(plain(f"  roles at {station}: read ", ", ".join(roles["read"]),
                                "; send ", ", ".join(roles["send"])))  # fmt: skip
        deadlines = ", ".join(f"{p} {s:g}s" for p, s in t["ack_deadlines_s"].items())
        console.print(plain("  deadlines: ", deadlines or "the station's defaults"))
        console.print(
            plain("  brevity:  FLASH and IMMEDIATE at most ", t["brevity_words"], " words")
        )


def _roles(values: list[str]) -> dict[str, dict[str, list[str]]]:
    """``STATION:read|send:ROLE,ROLE`` options into the terms' ``roles``."""
    out: dict[str, dict[str, list[str]]] = {}
    for v in values:
        try:
            station, which, names = v.split(":", 2)
        except ValueError:
            raise typer.BadParameter(f"--roles {v!r}: write STATION:read:ROLES or "
                                     "STATION:send:ROLES") from None  # fmt: skip
        if which not in ("read", "send"):
            raise typer.BadParameter(f"--roles {v!r}: read or send")
        out.setdefault(station, {})[which] = [n for n in names.split(",") if n]
    return out


def _deadlines(values: list[str]) -> dict[str, float]:
    out = {}
    for v in values:
        prec, _, seconds = v.partition("=")
        if prec.upper() not in PRECEDENCES:
            raise typer.BadParameter(f"--deadline {v!r}: write PRECEDENCE=SECONDS")
        try:
            out[prec.upper()] = float(seconds)
        except ValueError:
            raise typer.BadParameter(f"--deadline {v!r}: seconds must be a number") from None
    return out


@channel_app.command("propose")
@handles_errors
def propose(
    name: Annotated[str, typer.Argument(help="The channel's name.")],
    members: Annotated[
        list[str], typer.Option("--member", "-m", help="A member station (this one included).")
    ],
    level: Annotated[str, typer.Option(help="working, chiefs_of_staff, ministers, ...")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    roles: Annotated[
        list[str] | None,
        typer.Option(
            "--roles", help="Who may read or send at a member: STATION:read|send:ROLE,ROLE."
        ),
    ] = None,
    deadline: Annotated[
        list[str] | None,
        typer.Option("--deadline", help="Acknowledgement deadline: PRECEDENCE=SECONDS."),
    ] = None,
    brevity_words: Annotated[
        int, typer.Option(help="Most words of a FLASH or IMMEDIATE text.", min=1)
    ] = 200,
    two_person: Annotated[
        bool, typer.Option("--two-person", help="A second officer approves what leaves.")
    ] = False,
) -> None:
    """Propose a channel (or new terms for one: the next version) to its other members.

    It is agreed once every other member accepts (hotline channel accept on their side).
    Example: hotline channel propose humanitarian -m alpha -m bravo -m icrc --level working
    --deadline FLASH=120 --roles alpha:send:senior_watch_officer -d alpha
    """
    terms: dict[str, Any] = {
        "name": name,
        "level": level,
        "members": members,
        "roles": _roles(roles or []),
        "ack_deadlines_s": _deadlines(deadline or []),
        "brevity_words": brevity_words,
        "two_person": two_person,
    }
    r = Api(data_dir).call("POST", "/api/v1/channels", json=terms)
    console.print(plain("proposed ", (f"{r['name']} v{r['version']}", "bold"), " to ",
                        ", ".join(sorted(r["message_ids"]))))  # fmt: skip
    console.print(plain("  proposal ", r["proposal_id"]))


@channel_app.command("accept")
@handles_errors
def accept(
    name: Annotated[str, typer.Argument(help="The channel's name.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Accept the pending proposal for a channel (told to every other member).

    Example: hotline channel accept humanitarian -d bravo
    """
    r = Api(data_dir).call("POST", f"/api/v1/channels/{name}/accept")
    console.print(plain("accepted ", (f"{r['name']} v{r['version']}", "bold"), "; told ",
                        ", ".join(sorted(r["message_ids"]))))  # fmt: skip


@channel_app.command("decline")
@handles_errors
def decline(
    name: Annotated[str, typer.Argument(help="The channel's name.")],
    reason: Annotated[str | None, typer.Option(help="Why (sent to the members).")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Decline the pending proposal for a channel, with a reason.

    Example: hotline channel decline ministers --reason "not at this level yet" -d bravo
    """
    r = Api(data_dir).call("POST", f"/api/v1/channels/{name}/decline", json={"reason": reason})
    console.print(plain("declined ", (f"{r['name']} v{r['version']}", "bold"), "; told ",
                        ", ".join(sorted(r["message_ids"]))))  # fmt: skip
