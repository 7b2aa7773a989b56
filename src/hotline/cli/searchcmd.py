"""History commands against a running station's API: search and the printable log.

``hotline search`` prints one hit per two lines that fit 80 columns (a short id you can
copy, when, direction and peer, precedence, channel, state; then the start of the text);
``hotline log`` fetches the log of a period as JSON and prints it as text, Markdown or a
self-contained HTML page (service/printlog.py renders it, escaping whatever a peer
wrote), to the terminal or a file. Everything from the API is printed with
``common.plain``: text, never markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from hotline.cli.common import DEFAULT_DATA_DIR, Api, DataDir, console, handles_errors, plain

STATES = "unacknowledged, acknowledged, answered, unanswered, overdue"


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("log")(log)


def _when(us: int | None) -> str:
    from hotline.service import printlog

    return printlog.when(us)[:16]


@handles_errors
def search(
    query: Annotated[
        str,
        typer.Argument(help='Words (all must match), "quoted phrases", prefixes like conv*.'),
    ] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    channel: Annotated[str | None, typer.Option("--channel", "-c")] = None,
    peer: Annotated[str | None, typer.Option("--peer")] = None,
    precedence: Annotated[
        str | None, typer.Option("--precedence", "-p", help="FLASH, IMMEDIATE, ...")
    ] = None,
    direction: Annotated[str | None, typer.Option(help="in or out.")] = None,
    state: Annotated[str | None, typer.Option(help=f"One of: {STATES}.")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Stored on or after (2026-11-01 or an ISO time).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Stored before the end of this day (or time).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Hits per page.")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="The 'next page' value a previous search printed.")
    ] = None,
) -> None:
    """Search messages, newest first, with filters; prints a cursor for the next page.

    Words must all match (any case); "a quoted phrase" matches the words in order; conv*
    matches words that start with conv. Punctuation is ignored.
    Example: hotline search '"site zulu" conv*' --peer bravo --from 2026-11-01 -d alpha
    """
    params: dict[str, Any] = {"q": query, "limit": limit}
    for key, value in (("channel", channel), ("peer", peer), ("precedence", precedence),
                       ("direction", direction), ("state", state), ("from", from_),
                       ("to", to), ("cursor", cursor)):  # fmt: skip
        if value is not None:
            params[key] = value.upper() if key == "precedence" else value
    page = Api(data_dir).call("GET", "/api/v1/search", params=params)
    if not page["items"]:
        console.print("no messages found")
    for h in page["items"]:
        arrow = "to" if h["direction"] == "out" else "from"
        flags = " OVERDUE" if h["ack_overdue"] else ""
        flags += " answered" if h["answered"] else ""
        console.print(
            plain((h["message_id"][:8], "bold"), f" {_when(h['stored_at_us'])} {arrow} ",
                  h["peer"], f" {h['precedence']} ", h["channel"], " ", h["state"], flags),
            no_wrap=True, overflow="ellipsis",
        )  # fmt: skip
        text = (h["text"] or f"({h['type']})").replace("\n", " ")
        console.print(plain("  ", text[:76]), no_wrap=True, overflow="ellipsis")
    if page["next"]:
        console.print(plain("next page: --cursor ", (page["next"], "bold")))


@handles_errors
def log(
    from_: Annotated[str, typer.Option("--from", help="First day (2026-11-01) or time.")],
    to: Annotated[str, typer.Option("--to", help="Last day, included (2026-11-30), or time.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    channel: Annotated[str | None, typer.Option("--channel", "-c")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, md or html.")] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
) -> None:
    """Print the log of a period for a review meeting: every message with who sent it,
    when (ours and the peer's claimed time) and its stages, alarms and overdue
    acknowledgements, under a header with the record's size and root hash (check them
    against a signed transcript).

    Example: hotline log --from 2026-11-01 --to 2026-11-30 --format html -o nov.html -d alpha
    """
    if fmt not in ("text", "md", "html"):
        raise typer.BadParameter("--format is text, md or html")
    params: dict[str, Any] = {"from": from_, "to": to, "format": "json"}
    if channel:
        params["channel"] = channel
    data = Api(data_dir).call("GET", "/api/v1/log", params=params)
    from hotline.service import printlog

    body = printlog.render(data, fmt)
    if output is not None:
        output.write_text(body, encoding="utf-8")
        console.print(plain(f"wrote {len(data['messages'])} messages to ", str(output)))
        return
    # rendered text is inert already (control characters escaped); never read as markup
    console.print(body, markup=False, highlight=False, emoji=False, end="", soft_wrap=True)
