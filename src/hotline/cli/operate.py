"""Operator commands against a running station's API: send, inbox, message, ack, void,
status, alarms, link-test.

Everything printed from the API (peer names, message text, refusal codes, alarm details)
goes through ``common.plain``: plain text, never markup. A message the peer refused is
never shown as plain success: its state reads ``refused: CODE`` (and ``void`` when its
sequence number was declared void).
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
    app.command("message")(message)
    app.command("ack")(ack)
    app.command("void")(void)
    app.command("status")(status)
    app.command("alarms")(alarms)
    app.command("link-test")(link_test)


@handles_errors
def send(
    peer: Annotated[
        str,
        typer.Argument(
            help="Station id of the peer (on a channel with several members: any member; "
            "every other member gets it)."
        ),
    ],
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

    On an agreed channel every other member gets its own envelope (one group). A channel
    that is not known is refused with the list of channels (hotline channel list).
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
    recipients = r.get("recipients") or [r]
    if r.get("group"):  # a channel with several members: one envelope each
        console.print(plain(f"queued {r['precedence']} message to {len(recipients)} members, "
                            "group ", (r["group"], "bold")))  # fmt: skip
    for x in recipients:
        console.print(
            plain(f"queued {r['precedence']} message ", (x["message_id"], "bold"),
                 f" to {x['peer']} (sequence {x['sequence']})")
        )  # fmt: skip


def _state(m: dict[str, Any]) -> Text:
    colours = {"acknowledged": "green", "delivered": "cyan", "received": "cyan", "queued": "yellow"}
    if m["state"] == "refused":
        # the peer's code is hostile text: plain, never markup
        s = plain(("refused: ", "bold red"), (m.get("refused") or "?", "bold red"))
        if m.get("void"):
            s.append_text(plain(" ", ("void", "red")))
    else:
        s = plain((m["state"], colours.get(m["state"], "white")))
    if m.get("ack_overdue"):
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
    receipt) → acknowledged (by whom); inbound messages are received → acknowledged. A
    message the peer refused shows "refused: CODE" (and "void" when its sequence number was
    declared void); 'hotline message ID' says what to do.
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
    full = _resolve(api, message_id, "in")
    m = api.call("POST", f"/api/v1/messages/{full}/ack", json={"officer": officer, "note": note})
    console.print(plain(f"acknowledged {m['message_id']} as {m['acknowledged_by']}"))


_WHICH = {"in": "received messages", "out": "sent messages", None: "messages"}


def _resolve(api: Api, prefix: str, direction: str | None) -> str:
    """The full id of the one message (of ``direction``, when given) starting ``prefix``."""
    if len(prefix) == 36:
        return prefix
    params: dict[str, Any] = {"limit": 1000}
    if direction:
        params["direction"] = direction
    rows = api.call("GET", "/api/v1/messages", params=params)
    hits = [m["message_id"] for m in rows if str(m["message_id"]).startswith(prefix)]
    if len(hits) != 1:
        from hotline.errors import InputError

        raise InputError(
            f"{len(hits)} {_WHICH[direction]} start with {prefix!r}",
            code="not_found" if not hits else "ambiguous_id",
            hint="give more of the id (hotline inbox shows the first 8 characters)"
            if hits
            else "check the id with: hotline inbox",
        )
    return str(hits[0])


def _advice(api: Api, m: dict[str, Any]) -> str | None:
    """What to do about a refused message: the open ``peer_refused`` alarm's detail for
    its peer and code, or None when there is no such alarm (any more)."""
    for a in api.call("GET", "/api/v1/alarms"):
        if (a.get("kind"), a.get("peer"), a.get("ref")) == (
            "peer_refused",
            m["peer"],
            m.get("refused"),
        ):
            return str(a.get("detail") or "") or None
    return None


@handles_errors
def message(
    message_id: Annotated[
        str, typer.Argument(help="Message id, or a unique start of it (hotline inbox shows 8).")
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show one message: its text, state and times; for a message the peer refused, the
    peer's code and what to do about it.

    Example: hotline message 3f2a9c1e -d alpha
    """
    api = Api(data_dir)
    m = api.call("GET", f"/api/v1/messages/{_resolve(api, message_id, None)}")
    body = m.get("body") or {}
    rows: list[tuple[str, Any]] = [
        ("message", m["message_id"]),
        ("direction", m["direction"]),
        ("peer", m["peer"]),
        ("precedence", m["precedence"]),
        ("channel", m["channel"]),
        ("sequence", m.get("sequence")),
        ("text", body.get("text") if isinstance(body, dict) else None),
    ]
    for label, value in rows:
        if value is not None:
            console.print(plain((f"{label:<12}", "dim"), value), soft_wrap=True)
    console.print(plain((f"{'state':<12}", "dim")).append_text(_state(m)))
    times = [
        ("queued", m.get("queued_at_us")),
        ("sent", m.get("first_sent_us") if m["direction"] == "out" else m.get("sent_at_us")),
        ("delivered", m.get("delivered_at_us")),
        ("acknowledged", m.get("acknowledged_at_us")),
    ]
    for label, us in times:
        if us is not None:
            console.print(plain((f"{label:<12}", "dim"), us_to_text(us)))
    if m.get("acknowledged_by"):
        console.print(plain((f"{'by':<12}", "dim"), m["acknowledged_by"]), soft_wrap=True)
    if m["direction"] == "out" and m.get("attempts"):
        console.print(plain((f"{'attempts':<12}", "dim"), m["attempts"]))
    if m["state"] != "refused":
        return
    if m.get("void"):
        todo = (
            "its sequence number is void: it is never sent again; fix what the peer "
            "refused and send a corrected message (it gets a new number)"
        )
    else:
        todo = _advice(api, m) or (
            "fix the cause with the peer's operators, then 'hotline link-test PEER' sends it again"
        )
    console.print(plain("  ", ("what to do:", "yellow"), " ", todo), soft_wrap=True)
    if not m.get("void") and m.get("refused") != "replay":  # a replay cannot be voided
        console.print(
            plain("  or give up on it (never sent again; send a corrected message): "
                  f"hotline void {m['message_id']}"),
            soft_wrap=True,
        )  # fmt: skip


@handles_errors
def void(
    message_id: Annotated[
        str,
        typer.Argument(help="Id of a sent message the peer refused, or a unique start of it."),
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Give up on a message the peer refused and that is parked (for example too_large):
    its sequence number is declared void on the record, it is never sent again, and the
    peer learns it at the next link test. Send a corrected message instead.

    Only a sent message that is refused and still parked can be voided; a replay refusal
    cannot (the peer holds that number: see Restore in docs/operations.md).
    Example: hotline void 3f2a9c1e -d alpha
    """
    api = Api(data_dir)
    m = api.call("POST", f"/api/v1/messages/{_resolve(api, message_id, 'out')}/void")
    console.print(
        plain("voided ", (m["message_id"], "bold"), f" to {m['peer']} (sequence {m['sequence']}): ")
        .append_text(_state(m))
    )  # fmt: skip
    console.print(
        plain("  ", ("what to do:", "yellow"),
              " send a corrected message (hotline send); it gets a new number")
    )  # fmt: skip


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
