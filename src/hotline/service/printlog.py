"""The printable log of a period, for review meetings.

Owns what the log holds and how it is printed: a header (this station and its peers, the
period, the record's size and root hash at the time of printing, so a reader can check
it against a signed transcript), every message stored in the period in ledger order with
who sent it, when (our time, and the peer's claimed time beside it), its stages
(delivered, acknowledged by whom, answered), then the alarms raised or cleared in the
period and the acknowledgements that fell overdue in it.

Rendered as plain text, Markdown or one self-contained HTML page (no script, no external
asset, a Content-Security-Policy that forbids both). Anything a peer wrote (text, names,
alarm details carrying its codes) is text in every format: control characters become
visible escapes, HTML is escaped, Markdown's syntax characters are escaped.

Must not touch: SQL (store/search.py), writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import re
from typing import Any

from sqlalchemy.engine import Engine

from hotline.crypto.card import parse_card
from hotline.errors import HotlineError, InputError
from hotline.service.roles import Action, Principal, require
from hotline.service.search import hit, period
from hotline.store import search as store
from hotline.wire.envelope import Precedence

#: messages in one log at most (the header says when the period holds more)
MAX_MESSAGES = 5000
#: alarms and overdue acknowledgements listed at most
MAX_ALARMS = 2000
#: characters of one message's text printed in the log (the rest: hotline message ID)
MAX_TEXT = 4000
FORMATS = ("json", "text", "md", "html")
_ALARM_FIELDS = ("kind", "severity", "peer", "ref", "detail", "raised_at_us", "cleared_at_us")

_UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _esc(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(value: object) -> str:
    """``value`` as inert text: control and bidirectional characters shown as escapes
    (newlines kept: a message's lines)."""
    return _UNSAFE.sub(_esc, str(value))


def when(us: int | None) -> str:
    if us is None:
        return "-"
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _display_name(card: str) -> str:
    try:
        return parse_card(card).card.display_name
    except HotlineError:
        return "?"


def build_sync(
    engine: Engine,
    station: dict[str, str],
    now_us: int,
    from_us: int,
    to_us: int,
    channel: str | None,
) -> dict[str, Any]:
    """Read the log of [from_us, to_us) in one reader transaction (a worker thread)."""
    with engine.connect() as conn, conn.begin():
        size, root = store.record_state(conn)
        rows = store.period_messages(conn, from_us, to_us, channel, MAX_MESSAGES + 1)
        alarms = store.period_alarms(conn, from_us, to_us, MAX_ALARMS)
        overdue = store.overdue_in(conn, from_us, to_us, MAX_ALARMS)
        peers = store.peers(conn)
    messages = []
    for r in rows[:MAX_MESSAGES]:
        m = hit(r, now_us)
        text = str(json.loads(r.body).get("text") or "")
        m["text"] = text[:MAX_TEXT]
        m["truncated"] = len(text) > MAX_TEXT
        m["ack_note"] = r.ack_note
        messages.append(m)
    return {
        "station": station,
        "peers": [
            {
                "station_id": p.station_id,
                "display_name": _display_name(p.card),
                "added_at_us": p.added_at_us,
                "removed_at_us": p.removed_at_us,
            }
            for p in peers
        ],
        "from_us": from_us,
        "to_us": to_us,
        "channel": channel,
        "printed_at_us": now_us,
        "record_size": size,
        "record_root": root.hex() if root is not None else None,
        "messages": messages,
        "messages_truncated": len(rows) > MAX_MESSAGES,
        "alarms": [{k: a._mapping[k] for k in _ALARM_FIELDS} for a in alarms],
        "overdue": [
            {
                "message_id": o.message_id,
                "direction": o.direction,
                "peer": o.peer,
                "channel": o.channel,
                "precedence": Precedence(o.precedence).name,
                "ack_deadline_us": o.ack_deadline_us,
                "acknowledged_at_us": o.acknowledged_at_us,
                "acknowledged_by": o.acknowledged_by,
            }
            for o in overdue
        ],
    }


async def build(
    engine: Engine,
    station: dict[str, str],
    now_us: int,
    principal: Principal,
    from_: str,
    to: str,
    channel: str | None = None,
) -> dict[str, Any]:
    """The log of a period for an officer who may export (``Action.EXPORT``)."""
    require(principal, Action.EXPORT, what="print the log")
    start, stop = period(from_, to)
    if start is None or stop is None:  # pragma: no cover - both are given
        raise InputError("a log needs a period", code="bad_period")
    return await asyncio.to_thread(build_sync, engine, station, now_us, start, stop, channel)


# --- rendering --------------------------------------------------------------------------------


def _sender(m: dict[str, Any], station: str) -> str:
    officer = m.get("officer")
    who = m.get("operator") or ""
    if isinstance(officer, dict):
        who = str(officer.get("display_name") or officer.get("username") or who)
    origin = station if m["direction"] == "out" else m["peer"]
    return f"{origin} ({who})" if who else origin


def _times(m: dict[str, Any]) -> str:
    if m["direction"] == "in":
        return (
            f"received {when(m['stored_at_us'])}, peer's claimed sent time {when(m['sent_at_us'])}"
        )
    return f"sent {when(m['sent_at_us'])}"


def _stages(m: dict[str, Any]) -> list[str]:
    out = []
    if m["direction"] == "out":
        out.append(f"delivered {when(m['delivered_at_us'])}" if m["delivered_at_us"] else
                   f"not delivered ({m['state']})")  # fmt: skip
    if m["acknowledged_at_us"] is not None:
        ack = f"acknowledged by {m['acknowledged_by']} at {when(m['acknowledged_at_us'])}"
        if m.get("ack_claimed_at_us") is not None:
            ack += f" (peer's claimed time {when(m['ack_claimed_at_us'])})"
        if m.get("ack_note"):
            ack += f", note: {m['ack_note']}"
        out.append(ack)
    elif m["ack_required"]:
        out.append(f"NOT acknowledged (deadline {when(m['ack_deadline_us'])})")
    if m["answered"]:
        out.append("answered")
    return out


def _header_lines(log: dict[str, Any]) -> list[str]:
    st = log["station"]
    peers = ", ".join(f"{p['station_id']} ({p['display_name']})" for p in log["peers"]) or "none"
    root = log["record_root"] or "(empty record)"
    lines = [
        f"Station: {st['station_id']} ({st['display_name']}); peers: {peers}",
        f"Period: {when(log['from_us'])} to {when(log['to_us'])} (our stored times)"
        + (f"; channel {log['channel']}" if log["channel"] else "; every channel"),
        f"Record at printing ({when(log['printed_at_us'])}): {log['record_size']} entries, "
        f"root {root}",
        "Check the size and root against a signed transcript (hotline export, hotline verify).",
    ]
    if log["messages_truncated"]:
        lines.append(f"Only the first {MAX_MESSAGES} messages of the period are printed.")
    return lines


def _message_title(m: dict[str, Any], station: str) -> str:
    arrow = f"to {m['peer']}" if m["direction"] == "out" else f"from {m['peer']}"
    return (f"{when(m['stored_at_us'])}  {m['precedence']}  {m['channel']}  {arrow}  "
            f"{m['type']}  id {m['message_id']}")  # fmt: skip


def _alarm_line(a: dict[str, Any]) -> str:
    cleared = f", cleared {when(a['cleared_at_us'])}" if a["cleared_at_us"] else ""
    peer = f" {a['peer']}" if a["peer"] else ""
    return f"{when(a['raised_at_us'])}  {a['severity']}  {a['kind']}{peer}: {a['detail']}{cleared}"


def _overdue_line(o: dict[str, Any]) -> str:
    who = "the peer" if o["direction"] == "out" else "we"
    late = (f"acknowledged late at {when(o['acknowledged_at_us'])} by {o['acknowledged_by']}"
            if o["acknowledged_at_us"] else "still not acknowledged")  # fmt: skip
    return (f"{when(o['ack_deadline_us'])}  {o['precedence']}  {o['channel']}  "
            f"{o['message_id']}: {who} missed the deadline; {late}")  # fmt: skip


def render_text(log: dict[str, Any]) -> str:
    sid = log["station"]["station_id"]
    out = ["HOTLINE LOG", "=" * 11, *(inert(x) for x in _header_lines(log)), ""]
    out.append(f"MESSAGES ({len(log['messages'])})")
    for m in log["messages"]:
        out.append(inert(_message_title(m, sid)))
        out.append(inert(f"  from {_sender(m, sid)}; {_times(m)}"))
        if m.get("in_reply_to"):
            out.append(inert(f"  in reply to {m['in_reply_to']}"))
        for line in (m["text"] or "(no text)").split("\n"):
            out.append("  | " + inert(line))
        if m["truncated"]:
            out.append(inert(f"  | ... (cut; the whole text: hotline message {m['message_id']})"))
        for stage in _stages(m):
            out.append("  - " + inert(stage))
        out.append("")
    out.append(f"ALARMS ({len(log['alarms'])})")
    out.extend(inert(_alarm_line(a)) for a in log["alarms"])
    out.append("")
    out.append(f"OVERDUE ACKNOWLEDGEMENTS ({len(log['overdue'])})")
    out.extend(inert(_overdue_line(o)) for o in log["overdue"])
    return "\n".join(out) + "\n"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md(value: object) -> str:
    """Inert Markdown: HTML escaped, every Markdown syntax character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(inert(value), quote=True))


def render_md(log: dict[str, Any]) -> str:
    sid = log["station"]["station_id"]
    out = ["# Hotline log", ""]
    out.extend(f"- {md(x)}" for x in _header_lines(log))
    out += ["", f"## Messages ({len(log['messages'])})", ""]
    for m in log["messages"]:
        out.append(f"### {md(_message_title(m, sid))}")
        out.append("")
        out.append(f"From {md(_sender(m, sid))}; {md(_times(m))}")
        out.append("")
        for line in (m["text"] or "(no text)").split("\n"):
            out.append("> " + md(line))
        out.append("")
        out.extend(f"- {md(s)}" for s in _stages(m))
        out.append("")
    out += [f"## Alarms ({len(log['alarms'])})", ""]
    out.extend(f"- {md(_alarm_line(a))}" for a in log["alarms"])
    out += ["", f"## Overdue acknowledgements ({len(log['overdue'])})", ""]
    out.extend(f"- {md(_overdue_line(o))}" for o in log["overdue"])
    return "\n".join(out) + "\n"


_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#111}"
    "h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #999}"
    ".m{border-left:3px solid #888;padding:.2em .8em;margin:1em 0;page-break-inside:avoid}"
    ".t{white-space:pre-wrap;font-family:monospace;background:#f4f4f4;padding:.4em}"
    ".meta{color:#444;font-size:.9em}ul{margin:.3em 0}"
    "@media print{body{margin:0;max-width:none}}"
)


def h(value: object) -> str:
    return html.escape(inert(value), quote=True)


def render_html(log: dict[str, Any]) -> str:
    sid = log["station"]["station_id"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>Hotline log {h(sid)} {h(when(log['from_us']))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Hotline log</h1><ul>",
        *(f"<li>{h(x)}</li>" for x in _header_lines(log)),
        f"</ul><h2>Messages ({len(log['messages'])})</h2>",
    ]
    for m in log["messages"]:
        parts.append('<div class="m">')
        parts.append(f"<div><strong>{h(_message_title(m, sid))}</strong></div>")
        parts.append(f'<div class="meta">From {h(_sender(m, sid))}; {h(_times(m))}</div>')
        parts.append(f'<div class="t">{h(m["text"] or "(no text)")}</div>')
        parts.append("<ul>" + "".join(f"<li>{h(s)}</li>" for s in _stages(m)) + "</ul></div>")
    parts.append(f"<h2>Alarms ({len(log['alarms'])})</h2><ul>")
    parts.extend(f"<li>{h(_alarm_line(a))}</li>" for a in log["alarms"])
    parts.append(f"</ul><h2>Overdue acknowledgements ({len(log['overdue'])})</h2><ul>")
    parts.extend(f"<li>{h(_overdue_line(o))}</li>" for o in log["overdue"])
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"


def render(log: dict[str, Any], fmt: str) -> str:
    if fmt == "text":
        return render_text(log)
    if fmt == "md":
        return render_md(log)
    if fmt == "html":
        return render_html(log)
    raise InputError(f"unknown format {fmt[:20]!r}", code="bad_input", hint="text, md or html")
