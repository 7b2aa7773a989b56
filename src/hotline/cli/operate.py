"""Operator commands against a running station's API: send, inbox, message, ack, void,
status, alarms, link-test.

Everything printed from the API (peer names, message text, refusal codes, alarm details)
goes through ``common.plain``: plain text, never markup. A message the peer refused is
never shown as plain success: its state reads ``refused: CODE`` (and ``void`` when its
sequence number was declared void).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hotline.cli import approvalcmd
from hotline.cli.common import (
    DEFAULT_DATA_DIR,
    Api,
    DataDir,
    console,
    err_console,
    handles_errors,
    plain,
    shown,
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
    app.command("link-test")(link_test)
    app.command("show")(show)
    app.command("reply")(reply)
    app.command("actions")(actions_queue)
    alarms_app = typer.Typer(
        help="Open alarms; 'hotline alarms ack ID' acknowledges one.",
        invoke_without_command=True,
    )
    alarms_app.callback()(alarms)
    alarms_app.command("ack")(alarm_ack)
    app.add_typer(alarms_app, name="alarms")


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
    operator: Annotated[
        str | None,
        typer.Option(hidden=True, help="Ignored: the logged-in officer sends (hotline login)."),
    ] = None,
    no_ack: Annotated[bool, typer.Option("--no-ack", help="Ask for no acknowledgement.")] = False,
) -> None:
    """Send a message to a peer; it is queued durably and delivered as soon as the line allows.

    On an agreed channel every other member gets its own envelope (one group). A channel
    that is not known is refused with the list of channels (hotline channel list).
    Example: hotline send bravo "Convoy at grid 37U DQ 12345 67890 at 0400Z" -p IMMEDIATE -d alpha
    """
    _named_ignored(operator, "--operator")
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
            "ack_required": not no_ack,
        },
    )
    if "approval_id" in r:  # the channel requires a second officer's approval
        approvalcmd.print_held(r)
        return
    recipients = r.get("recipients") or [r]
    if r.get("group"):  # a channel with several members: one envelope each
        console.print(plain(f"queued {r['precedence']} message to {len(recipients)} members, "
                            "group ", (r["group"], "bold")))  # fmt: skip
    for x in recipients:
        console.print(
            plain(f"queued {r['precedence']} message ", (x["message_id"], "bold"),
                 f" to {x['peer']} (sequence {x['sequence']})")
        )  # fmt: skip


def _named_ignored(name: str | None, option: str) -> None:
    """A typed officer's name is not taken: the record names the authenticated one."""
    if name is not None:
        err_console.print(
            plain(("note:", "yellow"), f" {option} is ignored: the record names the officer "
                  "logged in (hotline login), or 'station' for the station token")
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


#: short precedence names for one-line listings
_PREC = {"FLASH": "FLASH", "IMMEDIATE": "IMMEDIATE", "PRIORITY": "PRIORITY", "ROUTINE": "ROUTINE"}
#: messages that are not shown in the inbox (control messages: read notices)
_CONTROL_TYPES = ("read",)


def _width() -> int:
    """The terminal's width (COLUMNS first), at least 40."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def _line(text: Text, width: int) -> None:
    """Print one line, cut to ``width`` cells with "…" (never wrapped by Rich)."""
    text.truncate(width, overflow="ellipsis")
    console.print(text, soft_wrap=True)


def _stage(m: dict[str, Any]) -> str:
    recipients = m.get("recipients") or []
    if m["state"] == "refused":
        return "refused"
    return str(recipients[0]["stage"]) if recipients else str(m["state"])


def _stage_by(m: dict[str, Any], stage: str) -> str | None:
    """Who took the message to its stage, when it is an officer (read, acknowledged)."""
    if stage not in ("read", "acknowledged"):
        return None
    for r in m.get("recipients") or []:
        named = [s.get("by") for s in r.get("stages") or [] if s.get("stage") == stage]
        if named and named[-1]:
            return str(named[-1]) if stage == "acknowledged" else str(named[0])
    return None


def _wrapped(text: str, width: int, indent: str = "    ") -> None:
    for para in text.splitlines() or [""]:
        for chunk in textwrap.wrap(shown(para), width - len(indent)) or [""]:
            console.print(plain(indent, chunk), soft_wrap=True)


@handles_errors
def inbox(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    channel: Annotated[str | None, typer.Option("--channel", "-c")] = None,
    peer: Annotated[str | None, typer.Option("--peer")] = None,
    unacknowledged: Annotated[
        bool, typer.Option("--unacked", help="Only messages still waiting for an ack.")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="Each message's whole text.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Show messages, newest first, one line each: a short id to copy (its first 8
    characters), direction (→ sent, ← received), peer, precedence, stage and text (cut
    with "…" to the terminal's width; --full for the whole text). The short id works
    with show, reply and ack.

    Stages: queued → sent → delivered (the peer's receipt) → read (an officer opened it)
    → acknowledged → answered (a reply); received messages: received → read →
    acknowledged → answered. "!" marks an acknowledgement past its deadline. A message
    the peer refused shows "refused"; 'hotline message ID' says what to do.
    Example: hotline inbox --unacked -d bravo
    """
    params: dict[str, Any] = {"limit": limit, "unacknowledged": unacknowledged}
    if channel:
        params["channel"] = channel
    if peer:
        params["peer"] = peer
    rows = Api(data_dir).call("GET", "/api/v1/messages", params=params)
    width = _width()
    shown_rows = [m for m in rows if m.get("type") not in _CONTROL_TYPES]
    if not shown_rows:
        console.print("no messages")
        return
    for m in shown_rows:
        stage = _stage(m)
        colour = "red" if m.get("ack_overdue") else "white"
        body = m.get("body") or {}
        text = str(body.get("text") or m["type"]) if isinstance(body, dict) else m["type"]
        head = plain(
            m["message_id"][:8], " ", "→" if m["direction"] == "out" else "←", " ",
            f"{shown(m['peer']):<8} {_PREC.get(m['precedence'], '?'):<9} ",
            ("!" if m.get("ack_overdue") else " ", "bold red"),
        )  # fmt: skip
        if stage == "refused":  # the peer's code, whole: 'hotline message ID' says what to do
            head.append_text(_state(m)).append(" ")
        else:
            head.append_text(plain((f"{stage[:12]:<12}", colour), " "))
            who = _stage_by(m, stage)
            if who:
                head.append_text(plain("by ", who, ": "))
        if full:
            _line(head, width)
            _wrapped(text, width)
        else:
            _line(head.append_text(plain(" ".join(text.split()))), width)


@handles_errors
def ack(
    message_id: Annotated[
        str, typer.Argument(help="Message id, or a unique start of it (hotline inbox shows 8).")
    ],
    officer: Annotated[
        str | None,
        typer.Option(
            "--officer",
            "-o",
            hidden=True,
            help="Ignored: the logged-in officer acknowledges (hotline login).",
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    note: Annotated[str | None, typer.Option(help="Optional note.")] = None,
) -> None:
    """Acknowledge a received message: "received and understood", signed, sent back.

    The acknowledging officer is the one logged in (hotline login), never a typed name.
    A short id prefix from 'hotline inbox' works when it is unique.
    Example: hotline ack 3f2a9c1e -d bravo
    """
    _named_ignored(officer, "--officer")
    api = Api(data_dir)
    full = _resolve(api, message_id, "in")
    m = api.call("POST", f"/api/v1/messages/{full}/ack", json={"note": note})
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
        ident = f"#{a['id']}" if a.get("id") is not None else "-"
        line = plain(("ALARM", "bold red"), f" {ident:<5} {a['severity']!s:<6} {a['kind']!s:<12} "
                     f"{us_to_text(a['raised_at_us'])}  ", a["detail"])  # fmt: skip
        if a.get("acknowledged_by"):
            line.append_text(plain(("  acknowledged by ", "green"), a["acknowledged_by"],
                                   f" {us_to_text(a.get('acknowledged_at_us'))}"))  # fmt: skip
            if a.get("ack_note"):
                line.append_text(plain(": ", a["ack_note"]))
        console.print(line, soft_wrap=True)


@handles_errors
def alarms(ctx: typer.Context, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """List open alarms: lines DOWN, acknowledgements past their deadline, conflicts; each
    stored alarm with its number (#ID) and who acknowledged it.

    Example: hotline alarms -d alpha
    """
    if ctx.invoked_subcommand is None:
        _print_alarms(Api(data_dir).call("GET", "/api/v1/alarms"))


@handles_errors
def alarm_ack(
    alarm_id: Annotated[int, typer.Argument(help="The alarm's number (#ID in hotline alarms).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    note: Annotated[str | None, typer.Option(help="What was done about it.")] = None,
) -> None:
    """Acknowledge an alarm: you (the authenticated officer), now, with a note; on the
    record. The alarm stays listed until its cause clears, marked acknowledged.

    Example: hotline alarms ack 12 --note "line engineer called" -d alpha
    """
    a = Api(data_dir).call("POST", f"/api/v1/alarms/{alarm_id}/acknowledge", json={"note": note})
    console.print(
        plain(f"acknowledged alarm #{a['id']} ({a['kind']}) as ", a["acknowledged_by"]),
        soft_wrap=True,
    )


def _full_id(api: Api, prefix: str) -> str:
    """The one message whose id starts with ``prefix`` (8 or more hex characters)."""
    from hotline.errors import InputError

    p = prefix.strip().lower()
    if len(p) < 8 or any(c not in "0123456789abcdef-" for c in p):
        raise InputError(
            f"{shown(prefix)!r} is not a message id or its first 8 (or more) characters",
            code="bad_id",
            hint="copy the id from: hotline inbox",
        )
    return _resolve(api, p, None)


@handles_errors
def show(
    message_id: Annotated[
        str, typer.Argument(help="Message id, or its first 8 (or more) characters.")
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show a whole message: its text, its stages per recipient with who and when (our
    time; the peer's claimed time beside it), and its thread. Showing a received message
    records that you read it (once per officer) and tells its sender.

    Example: hotline show 3f2a9c1e -d bravo
    """
    api = Api(data_dir)
    full = _full_id(api, message_id)
    m = api.call("GET", f"/api/v1/messages/{full}")
    if m["direction"] == "in" and m.get("type") != "read":
        m = api.call("POST", f"/api/v1/messages/{full}/read")
    width = _width()
    arrow = "to" if m["direction"] == "out" else "from"
    console.print(plain((m["message_id"], "bold")), soft_wrap=True)
    console.print(
        plain(f"{arrow} ", m["peer"], f" · {m['precedence']} · ", m["channel"],
              f" · sequence {m['sequence']}"),
        soft_wrap=True,
    )  # fmt: skip
    body = m.get("body") or {}
    text = str(body.get("text") or "") if isinstance(body, dict) else ""
    if m.get("operator"):
        console.print(plain("  by ", m["operator"]), soft_wrap=True)
    if text:
        _wrapped(text, width, "  ")
    if isinstance(body, dict) and body.get("data") is not None:
        _wrapped(json.dumps(body["data"], ensure_ascii=False), width, "  data ")
    for r in m.get("recipients") or []:
        console.print(plain(("stages", "dim"), " · ", r["peer"], ": ", (r["summary"], "bold")),
                      soft_wrap=True)  # fmt: skip
        for st in r["stages"]:
            who = st.get("by") or ""
            if st["stage"] == "read" and st.get("ref"):
                who += f" ({st['ref']})"
            if st["stage"] == "answered" and st.get("ref"):
                who += f": {str(st['ref'])[:8]}"
            line = plain(f"  {st['stage']:<13}", us_to_text(st.get("at_us")), "  ", who)
            if st["stage"] == "acknowledged" and st.get("ref"):
                line.append_text(plain(" · note: ", st["ref"]))
            console.print(line, soft_wrap=True)
            if st.get("claimed_at_us") is not None:
                console.print(plain(f"  {'':<13}their clock {us_to_text(st['claimed_at_us'])}"))
    if m.get("ack_overdue"):
        console.print(plain(("  ACK OVERDUE", "bold red")))
    thread = m.get("thread") or []
    if len(thread) > 1:
        console.print(plain(("thread", "dim")))
        for t in thread:
            mark = "*" if t["message_id"] == m["message_id"] else " "
            tb = t.get("body") or {}
            tt = str(tb.get("text") or t["type"]) if isinstance(tb, dict) else t["type"]
            arrow = "→" if t["direction"] == "out" else "←"
            when = us_to_text(t.get("sent_at_us"))
            _line(
                plain(f" {mark}{t['message_id'][:8]} {arrow} {when} ", " ".join(tt.split())), width
            )


@handles_errors
def reply(
    message_id: Annotated[
        str, typer.Argument(help="The message answered: its id or first 8 (or more) characters.")
    ],
    text: Annotated[str, typer.Argument(help="The reply's text.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    precedence: Annotated[
        str | None,
        typer.Option("--precedence", "-p", help="Default: the original's precedence."),
    ] = None,
    no_ack: Annotated[bool, typer.Option("--no-ack", help="Ask for no acknowledgement.")] = False,
) -> None:
    """Reply to a message: same peer, same channel, threaded with in_reply_to (the
    original shows "answered").

    Example: hotline reply 3f2a9c1e "Route changed to M-14" -d bravo
    """
    api = Api(data_dir)
    m = api.call("GET", f"/api/v1/messages/{_full_id(api, message_id)}")
    prec = (precedence or m["precedence"]).upper()
    if prec not in PRECEDENCES:
        raise typer.BadParameter(f"precedence must be one of {', '.join(PRECEDENCES)}")
    r = api.call(
        "POST",
        "/api/v1/messages",
        json={
            "peer": m["peer"], "channel": m["channel"], "precedence": prec, "text": text,
            "in_reply_to": m["message_id"], "ack_required": not no_ack,
        },
    )  # fmt: skip
    console.print(
        plain(f"queued {r['precedence']} reply ", (r["message_id"], "bold"), " to ", r["peer"],
              f" on {m['channel']} (answers {m['message_id'][:8]})"),
        soft_wrap=True,
    )  # fmt: skip


def _left(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    sign, s = ("-" if seconds < 0 else ""), abs(int(seconds))
    if s >= 3600:
        return f"{sign}{s // 3600}h{s % 3600 // 60:02d}"
    return f"{sign}{s // 60}m{s % 60:02d}"


@handles_errors
def actions_queue(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """What you must do now, most urgent first (precedence, then time left; a negative
    time is overdue): messages to acknowledge, alarms to acknowledge, and the work of
    other features (approvals, handovers, ...). One line each; the ref is what to act on
    ('hotline ack REF', 'hotline alarms ack REF').

    Example: hotline actions -d bravo
    """
    rows = Api(data_dir).call("GET", "/api/v1/actions")
    if not rows:
        console.print("[green]nothing to do[/]")
        return
    width = _width()
    for i in rows:
        ref = i["ref"][:8]
        _line(
            plain(f"{_PREC.get(i['precedence'], '?'):<9} {_left(i.get('time_left_s')):>7} ",
                  (f"{i['kind'][:11]:<11}", "bold"), f" {shown(ref):<8} ",
                  f"{shown(i.get('peer') or '-'):<8} ", " ".join(str(i['summary']).split())),
            width,
        )  # fmt: skip


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
