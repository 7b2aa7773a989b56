"""The two-person rule from the command line: the approval queue and its decisions
(``hotline approvals``, ``approve``, ``refuse``, ``withdraw``), through the running
station's operator API.

Owns presentation only: the queue at 80 columns (short ids you can type: a unique prefix
is enough), and how a send held for approval is shown (``print_held``, used by
``hotline send``). Every value from the API is printed with ``common.plain``. Must not
touch: the rules (who may decide, deadlines: service/approvals.py).
"""

from __future__ import annotations

import time
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

STATES = ["pending", "approved", "refused", "withdrawn", "expired"]
#: the queue's columns: id, state, precedence, channel, requester, time left / decided by
_ROW = "{:<8}  {:<9} {:<9} {:<10} {:<10} {:<8} "
WIDTH = 80


def register(app: typer.Typer) -> None:
    app.command("approvals")(approvals)
    app.command("approve")(approve)
    app.command("refuse")(refuse)
    app.command("withdraw")(withdraw)


def _left(deadline_us: int) -> str:
    left = int(deadline_us / 1e6 - time.time())
    if left <= 0:
        return "overdue"
    minutes, seconds = divmod(left, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _cut(value: object, width: int) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "~"


def _line(a: dict[str, Any]) -> str:
    last = _left(a["deadline_us"]) if a["state"] == "pending" else (a["decided_by"] or "-")
    head = _ROW.format(
        a["id"][:8], a["state"], a["precedence"], _cut(a["channel"], 10),
        _cut(a["requester"], 10), _cut(last, 8),
    )  # fmt: skip
    return head + _cut(a["text"], WIDTH - len(head))


@handles_errors
def approvals(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    state: Annotated[
        str | None, typer.Option("--state", "-s", help="Only one state: " + ", ".join(STATES))
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
) -> None:
    """The approval queue of the two-person rule: pending requests first (time left to
    decide), then decided ones (by whom).

    A message on a channel that requires a second officer's approval waits here; another
    officer with the approve role decides it ('hotline approve ID' sends it; 'hotline
    refuse ID --reason ...'); its requester may withdraw it. Ids are shown by their first
    8 characters: a unique prefix is enough.
    Example: hotline approvals --state pending -d alpha
    """
    if state is not None and state not in STATES:
        raise typer.BadParameter(f"state must be one of {', '.join(STATES)}")
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    rows = Api(data_dir).call("GET", "/api/v1/approvals", params=params)
    if not rows:
        console.print(plain("no approval requests" + (f" {state}" if state else "")))
        return
    header = _ROW.format("id", "state", "prec", "channel", "requester", "left/by") + "text"
    console.print(plain((header, "bold")), soft_wrap=True)
    for a in rows:
        console.print(plain(_line(a)), soft_wrap=True)


def _resolve(api: Api, prefix: str) -> str:
    if len(prefix) == 36:
        return prefix
    rows = api.call("GET", "/api/v1/approvals", params={"limit": 1000})
    hits = [a["id"] for a in rows if str(a["id"]).startswith(prefix)]
    if len(hits) != 1:
        raise InputError(
            f"{len(hits)} approval requests start with {prefix!r}",
            code="not_found" if not hits else "ambiguous_id",
            hint="give more of the id (hotline approvals shows the first 8 characters)"
            if hits
            else "check the id with: hotline approvals",
        )
    return str(hits[0])


def _decided(a: dict[str, Any]) -> None:
    what = f" ({a['precedence']} on {a['channel']} from {a['requester']}, by {a['decided_by']})"
    console.print(plain(f"{a['state']} ", (a["id"], "bold"), what))
    for mid in a["message_ids"]:
        console.print(plain("  sent message ", (mid, "bold")))
    if a.get("reason"):
        console.print(plain("  reason: ", a["reason"]), soft_wrap=True)


@handles_errors
def approve(
    approval_id: Annotated[str, typer.Argument(help="The request's id (a unique prefix).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Approve another officer's request: its message is sent now, and both officers are
    on the record. One's own request cannot be approved (same_officer).

    Example: hotline approve 3f2a9c1e -d alpha
    """
    api = Api(data_dir)
    _decided(api.call("POST", f"/api/v1/approvals/{_resolve(api, approval_id)}/approve"))


@handles_errors
def refuse(
    approval_id: Annotated[str, typer.Argument(help="The request's id (a unique prefix).")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (on the record).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Refuse another officer's request, with a reason; nothing is sent.

    Example: hotline refuse 3f2a9c1e --reason "wrong grid: check with the battery" -d alpha
    """
    api = Api(data_dir)
    path = f"/api/v1/approvals/{_resolve(api, approval_id)}/refuse"
    _decided(api.call("POST", path, json={"reason": reason}))


@handles_errors
def withdraw(
    approval_id: Annotated[str, typer.Argument(help="The request's id (a unique prefix).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Withdraw one's own pending request; nothing is sent.

    Example: hotline withdraw 3f2a9c1e -d alpha
    """
    api = Api(data_dir)
    _decided(api.call("POST", f"/api/v1/approvals/{_resolve(api, approval_id)}/withdraw"))


def print_held(r: dict[str, Any]) -> None:
    """What 'hotline send' shows when the channel requires a second officer."""
    console.print(
        plain(("held for approval: ", "yellow"), (r["approval_id"], "bold"),
              f" ({r['precedence']} on {r['channel']} to {', '.join(r['peers'])}); nothing "
              f"is sent until a second officer approves it by {us_to_text(r['deadline_us'])}"),
        soft_wrap=True,
    )  # fmt: skip
    console.print(plain(f"  hotline approve {r['approval_id'][:8]}  (another officer)"))
