"""Operator commands against a running station's API: send, inbox, ack, status, alarms.

Everything printed from the API (peer names, message text, alarm details) goes through
``common.plain``: plain text, never markup.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hotline.cli.common import (
    DEFAULT_DATA_DIR,
    Api,
    DataDir,
    console,
    handles_errors,
    plain,
    us_to_text,
)

PRECEDENCES = ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]


def register(app: typer.Typer) -> None:
    app.command("send")(send)
    app.command("inbox")(inbox)
    app.command("ack")(ack)
    app.command("status")(status)
    app.command("alarms")(alarms)
    app.command("link-test")(link_test)


@handles_errors
def send(
    peer: Annotated[str, typer.Argument(help="Station id of the peer.")],
    text: Annotated[str, typer.Argument(help="The message text.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    precedence: Annotated[
        str, typer.Option("--precedence", "-p", help="FLASH, IMMEDIATE, PRIORITY or ROUTINE.")
    ] = "ROUTINE",
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel name.")] = "working",
    operator: Annotated[str | None, typer.Option(help="Who sends (recorded).")] = None,
    no_ack: Annotated[bool, typer.Option("--no-ack", help="Ask for no acknowledgement.")] = False,
) -> None:
    """Send a message to a peer; it is queued durably and delivered as soon as the line allows.

    Example: hotline send bravo "Convoy at grid 37U DQ 12345 67890 at 0400Z" -p IMMEDIATE -d alpha
    """
    prec = precedence.upper()
    if prec not in PRECEDENCES:
        raise typer.BadParameter(f"precedence must be one of {', '.join(PRECEDENCES)}")
    r = Api(data_dir).call(
        "POST",
        "/api/v1/messages",
        json={
            "peer": peer,
            "text": text,
            "precedence": prec,
            "channel": channel,
            "operator": operator,
            "ack_required": not no_ack,
        },
    )
    console.print(
        plain(f"queued {r['precedence']} message ", (r["message_id"], "bold"),
             f" to {r['peer']} (sequence {r['sequence']})")
    )  # fmt: skip


def _state(m: dict[str, Any]) -> Text:
    colours = {"acknowledged": "green", "delivered": "cyan", "received": "cyan", "queued": "yellow"}
    s = plain((m["state"], colours.get(m["state"], "white")))
    if m["ack_overdue"]:
        s.append_text(plain(" ", ("ACK OVERDUE", "bold red")))
    return s


@handles_errors
def inbox(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    channel: Annotated[str | None, typer.Option("--channel", "-c")] = None,
    peer: Annotated[str | None, typer.Option("--peer")] = None,
    unacknowledged: Annotated[
        bool, typer.Option("--unacked", help="Only messages still waiting for an ack.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Show messages, newest first, with each one's state and times.

    States: queued → sent (transmitted, no receipt yet) → delivered (the peer's signed
    receipt) → acknowledged (by whom); inbound messages are received → acknowledged.
    Example: hotline inbox --unacked -d bravo
    """
    params: dict[str, Any] = {"limit": limit, "unacknowledged": unacknowledged}
    if channel:
        params["channel"] = channel
    if peer:
        params["peer"] = peer
    rows = Api(data_dir).call("GET", "/api/v1/messages", params=params)
    t = Table(show_lines=False)
    for col in (
        "id",
        "dir",
        "peer",
        "prec",
        "channel",
        "text",
        "state",
        "queued",
        "sent",
        "delivered",
        "acknowledged",
    ):
        t.add_column(col)
    for m in rows:
        acked = us_to_text(m["acknowledged_at_us"])
        if m["acknowledged_by"]:
            acked += f" by {m['acknowledged_by']}"
        t.add_row(
            plain(m["message_id"][:8]),
            plain(m["direction"]),
            plain(m["peer"]),
            plain(m["precedence"]),
            plain(m["channel"]),
            plain(str(m["body"].get("text") or m["type"])[:40]),
            _state(m),
            plain(us_to_text(m["sent_at_us"])),
            plain(us_to_text(m["first_sent_us"]) if m["direction"] == "out" else "-"),
            plain(us_to_text(m["delivered_at_us"])),
            plain(acked),
        )
    console.print(t)


@handles_errors
def ack(
    message_id: Annotated[
        str, typer.Argument(help="Message id, or a unique start of it (hotline inbox shows 8).")
    ],
    officer: Annotated[
        str,
        typer.Option(
            "--officer",
            "-o",
            envvar="HOTLINE_OFFICER",
            help="Name of the duty officer acknowledging.",
        ),
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    note: Annotated[str | None, typer.Option(help="Optional note.")] = None,
) -> None:
    """Acknowledge a received message: "received and understood", signed, sent back.

    A short id prefix from 'hotline inbox' works when it is unique.
    Example: hotline ack 3f2a9c1e --officer "Maj. Ivanova" -d bravo
    """
    api = Api(data_dir)
    full = _resolve(api, message_id)
    m = api.call("POST", f"/api/v1/messages/{full}/ack", json={"officer": officer, "note": note})
    console.print(plain(f"acknowledged {m['message_id']} as {m['acknowledged_by']}"))


def _resolve(api: Api, prefix: str) -> str:
    if len(prefix) == 36:
        return prefix
    rows = api.call("GET", "/api/v1/messages", params={"direction": "in", "limit": 1000})
    hits = [m["message_id"] for m in rows if m["message_id"].startswith(prefix)]
    if len(hits) != 1:
        from hotline.errors import InputError

        raise InputError(
            f"{len(hits)} received messages start with {prefix!r}", hint="give more of the id"
        )
    return str(hits[0])


@handles_errors
def status(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Show the station, each line's state (UP / DEGRADED / DOWN), counts and open alarms.

    Example: hotline status -d alpha
    """
    api = Api(data_dir)
    s = api.call("GET", "/api/v1/status")
    console.print(
        plain("station ", (s["station"], "bold"), f" ({s['display_name']})  v{s['version']}")
    )
    console.print(plain(f"fingerprint {s['fingerprint']}"))
    c = s["counts"]
    console.print(
        plain(
            f"ledger {c['entries']} entries · sent {c['sent']} · received {c['received']}"
            f" · queued {c['queued']}"
        )
    )
    t = Table("peer", "state", "rtt ms", "skew ms", "last test", "last ok", "failures")
    colour = {"UP": "green", "DEGRADED": "yellow", "DOWN": "bold red"}
    for ln in s["links"]:
        st = ln["state"]
        t.add_row(
            plain(ln["peer"]),
            plain((st, colour.get(st, "white"))),
            plain(ln["rtt_ms"] or "-"),
            plain(ln["skew_ms"] if ln["skew_ms"] is not None else "-"),
            plain(us_to_text(ln["last_test_at_us"])),
            plain(us_to_text(ln["last_ok_at_us"])),
            plain(ln["failures"]),
        )
    console.print(t)
    _print_alarms(api.call("GET", "/api/v1/alarms"))


def _print_alarms(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("[green]no open alarms[/]")
        return
    for a in rows:
        console.print(
            plain(("ALARM", "bold red"), f" {a['severity']!s:<6} {a['kind']!s:<12} "
                 f"{us_to_text(a['raised_at_us'])}  ", a["detail"])
        )  # fmt: skip


@handles_errors
def alarms(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """List open alarms: lines DOWN, acknowledgements past their deadline.

    Example: hotline alarms -d alpha
    """
    _print_alarms(Api(data_dir).call("GET", "/api/v1/alarms"))


@handles_errors
def link_test(
    peer: Annotated[str, typer.Argument(help="Station id of the peer.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Run a link test to a peer now: round trip, clock skew, state.

    Example: hotline link-test bravo -d alpha
    """
    r = Api(data_dir).call("POST", f"/api/v1/link/{peer}/test")
    if r["ok"]:
        console.print(
            plain(f"link to {peer}: ", (r["state"], "green"),
                 f" rtt {r['rtt_ms']} ms, skew {r['skew_ms']} ms")
        )  # fmt: skip
    else:
        console.print(plain(f"link to {peer}: ", (r["state"], "bold red"), f" ({r['error']})"))
        raise typer.Exit(1)
