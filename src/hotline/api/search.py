"""Operator API for history: search over messages and the printable log of a period.

Owns the HTTP shapes of ``GET /api/v1/search`` (a page of hits and the ``next`` cursor;
needs a role that may read) and ``GET /api/v1/log`` (typed JSON, or a text, Markdown or
HTML file to print; needs a role that may export). The query syntax, the filters and the
log's content are service/search.py and service/printlog.py; both read in a worker
thread. Must not touch: SQL, writes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import Field

from hotline.api.auth import allowed
from hotline.api.openapi import errors
from hotline.api.routers import api_router
from hotline.api.shapes import PrecedenceName, Shape
from hotline.service import channels, printlog, search
from hotline.service.line import Line
from hotline.service.roles import Action, Principal

StateName = Literal["unacknowledged", "acknowledged", "answered", "unanswered", "overdue"]


class SearchHit(Shape):
    """One message found (times are ours, microseconds since the epoch; the peer's claims
    are named so)."""

    message_id: str
    direction: Literal["in", "out"]
    peer: str
    channel: str
    precedence: PrecedenceName
    type: str
    text: str = Field(description="At most the first 500 characters of the text.")
    truncated: bool = Field(description="The text is longer: GET /api/v1/messages/{id}.")
    officer: dict[str, Any] | None = Field(description="The sending officer, when sent.")
    operator: str | None
    in_reply_to: str | None
    state: str = Field(description="queued, sent, delivered, refused, received, acknowledged.")
    answered: bool = Field(description="A message replies to it (in_reply_to).")
    ack_required: bool
    ack_overdue: bool
    stored_at_us: int = Field(description="Our time: when we stored it.")
    sent_at_us: int = Field(
        description="Ours for a sent message; the peer's claim for one received."
    )
    delivered_at_us: int | None
    ack_deadline_us: int | None
    acknowledged_at_us: int | None = Field(description="Our time of the acknowledgement.")
    ack_claimed_at_us: int | None = Field(description="The peer's claimed acknowledgement time.")
    acknowledged_by: str | None
    entry_idx: int = Field(description="The message's place in the ledger.")


class SearchPage(Shape):
    """A page of hits, newest first, and the cursor of the next page."""

    items: list[SearchHit]
    next: str | None = Field(description="Pass as `cursor` for the next page; null: the last.")


class LogStation(Shape):
    station_id: str
    display_name: str


class LogPeer(Shape):
    station_id: str
    display_name: str
    added_at_us: int
    removed_at_us: int | None


class LogMessage(SearchHit):
    text: str = Field(description="At most the first 4000 characters of the text.")
    ack_note: str | None


class LogAlarm(Shape):
    kind: str
    severity: str
    peer: str | None
    ref: str | None
    detail: str
    raised_at_us: int
    cleared_at_us: int | None


class LogOverdue(Shape):
    message_id: str
    direction: Literal["in", "out"]
    peer: str
    channel: str
    precedence: PrecedenceName
    ack_deadline_us: int | None
    acknowledged_at_us: int | None
    acknowledged_by: str | None


class PrintLog(Shape):
    """The log of a period: header, messages in ledger order, alarms, overdue acks."""

    station: LogStation
    peers: list[LogPeer]
    from_us: int
    to_us: int = Field(description="Exclusive.")
    channel: str | None
    printed_at_us: int
    record_size: int = Field(description="Ledger entries when the log was printed.")
    record_root: str | None = Field(description="The ledger's root hash then (hex).")
    messages: list[LogMessage]
    messages_truncated: bool
    alarms: list[LogAlarm]
    overdue: list[LogOverdue]


Reader = Annotated[Principal, Depends(allowed(Action.READ))]
Exporter = Annotated[Principal, Depends(allowed(Action.EXPORT))]
MEDIA = {"text": "text/plain", "md": "text/markdown", "html": "text/html"}


def search_router(line: Line, auth: Any) -> APIRouter:
    router = api_router(prefix="/api/v1", dependencies=[Depends(auth)], tags=["history"])

    @router.get("/search", responses=errors(403))
    async def search_messages(
        who: Reader,
        q: Annotated[str, Query(max_length=search.MAX_QUERY_CHARS)] = "",
        channel: Annotated[str | None, Query(max_length=64)] = None,
        peer: Annotated[str | None, Query(max_length=32)] = None,
        precedence: PrecedenceName | None = None,
        direction: Literal["in", "out"] | None = None,
        state: StateName | None = None,
        from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        to: Annotated[str | None, Query(max_length=40)] = None,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = 50,
    ) -> SearchPage:
        """Search messages: words (all must match), "quoted phrases", prefixes (conv*),
        with filters; newest first, `next` pages on. `bad_query`, `bad_period`,
        `bad_cursor` (422) say what to change."""
        req = search.SearchRequest(
            q=q, channel=channel, peer=peer, precedence=precedence, direction=direction,
            state=state, from_=from_, to=to, cursor=cursor, limit=limit,
        )  # fmt: skip
        page = await search.search(line.reader, line.clock.now_us(), who, req)
        # hits on channels whose terms do not let the officer's roles read them here are
        # left out (a page may then hold fewer than `limit`; `next` still pages on)
        page["items"] = channels.visible(line.ctx, who, page["items"])
        return SearchPage.model_validate(page)

    @router.get(
        "/log",
        response_model=PrintLog,
        responses={
            200: {
                "description": "The log (format=json), or a file to print: text/plain "
                "(format=text), text/markdown (md), text/html (html, one self-contained page).",
                "content": {m: {"schema": {"type": "string"}} for m in MEDIA.values()},
            },
            **errors(403),
        },
    )
    async def print_log(
        who: Exporter,
        from_: Annotated[str, Query(alias="from", max_length=40)],
        to: Annotated[str, Query(max_length=40)],
        channel: Annotated[str | None, Query(max_length=64)] = None,
        format: Literal["json", "text", "md", "html"] = "json",
    ) -> Any:
        """The printable log of a period (our stored times; a date alone as `to` means the
        end of that day) for review meetings: a header with the record's size and root
        hash, every message with its stages, alarms and overdue acknowledgements."""
        station = {"station_id": line.station_id, "display_name": line.identity.display_name}
        log = await printlog.build(
            line.reader, station, line.clock.now_us(), who, from_, to, channel
        )
        log["messages"] = channels.visible(line.ctx, who, log["messages"])
        if format == "json":
            return PrintLog.model_validate(log)
        body = printlog.render(log, format)
        name = f"hotline-log-{line.station_id}-{from_[:10]}-{to[:10]}.{format}"
        return Response(
            body,
            media_type=f"{MEDIA[format]}; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{_safe(name)}"',
                "x-content-type-options": "nosniff",
            },
        )

    return router


def _safe(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._") else "_" for c in name)
